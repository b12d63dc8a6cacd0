// ./train with llm.c's files and with the BPE tokenizer, end to end: token files written and read back,
// llm.c model files in and out, llm.c's training recipe step for step, a BPE run that resumes exactly,
// and the bad inputs of each. Tiny models: every run takes well under a second.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "../../nn/gpt.h"
#include "../../trainer/files.h"
#include "../../trainer/llmc.h"
#include "test_util.h"

using namespace train;
using Catch::Matchers::Contains;

namespace {

// A tiny GPT-2-shaped model (V=100 padded to 128) with random weights, saved as an llm.c model file.
void tiny_llmc_model(const std::string& path) {
    nn::GPTConfig c;
    c.vocab_size = 100, c.padded_vocab_size = 128, c.max_seq_len = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
    nn::GPT model(c, 3);
    ag::Rng rng(4);
    for (auto& [name, t] : model.parameters())  // biases and gains away from 0 and 1, padding still zero
        for (int64_t i = 0; i < (name == "wte.weight" ? 100 * 16 : t.numel()); ++i) t.data()[i] += 0.05f * (float)rng.normal();
    export_llmc_model(path, model);
}

// Token ids 0..99 with some structure: a few repeating phrases.
Tokens tiny_tokens(size_t n) {
    Tokens t;
    const int phrases[3][5] = {{7, 21, 3, 55, 9}, {7, 21, 80, 2, 9}, {40, 41, 42, 43, 99}};
    for (size_t i = 0; t.size() < n; ++i)
        for (int id : phrases[(i * 7) % 3])
            if (t.size() < n) t.push_back(id);
    return t;
}

std::string file_bytes(const std::string& path) { return read_file(path, true); }

}  // namespace

TEST_CASE("text -> llm.c token files -> training: the same run as on the text itself", "[cli][llmc]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    Result w = run_train("-i " + dir / "text.txt" + " --write-tokens " + dir / "little");
    INFO(w.output);
    REQUIRE(w.status == 0);
    CHECK_THAT(w.output, Contains("_train.bin") && Contains("_val.bin"));
    // the splits are the text's: the first 90% of its bytes, and the rest
    std::string text = little_text();
    size_t n_train = text.size() - text.size() / 10;
    Tokens train_tokens = read_llmc_tokens(dir / "little_train.bin"), val_tokens = read_llmc_tokens(dir / "little_val.bin");
    REQUIRE(train_tokens.size() == n_train);
    REQUIRE(val_tokens.size() == text.size() - n_train);
    for (size_t i = 0; i < text.size(); ++i)
        REQUIRE((i < n_train ? train_tokens[i] : val_tokens[i - n_train]) == (unsigned char)text[i]);

    // a model of 256 tokens trained on the token files learns exactly as on the text
    Result a = run_train("-i " + dir / "text.txt" + kTiny + " --steps 8 --out " + dir / "from_text");
    Result b = run_train("-i " + dir / "little_train.bin --val " + dir / "little_val.bin --vocab-size 256" + kTiny +
                         " --steps 8 --out " + dir / "from_tokens");
    INFO(a.output << b.output);
    REQUIRE(a.status == 0);
    REQUIRE(b.status == 0);
    CHECK_THAT(b.output, Contains("(ids, vocab 256)"));
    CHECK(train_losses(dir / "from_text/log.csv") == train_losses(dir / "from_tokens/log.csv"));
    CHECK_THAT(b.output, Contains("final val loss"));

    // token files in, token files out (no tokenizer to save beside them): the same tokens again
    Result c = run_train("-i " + dir / "little_train.bin --val " + dir / "little_val.bin --write-tokens " + dir / "again");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK(file_bytes(dir / "again_train.bin") == file_bytes(dir / "little_train.bin"));
    CHECK(file_bytes(dir / "again_val.bin") == file_bytes(dir / "little_val.bin"));
}

TEST_CASE("llm.c model files: export, --init-from, export again, byte for byte", "[cli][llmc]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    Result a = run_train("-i " + dir / "text.txt" + kTiny + " --steps 5 --export-llmc " + dir / "a.bin" + " --out " + dir / "a");
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK_THAT(a.output, Contains("(llm.c model file, fp32: version 3)"));
    // the exported weights are the checkpoint's
    LlmcModelHeader h = read_llmc_model_header(dir / "a.bin");
    CHECK(h.vocab_size == 256);
    CHECK(h.n_layer == 1);
    CHECK(h.max_seq_len == 16);

    // start from it (flags that agree with the file are fine), train nothing, export: the same file
    Result b = run_train("--init-from " + dir / "a.bin" + " --n-layer 1 --pos learned -i " + dir / "text.txt" +
                         " --seq-len 16 --batch-size 4 --eval-every 0 --sample-len 4 --steps 0 --export-llmc " + dir / "b.bin" +
                         " --out " + dir / "b");
    INFO(b.output);
    REQUIRE(b.status == 0);
    CHECK(file_bytes(dir / "a.bin") == file_bytes(dir / "b.bin"));
    Result s = run_train("--init-from " + dir / "a.bin" + " --sample-only --sample-len 5 --prompt x --export-llmc " +
                         dir / "c.bin");
    INFO(s.output);
    CHECK(s.status == 1);  // a model from an llm.c file reads token ids: no text tokenizer to encode a prompt
    CHECK_THAT(s.output, Contains("--tokenizer-file"));
    Result t = run_train("--init-from " + dir / "a.bin" + " --sample-only --sample-len 5 --export-llmc " + dir / "c.bin");
    INFO(t.output);
    CHECK(t.status == 0);
    CHECK(file_bytes(dir / "a.bin") == file_bytes(dir / "c.bin"));
}

// llm.c's train_gpt2.c loop, from its description: batches of B*T+1 tokens in file order, advancing by
// B*T and starting over when the next one would not fit; the mean cross-entropy over the B*T targets
// (softmax over the V real tokens of the padded logits); then AdamW on every parameter, element by
// element, with the bias corrections 1 - beta^t and the rate the same at every step. Our trainer with
// the recipe's flags must give the same losses, step for step, up to float rounding.
TEST_CASE("llm.c's recipe: the trainer's losses equal llm.c's loop, step for step", "[cli][llmc]") {
    TempDir dir;
    tiny_llmc_model(dir / "m.bin");
    Tokens tokens = tiny_tokens(60);  // B*T = 16: 3 batches fit in 60 tokens, then the loader starts over
    write_llmc_tokens(dir / "train.bin", tokens);
    write_llmc_tokens(dir / "val.bin", tiny_tokens(40));
    const int B = 2, T = 8, steps = 8;
    const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // a larger rate than 1e-4: a wrong update shows

    Result r = run_train("--init-from " + dir / "m.bin" + " -i " + dir / "train.bin" + " --val " + dir / "val.bin" +
                         " -b 2 -t 8 --steps 8 --loader sequential --schedule constant --lr 3e-3 --beta2 0.999"
                         " --weight-decay 0 --grad-clip 0 --dropout 0 --eval-every 0 --sample-len 2 --out " + dir / "out");
    INFO(r.output);
    REQUIRE(r.status == 0);
    std::vector<std::string> ours = train_losses(dir / "out/log.csv");
    REQUIRE(ours.size() == (size_t)steps);

    nn::GPT model(llmc_config(read_llmc_model_header(dir / "m.bin")));
    load_llmc_model(dir / "m.bin", model);
    ag::NamedTensors params = model.parameters();
    std::vector<std::vector<float>> m(params.size()), v(params.size());
    for (size_t i = 0; i < params.size(); ++i) m[i].assign(params[i].second.numel(), 0), v[i].assign(params[i].second.numel(), 0);
    size_t position = 0;
    for (int step = 0; step < steps; ++step) {
        if (position + B * T + 1 > tokens.size()) position = 0;
        std::vector<int> inputs(tokens.begin() + position, tokens.begin() + position + B * T);
        std::vector<int> targets(tokens.begin() + position + 1, tokens.begin() + position + B * T + 1);
        position += B * T;
        for (auto& p : params) p.second.zero_grad();
        ag::Tensor loss = model.forward(inputs, B, T, targets).loss;
        loss.backward();
        INFO("step " << step + 1);
        CHECK(std::stod(ours[step]) == Approx(loss.item()).margin(2e-6));
        int t = step + 1;
        for (size_t i = 0; i < params.size(); ++i) {
            float* w = params[i].second.data();
            const float* g = params[i].second.grad().data();
            for (int64_t e = 0; e < params[i].second.numel(); ++e) {
                m[i][e] = beta1 * m[i][e] + (1 - beta1) * g[e];
                v[i][e] = beta2 * v[i][e] + (1 - beta2) * g[e] * g[e];
                float m_hat = m[i][e] / (1 - std::pow(beta1, (float)t)), v_hat = v[i][e] / (1 - std::pow(beta2, (float)t));
                w[e] -= lr * (m_hat / (std::sqrt(v_hat) + eps));
            }
        }
    }
    // the losses moved: a trainer that did not update, or updated otherwise, would not match
    CHECK(std::stod(ours.back()) < std::stod(ours[2]) - 0.05);
}

TEST_CASE("--tokenizer bpe: learned, saved beside the checkpoint, used to resume and to sample", "[cli][bpe]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string common = "-i " + dir / "text.txt" + " --tokenizer bpe --vocab-size 270" + kTiny + " --steps 12";
    Result a = run_train(common + " --out " + dir / "straight");
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK_THAT(a.output, Contains("learned a BPE tokenizer of 270 tokens") && Contains("(bpe, vocab 270)"));
    auto files = list_dir(dir / "straight");
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"log.csv", "loss.svg", "model.ckpt", "tokenizer.bpe"});

    REQUIRE(run_train(common + " --stop-after 6 --out " + dir / "split").status == 0);
    Result b = run_train("--resume --steps 12 --out " + dir / "split");
    INFO(b.output);
    REQUIRE(b.status == 0);
    CHECK_THAT(b.output, !Contains("learned a BPE"));  // a resumed run reads its tokenizer, it does not learn one
    CHECK(train_losses(dir / "straight/log.csv") == train_losses(dir / "split/log.csv"));

    Result s = run_train("--sample-only --prompt 'the cat' --sample-len 6 --out " + dir / "straight");
    INFO(s.output);
    CHECK(s.status == 0);
    CHECK_THAT(s.output, Catch::Matchers::StartsWith("the cat"));

    // the tokenizer is found beside the checkpoint, wherever the folder has moved
    REQUIRE(std::rename((dir / "straight").c_str(), (dir / "moved").c_str()) == 0);
    Result moved = run_train("--sample-only --prompt 'the cat' --sample-len 6 --out " + dir / "moved");
    INFO(moved.output);
    CHECK(moved.status == 0);
    CHECK(moved.output == s.output);  // the same sample: same model, same tokenizer, same seed

    // the checkpoint needs its tokenizer: a corrupt one is a clear error
    write_text(dir / "moved/tokenizer.bpe", "not a tokenizer");
    expect_error(run_train("--sample-only --out " + dir / "moved"), "tokenizer.bpe");

    // --write-tokens with bpe writes the tokenizer too, and it decodes samples of a token-file run
    Result w = run_train("-i " + dir / "text.txt" + " --tokenizer bpe --vocab-size 270 --write-tokens " + dir / "bp");
    INFO(w.output);
    REQUIRE(w.status == 0);
    Result t = run_train("-i " + dir / "bp_train.bin --val " + dir / "bp_val.bin --vocab-size 270 --tokenizer-file " +
                         dir / "bp.bpe" + kTiny + " --steps 3 --sample-len 12 --out " + dir / "tok");
    INFO(t.output);
    REQUIRE(t.status == 0);
    CHECK_THAT(t.output, Contains("(bpe, vocab 270)"));
}

TEST_CASE("bad interop inputs: one line naming the file and the problem, exit 1, nothing written", "[cli][errors][llmc]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    write_llmc_tokens(dir / "big.bin", {1, 2, 300, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
    expect_error(run_train("-i " + dir / "big.bin --vocab-size 256 --out " + dir / "o"),
                 "has token 300 at position 2, beyond the model's vocabulary of 256");
    tiny_llmc_model(dir / "m.bin");
    expect_error(run_train("--init-from " + dir / "m.bin --n-layer 3 --out " + dir / "o"),
                 "--n-layer 3 disagrees with '" + dir / "m.bin" + "', whose model has 2 layers");
    expect_error(run_train("--init-from " + dir / "m.bin --pos rope --out " + dir / "o"), "whose model has learned positions");
    expect_error(run_train("--init-from " + dir / "m.bin --preset gpt2 --out " + dir / "o"),
                 "--preset gpt2 disagrees with '" + dir / "m.bin" + "', whose model has another shape (2 layers, 2 heads, 16 wide)");
    expect_error(run_train("--init-from " + dir / "big.bin --out " + dir / "o"), "is not an llm.c model file");
    expect_error(run_train("--init-from " + dir / "m.bin -i " + dir / "text.txt --tokenizer bpe --out " + dir / "o"),
                 "--tokenizer bpe learns a new vocabulary");
    expect_error(run_train("-i " + dir / "big.bin --val " + dir / "text.txt --out " + dir / "o"), "give two of the same kind");
    expect_error(run_train("-i " + dir / "text.txt --pos rope --export-llmc " + dir / "x.bin --out " + dir / "o"),
                 "--export-llmc needs learned positions (this model has rope)");
    expect_error(run_train("-i " + dir / "text.txt --tokenizer bpe --vocab-size 100 --out " + dir / "o"),
                 "--vocab-size 100 is outside 256 .. 65536");
    expect_error(run_train("-i " + dir / "text.txt --tokenizer words --out " + dir / "o"), "unknown --tokenizer 'words'");
    expect_error(run_train("-i " + dir / "text.txt --write-tokens " + dir / "missing/p"), "missing/p_train.bin");
    std::string truncated = file_bytes(dir / "m.bin");
    write_text(dir / "cut.bin", truncated.substr(0, truncated.size() - 10));
    expect_error(run_train("--init-from " + dir / "cut.bin --out " + dir / "o"), "is truncated");
    write_text(dir / "tok.bin", "not a tokenizer file at all");
    expect_error(run_train("-i " + dir / "big.bin --tokenizer-file " + dir / "tok.bin --out " + dir / "o"), "tok.bin");
    auto files = list_dir(dir.path);
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"big.bin", "cut.bin", "m.bin", "text.txt", "tok.bin"});  // no "o", no partial files
}
