// The fused causal_attention op, in double: gradient checks, and equality with the unfused composition
// of existing ops (forward and every gradient), causality, and dropout.
#include <catch2/catch.hpp>
#include <cmath>

#include "../gradcheck.h"

using namespace ag;

namespace {

// The reference: the composition CausalSelfAttention used before the fused op existed.
Tensor composite(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias = Tensor()) {
    Tensor logits = matmul(q, transpose(k)) * scale;  // (B, NH, T, T)
    if (bias.defined()) logits = logits + bias;         // (NH, T, T) broadcast over B
    return matmul(softmax(causal_mask(logits)), v);     // (B, NH, T, hs)
}

struct Inputs {
    Tensor q, k, v, bias;
};

Inputs make_inputs(int64_t B, int64_t NH, int64_t T, int64_t hs, uint64_t seed) {
    return {normal_param({B, NH, T, hs}, seed), normal_param({B, NH, T, hs}, seed + 1), normal_param({B, NH, T, hs}, seed + 2),
            normal_param({NH, T, T}, seed + 3, 0.5)};
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    double worst = 0;
    for (int64_t e = 0; e < a.numel(); ++e) worst = std::max(worst, std::fabs((double)a.data()[e] - b.data()[e]));
    return worst;
}

// Forward values and all four gradients of L = sum(w * out), w a fixed random tensor.
struct Result {
    Tensor out, dq, dk, dv, dbias;
};

template <class F>
Result run(F f, const Inputs& in) {
    for (const Tensor& t : {in.q, in.k, in.v, in.bias}) t.zero_grad();
    Tensor out = f(in);
    Rng rng(99);
    Tensor w = Tensor::randn(out.shape(), rng);
    sum(out * w).backward();
    return {out.detach(), in.q.grad().clone(), in.k.grad().clone(), in.v.grad().clone(),
            in.bias.grad().defined() ? in.bias.grad().clone() : Tensor()};
}

const int64_t kShapes[][4] = {{2, 2, 5, 4}, {2, 2, 1, 4}, {2, 2, 7, 4}, {1, 3, 7, 3}, {3, 1, 4, 8}};

}  // namespace

TEST_CASE("causal_attention: gradient checks of q, k, v and the bias", "[attention][grad]") {
    for (const auto& s : kShapes) {
        INFO("B=" << s[0] << " NH=" << s[1] << " T=" << s[2] << " hs=" << s[3]);
        Inputs in = make_inputs(s[0], s[1], s[2], s[3], 10);
        real scale = 1 / std::sqrt((real)s[3]);
        expect_gradients([&](auto& x) { return causal_attention(x[0], x[1], x[2], scale); }, {in.q, in.k, in.v});
        expect_gradients([&](auto& x) { return causal_attention(x[0], x[1], x[2], scale, x[3]); },
                         {in.q, in.k, in.v, in.bias});
    }
}

TEST_CASE("causal_attention equals the unfused composition: forward and every gradient", "[attention]") {
    for (const auto& s : kShapes)
        for (bool with_bias : {false, true}) {
            INFO("B=" << s[0] << " NH=" << s[1] << " T=" << s[2] << " hs=" << s[3] << " bias=" << with_bias);
            Inputs in = make_inputs(s[0], s[1], s[2], s[3], 20);
            real scale = 1 / std::sqrt((real)s[3]);
            Tensor bias = with_bias ? in.bias : Tensor();
            Result fused = run([&](const Inputs& x) { return causal_attention(x.q, x.k, x.v, scale, bias); }, in);
            Result ref = run([&](const Inputs& x) { return composite(x.q, x.k, x.v, scale, bias); }, in);
            CHECK(max_abs_diff(fused.out, ref.out) < 1e-12);
            CHECK(max_abs_diff(fused.dq, ref.dq) < 1e-12);
            CHECK(max_abs_diff(fused.dk, ref.dk) < 1e-12);
            CHECK(max_abs_diff(fused.dv, ref.dv) < 1e-12);
            if (with_bias) CHECK(max_abs_diff(fused.dbias, ref.dbias) < 1e-12);
        }
}

TEST_CASE("causal_attention: rows longer than a key block (the online rescaling) match too", "[attention]") {
    // 300 keys are five key blocks of the online softmax, and 300 queries two query blocks (256 + 44),
    // so tiles have rows before their first key; large logits make later blocks raise the max.
    Inputs in = make_inputs(1, 2, 300, 4, 30);
    Tensor bias = (in.bias * 8.0).detach();  // a constant: no gradient wanted
    Result fused = run([&](const Inputs& x) { return causal_attention(x.q, x.k, x.v, 0.5, bias); }, in);
    Result ref = run([&](const Inputs& x) { return composite(x.q, x.k, x.v, 0.5, bias); }, in);
    CHECK(max_abs_diff(fused.out, ref.out) < 1e-12);
    CHECK(max_abs_diff(fused.dq, ref.dq) < 1e-11);
    CHECK(max_abs_diff(fused.dk, ref.dk) < 1e-11);
    CHECK(max_abs_diff(fused.dv, ref.dv) < 1e-11);
}

TEST_CASE("causal_attention: future keys change nothing and get exactly zero gradient", "[attention]") {
    const int64_t B = 2, NH = 2, T = 7, hs = 4, t = 4;
    Inputs in = make_inputs(B, NH, T, hs, 40);
    Tensor before = causal_attention(in.q, in.k, in.v, 0.5, in.bias).detach();
    // Change k, v and the bias at key t (and beyond): rows before t must not change, not even in the last bit.
    Inputs changed = make_inputs(B, NH, T, hs, 40);
    for (int64_t bh = 0; bh < B * NH; ++bh)
        for (int64_t j = t; j < T; ++j)
            for (int64_t d = 0; d < hs; ++d) {
                changed.k.data()[(bh * T + j) * hs + d] += 3;
                changed.v.data()[(bh * T + j) * hs + d] -= 5;
            }
    for (int64_t h = 0; h < NH; ++h)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = i + 1; j < T; ++j) changed.bias.data()[(h * T + i) * T + j] = 1e300;  // never read
    Tensor after = causal_attention(changed.q, changed.k, changed.v, 0.5, changed.bias);
    for (int64_t bh = 0; bh < B * NH; ++bh)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t d = 0; d < hs; ++d) {
                int64_t e = (bh * T + i) * hs + d;
                if (i < t) CHECK(after.data()[e] == before.data()[e]);
                else CHECK(after.data()[e] != before.data()[e]);
            }
    // A loss on rows before t: keys and values at t and later, and future bias entries, get exactly 0.
    Tensor out = causal_attention(in.q, in.k, in.v, 0.5, in.bias);
    sum(slice(out, 2, 0, t) * slice(out, 2, 0, t)).backward();
    for (int64_t bh = 0; bh < B * NH; ++bh)
        for (int64_t j = 0; j < T; ++j)
            for (int64_t d = 0; d < hs; ++d) {
                int64_t e = (bh * T + j) * hs + d;
                if (j >= t) {
                    CHECK(in.k.grad().data()[e] == 0.0);
                    CHECK(in.v.grad().data()[e] == 0.0);
                    CHECK(in.q.grad().data()[e] == 0.0);
                } else {
                    CHECK(in.v.grad().data()[e] != 0.0);
                }
            }
    for (int64_t h = 0; h < NH; ++h)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = i + 1; j < T; ++j) CHECK(in.bias.grad().data()[(h * T + i) * T + j] == 0.0);
}

TEST_CASE("causal_attention dropout: gradient check with a fixed seed", "[attention][grad][dropout]") {
    Inputs in = make_inputs(2, 2, 5, 4, 50);
    Rng rng(7);
    expect_gradients([&](auto& x) {
        rng = Rng(7);  // the same mask at every evaluation
        return causal_attention(x[0], x[1], x[2], 0.5, x[3], 0.3, &rng, true);
    }, {in.q, in.k, in.v, in.bias});
}

TEST_CASE("causal_attention dropout: semantics of dropout(softmax(...)), and eval or p = 0 draw nothing",
          "[attention][dropout]") {
    // With hs = T and v = the identity in every head, out[i][j] is the dropped probability P[i][j] Z[i][j].
    const int64_t B = 4, NH = 3, T = 16;
    const real p = 0.25;
    Inputs in = make_inputs(B, NH, T, T, 60);
    Tensor eye = Tensor::zeros({B, NH, T, T});
    for (int64_t bh = 0; bh < B * NH; ++bh)
        for (int64_t i = 0; i < T; ++i) eye.data()[(bh * T + i) * T + i] = 1;
    Tensor probs = softmax(causal_mask(matmul(in.q, transpose(in.k)) * 0.3 + in.bias));
    Rng rng(11);
    uint64_t state = rng.state;
    Tensor dropped = causal_attention(in.q, in.k, eye, 0.3, in.bias, p, &rng, true);
    CHECK(rng.state != state);
    Rng one_draw(11);
    one_draw.next_u64();
    CHECK(rng.state == one_draw.state);  // exactly one number drawn, whatever the shapes
    int64_t kept = 0, visible = 0;
    for (int64_t e = 0; e < probs.numel(); ++e) {
        int64_t i = (e / T) % T, j = e % T;
        if (j > i) {
            CHECK(dropped.data()[e] == 0.0);
            continue;
        }
        ++visible;
        double y = dropped.data()[e], expect = probs.data()[e] / (1 - p);
        if (y != 0) {
            ++kept;
            CHECK(std::fabs(y - expect) < 1e-12);
        }
    }
    double kept_fraction = (double)kept / (double)visible;  // 816 visible entries: sd of the fraction ~0.015
    CHECK(kept_fraction > 0.75 - 0.06);
    CHECK(kept_fraction < 0.75 + 0.06);

    // Another seed, another mask; the same seed, the same mask.
    Rng again(11), other(12);
    CHECK(max_abs_diff(causal_attention(in.q, in.k, eye, 0.3, in.bias, p, &again, true), dropped) == 0.0);
    CHECK(max_abs_diff(causal_attention(in.q, in.k, eye, 0.3, in.bias, p, &other, true), dropped) > 0.0);

    // Evaluation mode, or p = 0: exactly the op without dropout, and the Rng is left alone.
    Tensor plain = causal_attention(in.q, in.k, in.v, 0.3, in.bias);
    Rng untouched(13);
    CHECK(max_abs_diff(causal_attention(in.q, in.k, in.v, 0.3, in.bias, p, &untouched, false), plain) == 0.0);
    CHECK(max_abs_diff(causal_attention(in.q, in.k, in.v, 0.3, in.bias, 0, &untouched, true), plain) == 0.0);
    CHECK(max_abs_diff(causal_attention(in.q, in.k, in.v, 0.3, in.bias, p, nullptr, false), plain) == 0.0);
    CHECK(untouched.state == Rng(13).state);
}

TEST_CASE("causal_attention: shape errors name the op and the shapes", "[attention][errors]") {
    using Catch::Matchers::Contains;
    Inputs in = make_inputs(2, 2, 5, 4, 70);
    Tensor short_k = Tensor::zeros({2, 2, 4, 4});
    REQUIRE_THROWS_WITH(causal_attention(in.q, short_k, in.v, 1), Contains("causal_attention") &&
                                                                      Contains("[2, 2, 5, 4]") &&
                                                                      Contains("[2, 2, 4, 4]"));
    REQUIRE_THROWS_WITH(causal_attention(reshape(in.q, {4, 5, 4}), in.k, in.v, 1), Contains("(B, NH, T, hs)"));
    REQUIRE_THROWS_WITH(causal_attention(in.q, in.k, in.v, 1, Tensor::zeros({5, 5})), Contains("[5, 5]"));
    REQUIRE_THROWS_WITH(causal_attention(in.q, in.k, in.v, 1, Tensor(), 1.0, nullptr, true), Contains("[0, 1)"));
    REQUIRE_THROWS_WITH(causal_attention(in.q, in.k, in.v, 1, Tensor(), 0.1, nullptr, true), Contains("Rng"));
}

// ---------------------------------------------------------------------------------------------------
// causal_attention_qkv: straight from the projection (B, T, 3C)

namespace {

// What the model did before: split qkv, heads to (B, NH, T, hs), attention, heads side by side again.
Tensor split_heads_path(const Tensor& qkv, int64_t NH, real scale, const Tensor& bias, real p = 0, Rng* rng = nullptr,
                        bool training = false) {
    int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, hs = C / NH;
    std::vector<Tensor> parts = split(qkv, {C, C, C}, -1);
    auto heads = [&](const Tensor& t) { return permute(reshape(t, {B, T, NH, hs}), {0, 2, 1, 3}); };
    Tensor y = causal_attention(heads(parts[0]), heads(parts[1]), heads(parts[2]), scale, bias, p, rng, training);
    return reshape(permute(y, {0, 2, 1, 3}), {B, T, C});
}

}  // namespace

TEST_CASE("causal_attention_qkv: gradient checks, and equal to split + heads + causal_attention", "[attention][grad]") {
    const int64_t shapes[][3] = {{2, 5, 2}, {1, 7, 3}, {2, 70, 2}};  // B, T, NH (T = 70: two key blocks)
    for (const auto& s : shapes) {
        const int64_t B = s[0], T = s[1], NH = s[2], C = NH * 4;
        INFO("B " << B << " T " << T << " NH " << NH);
        Tensor qkv = normal_param({B, T, 3 * C}, 60 + T), bias = normal_param({NH, T, T}, 61, 0.5);
        if (T < 20) {  // the finite differences of every element: small shapes only
            expect_gradients([&](auto& x) { return causal_attention_qkv(x[0], NH, 0.5); }, {qkv});
            expect_gradients([&](auto& x) { return causal_attention_qkv(x[0], NH, 0.5, x[1]); }, {qkv, bias});
        }
        for (bool dropout : {false, true}) {
            Rng w_rng(3);
            Tensor w = Tensor::randn({B, T, C}, w_rng);
            auto grads_of = [&](const Tensor& out) {
                qkv.zero_grad(), bias.zero_grad();
                sum(out * w).backward();
                return std::make_pair(qkv.grad().clone(), bias.grad().clone());
            };
            Rng r1(11), r2(11);  // the same seed: the same dropout bits
            Tensor a = causal_attention_qkv(qkv, NH, 0.5, bias, dropout ? 0.3 : 0, &r1, dropout);
            auto [ga, gba] = grads_of(a);
            Tensor b = split_heads_path(qkv, NH, 0.5, bias, dropout ? 0.3 : 0, &r2, dropout);
            auto [gb, gbb] = grads_of(b);
            CHECK(max_abs_diff(a.detach(), b.detach()) < 1e-13);
            CHECK(max_abs_diff(ga, gb) < 1e-13);
            CHECK(max_abs_diff(gba, gbb) < 1e-13);
        }
    }
    CHECK_THROWS_WITH(causal_attention_qkv(normal_param({2, 5, 13}, 1), 2, 0.5),
                      Catch::Matchers::Contains("qkv must be (B, T, 3C) with C a multiple of 2 heads, got [2, 5, 13]"));
}
