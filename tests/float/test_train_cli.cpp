// The ./train binary end to end: a short run learns, resume is bit-identical, Ctrl-C saves, and every
// bad input gives one "error:" line, a non-zero exit and no half-written file.
// Runs ./train from the repository root (make test does), on tiny models: each run takes well under
// a second.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../trainer/checkpoint.h"
#include "../../trainer/files.h"
#include "test_util.h"

using namespace train;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;


TEST_CASE("a short run lowers the loss and writes its outputs", "[cli]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    Result r = run_train("-i " + dir / "text.txt" + kTiny + " --steps 40 --lr 1e-2 --warmup 5 --out " + dir / "out");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("| parameters") && Contains("decay") && Contains("tokens/step") &&
                             Contains("final val loss"));
    std::vector<std::string> losses = train_losses(dir / "out/log.csv");
    REQUIRE(losses.size() == 40);
    CHECK(std::stod(losses.back()) < 0.6 * std::stod(losses.front()));
    auto files = list_dir(dir / "out");
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"log.csv", "loss.svg", "model.ckpt"});  // and no temporary files

    Result s = run_train("--sample-only --sample-len 30 --prompt 'the ' --out " + dir / "out");
    INFO(s.output);
    CHECK(s.status == 0);
    CHECK_THAT(s.output, StartsWith("the "));
}

TEST_CASE("20 steps straight equal 10, a resume, and 10 more, bit for bit", "[cli]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    // dropout on, random windows: the dropout generator and the loader's state must both be restored
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 20 --dropout 0.1";
    REQUIRE(run_train(common + " --out " + dir / "straight").status == 0);
    Result first = run_train(common + " --stop-after 10 --out " + dir / "split");
    INFO(first.output);
    REQUIRE(first.status == 0);
    CHECK_THAT(first.output, Contains("stopped after step 10"));
    Result second = run_train("--resume --steps 20 --out " + dir / "split");
    INFO(second.output);
    REQUIRE(second.status == 0);
    CHECK_THAT(second.output, Contains("resuming after step 10"));

    CHECK(train_losses(dir / "straight/log.csv") == train_losses(dir / "split/log.csv"));
    CheckpointReader a(dir / "straight/model.ckpt"), b(dir / "split/model.ckpt");
    CHECK(a.info().step == 20);
    CHECK(b.info().step == 20);
    nn::GPT ma(a.info().config), mb(b.info().config);
    a.load_model(ma);
    b.load_model(mb);
    auto pa = ma.parameters(), pb = mb.parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
        INFO(pa[i].first);
        CHECK(std::memcmp(pa[i].second.data(), pb[i].second.data(), sizeof(float) * pa[i].second.numel()) == 0);
    }
}

TEST_CASE("gradient accumulation: 2 micro-batches of 4 train like one batch of 8", "[cli]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    // sequential windows: micro-batches of 4 x 16 read the same 8 rows as one batch of 8 x 16
    const std::string common = "-i " + dir / "text.txt" + kTiny + " --loader sequential --steps 10";
    Result two = run_train(common + " --batch-size 4 --total-batch-tokens 128 --out " + dir / "accumulated");
    Result one = run_train(common + " --batch-size 8 --out " + dir / "whole");
    INFO(two.output);
    REQUIRE(two.status == 0);
    REQUIRE(one.status == 0);
    CHECK_THAT(two.output, Contains("4 x 16 x 2 accumulated = 128 tokens/step"));
    std::vector<std::string> a = train_losses(dir / "accumulated/log.csv"), b = train_losses(dir / "whole/log.csv");
    REQUIRE(a.size() == 10);
    REQUIRE(b.size() == 10);
    for (size_t i = 0; i < a.size(); ++i)  // the same sums in another order: equal up to float rounding
        CHECK(std::stod(a[i]) == Approx(std::stod(b[i])).epsilon(1e-4));
}

TEST_CASE("--kernels reference trains like the fast tier, to float rounding, in fp32 and bf16", "[cli][tiers]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    for (const std::string dtype : {"fp32", "bf16"}) {
        const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 8 --dropout 0.1 --dtype " + dtype;
        Result fast = run_train(common + " --out " + dir / ("fast_" + dtype));
        Result ref = run_train(common + " --kernels reference --out " + dir / ("ref_" + dtype));
        INFO(ref.output);
        REQUIRE(fast.status == 0);
        REQUIRE(ref.status == 0);
        CHECK_THAT(ref.output, Contains("reference (autograd/ops_*.cpp"));
        std::vector<std::string> a = train_losses(dir / ("ref_" + dtype + "/log.csv")),
                                 b = train_losses(dir / ("fast_" + dtype + "/log.csv"));
        REQUIRE(a.size() == 8);
        REQUIRE(b.size() == 8);
        // bf16 rounds every stored value: a last-bit difference in a sum can move a value one bf16 step
        // (2^-8 relative), so its losses agree less closely than fp32's.
        for (size_t i = 0; i < a.size(); ++i)
            CHECK(std::stod(a[i]) == Approx(std::stod(b[i])).epsilon(dtype == "fp32" ? 1e-4 : 5e-3));
    }
}

TEST_CASE("a checkpoint round trip keeps every parameter and optimizer value", "[cli]") {
    TempDir dir;
    nn::GPTConfig c;
    c.vocab_size = 50, c.max_seq_len = 8, c.n_layer = 2, c.n_head = 2, c.n_embd = 8;
    c.pos = nn::PosScheme::relative, c.norm = nn::NormPlacement::sandwich, c.tie_weights = false;
    c.attn_dropout = 0.25;
    nn::GPT model(c, 5);
    optim::AdamW opt(optim::param_groups(model.parameters()));
    std::vector<int> ids = {1, 2, 3, 4, 5, 6, 7, 8}, targets = {2, 3, 4, 5, 6, 7, 8, 9};
    for (int s = 0; s < 3; ++s) {  // some optimizer state worth saving
        opt.zero_grad();
        model.forward(ids, 1, 8, targets).loss.backward();
        opt.step(1e-2);
    }
    model.dropout_rng().next_u64();
    RunInfo info;
    info.config = c;
    info.step = 3;
    info.settings["lr"] = "0.01";
    save_checkpoint(dir / "m.ckpt", info, model, &opt, nullptr);

    CheckpointReader r(dir / "m.ckpt");
    CHECK(r.info().step == 3);
    CHECK(r.info().settings.at("lr") == "0.01");
    CHECK(config_to_text(r.info().config) == config_to_text(c));
    nn::GPT copy(r.info().config, 999);  // other initial values, all to be overwritten
    r.load_model(copy);
    auto p = model.parameters(), q = copy.parameters();
    for (size_t i = 0; i < p.size(); ++i)
        CHECK(std::memcmp(p[i].second.data(), q[i].second.data(), sizeof(float) * p[i].second.numel()) == 0);
    CHECK(copy.dropout_rng().state == model.dropout_rng().state);
    optim::AdamW opt2(optim::param_groups(copy.parameters()));
    r.load_optimizer(opt2);
    std::ostringstream s1, s2;
    opt.save_state(s1);
    opt2.save_state(s2);
    CHECK(s1.str() == s2.str());
    Tokens tokens(100, 1);
    BatchLoader loader(tokens, 1, 4, LoaderKind::Random, 1, "tokens");
    CHECK_THROWS_WITH(r.load_loader(loader), Contains("holds no data-loader state"));
}

TEST_CASE("Ctrl-C ends the run after the current step and saves a checkpoint", "[cli]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    int out_pipe[2];
    REQUIRE(pipe(out_pipe) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: ./train with a very long run
        dup2(out_pipe[1], 1);
        dup2(out_pipe[1], 2);
        close(out_pipe[0]);
        std::string text = dir / "text.txt", out = dir / "out";
        execl(TRAIN_BINARY, TRAIN_BINARY, "-i", text.c_str(), "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
              "--seq-len", "16", "--batch-size", "4", "--steps", "20000", "--eval-every", "0", "--out", out.c_str(),
              (char*)nullptr);
        _exit(127);
    }
    close(out_pipe[1]);
    std::string output;
    char buf[4096];
    bool signalled = false;
    ssize_t n;
    while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) {
        output.append(buf, (size_t)n);
        if (!signalled && output.find("/20000 |") != std::string::npos) {  // training is under way
            kill(pid, SIGINT);
            signalled = true;
        }
    }
    close(out_pipe[0]);
    int status = 0;  // (had the signal gone astray, the run would still end by itself: 20000 steps)
    waitpid(pid, &status, 0);
    INFO(output);
    REQUIRE(signalled);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK_THAT(output, Contains("interrupted: stopped after step") && Contains("continue with --resume"));
    CheckpointReader saved(dir / "out/model.ckpt");
    CHECK(saved.info().step >= 1);
    CHECK(train_losses(dir / "out/log.csv").size() == (size_t)saved.info().step);
}

TEST_CASE("non-finite steps are skipped and reported; ten in a row end the run", "[cli][errors]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    // a learning rate of 1e30 turns the weights into Inf and NaN after the first step
    Result r = run_train("-i " + dir / "text.txt" + kTiny + " --steps 30 --lr 1e30 --warmup 0 --out " + dir / "out");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Contains("step 2/30: loss") && Contains("not finite, step skipped"));
    CHECK_THAT(r.output, Contains("error: 10 steps in a row had a non-finite loss or gradient"));
    CHECK_FALSE(access((dir / "out/model.ckpt").c_str(), F_OK) == 0);  // ruined weights are not saved
}

TEST_CASE("bad flags: one line naming the problem, exit 1, nothing written", "[cli][errors]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string data = " -i " + dir / "text.txt" + " --out " + dir / "out";
    expect_error(run_train("--stpes 10" + data), "unknown flag --stpes (did you mean --steps?)");
    expect_error(run_train(data + " --lr"), "--lr needs a value");
    expect_error(run_train("--steps 12x" + data), "--steps expects an integer, got '12x'");
    expect_error(run_train("--lr abc" + data), "--lr expects");
    expect_error(run_train("extra" + data), "unexpected argument 'extra'");
    expect_error(run_train("--seq-len 2048 --max-seq-len 1024" + data), "--seq-len 2048 exceeds the model's max 1024");
    expect_error(run_train("--n-embd 100 --n-head 3" + data), "--n-embd 100 is not a multiple of --n-head 3");
    expect_error(run_train("--dropout 1.5" + data), "--dropout 1.5 must be in [0, 1)");
    expect_error(run_train("--attn-dropout -0.1" + data), "--attn-dropout -0.1 must be in [0, 1)");
    expect_error(run_train("--lr 0" + data), "--lr must be greater than 0, got 0");
    expect_error(run_train("--batch-size 0" + data), "--batch-size must be at least 1, got 0");
    expect_error(run_train("--pos absolute" + data), "unknown positional scheme 'absolute'");
    expect_error(run_train("--schedule step" + data), "step");
    expect_error(run_train("--loader shuffled" + data), "unknown loader 'shuffled'");
    expect_error(run_train("--kernels slow" + data), "unknown --kernels 'slow' (expected fast or reference)");
    expect_error(run_train("--preset gpt3" + data), "unknown --preset 'gpt3' (expected gpt2)");
    expect_error(run_train("--total-batch-tokens 100" + kTiny + data), "--total-batch-tokens 100 is not a multiple");
    CHECK(list_dir(dir / "out").empty());
}

TEST_CASE("bad data and output folders: one line, exit 1, nothing written", "[cli][errors]") {
    TempDir dir;
    write_text(dir / "empty.txt", "");
    write_text(dir / "short.txt", "too short for a batch");
    write_text(dir / "text.txt", little_text());
    const std::string out = " --out " + dir / "out";
    expect_error(run_train("-i " + dir / "missing.txt" + out), "cannot read '" + dir / "missing.txt" + "'");
    expect_error(run_train("-i " + dir.path + out), "is a directory");
    expect_error(run_train("-i " + dir / "empty.txt" + out), "is empty");
    expect_error(run_train("-i " + dir / "short.txt" + kTiny + out), "needs at least 65");
    CHECK(list_dir(dir / "out").empty());
    // an output folder inside a file cannot be made
    expect_error(run_train("-i " + dir / "text.txt" + kTiny + " --steps 1 --out " + dir / "text.txt/sub"),
                 dir / "text.txt/sub");
}

TEST_CASE("bad checkpoints: truncated, wrong magic, wrong version, another model", "[cli][errors]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    REQUIRE(run_train("-i " + dir / "text.txt" + kTiny + " --steps 2 --out " + dir / "good").status == 0);
    std::string good = read_file(dir / "good/model.ckpt");
    auto make_run = [&](const std::string& name, const std::string& bytes) {
        make_dirs(dir / name);
        write_text(dir / name + "/model.ckpt", bytes);
        return dir / name;
    };
    std::string truncated = make_run("truncated", good.substr(0, good.size() / 2));
    std::string magic = make_run("magic", "NOTACKPT" + good.substr(8));
    std::string version = good;
    version[8] = 9;  // the u32 after the 8-byte magic
    std::string versioned = make_run("version", version);

    expect_error(run_train("--resume --out " + truncated), "is truncated");
    expect_error(run_train("--resume --out " + magic), "is not a checkpoint (wrong magic)");
    expect_error(run_train("--resume --out " + versioned), "is a checkpoint of version 9");
    expect_error(run_train("--sample-only --out " + magic), "wrong magic");
    expect_error(run_train("--resume --out " + dir / "nothing"), "cannot read");
    expect_error(run_train("--resume --n-embd 32 --out " + dir / "good"), "--n-embd cannot change the model of a saved run");
    expect_error(run_train("--resume --lr 0.5 --out " + dir / "good"), "--lr 0.5 differs from the resumed run's");
    // nothing was overwritten by the failures
    CHECK(read_file(truncated + "/model.ckpt") == good.substr(0, good.size() / 2));
    CHECK(read_file(dir / "good/model.ckpt") == good);
}
