// ./train --dtype bf16 end to end: what the run prints, exact resume, llm.c's version-5 files, errors.
// Runs ./train from the repository root (make test does), on tiny models.
#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "../../autograd/bf16.h"
#include "../../trainer/checkpoint.h"
#include "../../trainer/files.h"
#include "../../trainer/llmc.h"
#include "test_util.h"

using namespace train;
using Catch::Matchers::Contains;

namespace {

// The parameters a checkpoint holds, each tensor's values.
std::vector<std::vector<float>> checkpoint_values(const std::string& path) {
    CheckpointReader r(path);
    nn::GPT model(r.info().config);
    r.load_model(model);
    std::vector<std::vector<float>> values;
    for (const auto& [name, t] : model.parameters()) values.emplace_back(t.data(), t.data() + t.numel());
    return values;
}

// The optimizer state a checkpoint of a bf16 run holds (m, v, and the master copy if any), as bytes.
std::string optimizer_state(const std::string& path, bool master) {
    CheckpointReader r(path);
    nn::GPT model(r.info().config);
    model.set_dtype(ag::Dtype::bf16);
    optim::AdamWConfig c;
    c.bf16_params = true, c.master_weights = master;
    optim::AdamW opt(optim::param_groups(model.parameters()), c);
    r.load_optimizer(opt);
    std::ostringstream out;
    opt.save_state(out);
    return out.str();
}

}  // namespace

TEST_CASE("bf16 run: the table says so, it learns, and every saved weight is a bf16 number", "[cli][bf16]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    Result r = run_train("-i " + dir / "text.txt" + kTiny + " --steps 40 --lr 1e-2 --warmup 5 --dtype bf16 --out " +
                         dir / "out");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("| precision            | bf16 mixed, fp32 master weights"));
    CHECK_THAT(r.output, Contains("| matmul               | ") && Contains("| training state       | "));
    std::vector<std::string> losses = train_losses(dir / "out/log.csv");
    REQUIRE(losses.size() == 40);
    CHECK(std::stod(losses.back()) < 0.6 * std::stod(losses.front()));
    for (const std::vector<float>& t : checkpoint_values(dir / "out/model.ckpt"))
        for (float x : t) REQUIRE(ag::is_bf16(x));
    CHECK(CheckpointReader(dir / "out/model.ckpt").info().settings.at("dtype") == "bf16");

    // the same run in fp32 gets about the same losses (bf16 keeps 8 significant bits)
    Result f = run_train("-i " + dir / "text.txt" + kTiny + " --steps 40 --lr 1e-2 --warmup 5 --out " + dir / "fp32");
    REQUIRE(f.status == 0);
    CHECK_THAT(f.output, Contains("| precision            | fp32"));
    std::vector<std::string> fp32 = train_losses(dir / "fp32/log.csv");
    for (size_t i = 0; i < 10; ++i) CHECK(std::stod(losses[i]) == Approx(std::stod(fp32[i])).margin(0.05));
}

TEST_CASE("bf16 run: 20 steps straight equal 10, a resume and 10 more, bit for bit", "[cli][bf16]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    // dropout, two micro-batches a step (bf16 gradient accumulation); with the master copy, and
    // without it (stochastic rounding, whose bits depend on the step)
    for (const char* precision : {" --dtype bf16", " --dtype bf16 --no-master-weights",
                                  " --dtype bf16 --no-master-weights --rounding nearest"}) {
        INFO(precision);
        const std::string common = "-i " + dir / "text.txt" + kTiny + " --steps 20 --dropout 0.1 --total-batch-tokens 128" +
                                   precision;
        REQUIRE(run_train(common + " --out " + dir / "straight").status == 0);
        Result first = run_train(common + " --stop-after 10 --out " + dir / "split");
        INFO(first.output);
        REQUIRE(first.status == 0);
        Result second = run_train("--resume --steps 20 --out " + dir / "split");
        INFO(second.output);
        REQUIRE(second.status == 0);
        CHECK_THAT(second.output, Contains("resuming after step 10") && Contains("| precision            | bf16"));
        CHECK(train_losses(dir / "straight/log.csv") == train_losses(dir / "split/log.csv"));
        CHECK(checkpoint_values(dir / "straight/model.ckpt") == checkpoint_values(dir / "split/model.ckpt"));
        const bool master = std::string(precision).find("no-master") == std::string::npos;
        CHECK(optimizer_state(dir / "straight/model.ckpt", master) == optimizer_state(dir / "split/model.ckpt", master));
    }
    // the stochastic rounding's bits are the same on 1 thread and on 2
    const std::string sr = "-i " + dir / "text.txt" + kTiny + " --steps 5 --dtype bf16 --no-master-weights";
    REQUIRE(run_train(sr + " --threads 1 --out " + dir / "one").status == 0);
    REQUIRE(run_train(sr + " --threads 2 --out " + dir / "two").status == 0);
    CHECK(checkpoint_values(dir / "one/model.ckpt") == checkpoint_values(dir / "two/model.ckpt"));
}

// What README promises: a run's bits do not depend on the number of threads. The model is big enough
// that every threaded op splits (1024 tokens a micro-batch: the products are cut into rectangles, the
// rows of layernorm and cross-entropy, attention's heads, AdamW's tensors), and 5 threads cut 1024 rows
// into rectangles short enough for the gemm's other loop nest, which sums K in other slices: a
// product that chose its nest by its own rectangle would differ there (it once did, at 8 threads).
TEST_CASE("a run gives the same bits on 1, 2 and 5 threads, in fp32 and bf16, with the model's variants",
          "[cli][threads]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string model = "-i " + dir / "text.txt" +
                              " --n-layer 2 --n-head 4 --n-embd 128 --seq-len 128 --batch-size 8 --steps 3"
                              " --eval-every 0 --sample-every 0";
    for (const char* variant : {"", " --dtype bf16 --dropout 0.1", " --dtype bf16 --no-master-weights --pos relative --norm sandwich",
                                " --pos alibi --no-tie --total-batch-tokens 2048"}) {
        INFO(variant);
        std::vector<std::string> losses;
        std::vector<std::vector<float>> values;
        for (int threads : {1, 2, 5}) {
            INFO(threads << " threads");
            const std::string out = dir / ("t" + std::to_string(threads));
            Result r = run_train(model + variant + " --threads " + std::to_string(threads) + " --out " + out);
            INFO(r.output);
            REQUIRE(r.status == 0);
            if (threads == 1) {
                losses = train_losses(out + "/log.csv"), values = checkpoint_values(out + "/model.ckpt");
                REQUIRE(losses.size() == 3);
                continue;
            }
            CHECK(train_losses(out + "/log.csv") == losses);
            CHECK(checkpoint_values(out + "/model.ckpt") == values);
        }
    }
}

TEST_CASE("bf16 run: a resume keeps the precision; another --dtype is refused", "[cli][bf16][errors]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    REQUIRE(run_train("-i " + dir / "text.txt" + kTiny + " --steps 4 --stop-after 2 --dtype bf16 --out " + dir / "out")
                .status == 0);
    expect_error(run_train("--resume --steps 4 --dtype fp32 --out " + dir / "out"),
                 "--dtype fp32 differs from the resumed run's bf16");
    expect_error(run_train("--resume --steps 4 --no-master-weights --out " + dir / "out"),
                 "--master-weights false differs from the resumed run's true");
    REQUIRE(run_train("-i " + dir / "text.txt" + kTiny + " --steps 4 --stop-after 2 --out " + dir / "fp32").status == 0);
    expect_error(run_train("--resume --steps 4 --dtype bf16 --out " + dir / "fp32"),
                 "--dtype bf16 differs from the resumed run's fp32");
    // sampling from a bf16 checkpoint runs the model in bf16
    Result s = run_train("--sample-only --sample-len 5 --prompt x --out " + dir / "out");
    INFO(s.output);
    CHECK(s.status == 0);
}

TEST_CASE("bf16 run: llm.c files of version 5, written, read back and re-exported bit for bit", "[cli][bf16][llmc]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    Result a = run_train("-i " + dir / "text.txt" + kTiny + " --steps 5 --dtype bf16 --export-llmc " + dir / "a.bin" +
                         " --out " + dir / "a");
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK_THAT(a.output, Contains("(llm.c model file, bf16: version 5)"));
    CHECK(read_llmc_model_header(dir / "a.bin").version == 5);
    // its values are the checkpoint's bf16 weights, exactly
    nn::GPT from_file(llmc_config(read_llmc_model_header(dir / "a.bin")));
    load_llmc_model(dir / "a.bin", from_file);
    std::vector<std::vector<float>> saved = checkpoint_values(dir / "a/model.ckpt");
    ag::NamedTensors p = from_file.parameters();
    REQUIRE(p.size() == saved.size());
    for (size_t i = 0; i < p.size(); ++i) {
        INFO(p[i].first);
        CHECK(std::vector<float>(p[i].second.data(), p[i].second.data() + p[i].second.numel()) == saved[i]);
    }

    // into a bf16 run, no training, out again: the same bytes; as fp32: version 3 of the same values
    const std::string init = "--init-from " + dir / "a.bin" + " -i " + dir / "text.txt" +
                             " --seq-len 16 --batch-size 4 --eval-every 0 --sample-len 4 --steps 0 --dtype bf16";
    Result b = run_train(init + " --export-llmc " + dir / "b.bin" + " --out " + dir / "b");
    INFO(b.output);
    REQUIRE(b.status == 0);
    CHECK(read_file(dir / "a.bin") == read_file(dir / "b.bin"));
    Result c = run_train(init + " --export-llmc " + dir / "c.bin" + " --export-dtype fp32 --out " + dir / "c");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK_THAT(c.output, Contains("(llm.c model file, fp32: version 3)"));
    nn::GPT from_v3(llmc_config(read_llmc_model_header(dir / "c.bin")));
    load_llmc_model(dir / "c.bin", from_v3);
    ag::NamedTensors q = from_v3.parameters();
    for (size_t i = 0; i < q.size(); ++i)
        CHECK(std::vector<float>(q[i].second.data(), q[i].second.data() + q[i].second.numel()) == saved[i]);
}

TEST_CASE("bf16 flags: one line naming the problem", "[cli][bf16][errors]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string run = "-i " + dir / "text.txt" + kTiny + " --steps 2 --out " + dir / "out";
    expect_error(run_train(run + " --dtype fp16"), "unknown --dtype 'fp16' (expected fp32 or bf16)");
    expect_error(run_train(run + " --dtype bf16 --rounding up"), "unknown --rounding 'up' (expected stochastic or nearest)");
    expect_error(run_train(run + " --dtype bf16 --rounding nearest"), "--rounding needs --dtype bf16 --no-master-weights");
    expect_error(run_train(run + " --no-master-weights"), "--[no-]master-weights needs --dtype bf16");
    expect_error(run_train(run + " --export-dtype bf16"), "--export-dtype needs --export-llmc FILE");
    expect_error(run_train(run + " --export-llmc " + dir / "m.bin" + " --export-dtype fp8"),
                 "unknown --export-dtype 'fp8' (expected fp32 or bf16)");
    CHECK(list_dir(dir / "out").empty());
}
