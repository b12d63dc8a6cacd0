// The trainer's measurements the experiments use: --eval-only at another length and the loss
// per position, log.csv's evaluation columns, the spike detector (marking, skipping, exact on
// --resume) and --decay-all. Runs ./train from the repository root on tiny models, as test_train_cli.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../trainer/error.h"
#include "../../trainer/spikes.h"
#include "test_util.h"

using Catch::Matchers::Contains;
using namespace train;

namespace {

using Rows = std::vector<std::vector<std::string>>;

// A CSV file as rows of fields, the header first (an empty trailing field is kept).
Rows read_csv(const std::string& path) {
    std::ifstream f(path);
    Rows rows;
    for (std::string line; std::getline(f, line);) {
        rows.emplace_back(1);
        for (char c : line) {
            if (c == ',') rows.back().emplace_back();
            else rows.back().back() += c;
        }
    }
    return rows;
}

// The index of a column by its header name (fails the test if absent).
size_t column(const Rows& rows, const std::string& name) {
    REQUIRE(!rows.empty());
    for (size_t i = 0; i < rows[0].size(); ++i)
        if (rows[0][i] == name) return i;
    FAIL("no column " << name);
    return 0;
}

bool finite_number(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    return !text.empty() && *end == '\0' && std::isfinite(v);
}

// The rows of a log.csv with the ms column (timing, which differs run to run) removed.
Rows without_ms(Rows rows) {
    const size_t ms = column(rows, "ms");
    for (auto& row : rows) row.erase(row.begin() + (long)ms);
    return rows;
}

}  // namespace

// ---- the spike detector itself

TEST_CASE("spikes: no score until the window is full, then z against the window before the step", "[spikes]") {
    SpikeDetector d(4);
    for (double loss : {1.0, 2.0, 3.0}) {
        CHECK(std::isnan(d.score(loss, 1).loss_z));
        CHECK_FALSE(d.score(loss, 1).above(0.1));
        d.push(loss, 1);
    }
    d.push(4, 1);  // the window: losses 1 2 3 4 (mean 2.5, population std sqrt(1.25)), norms all 1
    const SpikeScores s = d.score(10, 1);
    CHECK(s.loss_z == Approx((10 - 2.5) / std::sqrt(1.25)));
    CHECK(s.norm_z == 0);                     // a flat window and the same value: no spike
    CHECK(d.score(2.5, 1.5).norm_z == INFINITY);  // a flat window and a larger value: a spike
    CHECK(s.above(6.0));
    CHECK_FALSE(s.above(7.0));
    d.push(10, 1);  // the oldest (1) drops out: 2 3 4 10
    CHECK(d.score(4.75, 1).loss_z == Approx(0));
}

TEST_CASE("spikes: the window's text round-trips exactly; bad text is an error naming the file", "[spikes]") {
    SpikeDetector d(3), back(3);
    for (double loss : {0.1, 1.0 / 3.0, 2.718281828459045, 5e-300}) d.push(loss, loss * 7);
    back.from_text(d.to_text(), "'x.ckpt'");
    CHECK(back.to_text() == d.to_text());
    CHECK(back.score(1.2345, 0.5).loss_z == d.score(1.2345, 0.5).loss_z);  // bit for bit
    SpikeDetector fresh(3);
    fresh.from_text("", "'x.ckpt'");  // a checkpoint from before the detector: an empty window
    CHECK(fresh.to_text().empty());
    CHECK_THAT(error_of([&] { back.from_text("0x1p+0 zz", "'x.ckpt'"); }), Contains("'x.ckpt'") && Contains("'zz'"));
    CHECK_THAT(error_of([&] { back.from_text("0x1p+0 0x1p+0 0x1p+0", "'x.ckpt'"); }), Contains("no gradient norm"));
    CHECK_THAT(error_of([&] { back.from_text("1 1 1 1 1 1 1 1", "'x.ckpt'"); }), Contains("more than its 3 steps"));
}

// ---- ./train

TEST_CASE("--eval-only: another sequence length, the loss per position, one-line errors", "[cli][eval]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string data = "-i " + dir / "text.txt";
    for (const char* pos : {"learned", "rope"}) {
        REQUIRE(run_train(data + kTiny + " --steps 5 --pos " + pos + " --out " + dir / pos).status == 0);
    }
    // at the trained length, without --eval-seq-len: the same val loss as the run's last evaluation
    Result same = run_train(data + " --eval-only --position-loss " + dir / "same.csv" + " --out " + dir / "learned");
    INFO(same.output);
    REQUIRE(same.status == 0);
    CHECK_THAT(same.output, Contains("at sequence length 16 (trained at 16)") && Contains("max attention logit"));
    const Rows log = read_csv(dir / "learned/log.csv");
    CHECK_THAT(same.output, Contains("val loss " + log.back()[column(log, "val_loss")].substr(0, 6)));
    const Rows same_csv = read_csv(dir / "same.csv");
    CHECK(same_csv.size() == 17);  // the header and 16 positions

    // rope at 4 times the trained length: one row per position, finite, and their mean is the loss
    Result longer = run_train(data + " --eval-only --eval-seq-len 64 --position-loss " + dir / "rope.csv" + " --out " + dir / "rope");
    INFO(longer.output);
    REQUIRE(longer.status == 0);
    CHECK_THAT(longer.output, Contains("at sequence length 64 (trained at 16)") && Contains("wrote " + dir / "rope.csv"));
    const Rows csv = read_csv(dir / "rope.csv");
    REQUIRE(csv.size() == 65);
    CHECK(csv[0] == std::vector<std::string>{"position", "loss"});
    for (size_t t = 1; t < csv.size(); ++t) {
        INFO("row " << t);
        REQUIRE(csv[t].size() == 2);
        CHECK(csv[t][0] == std::to_string(t - 1));
        CHECK(finite_number(csv[t][1]));
        CHECK(std::strtod(csv[t][1].c_str(), nullptr) > 0);
    }

    // learned positions have no rows past the table; other misuses
    expect_error(run_train(data + " --eval-only --eval-seq-len 32 --out " + dir / "learned"),
                 "--eval-seq-len 32 is past the model's 16 positions: a learned position table");
    expect_error(run_train(data + " --eval-only --eval-seq-len 100000 --out " + dir / "rope"),
                 "--eval-seq-len 100000 needs more than 100000 tokens of validation data");
    expect_error(run_train(data + " --eval-seq-len 32 --out " + dir / "rope"), "--eval-seq-len needs --eval-only");
    expect_error(run_train(data + " --eval-only --out " + dir / "nothing"), "nothing/model.ckpt");
    CHECK(list_dir(dir / "learned").size() == 3);  // model.ckpt, log.csv, loss.svg: nothing added
}

TEST_CASE("log.csv: the event and evaluation columns, finite at each evaluation; an old log resumes", "[cli][log]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 12 --eval-every 4";
    REQUIRE(run_train(common + " --out " + dir / "out").status == 0);
    const Rows rows = read_csv(dir / "out/log.csv");
    REQUIRE(rows.size() == 13);
    CHECK(rows[0] == std::vector<std::string>{"step", "train_loss", "val_loss", "lr", "grad_norm", "ms", "event",
                                              "decay_norm", "no_decay_norm", "max_logit", "mean_lse", "max_attn_logit"});
    for (size_t i = 1; i < rows.size(); ++i) {
        INFO("row " << i);
        REQUIRE(rows[i].size() == 12);
        const bool evaluated = i % 4 == 0;
        for (const char* name : {"val_loss", "decay_norm", "no_decay_norm", "max_logit", "mean_lse", "max_attn_logit"}) {
            INFO(name);
            const std::string& v = rows[i][column(rows, name)];
            if (evaluated) CHECK(finite_number(v));
            else CHECK(v.empty());
        }
    }
    // the norms are of weights that start near their initialisation: both groups are non-empty
    CHECK(std::strtod(rows[4][column(rows, "decay_norm")].c_str(), nullptr) > 0);
    CHECK(std::strtod(rows[4][column(rows, "no_decay_norm")].c_str(), nullptr) > 0);

    // a log.csv of the first six columns only (written before the others existed) still resumes
    REQUIRE(run_train(common + " --stop-after 8 --out " + dir / "old").status == 0);
    const Rows first = read_csv(dir / "old/log.csv");
    std::string old_csv;
    for (const auto& row : first) {
        for (size_t c = 0; c < 6; ++c) old_csv += (c ? "," : "") + row[c];
        old_csv += "\n";
    }
    write_text(dir / "old/log.csv", old_csv);
    Result resumed = run_train("--resume --steps 12 --out " + dir / "old");
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    const Rows after = read_csv(dir / "old/log.csv");
    REQUIRE(after.size() == 13);
    CHECK(after[8][column(after, "decay_norm")].empty());  // the old rows: no measurements
    CHECK(after[8][column(after, "train_loss")] == first[8][1]);
    CHECK(finite_number(after[12][column(after, "max_attn_logit")]));  // the new ones have them
    CHECK(train_losses(dir / "old/log.csv") == train_losses(dir / "out/log.csv"));
}

TEST_CASE("spikes: marked in the step line and log.csv; --skip-spikes skips exactly those updates", "[cli][spikes]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    // A window of 3 steps and a threshold of half a standard deviation: some steps of any run are
    // "spikes" by that measure, which plants them without tuning a real blow-up.
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 30 --warmup 0 --spike-window 3 --spike-z 0.5";
    Result marked = run_train(common + " --out " + dir / "marked");
    Result skipped = run_train(common + " --skip-spikes 0.5 --out " + dir / "skipped");
    INFO(marked.output << skipped.output);
    REQUIRE(marked.status == 0);
    REQUIRE(skipped.status == 0);
    CHECK_THAT(marked.output, Contains("| spike: z loss"));
    CHECK_FALSE(Catch::Matchers::Contains("update skipped").match(marked.output));
    CHECK_THAT(skipped.output, Contains("update skipped"));

    const Rows m = read_csv(dir / "marked/log.csv"), s = read_csv(dir / "skipped/log.csv");
    REQUIRE(m.size() == 31);
    REQUIRE(s.size() == 31);
    const size_t event = column(m, "event");
    for (size_t i = 1; i <= 3; ++i) CHECK(m[i][event].empty());  // the window fills first
    size_t first_skip = 0;
    for (size_t i = 1; i < s.size(); ++i) {
        CHECK((s[i][event].empty() || s[i][event] == "spike-skipped"));
        if (!first_skip && s[i][event] == "spike-skipped") first_skip = i;
    }
    REQUIRE(first_skip > 3);
    for (size_t i = 1; i <= first_skip; ++i) {  // the same run up to the first skipped update...
        CHECK(s[i][1] == m[i][1]);
        CHECK(m[i][event] == (i == first_skip ? "spike" : m[i][event]));
    }
    CHECK(m[first_skip][event] == "spike");
    CHECK(s[first_skip + 1][1] != m[first_skip + 1][1]);  // ...then not: that update was not applied
}

TEST_CASE("spikes: a resumed run scores and skips every step as the run that never stopped", "[cli][spikes]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 24 --warmup 0 --spike-window 6 --spike-z 1" +
                               " --skip-spikes 1.2 --dropout 0.1";
    REQUIRE(run_train(common + " --out " + dir / "straight").status == 0);
    REQUIRE(run_train(common + " --stop-after 12 --out " + dir / "split").status == 0);
    Result second = run_train("--resume --steps 24 --out " + dir / "split");
    INFO(second.output);
    REQUIRE(second.status == 0);
    const Rows straight = without_ms(read_csv(dir / "straight/log.csv"));
    CHECK(without_ms(read_csv(dir / "split/log.csv")) == straight);
    size_t events = 0;
    for (const auto& row : straight) events += row[5] == "spike" || row[5] == "spike-skipped";
    CHECK(events > 0);  // the detector acted, after the resume too: the comparison means something
}

TEST_CASE("--decay-all: every parameter in the decayed group, saved in the checkpoint", "[cli][optim]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 6 --eval-every 3 --warmup 0 --lr 1e-2 --weight-decay 1";
    Result two_d = run_train(common + " --stop-after 3 --out " + dir / "two_d");
    Result all = run_train(common + " --decay-all --stop-after 3 --out " + dir / "all");
    INFO(two_d.output << all.output);
    REQUIRE(two_d.status == 0);
    REQUIRE(all.status == 0);
    CHECK_THAT(all.output, Contains("no_decay") && Contains(" 0 in 0 tensors"));
    CHECK_FALSE(Catch::Matchers::Contains(" 0 in 0 tensors").match(two_d.output));
    // the gains and biases start at 1 and 0 and decay towards 0 only under --decay-all
    const Rows a = read_csv(dir / "all/log.csv"), t = read_csv(dir / "two_d/log.csv");
    CHECK(a[3][column(a, "no_decay_norm")] == "0");
    CHECK(t[3][column(t, "no_decay_norm")] != "0");
    CHECK(a[1][1] == t[1][1]);  // the first step's loss: the same model...
    CHECK(a[3][1] != t[3][1]);  // ...then the decay differs
    // on --resume the checkpoint decides it: given again differently, it is an error
    Result resumed = run_train("--resume --out " + dir / "all");
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.output, Contains(" 0 in 0 tensors"));
    expect_error(run_train("--resume --decay-all --out " + dir / "two_d"), "--decay-all true differs from the resumed run's false");
}

// The number of times `what` occurs in s.
static size_t occurrences(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) n++;
    return n;
}

static std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

TEST_CASE("--plot: several runs on one chart, a sweep against a setting, diverged runs marked", "[cli][plot]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 8 --eval-every 4 --warmup 0";
    for (const char* lr : {"0.001", "0.003"}) REQUIRE(run_train(common + " --lr " + lr + " --out " + dir / lr).status == 0);
    REQUIRE(run_train(common + " --seed 7 --lr 0.003 --out " + dir / "seed7").status == 0);
    // diverges: ten non-finite steps in a row end it, without a checkpoint
    REQUIRE(run_train("-i " + dir / "text.txt" + kTiny + " --steps 20 --warmup 0 --lr 1e30 --out " + dir / "blown").status == 1);
    const std::string runs = dir / "0.001" + "," + dir / "0.003" + "," + dir / "seed7" + "," + dir / "blown";

    // against the step: a line per run that has finite points, each named in the legend
    Result steps = run_train("--plot " + runs + " --plot-loss val -o " + dir / "steps.svg");
    INFO(steps.output);
    REQUIRE(steps.status == 0);
    CHECK_THAT(steps.output, Contains("(4 runs, 4 lines)"));
    const std::string svg = read_text(dir / "steps.svg");
    CHECK(occurrences(svg, "<polyline") == 3);
    for (const char* name : {">0.001</text>", ">0.003</text>", ">seed7</text>", ">blown (diverged)</text>"})
        CHECK(occurrences(svg, name) == 1);
    CHECK(occurrences(svg, ">val loss</text>") == 2);  // the title and the y axis

    // a sweep: the final loss against lr on a log axis, the two seeds at 0.003 one line
    Result sweep = run_train("--plot " + runs + " --labels a,a,a,a --plot-x lr --x-values 0.001,0.003,0.003,1e30 --log-x -o " +
                             dir / "sweep.svg");
    INFO(sweep.output);
    REQUIRE(sweep.status == 0);
    CHECK_THAT(sweep.output, Contains("(4 runs, 1 lines)"));
    const std::string s = read_text(dir / "sweep.svg");
    CHECK(occurrences(s, "<polyline") == 1);
    CHECK(occurrences(s, "<circle") == 3);
    CHECK(occurrences(s, ">a (diverged)</text>") == 1);
    CHECK(occurrences(s, ">0.001</text>") == 1);  // a tick of the log axis
    CHECK(occurrences(s, ">lr</text>") == 1);
    // from the checkpoints, where every run has one
    Result from_ckpt = run_train("--plot " + dir / "0.001" + "," + dir / "0.003" + " --plot-x lr -o " + dir / "ckpt.svg");
    INFO(from_ckpt.output);
    CHECK(from_ckpt.status == 0);
    CHECK(occurrences(read_text(dir / "ckpt.svg"), "<circle") == 2);

    // tables of two columns (--position-loss's, or a script's), each a line against its first column
    write_text(dir / "a.csv", "length,val_loss\n64,1.9\n128,2.0\n256,2.4\n");
    write_text(dir / "b.csv", "length,val_loss\n64,1.8\n128,1.85\n256,1.9\n");
    Result tables = run_train("--plot " + dir / "a.csv" + "," + dir / "b.csv" + " -o " + dir / "tables.svg");
    INFO(tables.output);
    REQUIRE(tables.status == 0);
    const std::string t = read_text(dir / "tables.svg");
    CHECK(occurrences(t, "<polyline") == 2);
    CHECK(occurrences(t, ">length</text>") == 1);
    CHECK(occurrences(t, ">a</text>") == 1);
    write_text(dir / "bad.csv", "length,val_loss\n64;1.9\n");
    expect_error(run_train("--plot " + dir / "bad.csv" + " -o " + dir / "x.svg"), "bad.csv' line 2 is not two numbers");

    expect_error(run_train("--plot " + runs + " --plot-x lr -o " + dir / "x.svg"), "blown/model.ckpt");
    expect_error(run_train("--plot " + runs + " --labels a,b -o " + dir / "x.svg"), "--labels names 2 runs, --plot gives 4");
    expect_error(run_train("--plot " + runs + " --plot-x lr --x-values 1,2 -o " + dir / "x.svg"), "--x-values gives 2 values");
    expect_error(run_train("--plot " + dir / "nowhere" + " -o " + dir / "x.svg"), "nowhere/log.csv");
    expect_error(run_train("--log-x -i " + dir / "text.txt"), "--log-x needs --plot DIRS");
    CHECK(access((dir / "x.svg").c_str(), F_OK) != 0);
}
