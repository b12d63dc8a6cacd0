// nn: every module gradient-checked in double, and the whole GPT in every combination of switches.
#include <catch2/catch.hpp>
#include <cmath>

#include "../../nn/gpt.h"
#include "../gradcheck.h"

using namespace ag;
using namespace nn;
using Catch::Matchers::Contains;

namespace {

const PosScheme kSchemes[] = {PosScheme::learned, PosScheme::sinusoidal, PosScheme::relative,
                              PosScheme::rope,    PosScheme::alibi,      PosScheme::none};
const NormPlacement kNorms[] = {NormPlacement::post, NormPlacement::pre, NormPlacement::sandwich};

// Tiny shapes, so that every element of every parameter can be checked: B=2, T=5, C=8, NH=2, V=11.
const int B = 2, T = 5;

GPTConfig tiny(PosScheme pos = PosScheme::learned, NormPlacement norm = NormPlacement::pre, bool tie = true,
               double dropout = 0) {
    GPTConfig c;
    c.vocab_size = 11;
    c.max_seq_len = 8;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.rel_clip = 6;  // larger than T - 1, so some table rows cannot occur at T = 5
    c.pos = pos;
    c.norm = norm;
    c.tie_weights = tie;
    c.emb_dropout = c.attn_dropout = c.resid_dropout = c.mlp_dropout = dropout;
    return c;
}

std::string describe(const GPTConfig& c) {
    return std::string("pos=") + to_string(c.pos) + " norm=" + to_string(c.norm) +
           " tie=" + (c.tie_weights ? "on" : "off") + " dropout=" + std::to_string(c.attn_dropout);
}

// repeated ids on purpose (scatter-add in the embedding's backward)
const std::vector<int> kIds = {1, 4, 4, 0, 10, 3, 3, 3, 7, 1};
const std::vector<int> kTargets = {4, 4, 0, 10, 2, 3, 3, 7, 1, 9};

std::vector<Tensor> tensors_of(const NamedTensors& named) {
    std::vector<Tensor> out;
    for (const auto& p : named) out.push_back(p.second);
    return out;
}

// Moves every parameter away from its initial value. At GPT-2's initialisation biases are 0, gains are
// 1 and the residual branches' outputs are tiny (~1e-3): a check there would miss bugs that mix up a
// gain and a bias, and a LayerNorm of such tiny values (variance ~ eps) is so curved that finite
// differences need far smaller steps. A generic point is the better place to check gradients.
void randomize(const Module& m, uint64_t seed, double scale = 0.2) {
    Rng rng(seed);
    for (const auto& p : m.parameters())
        for (int64_t i = 0; i < p.second.numel(); ++i) p.second.data()[i] += scale * rng.normal();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Modules one at a time

TEST_CASE("Linear, Embedding, LayerNorm gradients", "[nn][grad]") {
    Rng init(1);
    Linear with_bias(8, 6, true, init, 0.5), without(8, 6, false, init, 0.5);
    Tensor x = normal_param({B, T, 8}, 2);
    auto with_inputs = tensors_of(with_bias.parameters());
    with_inputs.push_back(x);
    expect_gradients([&](auto&) { return with_bias.forward(x); }, with_inputs);
    expect_gradients([&](auto&) { return without.forward(x); }, {without.weight, x});
    CHECK(without.parameters().size() == 1);

    Embedding emb(11, 8, init, 1.0);
    expect_gradients([&](auto&) { return emb.forward(kIds, {B, T}); }, {emb.weight});

    LayerNorm ln(8);
    Rng r(3);
    for (int64_t i = 0; i < 8; ++i) ln.weight.data()[i] += 0.3 * r.normal(), ln.bias.data()[i] = r.normal();
    expect_gradients([&](auto&) { return ln.forward(x); }, {ln.weight, ln.bias, x});
}

TEST_CASE("MLP and attention gradients, for each scheme acting inside attention", "[nn][grad]") {
    for (PosScheme pos : {PosScheme::none, PosScheme::relative, PosScheme::rope, PosScheme::alibi}) {
        GPTConfig c = tiny(pos);
        INFO(describe(c));
        Rng init(4), drop(5);
        MLP mlp(c, init, drop);
        CausalSelfAttention attn(c, init, drop);
        randomize(mlp, 11);
        randomize(attn, 12);
        Tensor x = normal_param({B, T, 8}, 6);
        auto mlp_inputs = tensors_of(mlp.parameters());
        mlp_inputs.push_back(x);
        expect_gradients([&](auto&) { return mlp.forward(x); }, mlp_inputs);
        auto attn_inputs = tensors_of(attn.parameters());
        attn_inputs.push_back(x);
        expect_gradients([&](auto&) { return attn.forward(x); }, attn_inputs);
    }
}

TEST_CASE("Block gradients for each norm placement, with and without dropout", "[nn][grad]") {
    for (NormPlacement norm : kNorms)
        for (double p : {0.0, 0.2}) {
            GPTConfig c = tiny(PosScheme::none, norm, true, p);
            INFO(describe(c));
            Rng init(7), drop(8);
            Block block(c, init, drop);
            randomize(block, 10);
            Tensor x = normal_param({B, T, 8}, 9);
            auto inputs = tensors_of(block.parameters());
            inputs.push_back(x);
            expect_gradients([&](auto&) {
                drop = Rng(8);  // the same dropout masks at every evaluation
                return block.forward(x);
            }, inputs);
        }
}

// ---------------------------------------------------------------------------------------------------
// The whole GPT: 6 schemes x 3 placements x tied or not = 36 models, without and with dropout.

TEST_CASE("GPT gradients in all 36 variants, dropout 0 and dropout 0.1 with a fixed mask", "[nn][grad][gpt]") {
    for (double p : {0.0, 0.1})
        for (PosScheme pos : kSchemes)
            for (NormPlacement norm : kNorms)
                for (bool tie : {true, false}) {
                    GPTConfig c = tiny(pos, norm, tie, p);
                    INFO(describe(c));
                    GPT model(c, 42);
                    randomize(model, 43);
                    auto params = model.parameters();
                    expect_gradients([&](auto&) {
                        model.dropout_rng() = Rng(77);
                        return model.forward(kIds, B, T, kTargets).loss;
                    }, tensors_of(params), /*per_input=*/3);
                }
}

TEST_CASE("GPT without biases (nanoGPT's choice): gradients, and no bias parameters", "[nn][grad][gpt]") {
    for (NormPlacement norm : kNorms) {
        GPTConfig c = tiny(PosScheme::rope, norm, false, 0.1);
        c.bias = false;
        INFO(describe(c));
        GPT model(c, 52);
        randomize(model, 53);
        for (const auto& p : model.parameters()) CHECK(p.first.find("bias") == std::string::npos);
        expect_gradients([&](auto&) {
            model.dropout_rng() = Rng(77);
            return model.forward(kIds, B, T, kTargets).loss;
        }, tensors_of(model.parameters()), 3);
    }
    GPTConfig with = tiny(), without = tiny();
    without.bias = false;
    // per layer: 2 LayerNorm biases (C each), c_attn (3C), attn c_proj (C), c_fc (4C), mlp c_proj (C);
    // plus ln_f's bias
    CHECK(GPT(with).num_parameters() - GPT(without).num_parameters() == 2 * (2 * 8 + 3 * 8 + 8 + 4 * 8 + 8) + 8);
}

TEST_CASE("GPT logits gradients, through a random projection of (B, T, V)", "[nn][grad][gpt]") {
    GPTConfig c = tiny(PosScheme::relative, NormPlacement::sandwich, false);
    GPT model(c, 43);
    randomize(model, 44);
    expect_gradients([&](auto&) { return model.forward(kIds, B, T).logits; }, tensors_of(model.parameters()), 4);
}

// ---------------------------------------------------------------------------------------------------
// Properties of the switches

TEST_CASE("relative tables: rows for offsets that occur get gradient, the others exactly zero", "[nn][gpt]") {
    GPT model(tiny(PosScheme::relative), 44);
    model.forward(kIds, B, T, kTargets).loss.backward();
    const int k = 6;  // rel_clip; row r stands for offset r - k
    for (const auto& block : model.h) {
        for (const Tensor& table : {block->attn.rel_k, block->attn.rel_v}) {
            REQUIRE(table.shape() == Shape{2 * k + 1, 4});
            for (int row = 0; row < 2 * k + 1; ++row) {
                int offset = row - k;
                double norm = 0;
                for (int d = 0; d < 4; ++d) norm += std::fabs(table.grad().data()[row * 4 + d]);
                INFO("offset " << offset);
                // keys 0..i are visible to query i: offsets -(T-1) .. 0 occur; future keys are masked
                if (offset >= -(T - 1) && offset <= 0) CHECK(norm > 0);
                else CHECK(norm == 0.0);
            }
        }
    }
}

TEST_CASE("causality: changing token t changes no logit before t, in every variant", "[nn][gpt]") {
    for (PosScheme pos : kSchemes)
        for (NormPlacement norm : kNorms)
            for (bool tie : {true, false}) {
                GPTConfig c = tiny(pos, norm, tie, 0.1);
                INFO(describe(c));
                GPT model(c, 45);
                model.eval();
                NoGradGuard no_grad;
                for (int t = 0; t < T; ++t) {
                    std::vector<int> changed = kIds;
                    changed[t] = (changed[t] + 5) % 11;      // batch row 0
                    changed[T + t] = (changed[T + t] + 3) % 11;  // batch row 1
                    Tensor a = model.forward(kIds, B, T).logits, b = model.forward(changed, B, T).logits;
                    for (int row = 0; row < B; ++row) {
                        bool before_same = true, at_t_differs = false;
                        for (int pos_i = 0; pos_i < T; ++pos_i)
                            for (int v = 0; v < 11; ++v) {
                                int64_t e = (row * T + pos_i) * 11 + v;
                                if (pos_i < t) before_same = before_same && a.data()[e] == b.data()[e];
                                if (pos_i == t) at_t_differs = at_t_differs || a.data()[e] != b.data()[e];
                            }
                        CHECK(before_same);
                        CHECK(at_t_differs);  // the test would notice a model that ignores its input
                    }
                }
            }
}

TEST_CASE("tying: one matrix, V x C fewer parameters, gradient = sum of both uses", "[nn][gpt]") {
    for (PosScheme pos : {PosScheme::learned, PosScheme::rope}) {
        GPT tied(tiny(pos, NormPlacement::pre, true), 46), untied(tiny(pos, NormPlacement::pre, false), 46);
        CHECK(untied.num_parameters() - tied.num_parameters() == 11 * 8);
        // equal weights: the same seed draws the same values up to lm_head, which we set to wte
        auto tp = tied.parameters(), up = untied.parameters();
        REQUIRE(up.size() == tp.size() + 1);
        for (size_t i = 0; i < tp.size(); ++i) {
            REQUIRE(tp[i].first == up[i].first);
            for (int64_t e = 0; e < tp[i].second.numel(); ++e)
                REQUIRE(tp[i].second.data()[e] == up[i].second.data()[e]);
        }
        std::copy(untied.wte->weight.data(), untied.wte->weight.data() + 88, untied.lm_head->weight.data());

        tied.forward(kIds, B, T, kTargets).loss.backward();
        untied.forward(kIds, B, T, kTargets).loss.backward();
        for (int64_t e = 0; e < 88; ++e) {
            double both = untied.wte->weight.grad().data()[e] + untied.lm_head->weight.grad().data()[e];
            CHECK(tied.wte->weight.grad().data()[e] == Approx(both).epsilon(1e-12).margin(1e-15));
        }
        CHECK(untied.lm_head->weight.grad().data()[0] != 0.0);
    }
}

TEST_CASE("padded vocabulary: zero rows, the same loss as unpadded, no gradient to the padding", "[nn][gpt]") {
    for (bool tie : {true, false}) {
        GPTConfig c = tiny(PosScheme::learned, NormPlacement::pre, tie), cp = c;
        cp.padded_vocab_size = 16;  // 11 tokens, 5 padding rows
        GPT plain(c, 47), padded(cp, 47);
        Tensor out_w = tie ? padded.wte->weight : padded.lm_head->weight;
        CHECK(out_w.size(0) == 16);
        for (int64_t e = 11 * 8; e < 16 * 8; ++e) REQUIRE(out_w.data()[e] == 0.0);  // padding starts at zero

        // the same weights (padding aside) give the same loss
        auto pp = padded.parameters(), up = plain.parameters();
        REQUIRE(pp.size() == up.size());
        for (size_t i = 0; i < up.size(); ++i)
            std::copy(up[i].second.data(), up[i].second.data() + up[i].second.numel(), pp[i].second.data());
        for (int64_t e = 11 * 8; e < 16 * 8; ++e) out_w.data()[e] = 0.3;  // nonzero padding changes nothing
        GPTOutput a = plain.forward(kIds, B, T, kTargets), b = padded.forward(kIds, B, T, kTargets);
        CHECK(b.logits.size(-1) == 16);
        CHECK(b.loss.item() == Approx(a.loss.item()).epsilon(1e-13));
        b.loss.backward();
        for (int64_t e = 11 * 8; e < 16 * 8; ++e) CHECK(out_w.grad().data()[e] == 0.0);
        CHECK(out_w.grad().data()[0] != 0.0);
    }
    GPTConfig bad = tiny();
    bad.padded_vocab_size = 10;
    CHECK_THROWS_WITH(bad.validate(), Contains("padded_vocab_size 10 is smaller than vocab_size 11"));
}

TEST_CASE("train vs eval: dropout changes outputs only in train mode", "[nn][gpt]") {
    GPT with_dropout(tiny(PosScheme::learned, NormPlacement::pre, true, 0.2), 47);
    GPT without(tiny(PosScheme::learned, NormPlacement::pre, true, 0.0), 47);  // same weights
    Tensor a = with_dropout.forward(kIds, B, T).logits, b = with_dropout.forward(kIds, B, T).logits;
    Tensor ref = without.forward(kIds, B, T).logits;
    int differ = 0;
    for (int64_t e = 0; e < a.numel(); ++e) differ += a.data()[e] != b.data()[e];
    CHECK(differ > 0);  // two training passes draw different masks

    with_dropout.eval();
    CHECK_FALSE(with_dropout.training());
    CHECK_FALSE(with_dropout.h[0]->attn.attn_dropout.training());  // eval() reaches every child
    Tensor c = with_dropout.forward(kIds, B, T).logits, d = with_dropout.forward(kIds, B, T).logits;
    for (int64_t e = 0; e < c.numel(); ++e) {
        CHECK(c.data()[e] == d.data()[e]);
        CHECK(c.data()[e] == ref.data()[e]);
    }
    with_dropout.train();
    CHECK(with_dropout.h[1]->mlp.dropout.training());
}

TEST_CASE("parameter names follow GPT-2's, in a stable order", "[nn][gpt]") {
    GPT model(tiny(PosScheme::learned, NormPlacement::pre, false), 48);
    std::vector<std::string> names;
    for (const auto& p : model.parameters()) names.push_back(p.first);
    std::vector<std::string> expected = {"wte.weight", "wpe.weight"};
    for (int l = 0; l < 2; ++l)
        for (const char* n : {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                              "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                              "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"})
            expected.push_back("h." + std::to_string(l) + "." + n);
    for (const char* n : {"ln_f.weight", "ln_f.bias", "lm_head.weight"}) expected.push_back(n);
    CHECK(names == expected);

    GPT sandwich(tiny(PosScheme::relative, NormPlacement::sandwich), 48);
    std::vector<std::string> s;
    for (const auto& p : sandwich.parameters()) s.push_back(p.first);
    CHECK(std::find(s.begin(), s.end(), "h.1.ln_2_post.bias") != s.end());
    CHECK(std::find(s.begin(), s.end(), "h.0.attn.rel_k") != s.end());
    CHECK(std::find(s.begin(), s.end(), "wpe.weight") == s.end());
    GPT post(tiny(PosScheme::none, NormPlacement::post), 48);
    CHECK(post.parameters().back().first == "h.1.mlp.c_proj.bias");  // no final LN, tied: nothing after
}

TEST_CASE("GPT-2 initialisation: std 0.02, residual projections scaled, zero biases, unit gains", "[nn][gpt]") {
    GPTConfig c = tiny();
    c.n_embd = 64;
    c.n_head = 4;
    c.vocab_size = 300;
    c.n_layer = 8;
    GPT model(c, 49);
    auto stddev = [](const Tensor& t) {
        double s = 0;
        for (int64_t i = 0; i < t.numel(); ++i) s += t.data()[i] * t.data()[i];
        return std::sqrt(s / t.numel());
    };
    CHECK(stddev(model.wte->weight) == Approx(0.02).epsilon(0.05));
    CHECK(stddev(model.h[0]->mlp.c_fc.weight) == Approx(0.02).epsilon(0.05));
    CHECK(stddev(model.h[3]->attn.c_proj.weight) == Approx(0.02 / 4).epsilon(0.05));  // 1/sqrt(2*8) = 1/4
    CHECK(stddev(model.h[3]->mlp.c_proj.weight) == Approx(0.02 / 4).epsilon(0.05));
    CHECK(stddev(model.h[2]->attn.c_attn.bias) == 0.0);
    CHECK(model.h[5]->ln_2.weight.data()[7] == 1.0);
    // deterministic from the seed
    GPT again(c, 49), other(c, 50);
    CHECK(again.h[7]->mlp.c_fc.weight.data()[123] == model.h[7]->mlp.c_fc.weight.data()[123]);
    CHECK(other.h[7]->mlp.c_fc.weight.data()[123] != model.h[7]->mlp.c_fc.weight.data()[123]);
}

TEST_CASE("fixed positional tables: sinusoidal values, ALiBi slopes, RoPE depends on offsets only", "[nn]") {
    Tensor pe = sinusoidal_table(4, 6);
    CHECK(pe.data()[0 * 6 + 1] == 1.0);                                        // cos(0)
    CHECK(pe.data()[3 * 6 + 0] == Approx(std::sin(3.0)).epsilon(1e-12));
    CHECK(pe.data()[3 * 6 + 3] == Approx(std::cos(3.0 / std::pow(10000.0, 2.0 / 6))).epsilon(1e-12));

    std::vector<double> m8 = alibi_slopes(8), m6 = alibi_slopes(6);
    CHECK(m8.front() == 0.5);
    CHECK(m8.back() == 1.0 / 256);
    // 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then 2^-1 and 2^-3 from the 8-head sequence
    CHECK(m6 == std::vector<double>{0.25, 1.0 / 16, 1.0 / 64, 1.0 / 256, 0.5, 0.125});

    // q_t . k_s after RoPE depends on t - s only
    Rng rng(51);
    Tensor q = Tensor::randn({1, 8}, rng), k = Tensor::randn({1, 8}, rng);
    auto at = [](const Tensor& v, int pos) {  // v placed at position pos of a (pos+1, 8) sequence
        Tensor seq = Tensor::zeros({pos + 1, 8});
        std::copy(v.data(), v.data() + 8, seq.data() + pos * 8);
        Tensor r = rope_rotate(seq, 10000);
        return std::vector<real>(r.data() + pos * 8, r.data() + pos * 8 + 8);
    };
    auto dot = [](const std::vector<real>& a, const std::vector<real>& b) {
        double s = 0;
        for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
        return s;
    };
    CHECK(dot(at(q, 5), at(k, 2)) == Approx(dot(at(q, 9), at(k, 6))).epsilon(1e-12));
    CHECK(dot(at(q, 5), at(k, 2)) != Approx(dot(at(q, 5), at(k, 3))).epsilon(1e-6));
}

TEST_CASE("config and shape errors are clear", "[nn][errors]") {
    GPTConfig c = tiny();
    c.n_head = 3;
    REQUIRE_THROWS_WITH(GPT(c), Contains("n_embd 8 is not divisible by n_head 3"));
    REQUIRE_THROWS_WITH(parse_pos_scheme("absolute"), Contains("unknown positional scheme 'absolute'") &&
                                                         Contains("learned, sinusoidal, relative, rope, alibi or none"));
    REQUIRE_THROWS_WITH(parse_norm_placement("middle"), Contains("unknown norm placement 'middle'"));
    CHECK(parse_pos_scheme("alibi") == PosScheme::alibi);
    CHECK(parse_norm_placement("sandwich") == NormPlacement::sandwich);
    GPTConfig odd = tiny(PosScheme::rope);
    odd.n_embd = 6;  // head size 3
    REQUIRE_THROWS_WITH(GPT(odd), Contains("rope needs an even head size"));
    GPTConfig drop = tiny();
    drop.attn_dropout = 1.0;
    REQUIRE_THROWS_WITH(GPT(drop), Contains("attn_dropout 1 must be in [0, 1)"));

    GPT learned(tiny(PosScheme::learned), 1);
    std::vector<int> long_ids(9, 1);
    REQUIRE_THROWS_WITH(learned.forward(long_ids, 1, 9),
                        Contains("sequence length 9 exceeds the model's max_seq_len 8"));
    GPT rope(tiny(PosScheme::rope), 1);
    CHECK(rope.forward(long_ids, 1, 9).logits.shape() == Shape{1, 9, 11});  // RoPE extrapolates
    REQUIRE_THROWS_WITH(learned.forward(kIds, 2, 4), Contains("10 token ids given for B=2 x T=4"));
    REQUIRE_THROWS_WITH(learned.forward({1, 11}, 1, 2), Contains("token id 11") && Contains("11 rows"));
}
