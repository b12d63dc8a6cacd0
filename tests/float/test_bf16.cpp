// bf16 mixed precision: the rounding (to nearest and stochastic), the round_bf16 op, AdamW with bf16
// parameters, and a GPT trained in bf16 against the same GPT in fp32.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "../../autograd/bf16.h"
#include "../../autograd/ops.h"
#include "../../nn/gpt.h"
#include "../../optim/optim.h"

using namespace ag;

namespace {

// The nearest bf16 to the float with bits u, found the slow way: compare the distances to the two
// bf16 numbers around it, in double (which holds both differences exactly); a tie goes to the even one.
uint16_t nearest_bf16_slowly(uint32_t u) {
    const uint32_t down = u & 0xffff0000u;
    const double x = (double)bits_float(u), lo = (double)bits_float(down);
    if (down == u) return (uint16_t)(u >> 16);
    // the neighbour away from zero; past the largest finite bf16 it is Inf, which IEEE rounding
    // reaches from halfway between the largest finite number and 2^128
    const uint32_t up = down + 0x10000u;
    const double hi = (up & 0x7fffffffu) == 0x7f800000u ? std::copysign(std::ldexp(1.0, 128), x) : (double)bits_float(up);
    const double d_lo = std::fabs(x - lo), d_hi = std::fabs(hi - x);
    if (d_lo < d_hi) return (uint16_t)(down >> 16);
    if (d_hi < d_lo) return (uint16_t)(up >> 16);
    return ((down >> 16) & 1u) ? (uint16_t)(up >> 16) : (uint16_t)(down >> 16);
}

bool is_nan_bits(uint16_t b) { return (b & 0x7fffu) > 0x7f80u; }

}  // namespace

TEST_CASE("bf16: every one of the 65,536 bit patterns widens and narrows back to itself", "[bf16]") {
    for (uint32_t b = 0; b < 65536; ++b) {
        const float x = bf16_float((uint16_t)b);
        CHECK(float_bits(x) == b << 16);  // widening is exact: the 16 bits, then zeros
        const uint16_t back = bf16_bits(x);
        if (is_nan_bits((uint16_t)b)) {
            INFO("NaN pattern " << b);
            CHECK(is_nan_bits(back));                   // NaN stays NaN (made quiet) ...
            CHECK((back & 0x8000u) == (b & 0x8000u));   // ... with its sign
            CHECK((back & 0x0040u) != 0);
        } else {
            CHECK(back == b);
        }
        CHECK(is_bf16(x));
    }
}

TEST_CASE("bf16: narrowing rounds to nearest, ties to even, over every low half and a sweep of floats", "[bf16]") {
    // every 16-bit tail below a few kept halves (tiny subnormals, 1.0, the largest finite, negatives) ...
    for (uint32_t top : {0x0000u, 0x0001u, 0x0080u, 0x3f80u, 0x3f81u, 0x7f7eu, 0x7f7fu, 0x8000u, 0xbf80u, 0xff7fu})
        for (uint32_t low = 0; low < 65536; ++low) {
            const uint32_t u = top << 16 | low;
            INFO("bits " << std::hex << u);
            REQUIRE(bf16_bits(bits_float(u)) == nearest_bf16_slowly(u));
        }
    // ... and one float in every 9,973 of all 2^32, NaNs left out
    for (uint64_t u = 0; u < (1ull << 32); u += 9973) {
        if (std::isnan(bits_float((uint32_t)u))) continue;
        INFO("bits " << std::hex << u);
        REQUIRE(bf16_bits(bits_float((uint32_t)u)) == nearest_bf16_slowly((uint32_t)u));
    }
}

TEST_CASE("bf16: NaN, Inf, the largest finite number, overflow and subnormals", "[bf16]") {
    // the classic failures of (u + 0x7fff + lsb) >> 16 alone: a NaN that carries into +Inf or -0
    CHECK(is_nan_bits(bf16_bits(bits_float(0x7f800001u))));
    CHECK(is_nan_bits(bf16_bits(bits_float(0x7fffffffu))));
    CHECK(is_nan_bits(bf16_bits(bits_float(0xffffffffu))));
    CHECK(bf16_bits(bits_float(0xffffffffu)) >> 15 == 1);
    CHECK(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
    CHECK(bf16_bits(std::numeric_limits<float>::infinity()) == 0x7f80u);
    CHECK(bf16_bits(-std::numeric_limits<float>::infinity()) == 0xff80u);
    CHECK(bf16_bits(bits_float(0x7f7f0000u)) == 0x7f7fu);  // the largest finite bf16, 3.3895e38, stays
    CHECK(bf16_bits(bits_float(0x7f7f7fffu)) == 0x7f7fu);  // below halfway to 2^128: down to it
    CHECK(bf16_bits(bits_float(0x7f7f8000u)) == 0x7f80u);  // halfway, its last bit odd: up, to Inf
    CHECK(bf16_bits(std::numeric_limits<float>::max()) == 0x7f80u);
    CHECK(bf16_bits(-std::numeric_limits<float>::max()) == 0xff80u);
    CHECK(bf16_bits(bits_float(0x00000001u)) == 0x0000u);  // the smallest float subnormal: to +0
    CHECK(bf16_bits(bits_float(0x80000001u)) == 0x8000u);  // and -0 keeps its sign
    CHECK(bf16_bits(bits_float(0x00008000u)) == 0x0000u);  // a tie, to the even 0
    CHECK(bf16_bits(bits_float(0x00018000u)) == 0x0002u);  // a tie, to the even 2
    CHECK(bf16_bits(bits_float(0x00008001u)) == 0x0001u);  // the smallest bf16 subnormal, 9.2e-41
    CHECK(bf16_bits(bits_float(0x007fffffu)) == 0x0080u);  // the largest subnormal rounds up to the smallest normal
    CHECK(bf16_bits(1.0f + 0x1p-8f) == 0x3f80u);           // halfway between 1 and 1 + 2^-7: to 1 (even)
    CHECK(bf16_bits(1.0f + 0x3p-8f) == 0x3f82u);           // halfway between 1 + 2^-7 and 1 + 2^-6: up (even)
}

TEST_CASE("bf16: a double rounds directly, not through float (no double rounding)", "[bf16]") {
    // 1 + 2^-8 + 2^-40 is above the tie between 1 and 1 + 2^-7; as a float it IS the tie, which goes to 1
    CHECK(round_bf16(1.0 + 0x1p-8 + 0x1p-40) == 1.0 + 0x1p-7);
    CHECK(round_bf16(1.0 + 0x1p-8 - 0x1p-40) == 1.0);
    CHECK(round_bf16(-(1.0 + 0x1p-8 + 0x1p-40)) == -(1.0 + 0x1p-7));
    CHECK(round_bf16(1.0 + 0x1p-8) == 1.0);
    CHECK(std::isinf(round_bf16(1e39)));
    CHECK(std::isnan(round_bf16(std::nan(""))));
    for (uint32_t u = 0; u < 0x7f800000u; u += 104729)  // a float's double rounds as the float does
        CHECK(round_bf16((double)bits_float(u)) == (double)round_bf16(bits_float(u)));
}

TEST_CASE("bf16: arrays round like single values, on 1 thread and on several", "[bf16]") {
    const int64_t n = (1 << 17) + 37;  // over the threading threshold, with a tail
    std::vector<real> x(n), y(n), z(n);
    Rng rng(3);
    for (auto& v : x) v = (real)(rng.normal() * std::pow(10.0, rng.uniform() * 8 - 4));
    x[5] = std::numeric_limits<real>::quiet_NaN();
    x[6] = -std::numeric_limits<real>::infinity();
    round_bf16_into(x.data(), y.data(), n);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    round_bf16_into(x.data(), z.data(), n);
    omp_set_num_threads(threads);
    for (int64_t i = 0; i < n; ++i) {
        INFO(i);
        REQUIRE(float_bits(y[i]) == float_bits(z[i]));
        if (!std::isnan(x[i])) REQUIRE(y[i] == round_bf16(x[i]));
    }
    CHECK(std::isnan(y[5]));
    round_bf16_inplace(x.data(), n);
    CHECK(std::memcmp(x.data(), y.data(), n * sizeof(real)) == 0);
}

TEST_CASE("bf16: stochastic rounding is exactly unbiased over all 65,536 random values", "[bf16]") {
    const float values[] = {1.0f + 0x1p-12f, 0.1f, -0.1f, 3.14159265f, -2.5e-3f, 1e-39f, -7.3e-40f, 6.1e37f,
                            0x1.fffffep127f, 1.0f + 0x1p-8f, 1.0f - 0x1p-24f};
    for (float x : values) {
        INFO("x = " << x);
        const uint32_t down = float_bits(x) & 0xffff0000u;
        double sum = 0;
        int64_t ups = 0;
        for (uint32_t r = 0; r < 65536; ++r) {
            const float y = round_bf16_stochastic(x, r | (r << 16));  // the high bits do not matter
            const uint32_t b = float_bits(y);
            REQUIRE((b == down || b == down + 0x10000u));  // only ever one of the two neighbours
            ups += b != down;
            sum += (double)y;
        }
        CHECK(ups == (int64_t)(float_bits(x) & 0xffffu));  // up with probability (low 16 bits) / 65536
        if (std::isfinite(bits_float(down + 0x10000u))) CHECK(sum == 65536.0 * (double)x);  // mean exactly x
    }
    // exact values never move; NaN and Inf stay
    for (float x : {0.0f, -0.0f, 1.0f, -0.75f, 0x1p-130f, 3.3895314e38f}) {
        for (uint32_t r = 0; r < 65536; r += 7) REQUIRE(float_bits(round_bf16_stochastic(x, r)) == float_bits(x));
    }
    for (uint32_t r = 0; r < 65536; r += 13) {
        REQUIRE(std::isnan(round_bf16_stochastic(bits_float(0x7f800001u), r)));
        REQUIRE(round_bf16_stochastic(std::numeric_limits<float>::infinity(), r) == std::numeric_limits<float>::infinity());
    }
}

TEST_CASE("bf16: the stochastic-rounding generator is keyed by seed, tensor, step and element", "[bf16]") {
    const uint64_t key = sr_key(1337, 3, 10);
    CHECK(key == sr_key(1337, 3, 10));
    CHECK(key != sr_key(1338, 3, 10));
    CHECK(key != sr_key(1337, 4, 10));
    CHECK(key != sr_key(1337, 3, 11));
    // the low 16 bits of consecutive elements look uniform: each of 16 bins gets about 1/16
    std::vector<int> bins(16, 0);
    const int n = 1 << 16;
    for (int i = 0; i < n; ++i) ++bins[(sr_random(key, (uint64_t)i) & 0xffffu) >> 12];
    for (int b : bins) CHECK(std::abs(b - n / 16) < 5 * std::sqrt(n / 16.0));
}

TEST_CASE("bf16: round_bf16 rounds forward, and rounds the gradient backward", "[bf16][ops]") {
    Tensor x = Tensor::from({4}, {1.0f + 0x1p-9f, 0.3f, -2.0f, 1e-3f}).requires_grad_();
    Tensor y = round_bf16(x);
    for (int i = 0; i < 4; ++i) CHECK(y.data()[i] == round_bf16(x.data()[i]));
    Tensor w = Tensor::from({4}, {0.1f, 1.0f + 0x1p-10f, -3.3f, 7.0f});
    sum(y * w).backward();  // dL/dy = w, not bf16 numbers
    for (int i = 0; i < 4; ++i) CHECK(x.grad().data()[i] == round_bf16(w.data()[i]));
    // a second use adds another rounded gradient
    sum(round_bf16(x) * w).backward();
    for (int i = 0; i < 4; ++i) CHECK(x.grad().data()[i] == 2 * round_bf16(w.data()[i]));
}

TEST_CASE("bf16: matmul and linear with bf16 inputs equal fp32 on bf16 operands", "[bf16][ops]") {
    Rng rng(7);
    Tensor x = round_bf16(Tensor::randn({3, 5, 24}, rng)).detach().requires_grad_();
    Tensor W = round_bf16(Tensor::randn({40, 24}, rng)).detach().requires_grad_();
    Tensor b = Tensor::randn({40}, rng).requires_grad_();
    Tensor up = Tensor::randn({3, 5, 40}, rng);
    Tensor y16 = linear(x, W, b, Dtype::bf16), y32 = linear(x, W, b);
    for (int64_t i = 0; i < y32.numel(); ++i) REQUIRE(y16.data()[i] == Approx(y32.data()[i]).margin(1e-5));
    sum(y16 * round_bf16(up)).backward();
    std::vector<real> dx16(x.grad().data(), x.grad().data() + x.numel()), dW16(W.grad().data(), W.grad().data() + W.numel());
    x.zero_grad(), W.zero_grad();
    sum(y32 * round_bf16(up)).backward();
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(dx16[i] == Approx(x.grad().data()[i]).margin(1e-5));
    for (int64_t i = 0; i < W.numel(); ++i) REQUIRE(dW16[i] == Approx(W.grad().data()[i]).margin(1e-5));
    // operands that are not bf16 numbers are rounded first
    Tensor a = Tensor::randn({4, 6}, rng), c = Tensor::randn({6, 3}, rng);
    Tensor p16 = matmul(a, c, Dtype::bf16), p32 = matmul(round_bf16(a), round_bf16(c));
    for (int64_t i = 0; i < p32.numel(); ++i) REQUIRE(p16.data()[i] == Approx(p32.data()[i]).margin(1e-6));
}

// ---------------------------------------------------------------------------------------------------
// AdamW with bf16 parameters

namespace {

// One parameter of n values with a gradient, and an AdamW over it.
struct OneParam {
    Tensor p;
    std::vector<optim::ParamGroup> groups;
    OneParam(int64_t n, uint64_t seed) {
        Rng rng(seed);
        p = round_bf16(Tensor::randn({n / 16, 16}, rng, 0.02)).detach().requires_grad_();
        real* g = p.grad_buffer();
        for (int64_t i = 0; i < n; ++i) g[i] = round_bf16((real)(rng.normal() * 1e-2));
        groups = optim::param_groups({{"w", p}}, 0.1);
    }
    std::vector<real> values() const { return std::vector<real>(p.data(), p.data() + p.numel()); }
};

optim::AdamWConfig bf16_config(bool master, bool stochastic) {
    optim::AdamWConfig c;
    c.bf16_params = true, c.master_weights = master, c.stochastic_rounding = stochastic, c.rounding_seed = 42;
    return c;
}

}  // namespace

// How many of a's values are not b's rounded to bf16.
static int64_t not_rounded(const OneParam& a, const OneParam& b) {
    int64_t bad = 0;
    for (int64_t i = 0; i < a.p.numel(); ++i) bad += a.p.data()[i] != round_bf16(b.p.data()[i]);
    return bad;
}

TEST_CASE("bf16 AdamW: with master weights, the parameter is the fp32 AdamW's weight rounded", "[bf16][optim]") {
    // 4096 values, and a tensor past the caches (over 8 MB, not a whole number of AdamW's chunks),
    // whose rounded values are written by streaming stores
    for (int64_t n : {int64_t(4096), int64_t((8 << 20) / 4 + 80)}) {
        OneParam in_bf16(n, 3), in_fp32(n, 3);
        optim::AdamW bf(in_bf16.groups, bf16_config(true, true)), fp(in_fp32.groups);
        for (int step = 0; step < 3; ++step) {
            bf.step(1e-3), fp.step(1e-3);
            INFO("n " << n << ", step " << step);
            CHECK(not_rounded(in_bf16, in_fp32) == 0);
        }
    }
    OneParam a(4096, 1), b(4096, 1);
    optim::AdamW bf(a.groups, bf16_config(true, true));
    // the same update on fp32 weights that start at the same values
    optim::AdamW fp(b.groups);
    for (int step = 0; step < 5; ++step) {
        bf.step(1e-3);
        fp.step(1e-3);
        REQUIRE(not_rounded(a, b) == 0);
    }
    // the master copy is in the saved state (m, v, master), so a resumed run goes on with it
    std::ostringstream state;
    bf.save_state(state);
    OneParam c(4096, 1);
    optim::AdamW again(c.groups, bf16_config(true, true));
    std::istringstream in(state.str());
    again.load_state(in);
    std::copy(a.p.data(), a.p.data() + a.p.numel(), c.p.data());
    bf.step(1e-3), again.step(1e-3), fp.step(1e-3);
    CHECK(a.values() == c.values());
    CHECK(not_rounded(a, b) == 0);
    // a state of another precision is refused by name
    optim::AdamW plain(OneParam(4096, 1).groups);
    std::istringstream in2(state.str());
    CHECK_THROWS_WITH(plain.load_state(in2), Catch::Matchers::Contains("'adamw bf16 master'") &&
                                                 Catch::Matchers::Contains("'adamw'"));
}

TEST_CASE("bf16 AdamW: without master weights every parameter stays a bf16 number", "[bf16][optim]") {
    for (bool stochastic : {true, false}) {
        OneParam a(4096, 2);
        optim::AdamW opt(a.groups, bf16_config(false, stochastic));
        for (int step = 0; step < 5; ++step) {
            opt.step(1e-3);
            for (int64_t i = 0; i < a.p.numel(); ++i) REQUIRE(is_bf16(a.p.data()[i]));
        }
    }
}

TEST_CASE("bf16 AdamW: nearest rounding cancels small updates, stochastic rounding keeps them on average",
          "[bf16][optim]") {
    // weights near 1, where a bf16 step is 2^-7 (the next one down 2^-8); an update of lr = 1e-4 per
    // step is far below half of either: rounding to nearest undoes it every time
    const int64_t n = 1 << 16;
    auto run = [&](bool stochastic) {
        Tensor p = Tensor::full({n / 16, 16}, 1.0f).requires_grad_();
        real* g = p.grad_buffer();
        for (int64_t i = 0; i < n; ++i) g[i] = 1;  // Adam's update is then about lr each step
        optim::AdamW opt(optim::param_groups({{"b", p}}, 0.0), bf16_config(false, stochastic));
        for (int s = 0; s < 100; ++s) opt.step(1e-4);
        double mean = 0;
        for (int64_t i = 0; i < n; ++i) mean += (double)p.data()[i] / (double)n;
        return mean;
    };
    CHECK(run(false) == 1.0);                          // 100 steps of 1e-4: nothing moved
    CHECK(run(true) == Approx(1.0 - 100 * 1e-4).margin(2e-4));  // moved by 0.01 on average
}

TEST_CASE("bf16 AdamW: stochastic rounding gives the same bits on 1 thread and on several", "[bf16][optim]") {
    const int64_t n = 3 * ag::kThreadsMin + 48;  // shared between threads, with a ragged end
    OneParam a(n, 3), b(n, 3);
    optim::AdamW oa(a.groups, bf16_config(false, true)), ob(b.groups, bf16_config(false, true));
    const int threads = omp_get_max_threads();
    for (int step = 0; step < 3; ++step) {
        omp_set_num_threads(1);
        oa.step(1e-3);
        omp_set_num_threads(std::max(2, threads));
        ob.step(1e-3);
    }
    omp_set_num_threads(threads);
    CHECK(a.values() == b.values());
}

// ---------------------------------------------------------------------------------------------------
// A GPT in bf16

namespace {

nn::GPTConfig small_config() {
    nn::GPTConfig c;
    c.vocab_size = 32, c.max_seq_len = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 32;
    return c;
}

// A batch with structure to learn: token t + 1 follows token t.
void batch(int step, std::vector<int>& ids, std::vector<int>& targets) {
    ids.resize(4 * 16), targets.resize(4 * 16);
    for (int i = 0; i < 4 * 16; ++i) {
        ids[i] = (i * 7 + step * 3 + i / 16) % 32;
        targets[i] = (ids[i] + 1) % 32;
    }
}

// The losses of `steps` steps of AdamW on model, in its dtype.
std::vector<double> train(nn::GPT& model, int steps, bool master = true) {
    optim::AdamWConfig c;
    c.bf16_params = model.dtype() == Dtype::bf16, c.master_weights = master, c.rounding_seed = 5;
    ag::NamedTensors params = model.parameters();
    optim::AdamW opt(optim::param_groups(params), c);
    std::vector<double> losses;
    std::vector<int> ids, targets;
    for (int s = 0; s < steps; ++s) {
        batch(s, ids, targets);
        opt.zero_grad();
        Tensor loss = model.forward(ids, 4, 16, targets).loss;
        loss.backward();
        double norm = model.dtype() == Dtype::bf16 ? optim::round_grads_to_bf16(params) : optim::grad_norm(params);
        REQUIRE(norm == optim::grad_norm(params));  // (rounding's pass is the norm's)
        losses.push_back(loss.item());
        opt.step(3e-3, optim::clip_factor(norm, 1.0));
        if (model.dtype() == Dtype::bf16)
            for (const auto& [name, p] : params)
                for (int64_t i = 0; i < p.numel(); ++i) {
                    INFO(name << " element " << i << " after step " << s);
                    REQUIRE(is_bf16(p.data()[i]));
                }
    }
    return losses;
}

}  // namespace

TEST_CASE("bf16 GPT: parameters, activations, logits and gradients are bf16 numbers", "[bf16][nn]") {
    for (nn::PosScheme pos : {nn::PosScheme::learned, nn::PosScheme::rope, nn::PosScheme::relative, nn::PosScheme::sinusoidal}) {
        nn::GPTConfig c = small_config();
        c.pos = pos;
        c.norm = pos == nn::PosScheme::relative ? nn::NormPlacement::sandwich : nn::NormPlacement::pre;
        c.tie_weights = pos != nn::PosScheme::rope;
        c.mlp_dropout = 0.1;
        nn::GPT model(c, 3);
        model.set_dtype(Dtype::bf16);
        for (const auto& [name, p] : model.parameters())
            for (int64_t i = 0; i < p.numel(); ++i) REQUIRE(is_bf16(p.data()[i]));
        std::vector<int> ids, targets;
        batch(0, ids, targets);
        nn::GPTOutput out = model.forward(ids, 4, 16, targets);
        for (int64_t i = 0; i < out.logits.numel(); ++i) REQUIRE(is_bf16(out.logits.data()[i]));
        out.loss.backward();
        ag::NamedTensors params = model.parameters();
        optim::round_grads_to_bf16(params);
        for (const auto& [name, p] : params) {
            INFO(name);
            REQUIRE(p.grad().defined());
            for (int64_t i = 0; i < p.numel(); ++i) REQUIRE(is_bf16(p.grad().data()[i]));
        }
    }
}

TEST_CASE("bf16 GPT: training tracks the fp32 run of the same model and data", "[bf16][nn]") {
    // bf16 keeps 8 significant bits: each stored activation is off by up to 2^-9 of itself, so the
    // loss of one forward differs from fp32's by a few thousandths of a nat, and the weights drift
    // apart a little each step. llm.c's own test of its bf16 GPU trainer accepts a loss within 0.05 of
    // fp32 over its first 10 steps; here the two runs stay within 0.03 over 30 steps, while the loss
    // itself falls by more than 1 nat (so a run that did not train in bf16 would fail).
    nn::GPT a(small_config(), 11), b(small_config(), 11);
    b.set_dtype(Dtype::bf16);
    std::vector<double> fp32 = train(a, 30), bf16 = train(b, 30), no_master;
    for (size_t s = 0; s < fp32.size(); ++s) {
        INFO("step " << s << ": fp32 " << fp32[s] << ", bf16 " << bf16[s]);
        CHECK(std::fabs(fp32[s] - bf16[s]) < 0.03);
    }
    CHECK(fp32.back() < fp32.front() - 1.0);
    CHECK(bf16.back() < bf16.front() - 1.0);
    CHECK(bf16 != fp32);  // it did round
    // without the master copy (stochastic rounding) it still learns, every weight a bf16 number
    nn::GPT c(small_config(), 11);
    c.set_dtype(Dtype::bf16);
    no_master = train(c, 30, false);
    CHECK(no_master.back() < no_master.front() - 1.0);
}

TEST_CASE("bf16 GPT: gradients accumulate in bf16 over micro-batches", "[bf16][nn]") {
    // after each micro-batch the gradient is the bf16 nearest to (the sum so far + this micro-batch's
    // gradient), up to the order of fp32 additions inside one backward: within one bf16 step of the
    // terms' size
    nn::GPT model(small_config(), 4), alone(small_config(), 4);
    model.set_dtype(Dtype::bf16);
    alone.set_dtype(Dtype::bf16);
    ag::NamedTensors params = model.parameters(), fresh = alone.parameters();
    std::vector<int> ids, targets;
    std::vector<std::vector<real>> sum(params.size());
    for (size_t k = 0; k < params.size(); ++k) sum[k].assign(params[k].second.numel(), 0);
    for (int micro = 0; micro < 3; ++micro) {
        batch(micro, ids, targets);
        (model.forward(ids, 4, 16, targets).loss * (real)(1.0 / 3)).backward();
        optim::round_grads_to_bf16(params);
        alone.zero_grad();  // the same micro-batch's gradient on its own (the models are equal)
        (alone.forward(ids, 4, 16, targets).loss * (real)(1.0 / 3)).backward();
        optim::round_grads_to_bf16(fresh);
        for (size_t k = 0; k < params.size(); ++k) {
            INFO(params[k].first << ", micro-batch " << micro);
            const real* g = params[k].second.grad().data();
            const real* f = fresh[k].second.grad().data();
            for (int64_t i = 0; i < params[k].second.numel(); ++i) {
                REQUIRE(is_bf16(g[i]));
                const real expected = sum[k][(size_t)i] + f[i];
                const real scale = std::fabs(sum[k][(size_t)i]) + std::fabs(f[i]);  // (the two may cancel)
                REQUIRE(std::fabs(g[i] - expected) <= scale * 0x1p-7f);
                sum[k][(size_t)i] = g[i];
            }
        }
    }
}
