// Hostile files against ./train: small hand-made files that once read out of bounds, overflowed a
// signed int, waited forever or asked for gigabytes. Each must end in the one-line error, in a run
// confined to 1 GB and a minute (run_train_confined), so that a regression fails here instead of
// passing slowly. Each starts from a tiny run's own checkpoint and changes the few bytes that matter.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../../trainer/files.h"
#include "../../trainer/llmc.h"
#include "test_util.h"

using namespace train;
using Catch::Matchers::Contains;

namespace {

// A tiny run of 2 steps in dir/name, with extra flags; its folder.
std::string tiny_run(const TempDir& dir, const std::string& name, const std::string& flags = "") {
    if (access((dir / "text.txt").c_str(), F_OK) != 0) write_text(dir / "text.txt", little_text());
    Result r = run_train("-i " + dir / "text.txt" + kTiny + " --steps 2" + flags + " --out " + dir / name);
    INFO(r.output);
    REQUIRE(r.status == 0);
    return dir / name;
}

// The checkpoint's bytes with its info text edited. The text is the first section: a u64 length after
// the 16-byte header (magic, version, float size), then the "key=value" lines.
std::string with_info(const std::string& ckpt, const std::function<std::string(std::string)>& edit) {
    uint64_t n;
    std::memcpy(&n, ckpt.data() + 16, 8);
    const std::string text = edit(ckpt.substr(24, n));
    const uint64_t m = text.size();
    return ckpt.substr(0, 16) + std::string((const char*)&m, 8) + text + ckpt.substr(24 + n);
}

// The same with the line of `key` set to key=value (added if there is none).
std::string with_setting(const std::string& ckpt, const std::string& key, const std::string& value) {
    return with_info(ckpt, [&](std::string text) {
        text = "\n" + text;  // every line starts after a newline, the first one too
        size_t at = text.find("\n" + key + "=");
        if (at == std::string::npos) return text.substr(1) + key + "=" + value + "\n";
        size_t end = text.find('\n', at + 1);
        return text.substr(1, at) + key + "=" + value + text.substr(end);
    });
}

// Replaces the run's checkpoint by bytes; the folder, for --resume --out.
std::string with_checkpoint(const std::string& run, const std::string& bytes) {
    write_text(run + "/model.ckpt", bytes);
    return run;
}

std::string ckpt_of(const std::string& run) { return read_file(run + "/model.ckpt"); }

}  // namespace

TEST_CASE("hostile 1: a loader position near 2^64 on --resume is refused, not read before the tokens",
          "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "seq", " --loader sequential");
    // The loader section is the last: u64 length, kind, B, T (u32 each), then the u64 position.
    std::string bytes = ckpt_of(run);
    const size_t position_at = bytes.size() - (4 + 4 + 4 + 8 + 8 + 4 + 8) + 12;
    std::memset(&bytes[position_at], 0xff, 8);
    expect_error(run_train_confined("--resume --steps 4 --out " + with_checkpoint(run, bytes)),
                 "the saved data position 18446744073709551615 is past the end of '" + dir / "text.txt" + "'");
}

TEST_CASE("hostile 2: a 332-byte tokenizer.bpe whose merges double a token's length", "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "bpe", " --tokenizer bpe --vocab-size 260");
    ByteWriter chain;  // (0, 0), (256, 256), (257, 257), ...: token 256 + i has 2^(i+1) bytes
    chain.raw("BPETOK1\n", 8);
    chain.u32(40);
    chain.u32(0), chain.u32(0);
    for (uint32_t i = 1; i < 40; ++i) chain.u32(255 + i), chain.u32(255 + i);
    REQUIRE(chain.bytes().size() == 332);
    const std::string message = "is corrupt: merge 6 makes a token of 128 bytes; trained tokens are at most 64";
    write_text(run + "/tokenizer.bpe", chain.bytes());  // the tokenizer beside the checkpoint
    expect_error(run_train_confined("--resume --steps 4 --out " + run), message);
    write_llmc_tokens(dir / "tokens.bin", Tokens(200, 7));  // and given with token files
    expect_error(run_train_confined("-i " + dir / "tokens.bin --tokenizer-file " + run + "/tokenizer.bpe --out " +
                                    dir / "o"),
                 message);
}

TEST_CASE("hostile 3: sizes are checked against the file before anything is allocated", "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "run");
    const std::string good = ckpt_of(run);
    // a 1.5 GB embedding, and 12 TiB of blocks, claimed by a checkpoint of a few KB
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(good, "config.vocab_size", "100000000"))),
                 "does not fit its own model: the config needs 6,400,014,272 bytes of parameters, the file holds");
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(good, "config.n_embd", "1048576"))),
                 "does not fit its own model: the config needs 52,777,761,898,496 bytes");
    expect_error(run_train_confined("--sample-only --out " + with_checkpoint(run, with_setting(good, "config.n_embd", "1048576"))),
                 "does not fit its own model");

    // an llm.c tokenizer file whose header promises 0x58000004 tokens
    std::vector<int32_t> header(256, 0);
    header[0] = 20240328, header[1] = 1, header[2] = 0x58000004;
    write_text(dir / "tok.bin", std::string((const char*)header.data(), 1024) + "\x02" "ab");
    write_llmc_tokens(dir / "tokens.bin", Tokens(200, 7));
    expect_error(run_train_confined("-i " + dir / "tokens.bin --tokenizer-file " + dir / "tok.bin --out " + dir / "o"),
                 "'" + dir / "tok.bin" + "' is truncated: its header promises 1,476,395,012 tokens");
}

TEST_CASE("hostile 4: numbers that overflowed a signed int are refused", "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "run");
    const std::string good = ckpt_of(run);
    const std::string relative = with_setting(good, "config.pos", "relative");
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(relative, "config.rel_clip", "2147483647"))),
                 "holds an invalid model: the relative scheme needs a clip distance k from 1 to 1073741823");
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(relative, "config.rel_clip", "1073741823"))),
                 "does not fit its own model");

    // the optimizer's step count at INT64_MAX: the next step would overflow it
    std::string bytes = good;
    const size_t optimizer_at = bytes.find(std::string("AGOPTIM\0", 8));
    REQUIRE(optimizer_at != std::string::npos);
    const int64_t step = INT64_MAX;
    std::memcpy(&bytes[optimizer_at + 8 + 4 + 4 + 4 + 5], &step, 8);  // after magic, version, size, "adamw"
    expect_error(run_train_confined("--resume --steps 4 --out " + with_checkpoint(run, bytes)),
                 "optimizer state: corrupt (step 9223372036854775807)");

    write_llmc_tokens(dir / "tokens.bin", Tokens(200, 7));
    expect_error(run_train_confined("-i " + dir / "tokens.bin --vocab-size 2147483647 --out " + dir / "o"),
                 "--vocab-size 2147483647 is more than 65536");
}

TEST_CASE("hostile 5: paths inside a checkpoint must be regular files", "[cli][errors][hostile]") {
    TempDir dir;
    const std::string fifo = dir / "fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    const std::string run = tiny_run(dir, "run");
    const std::string good = ckpt_of(run);
    for (const std::string& device : {std::string("/dev/zero"), fifo}) {
        const std::string refused = "cannot read '" + device + "': it is not a regular file";
        expect_error(run_train_confined("--resume --steps 4 --out " + with_checkpoint(run, with_setting(good, "setting.input", device))),
                     refused);
        expect_error(run_train_confined("--resume --steps 4 --out " + with_checkpoint(run, with_setting(good, "setting.val", device))),
                     refused);
        std::string gpt2 = with_setting(with_setting(good, "tokenizer", "gpt2"), "tokenizer_file", device);
        expect_error(run_train_confined("--sample-only --out " + with_checkpoint(run, gpt2)), refused);
    }
}

TEST_CASE("hostile 6: log.csv on --resume with huge and non-numeric losses", "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "run");
    const std::string header = "step,train_loss,val_loss,lr,grad_norm,ms\n";
    write_text(run + "/log.csv", header + "1,1e308,-1e308,0.001,1,5\n2,-1e308,1e308,0.001,1,5\n");
    Result r = run_train_confined("--resume --steps 3 --out " + run);
    INFO(r.output);
    REQUIRE(r.status == 0);
    const std::string svg = read_file(run + "/loss.svg");
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
    std::vector<std::string> losses = train_losses(run + "/log.csv");
    REQUIRE(losses.size() == 3);
    CHECK(std::stod(losses[0]) == 1e308);  // kept as it was, all 309 digits
    CHECK(std::stod(losses[1]) == -1e308);

    for (const char* row : {"1,abc,,0.001,1,5", "1,0.5,,0.001,1", "x,0.5,,0.001,1,5", "1,0.5,nan,0.001,1,5"}) {
        write_text(run + "/log.csv", header + row + "\n");
        expect_error(run_train_confined("--resume --steps 4 --out " + run),
                     "'" + run + "/log.csv' line 2 is not a row step,train_loss,val_loss,lr,grad_norm,ms,event,");
    }
}

TEST_CASE("hostile 7: messages name the setting, quote once, escape control bytes, stay short",
          "[cli][errors][hostile]") {
    TempDir dir;
    const std::string run = tiny_run(dir, "run");
    const std::string good = ckpt_of(run), ckpt = run + "/model.ckpt";
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(good, "setting.seed", "abc"))),
                 "'" + ckpt + "' has a bad value for setting 'seed': 'abc' (expected an integer)");
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(good, "setting.lr", "fast"))),
                 "'" + ckpt + "' has a bad value for setting 'lr': 'fast' (expected a finite number)");
    expect_error(run_train_confined("--resume --out " + with_checkpoint(run, with_setting(good, "step", "-3"))),
                 "'" + ckpt + "' has a bad step: '-3' (expected a count of steps, 0 or more)");

    Result truncated = run_train_confined("--resume --out " + with_checkpoint(run, good.substr(0, 100)));
    expect_error(truncated, "'" + ckpt + "' is truncated: reading 'info'");
    CHECK_THAT(truncated.output, !Contains("''"));

    // an info line of control bytes (clear the screen, return) is quoted with the bytes escaped
    Result control = run_train_confined("--resume --out " + with_checkpoint(run, with_info(good, [](std::string text) {
                                            return "\x1b[2J\r\x7f\n" + text;
                                        })));
    expect_error(control, "has a corrupt info line: '\\x1b[2J\\x0d\\x7f'");
    CHECK(control.output.find('\x1b') == std::string::npos);

    // a 100,000-character unknown flag: a short line (the edit distance is not even tried)
    Result huge = run_train_confined("--" + std::string(100000, 'x'));
    expect_error(huge, "unknown flag --" + std::string(58, 'x') + "... (100002 characters) (see --help for the list)");
    CHECK(huge.output.size() < 200);
}
