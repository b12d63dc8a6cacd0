// The byte-level BPE tokenizer: chunking, merges worked out by hand, training checked against a slow
// recount-everything trainer, encoding by rank, round trips, the file and its corruptions.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../../trainer/bpe.h"
#include "../../trainer/error.h"
#include "../../trainer/files.h"
#include "test_util.h"

using namespace train;

namespace {

using Merges = std::vector<std::pair<int, int>>;

// Some English-ish text with repeated words, punctuation, digits and line breaks.
const std::string kEnglish =
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on and on.\n"
    "In 1999 the fox ran 42 miles, and in 2000 it ran 43 miles -- then it rested.\n\n"
    "  Then the other foxes came: they jumped over the dogs, over the logs, over the hills!\n"
    "\tWhat does the fox say? Nobody knows what the fox says, though many have asked the fox.\n";

std::string random_bytes(std::mt19937& rng, size_t n) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::string s(n, '\0');
    for (char& c : s) c = (char)byte(rng);
    return s;
}

// A slow trainer that is easy to trust: every chunk occurrence kept separately, and every pair
// recounted from scratch before each merge. Returns the merges and the tokens the text ends with.
std::pair<Merges, Tokens> slow_train(const std::string& text, int vocab_size) {
    std::vector<Tokens> chunks;
    for (const std::string& c : bpe_chunks(text)) chunks.push_back(Tokens(c.begin(), c.end()));
    for (Tokens& c : chunks)
        for (int& t : c) t = (unsigned char)t;
    Merges merges;
    while (256 + (int)merges.size() < vocab_size) {
        std::map<std::pair<int, int>, long> counts;  // ordered: the first of the largest is the smallest pair
        for (const Tokens& c : chunks)
            for (size_t i = 0; i + 1 < c.size(); ++i) counts[{c[i], c[i + 1]}] += 1;
        std::pair<int, int> best{-1, -1};
        long best_count = 1;
        for (const auto& [pair, count] : counts)
            if (count > best_count) best = pair, best_count = count;
        if (best.first < 0) break;
        const int id = 256 + (int)merges.size();
        for (Tokens& c : chunks) {
            Tokens merged;
            for (size_t i = 0; i < c.size(); ++i) {
                if (i + 1 < c.size() && c[i] == best.first && c[i + 1] == best.second) {
                    merged.push_back(id);
                    ++i;
                } else {
                    merged.push_back(c[i]);
                }
            }
            c = merged;
        }
        merges.push_back(best);
    }
    Tokens all;
    for (const Tokens& c : chunks) all.insert(all.end(), c.begin(), c.end());
    return {merges, all};
}

// The bytes of a tokenizer file: the magic, a count, then pairs of u32 as given.
std::string tokenizer_file(uint32_t count, const std::vector<uint32_t>& ids) {
    ByteWriter out;
    out.raw("BPETOK1\n", 8);
    out.u32(count);
    for (uint32_t id : ids) out.u32(id);
    return out.bytes();
}

}  // namespace

TEST_CASE("bpe: text is cut into words with their leading space, numbers, punctuation and spaces",
          "[train][bpe]") {
    using V = std::vector<std::string>;
    CHECK(bpe_chunks("Hello, world!\n\n  42") == V{"Hello", ",", " world", "!", "\n\n ", " 42"});
    CHECK(bpe_chunks("a  b") == V{"a", " ", " b"});            // a space run leaves its last ' ' to the word
    CHECK(bpe_chunks("a\n\nb") == V{"a", "\n\n", "b"});        // ... only a ' '
    CHECK(bpe_chunks("x \n") == V{"x", " \n"});                // trailing whitespace is one chunk
    CHECK(bpe_chunks("don't stop") == V{"don", "'", "t", " stop"});
    CHECK(bpe_chunks("abc123?!def") == V{"abc", "123", "?!", "def"});
    CHECK(bpe_chunks(" -- caf\xC3\xA9!") == V{" --", " caf\xC3\xA9", "!"});  // UTF-8 bytes are letters
    CHECK(bpe_chunks(std::string("a\0b", 3)) == V{"a", std::string(1, '\0'), "b"});
    CHECK(bpe_chunks("").empty());
    // A chunk is cut after 64 bytes.
    const std::string x64(64, 'x');
    CHECK(bpe_chunks(std::string(150, 'x')) == V{x64, x64, std::string(22, 'x')});
    CHECK(bpe_chunks(std::string(100, ' ') + "x") == V{std::string(64, ' '), std::string(35, ' '), " x"});
    CHECK(bpe_chunks(" " + std::string(70, 'x')) == V{" " + std::string(63, 'x'), std::string(7, 'x')});
}

TEST_CASE("bpe: the first merges of a tiny text are the ones worked out by hand", "[train][bpe]") {
    // One chunk "aaabdaaabac". Pairs: aa 4 (each position counts), ab 2, and bd da ba ac 1.
    //   merge (a,a) -> 256:  256 a b d 256 a b a c    pairs: (256,a) 2, (a,b) 2, others 1
    //   tie: the smaller pair (97,98) wins -> 257:  256 257 d 256 257 a c
    //   merge (256,257) -> 258:  258 d 258 a c: every pair is now single, so training stops early.
    BpeTokenizer tok = BpeTokenizer::train("aaabdaaabac", 300);
    CHECK(tok.merges() == Merges{{97, 97}, {97, 98}, {256, 257}});
    CHECK(tok.vocab_size() == 259);
    CHECK(tok.token_bytes(258) == "aaab");
    CHECK(tok.encode("aaabdaaabac") == Tokens{258, 'd', 258, 'a', 'c'});

    // Chunks "ab", " ab" x2, " cd" x2: counts are weighted by how often a chunk occurs, and no pair
    // crosses chunks (there is no (b, ' ')).
    //   (a,b) 3 -> 256;  then (' ',256) (' ',c) (c,d) all 2: smallest is (32,99) -> 257;
    //   then (' ',256) and (257,d) both 2: (32,256) -> 258;  (257,100) -> 259;  nothing occurs twice.
    BpeTokenizer tok2 = BpeTokenizer::train("ab ab ab cd cd", 1000);
    CHECK(tok2.merges() == Merges{{97, 98}, {32, 99}, {32, 256}, {257, 100}});
    CHECK(tok2.encode("ab ab ab cd cd") == Tokens{256, 258, 258, 259, 259});
}

TEST_CASE("bpe: training stops at the vocab size asked, or early; out-of-range sizes throw", "[train][bpe]") {
    BpeTokenizer tok = BpeTokenizer::train(kEnglish, 280);
    CHECK(tok.vocab_size() == 280);
    CHECK(tok.merges().size() == 24);
    CHECK(BpeTokenizer::train(kEnglish, 1000).vocab_size() == 299);  // then no pair occurs twice
    CHECK(BpeTokenizer::train(kEnglish, 256).vocab_size() == 256);
    CHECK(BpeTokenizer::train("", 1000).vocab_size() == 256);
    CHECK(BpeTokenizer::train("abcdef", 1000).vocab_size() == 256);  // no pair occurs twice
    CHECK(BpeTokenizer::train("abab", 1000).merges() == Merges{{97, 98}});

    const std::string expected = "(256..65536: the 256 byte tokens plus up to 65280 merges)";
    CHECK(error_of([] { BpeTokenizer::train("x", 255); }) == "BPE vocab size 255 is out of range " + expected);
    CHECK(error_of([] { BpeTokenizer::train("x", 65537); }) == "BPE vocab size 65537 is out of range " + expected);
    CHECK(error_of([] { BpeTokenizer::train("x", 65536); }) == "(no error)");
}

TEST_CASE("bpe: training matches a slow trainer that recounts every pair before each merge", "[train][bpe]") {
    // Same merges means the incremental counts were right at every step; same tokens means encoding
    // by rank reproduces what training did to the text.
    std::mt19937 rng(7);
    std::string noisy = kEnglish;
    for (int i = 0; i < 20; ++i) noisy += random_bytes(rng, 8) + " aaaa" + kEnglish.substr((size_t)i * 11, 30);
    std::vector<std::string> texts = {kEnglish + kEnglish, noisy, std::string(150, 'a') + " " + std::string(7, 'a')};
    // Random text over a tiny alphabet: many ties, long runs, chunks cut at 64 bytes.
    for (int i = 0; i < 20; ++i) {
        std::string text;
        for (int j = 0; j < 600; ++j) text += "aab \n"[rng() % (i % 2 ? 5 : 3)];
        texts.push_back(text);
    }
    for (const std::string& text : texts) {
        auto [merges, tokens] = slow_train(text, 500);
        BpeTokenizer tok = BpeTokenizer::train(text, 500);
        REQUIRE(tok.merges() == merges);
        CHECK(tok.encode(text) == tokens);
    }
}

TEST_CASE("bpe: encode applies merges by rank, not left to right", "[train][bpe]") {
    // Chunks "bc" x3 and "ab" x2 (the newlines are chunks of their own): (b,c) -> 256, then (a,b) -> 257.
    BpeTokenizer tok = BpeTokenizer::train("bc\nbc\nbc\nab\nab", 258);
    REQUIRE(tok.merges() == Merges{{98, 99}, {97, 98}});
    // In "abc" both pairs have a merge; (b,c) was learned first, so it wins even though (a,b) comes
    // first in the text. Left to right would give {257, 'c'}.
    CHECK(tok.encode("abc") == Tokens{'a', 256});
    CHECK(tok.encode("abcabc") == Tokens{'a', 256, 'a', 256});
    CHECK(tok.encode("ab") == Tokens{257});
}

TEST_CASE("bpe: decode(encode(x)) == x for any bytes", "[train][bpe]") {
    BpeTokenizer tok = BpeTokenizer::train(kEnglish, 400);
    std::mt19937 rng(1234);
    std::vector<std::string> inputs = {"", std::string(1, '\0'), "\xFF\xFE", "\xC3(", "caf\xC3\xA9", kEnglish};
    std::string all_bytes;
    for (int b = 0; b < 256; ++b) all_bytes += (char)b;
    inputs.push_back(all_bytes);
    for (int i = 0; i < 200; ++i) inputs.push_back(random_bytes(rng, (size_t)i));
    // Random bytes mixed with pieces of the training text, so long merges are used too.
    for (int i = 0; i < 100; ++i)
        inputs.push_back(random_bytes(rng, 5) + kEnglish.substr((size_t)i * 3, 40) + random_bytes(rng, 3));
    for (const std::string& x : inputs) {
        Tokens t = tok.encode(x);
        for (int id : t) REQUIRE((id >= 0 && id < tok.vocab_size()));
        REQUIRE(tok.decode(t) == x);
    }
    CHECK(tok.encode(all_bytes).size() == 256);  // no merge applies: one token per byte
}

TEST_CASE("bpe: the training text gets shorter, and every id is in the vocabulary", "[train][bpe]") {
    BpeTokenizer tok = BpeTokenizer::train(kEnglish + kEnglish, 320);
    CHECK(tok.vocab_size() == 320);
    CHECK(tok.vocab_size() == 256 + (int)tok.merges().size());
    Tokens t = tok.encode(kEnglish);
    CHECK(t.size() < kEnglish.size() / 2);
    for (int id : t) CHECK((id >= 0 && id < tok.vocab_size()));
    // Each merged token is its two parts' bytes, and decoding an id out of range throws naming it.
    for (int i = 0; i < (int)tok.merges().size(); ++i) {
        auto [a, b] = tok.merges()[i];
        CHECK(tok.token_bytes(256 + i) == tok.token_bytes(a) + tok.token_bytes(b));
    }
    CHECK(error_of([&] { tok.decode({320}); }) == "token 320 is not in the BPE vocabulary (ids 0..319)");
    CHECK(error_of([&] { tok.decode({-1}); }) == "token -1 is not in the BPE vocabulary (ids 0..319)");
    CHECK(error_of([&] { tok.token_bytes(999); }) == "token 999 is not in the BPE vocabulary (ids 0..319)");
}

TEST_CASE("bpe: save then load gives the same merges and the same tokens", "[train][bpe]") {
    TempDir dir;
    const std::string path = dir / "tokenizer.bpe";
    BpeTokenizer tok = BpeTokenizer::train(kEnglish, 350);
    tok.save(path);
    tok.save(path);  // overwrites in place
    CHECK(list_dir(dir.path) == std::vector<std::string>{"tokenizer.bpe"});  // no temporary left behind
    CHECK(read_file(path).size() == 8 + 4 + 8 * tok.merges().size());

    BpeTokenizer back = BpeTokenizer::load(path);
    CHECK(back.merges() == tok.merges());
    CHECK(back.name() == "bpe");
    CHECK(back.end_of_text() == -1);
    std::mt19937 rng(5);
    BpeTokenizer copy = back;  // shares the cache of encoded chunks, which is fine: same merges
    for (const std::string& x : {kEnglish, std::string("fox foxes"), random_bytes(rng, 300)}) {
        CHECK(back.encode(x) == tok.encode(x));
        CHECK(copy.encode(x) == tok.encode(x));  // now from the cache
    }

    // No merges at all is a valid file: the byte tokenizer.
    BpeTokenizer::train("", 256).save(path);
    CHECK(BpeTokenizer::load(path).vocab_size() == 256);

    const std::string missing = dir / "nope/tokenizer.bpe";
    CHECK(error_of([&] { tok.save(missing); }).find("cannot write '" + missing + "'") == 0);
}

TEST_CASE("bpe: load names the file and what is wrong with it", "[train][bpe]") {
    TempDir dir;
    const std::string path = dir / "tokenizer.bpe";
    const std::string q = "'" + path + "'";
    auto load_bytes = [&](const std::string& bytes) {
        write_text(path, bytes);
        return error_of([&] { BpeTokenizer::load(path); });
    };

    CHECK(error_of([&] { BpeTokenizer::load(dir / "missing.bpe"); }) ==
          "cannot read '" + dir / "missing.bpe" + "': No such file or directory");
    CHECK(load_bytes("") == q + " is empty");
    CHECK(load_bytes("BPETOK2\n\0\0\0\0") == q + " is not a BPE tokenizer file (it does not start with \"BPETOK1\")");
    CHECK(load_bytes("BPE") == q + " is not a BPE tokenizer file (it does not start with \"BPETOK1\")");
    CHECK(load_bytes("BPETOK1\n\1") ==
          q + " is truncated: reading 'number of merges' needs 4 bytes at offset 8, only 1 remain");
    CHECK(load_bytes(tokenizer_file(2, {97, 98, 256})) ==
          q + " is truncated: its 2 merges need 16 bytes after the header, only 12 remain");
    CHECK(load_bytes(tokenizer_file(1, {97, 98, 7})) ==
          q + " is corrupt: it has 4 unexpected bytes after the end of its merges");
    CHECK(load_bytes(tokenizer_file(65281, {})) ==
          q + " is corrupt: it has 65281 merges, more than the 65280 that fit in a vocabulary of 65536");
    CHECK(load_bytes(tokenizer_file(2, {97, 98, 97, 257})) ==
          q + " is corrupt: merge 1 refers to token 257, which does not exist yet");
    CHECK(load_bytes(tokenizer_file(1, {4000000000u, 1})) ==
          q + " is corrupt: merge 0 refers to token 4000000000, which does not exist yet");
    CHECK(load_bytes(tokenizer_file(3, {97, 98, 256, 99, 97, 98})) ==
          q + " is corrupt: merge 2 repeats merge 0 (97, 98)");
    CHECK(load_bytes(tokenizer_file(2, {97, 98, 256, 256})) == "(no error)");
}

TEST_CASE("bpe: load refuses a token longer than a chunk (a 332-byte file of doubling merges)", "[train][bpe]") {
    TempDir dir;
    const std::string path = dir / "tokenizer.bpe";
    // (0, 0), (256, 256), (257, 257), ...: token 256 + i has 2^(i+1) bytes; 40 of them would be 2 TB
    auto chain = [](uint32_t merges) {
        std::vector<uint32_t> ids = {0, 0};
        for (uint32_t i = 1; i < merges; ++i) ids.insert(ids.end(), {255 + i, 255 + i});
        return tokenizer_file(merges, ids);
    };
    const std::string hostile = chain(40);
    CHECK(hostile.size() == 332);
    write_text(path, hostile);
    CHECK(error_of([&] { BpeTokenizer::load(path); }) ==
          "'" + path + "' is corrupt: merge 6 makes a token of 128 bytes; trained tokens are at most 64, one chunk");
    write_text(path, chain(6));  // up to 64 bytes: what training can make
    BpeTokenizer six = BpeTokenizer::load(path);
    CHECK(six.token_bytes(261) == std::string(64, '\0'));
}

TEST_CASE("bpe: tinyshakespeare at vocab 512 round-trips and compresses", "[train][bpe]") {
    const std::string path = "../shared/data/tinyshakespeare.txt";
    if (!std::ifstream(path)) {
        WARN("skipped: " << path << " not found (run the tests from the repository root)");
        return;
    }
    const std::string text = read_file(path);
    BpeTokenizer tok = BpeTokenizer::train(text, 512);
    REQUIRE(tok.vocab_size() == 512);
    Tokens t = tok.encode(text);
    CHECK(tok.decode(t) == text);
    // Measured: 1115394 bytes -> 571080 tokens (0.512 tokens per byte; 0.306 at vocab 4096).
    CHECK(t.size() < 0.55 * text.size());
    // The most frequent pair is " t" (a word start: "e " cannot be, it crosses chunks); " the" comes 12th.
    CHECK(tok.token_bytes(256) == " t");
    CHECK(tok.token_bytes(267) == " the");
    // And training again gives the very same merges.
    CHECK(BpeTokenizer::train(text, 512).merges() == tok.merges());
}
