// Tokens, the train/validation split, the random and sequential loaders, and the evaluation windows.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "../../trainer/data.h"
#include "../../trainer/error.h"
#include "test_util.h"
#include "../../trainer/files.h"

using namespace train;

namespace {

// Tokens 0, 1, 2, ..., n-1: a window's content then tells where it came from.
Tokens iota_tokens(size_t n) {
    Tokens t(n);
    std::iota(t.begin(), t.end(), 0);
    return t;
}

// Every row is consecutive tokens of iota_tokens, and the targets are the inputs plus one.
void check_rows_are_windows(const Batch& batch, size_t n) {
    for (int b = 0; b < batch.B; ++b) {
        int start = batch.inputs[(size_t)b * batch.T];
        CHECK(start >= 0);
        CHECK((size_t)start + batch.T + 1 <= n);
        for (int t = 0; t < batch.T; ++t) {
            CHECK(batch.inputs[(size_t)b * batch.T + t] == start + t);
            CHECK(batch.targets[(size_t)b * batch.T + t] == start + t + 1);
        }
    }
}

}  // namespace

TEST_CASE("data: the byte tokenizer maps bytes to 0..255 and back", "[train][data]") {
    ByteTokenizer tok;
    CHECK(tok.vocab_size() == 256);
    std::string text = "hi\n";
    text += (char)0xC3;
    text += (char)0xA9;  // "é" in UTF-8: two bytes, two tokens
    Tokens t = tok.encode(text);
    CHECK(t == Tokens{104, 105, 10, 195, 169});
    CHECK(tok.decode(t) == text);
    CHECK(error_of([&] { tok.decode({300}); }) == "token 300 is not a byte (the byte tokenizer has ids 0..255)");
}

TEST_CASE("data: the last 10% of the tokens is the validation split", "[train][data]") {
    DataSplit s = split_train_val(iota_tokens(1005), "'x.txt'");
    CHECK(s.train.size() == 905);
    CHECK(s.val.size() == 100);
    CHECK(s.train.front() == 0);
    CHECK(s.train.back() == 904);
    CHECK(s.val.front() == 905);
    CHECK(s.val.back() == 1004);
    CHECK(s.train_source == "'x.txt' (first 90%)");
    CHECK(s.val_source == "'x.txt' (last 10%)");
}

TEST_CASE("data: load_text_data splits a file or takes a separate validation file", "[train][data]") {
    TempDir dir;
    std::string input = dir / "in.txt", val = dir / "val.txt", empty = dir / "empty.txt";
    write_file_atomic(input, std::string(100, 'a') + std::string(10, 'b') + std::string(10, 'c'));
    write_file_atomic(val, "xyz");
    write_file_atomic(empty, "");
    ByteTokenizer tok;

    DataSplit s = load_text_data(input, "", tok);
    CHECK(s.train.size() == 108);
    CHECK(s.val == tok.encode(std::string(2, 'b') + std::string(10, 'c')));
    CHECK(s.train_source == "'" + input + "' (first 90%)");

    DataSplit s2 = load_text_data(input, val, tok);
    CHECK(s2.train.size() == 120);
    CHECK(s2.val == tok.encode("xyz"));
    CHECK(s2.val_source == "'" + val + "'");

    CHECK(error_of([&] { load_text_data(empty, "", tok); }) == "'" + empty + "' is empty");
    CHECK(error_of([&] { load_text_data(input, input + ".nope", tok); }) ==
          "cannot read '" + input + ".nope': No such file or directory");
}

TEST_CASE("data: random windows start anywhere in [0, n-T-1] and targets are shifted by one", "[train][data]") {
    const size_t n = 50;
    Tokens tokens = iota_tokens(n);
    BatchLoader loader(tokens, 4, 8, LoaderKind::Random, 123, "'x'");
    std::vector<int> seen_starts(n, 0);
    Batch batch;
    for (int i = 0; i < 500; ++i) {
        loader.next(batch);
        REQUIRE(batch.B == 4);
        REQUIRE(batch.T == 8);
        check_rows_are_windows(batch, n);
        for (int b = 0; b < 4; ++b) seen_starts[batch.inputs[(size_t)b * 8]]++;
    }
    // 2000 draws over 42 starts: every legal start shows up, no illegal one does
    for (size_t s = 0; s < n; ++s) {
        INFO("start " << s);
        if (s <= n - 8 - 1) CHECK(seen_starts[s] > 0);
        else CHECK(seen_starts[s] == 0);
    }
}

TEST_CASE("data: the random loader is deterministic and its state round-trips", "[train][data]") {
    Tokens tokens = iota_tokens(1000);
    BatchLoader a(tokens, 3, 16, LoaderKind::Random, 7, "'x'"), b(tokens, 3, 16, LoaderKind::Random, 7, "'x'");
    BatchLoader c(tokens, 3, 16, LoaderKind::Random, 8, "'x'");
    CHECK(a.next().inputs == b.next().inputs);
    CHECK(a.next().inputs != c.next().inputs);

    // save after some batches, then continue; a fresh loader restored from the save continues identically
    for (int i = 0; i < 5; ++i) a.next();
    ByteWriter w;
    a.save(w);
    LoaderState st = a.state();
    std::vector<Batch> expected;
    for (int i = 0; i < 5; ++i) expected.push_back(a.next());

    BatchLoader fresh(tokens, 3, 16, LoaderKind::Random, 999, "'x'");
    ByteReader r(w.bytes(), "ckpt");
    fresh.load(r);
    r.expect_end();
    BatchLoader fresh2(tokens, 3, 16, LoaderKind::Random, 999, "'x'");
    fresh2.restore(st);
    for (int i = 0; i < 5; ++i) {
        Batch got = fresh.next(), got2 = fresh2.next();
        CHECK(got.inputs == expected[i].inputs);
        CHECK(got.targets == expected[i].targets);
        CHECK(got2.inputs == expected[i].inputs);
    }
}

TEST_CASE("data: the sequential loader walks the text in order and wraps like llm.c", "[train][data]") {
    // n = 30, B*T = 8: batches start at 0, 8, 16; the next would need tokens 24..32 > 29, so back to 0
    Tokens tokens = iota_tokens(30);
    BatchLoader loader(tokens, 2, 4, LoaderKind::Sequential, 1, "'x'");
    std::vector<int> starts;
    for (int i = 0; i < 7; ++i) {
        Batch batch = loader.next();
        check_rows_are_windows(batch, 30);
        CHECK(batch.inputs[4] == batch.inputs[0] + 4);  // row 1 continues where row 0 ended
        starts.push_back(batch.inputs[0]);
    }
    CHECK(starts == std::vector<int>{0, 8, 16, 0, 8, 16, 0});

    // exactly B*T+1 tokens: one batch, always the same
    Tokens exact = iota_tokens(9);
    BatchLoader tight(exact, 2, 4, LoaderKind::Sequential, 1, "'x'");
    CHECK(tight.next().targets.back() == 8);
    CHECK(tight.next().inputs.front() == 0);

    // the position survives a save and load, and a position past the end is refused
    loader.next();  // now at 8
    ByteWriter w;
    loader.save(w);
    BatchLoader other(tokens, 2, 4, LoaderKind::Sequential, 1, "'x'");
    ByteReader r(w.bytes(), "ckpt");
    other.load(r);
    CHECK(other.state().position == 16);
    CHECK(other.next().inputs.front() == 16);

    LoaderState bad;
    bad.position = 25;
    CHECK(error_of([&] { other.restore(bad); }) ==
          "the saved data position 25 is past the end of 'x' (30 tokens): was the checkpoint made with other data?");
    // the last position with room for a batch is fine, one more is not
    LoaderState last;
    last.position = 21;
    other.restore(last);
    CHECK(other.next().targets.back() == 29);
    last.position = 22;
    CHECK(error_of([&] { other.restore(last); }).find("position 22 is past the end") != std::string::npos);
}

TEST_CASE("data: a saved position near 2^64 is refused, not wrapped past the check", "[train][data]") {
    // position + B*T + 1 wraps to a small number for these: the check must not add to the position
    Tokens tokens = iota_tokens(30);
    BatchLoader loader(tokens, 2, 4, LoaderKind::Sequential, 1, "'x'");
    for (uint64_t position : {UINT64_MAX, UINT64_MAX - 8, UINT64_MAX - 7, uint64_t(1) << 63}) {
        INFO(position);
        LoaderState state;
        state.position = position;
        CHECK(error_of([&] { loader.restore(state); }) ==
              "the saved data position " + std::to_string(position) +
                  " is past the end of 'x' (30 tokens): was the checkpoint made with other data?");
    }
    CHECK(loader.state().position == 0);  // unchanged
}

TEST_CASE("data: a loader refuses a text shorter than one batch, and a checkpoint of another shape", "[train][data]") {
    Tokens small = iota_tokens(100);
    CHECK(error_of([&] { BatchLoader(small, 4, 64, LoaderKind::Random, 1, "'x.txt'"); }) ==
          "'x.txt' has 100 tokens; a batch of 4 x 64 needs at least 257");
    CHECK(error_of([&] { BatchLoader(small, 4, 64, LoaderKind::Sequential, 1, "'x.txt' (first 90%)"); }) ==
          "'x.txt' (first 90%) has 100 tokens; a batch of 4 x 64 needs at least 257");
    CHECK(error_of([&] { BatchLoader(small, 0, 8, LoaderKind::Random, 1, "'x'"); }) ==
          "a batch of 0 x 8 is empty; B and T must be at least 1");

    Tokens tokens = iota_tokens(1000);
    BatchLoader random(tokens, 2, 8, LoaderKind::Random, 1, "'x'");
    BatchLoader sequential(tokens, 2, 16, LoaderKind::Sequential, 1, "'x'");
    ByteWriter w;
    random.save(w);
    ByteReader r(w.bytes(), "ckpt");
    CHECK(error_of([&] { sequential.load(r); }) == "the saved loader is random 2 x 8, this run's is sequential 2 x 16");

    CHECK(parse_loader_kind("random") == LoaderKind::Random);
    CHECK(parse_loader_kind("sequential") == LoaderKind::Sequential);
    CHECK(error_of([] { parse_loader_kind("shuffle"); }) == "unknown loader 'shuffle' (expected random or sequential)");
}

TEST_CASE("data: evaluation windows cover every validation target exactly once", "[train][data]") {
    for (size_t n : {2, 9, 10, 33, 34, 100, 101}) {
        for (int B : {1, 3}) {
            const int T = 8;
            INFO("n=" << n << " B=" << B);
            Tokens tokens = iota_tokens(n);
            EvalWindows eval(tokens, B, T, "'v'");
            CHECK(eval.num_targets() == n - 1);
            std::vector<int> hits(n, 0);
            size_t counted = 0;
            for (size_t i = 0; i < eval.num_batches(); ++i) {
                Batch batch = eval.batch(i);
                CHECK(batch.B >= 1);
                CHECK(batch.B <= B);
                CHECK(batch.T >= 1);
                CHECK(batch.T <= T);
                if (batch.T < T) CHECK(i + 1 == eval.num_batches());  // only the last may be short
                check_rows_are_windows(batch, n);
                for (int target : batch.targets) hits[target]++;
                counted += batch.count();
            }
            CHECK(counted == n - 1);
            CHECK(hits[0] == 0);
            for (size_t k = 1; k < n; ++k) CHECK(hits[k] == 1);
        }
    }
    // 34 tokens, T = 8, B = 3: windows at 0, 8, 16, 24 (targets 1..32), then one short row for target 33
    Tokens tokens = iota_tokens(34);
    EvalWindows eval(tokens, 3, 8, "'v'");
    CHECK(eval.num_batches() == 3);
    CHECK(eval.batch(0).B == 3);
    CHECK(eval.batch(1).B == 1);
    CHECK(eval.batch(2).B == 1);
    CHECK(eval.batch(2).T == 1);
    CHECK(eval.batch(2).inputs == std::vector<int>{32});
    CHECK(eval.batch(2).targets == std::vector<int>{33});

    Tokens one = iota_tokens(1);
    CHECK(error_of([&] { EvalWindows(one, 2, 8, "'val.txt'"); }) == "'val.txt' has 1 tokens; evaluation needs at least 2");
}
