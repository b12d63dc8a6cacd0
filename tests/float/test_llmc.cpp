// llm.c's file formats: token files, model files (fp32 and bf16) and tokenizer files, both ways.
//
// The model test that matters most does not trust our exporter: the test writes an llm.c model file
// itself, array by array in llm.c's order, and checks that loading it gives (a) exactly the model made
// by putting the same arrays into a GPT by name, and (b) the logits of a plain-loop GPT-2 forward pass
// written here from the flat arrays, as llm.c computes it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../../nn/gpt.h"
#include "../../trainer/files.h"
#include "../../trainer/llmc.h"
#include "test_util.h"

using namespace train;

namespace {

// ---- bytes

// A 1024-byte llm.c header whose first ints are `first`, the rest zero.
std::string header(const std::vector<int32_t>& first) {
    std::vector<int32_t> h(256, 0);
    for (size_t i = 0; i < first.size(); ++i) h[i] = first[i];
    return std::string((const char*)h.data(), 1024);
}

template <class T>
void append(std::string& out, const T& value) {
    out.append((const char*)&value, sizeof value);
}

// float -> bf16, rounding to nearest even (the test's data has no NaN).
uint16_t to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits += 0x7FFF + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

float from_bf16(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// ---- a tiny model: V=100 padded to 128, maxT 16, L 2, NH 2, C 16

const int V = 100, Vp = 128, maxT = 16, L = 2, NH = 2, C = 16;

nn::GPTConfig tiny_config() {
    nn::GPTConfig c;
    c.vocab_size = V;
    c.padded_vocab_size = Vp;
    c.max_seq_len = maxT;
    c.n_layer = L;
    c.n_head = NH;
    c.n_embd = C;
    return c;
}

// Every value of every parameter random, padded rows and LayerNorm gains included.
void randomize(nn::GPT& model, uint64_t seed) {
    ag::Rng rng(seed);
    for (auto& [name, t] : model.parameters())
        for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = (float)(0.3 * rng.normal());
}

bool same_bits(const ag::Tensor& a, const ag::Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * (size_t)a.numel()) == 0;
}

// llm.c's sixteen parameter arrays, as its ParameterTensors names them, in file order.
struct LlmcArrays {
    std::vector<float> wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw,
        fcprojb, lnfw, lnfb;
    std::vector<std::vector<float>*> in_file_order() {
        return {&wte, &wpe, &ln1w, &ln1b, &qkvw, &qkvb, &attprojw, &attprojb, &ln2w, &ln2b, &fcw, &fcb, &fcprojw,
                &fcprojb, &lnfw, &lnfb};
    }
};

// Random arrays with llm.c's sizes: normal(0, 0.3) weights and biases, LayerNorm gains near 1.
LlmcArrays random_arrays(uint64_t seed) {
    ag::Rng rng(seed);
    auto fill = [&](size_t n, double mean) {
        std::vector<float> v(n);
        for (float& x : v) x = (float)(mean + 0.3 * rng.normal());
        return v;
    };
    LlmcArrays a;
    a.wte = fill(Vp * C, 0);
    a.wpe = fill(maxT * C, 0);
    a.ln1w = fill(L * C, 1);
    a.ln1b = fill(L * C, 0);
    a.qkvw = fill(L * 3 * C * C, 0);
    a.qkvb = fill(L * 3 * C, 0);
    a.attprojw = fill(L * C * C, 0);
    a.attprojb = fill(L * C, 0);
    a.ln2w = fill(L * C, 1);
    a.ln2b = fill(L * C, 0);
    a.fcw = fill(L * 4 * C * C, 0);
    a.fcb = fill(L * 4 * C, 0);
    a.fcprojw = fill(L * C * 4 * C, 0);
    a.fcprojb = fill(L * C, 0);
    a.lnfw = fill(C, 1);
    a.lnfb = fill(C, 0);
    return a;
}

// An llm.c model file holding the arrays, written here without any of llmc.cpp: fp32 (version 3) or
// bf16 (version 5).
std::string llmc_model_bytes(LlmcArrays& a, int version) {
    std::string bytes = header({20240326, version, maxT, V, L, NH, C, Vp});
    for (std::vector<float>* array : a.in_file_order())
        for (float x : *array) {
            if (version == 3) append(bytes, x);
            else append(bytes, to_bf16(x));
        }
    return bytes;
}

// The arrays put into a GPT by our parameter names, spelled out by hand. Every parameter must be set
// exactly once, so this also checks the names the model really has.
void set_by_name(nn::GPT& model, const LlmcArrays& a) {
    std::map<std::string, ag::Tensor> params;
    for (auto& [name, t] : model.parameters()) params[name] = t;
    size_t set = 0;
    auto put = [&](const std::string& name, const std::vector<float>& array, size_t layer) {
        INFO(name);
        REQUIRE(params.count(name) == 1);
        ag::Tensor t = params[name];
        const size_t n = (size_t)t.numel();
        REQUIRE((layer + 1) * n <= array.size());
        for (size_t i = 0; i < n; ++i) t.data()[i] = array[layer * n + i];
        ++set;
    };
    put("wte.weight", a.wte, 0);
    put("wpe.weight", a.wpe, 0);
    for (int l = 0; l < L; ++l) {
        const std::string h = "h." + std::to_string(l) + ".";
        put(h + "ln_1.weight", a.ln1w, l);
        put(h + "ln_1.bias", a.ln1b, l);
        put(h + "attn.c_attn.weight", a.qkvw, l);
        put(h + "attn.c_attn.bias", a.qkvb, l);
        put(h + "attn.c_proj.weight", a.attprojw, l);
        put(h + "attn.c_proj.bias", a.attprojb, l);
        put(h + "ln_2.weight", a.ln2w, l);
        put(h + "ln_2.bias", a.ln2b, l);
        put(h + "mlp.c_fc.weight", a.fcw, l);
        put(h + "mlp.c_fc.bias", a.fcb, l);
        put(h + "mlp.c_proj.weight", a.fcprojw, l);
        put(h + "mlp.c_proj.bias", a.fcprojb, l);
    }
    put("ln_f.weight", a.lnfw, 0);
    put("ln_f.bias", a.lnfb, 0);
    CHECK(set == params.size());
}

// ---- GPT-2's forward pass in plain loops over llm.c's flat arrays, in double: the outside oracle.

using Rows = std::vector<std::vector<double>>;  // (T, width)

// out[t] = W in[t] + b, W (out_dim, in_dim) row-major at w, b at bias.
Rows matmul(const Rows& in, const float* w, const float* bias, int out_dim) {
    const size_t in_dim = in[0].size();
    Rows out(in.size(), std::vector<double>(out_dim));
    for (size_t t = 0; t < in.size(); ++t)
        for (int o = 0; o < out_dim; ++o) {
            double sum = bias ? bias[o] : 0;
            for (size_t i = 0; i < in_dim; ++i) sum += (double)w[o * in_dim + i] * in[t][i];
            out[t][o] = sum;
        }
    return out;
}

Rows layernorm(const Rows& x, const float* weight, const float* bias) {
    Rows out = x;
    for (size_t t = 0; t < x.size(); ++t) {
        double mean = 0, var = 0;
        for (double v : x[t]) mean += v / C;
        for (double v : x[t]) var += (v - mean) * (v - mean) / C;
        for (int c = 0; c < C; ++c) out[t][c] = (x[t][c] - mean) / std::sqrt(var + 1e-5) * weight[c] + bias[c];
    }
    return out;
}

// Causal self-attention on qkv (T, 3C): head h reads columns [h hs, (h+1) hs) of q, k and v.
Rows attention(const Rows& qkv) {
    const int T = (int)qkv.size(), hs = C / NH;
    Rows y(T, std::vector<double>(C, 0));
    for (int h = 0; h < NH; ++h)
        for (int t = 0; t < T; ++t) {
            std::vector<double> p(t + 1);
            double max = -1e300, total = 0;
            for (int u = 0; u <= t; ++u) {
                double dot = 0;
                for (int d = 0; d < hs; ++d) dot += qkv[t][h * hs + d] * qkv[u][C + h * hs + d];
                p[u] = dot / std::sqrt((double)hs);
                max = std::max(max, p[u]);
            }
            for (double& v : p) total += (v = std::exp(v - max));
            for (int u = 0; u <= t; ++u)
                for (int d = 0; d < hs; ++d) y[t][h * hs + d] += p[u] / total * qkv[u][2 * C + h * hs + d];
        }
    return y;
}

// The logits (T, Vp) of one sequence.
Rows reference_logits(const LlmcArrays& a, const std::vector<int>& ids) {
    const int T = (int)ids.size();
    Rows x(T, std::vector<double>(C));
    for (int t = 0; t < T; ++t)
        for (int c = 0; c < C; ++c) x[t][c] = (double)a.wte[ids[t] * C + c] + a.wpe[t * C + c];
    auto add = [](Rows& x, const Rows& y) {
        for (size_t t = 0; t < x.size(); ++t)
            for (size_t c = 0; c < x[t].size(); ++c) x[t][c] += y[t][c];
    };
    for (int l = 0; l < L; ++l) {
        Rows ln1 = layernorm(x, &a.ln1w[l * C], &a.ln1b[l * C]);
        Rows qkv = matmul(ln1, &a.qkvw[l * 3 * C * C], &a.qkvb[l * 3 * C], 3 * C);
        add(x, matmul(attention(qkv), &a.attprojw[l * C * C], &a.attprojb[l * C], C));
        Rows ln2 = layernorm(x, &a.ln2w[l * C], &a.ln2b[l * C]);
        Rows h = matmul(ln2, &a.fcw[l * 4 * C * C], &a.fcb[l * 4 * C], 4 * C);
        for (auto& row : h)
            for (double& v : row) v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        add(x, matmul(h, &a.fcprojw[l * C * 4 * C], &a.fcprojb[l * C], C));
    }
    // tied: wte is the output layer, all Vp rows of it
    return matmul(layernorm(x, a.lnfw.data(), a.lnfb.data()), a.wte.data(), nullptr, Vp);
}

}  // namespace

// ===================================================================================================
// Token files

TEST_CASE("llmc: token files round-trip every uint16 value and reject the rest", "[train][llmc]") {
    TempDir tmp;
    Tokens tokens = ByteTokenizer().encode("hello, llm.c\n");
    tokens.push_back(0);
    tokens.push_back(65535);
    tokens.push_back(50256);
    const std::string path = tmp / "tokens.bin";
    write_llmc_tokens(path, tokens);

    const std::string bytes = read_file(path);
    CHECK(bytes.size() == 1024 + 2 * tokens.size());
    CHECK(bytes.substr(0, 12) == header({20240520, 1, (int32_t)tokens.size()}).substr(0, 12));
    CHECK(is_llmc_token_file(bytes));
    CHECK_FALSE(is_llmc_token_file("hello, this is text"));
    CHECK_FALSE(is_llmc_token_file("ab"));
    CHECK(read_llmc_tokens(path) == tokens);
    CHECK(parse_llmc_tokens(bytes, "'x'") == tokens);

    write_llmc_tokens(tmp / "empty.bin", {});  // no tokens is a valid (if useless) file
    CHECK(read_llmc_tokens(tmp / "empty.bin").empty());

    const std::string bad = tmp / "bad.bin";
    const std::string range = ", outside the range 0..65535 of llm.c's uint16 tokens";
    CHECK(error_of([&] { write_llmc_tokens(bad, {1, 2, 65536}); }) ==
          "cannot write '" + bad + "': the token at position 2 is 65536" + range);
    CHECK(error_of([&] { write_llmc_tokens(bad, {-1}); }) ==
          "cannot write '" + bad + "': the token at position 0 is -1" + range);
    CHECK(list_dir(tmp.path).size() == 2);  // nothing written for the bad ones
}

TEST_CASE("llmc: a bad token file says what is wrong", "[train][llmc]") {
    TempDir tmp;
    auto message = [&](const std::string& bytes) {
        const std::string path = tmp / "t.bin";
        write_text(path, bytes);
        return error_of([&] { read_llmc_tokens(path); });
    };
    const std::string p = "'" + (tmp / "t.bin") + "'";
    std::string three = header({20240520, 1, 3}) + std::string(6, '\1');
    CHECK(message(three).find("no error") != std::string::npos);

    CHECK(message(header({20240326, 3})) ==
          p + " is not an llm.c token file (magic 20240326, expected 20240520; it is an llm.c model file)");
    CHECK(message("just text, not tokens") == p + " is not an llm.c token file (magic 1953723754, expected 20240520)");
    CHECK(message(header({20240520, 2, 3}) + std::string(6, '\1')) == p + " has version 2 (expected 1)");
    CHECK(message(three.substr(0, 500)) == p + " is truncated: its header needs 1,024 bytes, the file has 500");
    CHECK(message(three.substr(0, 1029)) == p + " is truncated: the header promises 3 tokens (6 bytes) but 5 follow");
    CHECK(message(three + "xy") == p + " has 2 unexpected bytes after its 3 tokens");
    CHECK(message(header({20240520, 1, -4})) == p + " has a bad header: a negative token count -4");
}

// ===================================================================================================
// Model files

TEST_CASE("llmc: export then load preserves every bit of every parameter, padded rows included", "[train][llmc]") {
    TempDir tmp;
    nn::GPT ours(tiny_config(), 1);
    randomize(ours, 42);
    const std::string path = tmp / "model.bin";
    export_llmc_model(path, ours);

    CHECK(read_file(path).size() == 1024 + 4 * (size_t)ours.num_parameters());
    LlmcModelHeader h = read_llmc_model_header(path);
    CHECK(h.version == 3);
    CHECK(h.max_seq_len == maxT);
    CHECK(h.vocab_size == V);
    CHECK(h.n_layer == L);
    CHECK(h.n_head == NH);
    CHECK(h.n_embd == C);
    CHECK(h.padded_vocab_size == Vp);

    nn::GPT back(llmc_config(h), 2);  // different init: every value must come from the file
    load_llmc_model(path, back);
    ag::NamedTensors a = ours.parameters(), b = back.parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(a[i].first == b[i].first);
        CHECK(same_bits(a[i].second, b[i].second));
    }

    // dropout has no parameters, so a model trained with it exports too
    nn::GPTConfig dropout = tiny_config();
    dropout.attn_dropout = dropout.mlp_dropout = 0.1;
    CHECK_NOTHROW(export_llmc_model(tmp / "dropout.bin", nn::GPT(dropout, 1)));
}

TEST_CASE("llmc: a model file written by the test loads into the GPT llm.c would compute", "[train][llmc]") {
    TempDir tmp;
    LlmcArrays arrays = random_arrays(7);
    const std::string path = tmp / "llmc.bin";
    write_text(path, llmc_model_bytes(arrays, 3));

    nn::GPT loaded(llmc_config(read_llmc_model_header(path)), 1);
    load_llmc_model(path, loaded);
    nn::GPT by_name(tiny_config(), 2);
    set_by_name(by_name, arrays);

    // (a) the same parameters as the arrays put in by name, bit for bit
    ag::NamedTensors a = loaded.parameters(), b = by_name.parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(same_bits(a[i].second, b[i].second));
    }

    // (b) the logits of GPT-2's forward pass, computed in plain loops from the flat arrays
    const int B = 2, T = 7;
    std::vector<int> ids = {3, 99, 0, 41, 41, 7, 64, /* row 2 */ 12, 5, 88, 1, 1, 1, 30};
    ag::NoGradGuard no_grad;
    loaded.eval();
    ag::Tensor logits = loaded.forward(ids, B, T).logits;  // (B, T, Vp)
    REQUIRE(logits.shape() == ag::Shape{B, T, Vp});
    double worst = 0;
    for (int row = 0; row < B; ++row) {
        Rows expected = reference_logits(arrays, std::vector<int>(ids.begin() + row * T, ids.begin() + (row + 1) * T));
        for (int t = 0; t < T; ++t)
            for (int v = 0; v < Vp; ++v)
                worst = std::max(worst, std::fabs(logits.data()[(row * T + t) * Vp + v] - expected[t][v]));
    }
    CHECK(worst < 1e-4);  // float against double over two layers; a wrong layout is off by O(1)
}

TEST_CASE("llmc: a bf16 (version 5) model file loads its values exactly widened", "[train][llmc]") {
    TempDir tmp;
    LlmcArrays arrays = random_arrays(11);
    const std::string path = tmp / "bf16.bin";
    write_text(path, llmc_model_bytes(arrays, 5));
    CHECK(read_file(path).size() == 1024 + 2 * (size_t)nn::GPT(tiny_config(), 1).num_parameters());

    LlmcModelHeader h = read_llmc_model_header(path);
    CHECK(h.version == 5);
    nn::GPT loaded(llmc_config(h), 1);
    load_llmc_model(path, loaded);

    for (std::vector<float>* array : arrays.in_file_order())
        for (float& x : *array) x = from_bf16(to_bf16(x));  // what the file holds, widened
    nn::GPT expected(tiny_config(), 2);
    set_by_name(expected, arrays);
    ag::NamedTensors a = loaded.parameters(), b = expected.parameters();
    for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(same_bits(a[i].second, b[i].second));
    }
}

TEST_CASE("llmc: a bf16 model exported as version 5 reads back bit for bit; a bad version-5 file is refused",
          "[train][llmc][bf16]") {
    TempDir tmp;
    LlmcArrays arrays = random_arrays(7);
    for (std::vector<float>* array : arrays.in_file_order())
        for (float& x : *array) x = from_bf16(to_bf16(x));  // bf16 numbers, as a bf16 run's parameters are
    nn::GPT ours(tiny_config(), 1);
    set_by_name(ours, arrays);
    ours.set_dtype(ag::Dtype::bf16);
    const std::string path = tmp / "v5.bin", p = "'" + path + "'";
    export_llmc_model(path, ours, ag::Dtype::bf16);
    const std::string bytes = read_file(path);
    CHECK(bytes.size() == 1024 + 2 * (size_t)ours.num_parameters());
    CHECK(read_llmc_model_header(path).version == 5);
    CHECK(bytes == llmc_model_bytes(arrays, 5));  // what the test's own writer makes of the same values

    nn::GPT back(tiny_config(), 2);
    back.set_dtype(ag::Dtype::bf16);
    load_llmc_model(path, back);
    ag::NamedTensors a = ours.parameters(), b = back.parameters();
    for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(same_bits(a[i].second, b[i].second));
    }
    // exported again: the same bytes
    export_llmc_model(tmp / "again.bin", back, ag::Dtype::bf16);
    CHECK(read_file(tmp / "again.bin") == bytes);

    // an fp32 model exported as bf16: each value rounded to nearest
    nn::GPT fp(tiny_config(), 1);
    LlmcArrays unrounded = random_arrays(7);
    set_by_name(fp, unrounded);
    export_llmc_model(tmp / "rounded.bin", fp, ag::Dtype::bf16);
    CHECK(read_file(tmp / "rounded.bin") == bytes);

    auto message = [&](const std::string& file_bytes) {
        write_text(path, file_bytes);
        return error_of([&] {
            nn::GPT model(tiny_config(), 1);
            load_llmc_model(path, model);
        });
    };
    const std::string count = "8,896";
    CHECK(message(bytes.substr(0, bytes.size() - 1)) ==
          p + " is truncated: the header promises " + count + " parameters (17,792 bytes) but 17,791 follow");
    CHECK(message(bytes + std::string(17792, '\0')) ==
          p + " has 17,792 unexpected bytes after its " + count + " parameters");  // an fp32 body under a v5 header
    std::string v6 = bytes;
    v6[4] = 6;
    CHECK(message(v6) == p + " has version 6 (expected 3 = fp32 or 5 = bf16)");
}

TEST_CASE("llmc: llmc_config is GPT-2 with the header's sizes", "[train][llmc]") {
    LlmcModelHeader h{3, 1024, 50257, 12, 12, 768, 50304};
    nn::GPTConfig c = llmc_config(h);
    CHECK(c.vocab_size == 50257);
    CHECK(c.padded_vocab() == 50304);
    CHECK(c.max_seq_len == 1024);
    CHECK(c.n_layer == 12);
    CHECK(c.n_head == 12);
    CHECK(c.n_embd == 768);
    CHECK(c.pos == nn::PosScheme::learned);
    CHECK(c.norm == nn::NormPlacement::pre);
    CHECK(c.tie_weights);
    CHECK(c.bias);
    CHECK(c.attn_dropout == 0);
}

TEST_CASE("llmc: a bad model file says what is wrong", "[train][llmc]") {
    TempDir tmp;
    LlmcArrays arrays = random_arrays(3);
    const std::string good = llmc_model_bytes(arrays, 3);
    const std::string path = tmp / "m.bin", p = "'" + path + "'";
    const std::string count = "8,896";  // Vp C + maxT C + L (12 C^2 + 13 C) + 2 C = 2048 + 256 + 6560 + 32
    REQUIRE(good.size() == 1024 + 4 * 8896u);
    auto message = [&](const std::string& bytes) {
        write_text(path, bytes);
        return error_of([&] {
            nn::GPT model(tiny_config(), 1);
            load_llmc_model(path, model);
        });
    };
    CHECK(message(good) == "(no error)");
    CHECK(message(header({20240520, 1, 0})) ==
          p + " is not an llm.c model file (magic 20240520, expected 20240326; it is an llm.c token file)");
    CHECK(message(header({12345})) == p + " is not an llm.c model file (magic 12345, expected 20240326)");
    CHECK(message(header({20240326, 4, maxT, V, L, NH, C, Vp})) ==
          p + " has version 4 (expected 3 = fp32 or 5 = bf16)");
    CHECK(message(good.substr(0, good.size() - 10)) ==
          p + " is truncated: the header promises " + count + " parameters (35,584 bytes) but 35,574 follow");
    CHECK(message(good + "abc") == p + " has 3 unexpected bytes after its " + count + " parameters");
    CHECK(message(header({20240326, 3, maxT, V, L, 3, C, Vp})) ==
          p + " has a bad header: n_embd 16 is not a multiple of n_head 3");
    CHECK(message(header({20240326, 3, maxT, V, 0, NH, C, Vp})) ==
          p + " has a bad header: n_layer is 0 (expected at least 1)");
    CHECK(message(header({20240326, 3, maxT, V, L, NH, C, 99})) ==
          p + " has a bad header: padded_vocab_size 99 is smaller than vocab_size 100");
    CHECK(message(header({20240326, 3, maxT, V, 1 << 30, NH, 1 << 30, Vp})) ==
          p + " has a bad header: its sizes imply 1.49e+28 parameters");
    // the header alone is checked the same way
    CHECK(error_of([&] { read_llmc_model_header(path); }) ==
          p + " has a bad header: its sizes imply 1.49e+28 parameters");
    CHECK(error_of([&] { read_llmc_model_header(tmp / "missing.bin"); }) ==
          "cannot read '" + (tmp / "missing.bin") + "': No such file or directory");
    CHECK(error_of([&] { read_llmc_model_header(tmp.path); }) ==
          "cannot read '" + tmp.path + "': it is a directory, not a file");

    // a good file, but not for this model
    write_text(path, good);
    nn::GPTConfig deeper = tiny_config();
    deeper.n_layer = 3;
    nn::GPT model3(deeper, 1);
    CHECK(error_of([&] { load_llmc_model(path, model3); }) ==
          "cannot load " + p + " into this model: its n_layer is 2, the model's is 3");
    nn::GPTConfig unpadded = tiny_config();
    unpadded.padded_vocab_size = 0;
    nn::GPT model_v(unpadded, 1);
    CHECK(error_of([&] { load_llmc_model(path, model_v); }) ==
          "cannot load " + p + " into this model: its padded_vocab_size is 128, the model's is 100");
    nn::GPTConfig rope = tiny_config();
    rope.pos = nn::PosScheme::rope;
    nn::GPT model_r(rope, 1);
    CHECK(error_of([&] { load_llmc_model(path, model_r); }) ==
          "cannot load " + p + " into this model: llm.c's GPT-2 needs learned positions (this model has rope)");
}

TEST_CASE("llmc: export refuses what GPT-2's format cannot hold, and leaves no file on failure", "[train][llmc]") {
    TempDir tmp;
    auto export_message = [&](void (*change)(nn::GPTConfig&)) {
        nn::GPTConfig c = tiny_config();
        change(c);
        return error_of([&] { export_llmc_model(tmp / "x.bin", nn::GPT(c, 1)); });
    };
    CHECK(export_message([](nn::GPTConfig& c) { c.pos = nn::PosScheme::rope; }) ==
          "--export-llmc needs learned positions (this model has rope)");
    CHECK(export_message([](nn::GPTConfig& c) { c.pos = nn::PosScheme::alibi; }) ==
          "--export-llmc needs learned positions (this model has alibi)");
    CHECK(export_message([](nn::GPTConfig& c) { c.norm = nn::NormPlacement::post; }) ==
          "--export-llmc needs pre-LN (this model has post)");
    CHECK(export_message([](nn::GPTConfig& c) { c.norm = nn::NormPlacement::sandwich; }) ==
          "--export-llmc needs pre-LN (this model has sandwich)");
    CHECK(export_message([](nn::GPTConfig& c) { c.tie_weights = false; }) ==
          "--export-llmc needs a tied output layer (this model has an untied one)");
    CHECK(export_message([](nn::GPTConfig& c) { c.bias = false; }) ==
          "--export-llmc needs biases (this model has none)");
    CHECK(list_dir(tmp.path).empty());
    nn::GPTConfig untied = tiny_config();
    untied.tie_weights = false;
    CHECK(error_of([&] { check_llmc_exportable(untied); }) ==
          "--export-llmc needs a tied output layer (this model has an untied one)");
    CHECK_NOTHROW(check_llmc_exportable(tiny_config()));

    const std::string missing = tmp / "no/such/dir/model.bin";
    CHECK(error_of([&] { export_llmc_model(missing, nn::GPT(tiny_config(), 1)); }) ==
          "cannot write '" + missing + "': No such file or directory");
    CHECK(error_of([&] { write_llmc_tokens(missing, {1, 2, 3}); }) ==
          "cannot write '" + missing + "': No such file or directory");
    CHECK(list_dir(tmp.path).empty());
}

// ===================================================================================================
// Tokenizer files

namespace {
std::string tokenizer_bytes(const std::vector<int32_t>& head, const std::vector<std::string>& tokens) {
    std::string bytes = header(head);
    for (const std::string& t : tokens) bytes += (char)(unsigned char)t.size() + t;
    return bytes;
}
}  // namespace

TEST_CASE("llmc: a tokenizer file decodes ids to their bytes", "[train][llmc]") {
    TempDir tmp;
    const std::vector<std::string> vocab = {"a", " the", std::string("\xff\x00", 2), "<|endoftext|>",
                                            std::string(255, 'z')};
    const std::string v2 = tmp / "v2.bin";
    write_text(v2, tokenizer_bytes({20240328, 2, 5, 3}, vocab));
    LlmcTokenizer tok = LlmcTokenizer::load(v2);
    CHECK(tok.name() == "gpt2");
    CHECK(tok.vocab_size() == 5);
    CHECK(tok.end_of_text() == 3);
    CHECK_FALSE(tok.can_encode());
    CHECK(tok.decode({0, 1, 2, 1, 3}) == std::string("a the\xff\x00 the<|endoftext|>", 24));
    CHECK(tok.decode({4}) == std::string(255, 'z'));
    CHECK(tok.decode({}).empty());
    CHECK(error_of([&] { tok.decode({0, 5}); }) == "token 5 is outside the vocabulary of '" + v2 + "' (ids 0..4)");
    CHECK(error_of([&] { tok.decode({-1}); }) == "token -1 is outside the vocabulary of '" + v2 + "' (ids 0..4)");
    CHECK(error_of([&] { tok.encode("hi"); }) ==
          "llm.c's tokenizer file only decodes (it holds no merges); --prompt needs --tokenizer bytes or bpe");
    const Tokenizer& base = tok;  // usable through the interface
    CHECK(base.decode({1}) == " the");

    // version 1 has no end-of-text field: GPT-2's 50256 when the vocabulary reaches it, else none
    const std::string small = tmp / "v1.bin";
    write_text(small, tokenizer_bytes({20240328, 1, 3}, {"x", "y", "z"}));
    CHECK(LlmcTokenizer::load(small).end_of_text() == -1);
    CHECK(LlmcTokenizer::load(small).decode({2, 0}) == "zx");
    const std::string gpt2 = tmp / "gpt2.bin";
    write_text(gpt2, tokenizer_bytes({20240328, 1, 50257}, std::vector<std::string>(50257, "t")));
    CHECK(LlmcTokenizer::load(gpt2).end_of_text() == 50256);
}

TEST_CASE("llmc: a bad tokenizer file says what is wrong", "[train][llmc]") {
    TempDir tmp;
    const std::string path = tmp / "tok.bin", p = "'" + path + "'";
    auto message = [&](const std::string& bytes) {
        write_text(path, bytes);
        return error_of([&] { LlmcTokenizer::load(path); });
    };
    const std::string good = tokenizer_bytes({20240328, 2, 3, 2}, {"ab", "c", "<|endoftext|>"});
    CHECK(message(good) == "(no error)");
    CHECK(message(header({20240326, 3})) ==
          p + " is not an llm.c tokenizer file (magic 20240326, expected 20240328; it is an llm.c model file)");
    CHECK(message(tokenizer_bytes({20240328, 3, 3, 2}, {"ab", "c", "d"})) == p + " has version 3 (expected 1 or 2)");
    CHECK(message(good.substr(0, good.size() - 1)) ==
          p + " is truncated: it ends inside token 2 of the 3 its header promises");
    CHECK(message(good.substr(0, 1027)) ==
          p + " is truncated: its header promises 3 tokens, which need at least 6 bytes, but 3 follow");
    CHECK(message(good.substr(0, 1031)) == p + " is truncated: it ends inside token 2 of the 3 its header promises");
    // a count of 0x58000004 tokens in a file of a few bytes: refused before 47 GB are reserved for it
    CHECK(message(tokenizer_bytes({20240328, 1, 0x58000004}, {"ab"})) ==
          p + " is truncated: its header promises 1,476,395,012 tokens, which need at least 2,952,790,024 bytes, "
              "but 3 follow");
    CHECK(message(good + "!") == p + " has 1 unexpected bytes after its 3 tokens");
    CHECK(message(tokenizer_bytes({20240328, 2, 3, 2}, {"ab", "", "c"})) ==
          p + " has an empty token (id 1); each token needs at least one byte");
    CHECK(message(tokenizer_bytes({20240328, 2, 3, 3}, {"ab", "c", "d"})) ==
          p + " has a bad header: the end-of-text id 3 is outside its vocabulary of 3 tokens");
    CHECK(message("tiny") == p + " is not an llm.c tokenizer file (magic 2037279092, expected 20240328)");
}
