// The tuned tier against the reference tier (autograd/tiers.h), in float: every op with both, on shapes
// that reach each of the tuned version's paths (threads, streaming past the caches, tails, broadcasting,
// bf16 operands, a gradient written in place over its output's, a gradient added to one already there).
// The reference is what the double build's gradient checks prove right; these prove the fast tier equal
// to it, to float rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../../autograd/ops.h"
#include "../../nn/gpt.h"

using namespace ag;

static_assert(sizeof(real) == sizeof(float), "these tests check the float build");

namespace {

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// How the inputs reach the op: as leaves, as the outputs of another op (whose gradient buffer the fast
// tier may take over for the input's), and twice through the same graph (gradients add up).
enum class Feed { leaves, op_outputs, twice };

struct Result {
    std::vector<real> out;
    std::vector<std::vector<real>> grads;
};

std::vector<real> values(const Tensor& t) { return std::vector<real>(t.data(), t.data() + t.numel()); }

// Runs op on copies of `inputs` in the given tier: its output, and each input's gradient of
// sum(op(...) * R) for a fixed random R (a random projection: every output element counts differently).
Result run(Kernels tier, const std::vector<Tensor>& inputs, const Op& op, Feed feed) {
    set_kernels(tier);
    std::vector<Tensor> leaves, fed;
    for (const Tensor& x : inputs) {
        leaves.push_back(x.clone().requires_grad_());
        fed.push_back(feed == Feed::op_outputs ? mul(leaves.back(), real(1)) : leaves.back());
    }
    Result r;
    for (int pass = 0; pass < (feed == Feed::twice ? 2 : 1); ++pass) {
        Tensor y = op(fed);
        Rng rng(99);
        Tensor R = Tensor::randn(y.shape(), rng);
        sum(mul(y, R)).backward();
        r.out = values(y);
    }
    for (const Tensor& x : leaves) r.grads.push_back(x.grad().defined() ? values(x.grad()) : std::vector<real>());
    set_kernels(Kernels::fast);
    return r;
}

// Largest |a - b| over the largest |b| (and a floor, for all-zero tensors).
double relative_error(const std::vector<real>& a, const std::vector<real>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 1e-20;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::fabs((double)a[i] - b[i]));
        scale = std::max(scale, std::fabs((double)b[i]));
    }
    return diff / scale;
}

// How many of a's values differ from b's in any bit (-1 for different sizes): 0 means the same bits.
int64_t values_differing(const std::vector<real>& a, const std::vector<real>& b) {
    if (a.size() != b.size()) return -1;
    int64_t n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(real)) != 0;
    return n;
}

void check_tiers(const std::string& what, const std::vector<Tensor>& inputs, const Op& op, double tolerance = 2e-5) {
    for (Feed feed : {Feed::leaves, Feed::op_outputs, Feed::twice}) {
        INFO(what << (feed == Feed::leaves ? ", inputs as leaves" : feed == Feed::op_outputs ? ", inputs from an op" : ", twice"));
        Result ref = run(Kernels::reference, inputs, op, feed), fast = run(Kernels::fast, inputs, op, feed);
        CHECK(relative_error(fast.out, ref.out) <= tolerance);
        for (size_t i = 0; i < inputs.size(); ++i) {
            INFO("gradient of input " << i);
            CHECK(relative_error(fast.grads[i], ref.grads[i]) <= tolerance);
        }
    }
}

Tensor random(const Shape& shape, uint64_t seed, real stddev = 1) {
    Rng rng(seed);
    return Tensor::randn(shape, rng, stddev);
}

// Elements past which the fast tier streams its stores (8 MB of floats): a tensor this big takes that path.
constexpr int64_t kPastCaches = (8 << 20) / 4 + 1000;

}  // namespace

TEST_CASE("tiers: add, sub, mul, div, with and without broadcasting, small and past the caches", "[tiers]") {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{7, 13}, {7, 13}}, {{3, 5, 13}, {13}}, {{13}, {3, 5, 13}}, {{4, 6}, {1}}, {{300, 301}, {300, 301}},
        {{kPastCaches}, {kPastCaches}}};
    for (const auto& [sa, sb] : shapes) {
        Tensor a = random(sa, 1), b = add(random(sb, 2), real(3));  // b away from 0, for div
        check_tiers("add", {a, b}, [](auto& x) { return add(x[0], x[1]); });
        check_tiers("sub", {a, b}, [](auto& x) { return sub(x[0], x[1]); });
        check_tiers("mul", {a, b}, [](auto& x) { return mul(x[0], x[1]); });
        check_tiers("div", {a, b}, [](auto& x) { return div(x[0], x[1]); });
    }
}

TEST_CASE("tiers: gelu and round_bf16, a tail and past the caches", "[tiers]") {
    for (int64_t n : {int64_t(1), int64_t(1003), kPastCaches}) {
        Tensor x = random({n}, 3, 3);
        check_tiers("gelu", {x}, [](auto& x) { return gelu(x[0]); }, 1e-5);
        check_tiers("round_bf16", {x}, [](auto& x) { return round_bf16(x[0]); }, 0);
    }
}

TEST_CASE("tiers: matmul, batched, shared and threaded, in fp32 and bf16", "[tiers]") {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{37, 45}, {45, 29}}, {{3, 37, 45}, {3, 45, 29}}, {{2, 30, 40}, {40, 50}}, {{40, 30}, {2, 30, 50}},
        {{300, 400}, {400, 37}}};
    for (const auto& [sa, sb] : shapes)
        for (Dtype d : {Dtype::fp32, Dtype::bf16}) {
            Tensor a = random(sa, 4), b = random(sb, 5);
            check_tiers(d == Dtype::bf16 ? "matmul bf16" : "matmul", {a, b},
                        [d](auto& x) { return matmul(x[0], x[1], d); }, 1e-4);
        }
}

TEST_CASE("tiers: linear, with and without bias, few rows and many, in fp32 and bf16", "[tiers]") {
    struct Case {
        Shape x;
        int64_t N;
    };
    for (const Case& c : {Case{{5, 7, 33}, 29}, Case{{300, 200}, 400}, Case{{256, 64}, 512}})
        for (Dtype d : {Dtype::fp32, Dtype::bf16}) {
            Tensor x = random(c.x, 6), W = random({c.N, c.x.back()}, 7), b = random({c.N}, 8);
            check_tiers("linear with bias", {x, W, b}, [d](auto& v) { return linear(v[0], v[1], v[2], d); }, 1e-4);
            check_tiers("linear", {x, W}, [d](auto& v) { return linear(v[0], v[1], Tensor(), d); }, 1e-4);
        }
}

TEST_CASE("tiers: softmax, layernorm and cross_entropy, few rows, threaded rows and past the caches", "[tiers]") {
    for (const Shape& s : std::vector<Shape>{{7, 13}, {4, 3, 130}, {300, 200}, {2100, 1050}}) {
        const int64_t C = s.back(), rows = numel_of(s) / C;
        Tensor x = random(s, 9, 2), gain = random({C}, 10), bias = random({C}, 11);
        check_tiers("softmax", {x}, [](auto& v) { return softmax(v[0]); });
        check_tiers("layernorm", {x, gain, bias}, [](auto& v) { return layernorm(v[0], v[1], v[2]); });
        check_tiers("layernorm without bias", {x, gain}, [](auto& v) { return layernorm(v[0], v[1], Tensor()); });
        std::vector<int> targets(rows);
        for (int64_t r = 0; r < rows; ++r) targets[r] = r % 5 == 4 ? -1 : (int)(r * 7 % (C - 2));  // some ignored
        check_tiers("cross_entropy", {x}, [&](auto& v) { return cross_entropy(v[0], targets); });
        check_tiers("cross_entropy, 2 padding columns", {x},
                    [&](auto& v) { return cross_entropy(v[0], targets, -1, C - 2); });
        check_tiers("cross_entropy, scaled", {x}, [&](auto& v) { return mul(cross_entropy(v[0], targets), real(3)); });
    }
}

TEST_CASE("tiers: cross_entropy's second backward through the same graph", "[tiers]") {
    // The fast tier makes the gradient in its forward and uses it once; a second backward recomputes it.
    Tensor x = random({40, 70}, 12);
    std::vector<int> targets(40);
    for (int r = 0; r < 40; ++r) targets[r] = r % 70;
    std::vector<std::vector<real>> grads;
    for (Kernels tier : {Kernels::reference, Kernels::fast}) {
        set_kernels(tier);
        Tensor leaf = x.clone().requires_grad_();
        Tensor loss = cross_entropy(leaf, targets);
        loss.backward(true);
        loss.backward();
        grads.push_back(values(leaf.grad()));
    }
    set_kernels(Kernels::fast);
    CHECK(relative_error(grads[1], grads[0]) <= 2e-5);
}

TEST_CASE("tiers: causal attention, one and several key blocks and query tiles, bias, dropout", "[tiers]") {
    struct Case {
        int64_t B, NH, T, hs;
    };
    for (const Case& c : {Case{2, 3, 5, 4}, Case{2, 3, 70, 8}, Case{1, 2, 300, 4}}) {
        Tensor q = random({c.B, c.NH, c.T, c.hs}, 13), k = random({c.B, c.NH, c.T, c.hs}, 14),
               v = random({c.B, c.NH, c.T, c.hs}, 15), bias = random({c.NH, c.T, c.T}, 16);
        const real scale = 1 / std::sqrt((real)c.hs);
        check_tiers("causal_attention", {q, k, v}, [=](auto& x) { return causal_attention(x[0], x[1], x[2], scale); });
        check_tiers("causal_attention with a bias", {q, k, v, bias},
                    [=](auto& x) { return causal_attention(x[0], x[1], x[2], scale, x[3]); });
        check_tiers("causal_attention with dropout", {q, k, v}, [=](auto& x) {
            Rng rng(17);  // the same seed in both tiers: the same kept probabilities
            return causal_attention(x[0], x[1], x[2], scale, Tensor(), real(0.3), &rng, true);
        });
        Tensor qkv = random({c.B, c.T, 3 * c.NH * c.hs}, 18);
        check_tiers("causal_attention_qkv", {qkv, bias}, [=](auto& x) {
            Rng rng(19);
            return causal_attention_qkv(x[0], c.NH, scale, x[1], real(0.2), &rng, true);
        });
    }
}

// With bf16 operands, fed as a bf16 model feeds them: q, k, v and the output's gradient bf16 already
// (round_bf16 before and after the op). The tiers round the probabilities and dS where their float sums
// differ in the last bit, so now and then one element lands on the other side of a bf16 rounding
// boundary: a difference of one bf16 step (2^-8 relative) in one term of a sum.
TEST_CASE("tiers: causal attention with bf16 operands, one and several strips and key blocks, bias, dropout", "[tiers]") {
    struct Case {
        int64_t B, NH, T, hs;
    };
    const Dtype bf16 = Dtype::bf16;
    for (const Case& c : {Case{2, 3, 5, 4}, Case{2, 3, 70, 8}, Case{1, 2, 300, 16}}) {
        Tensor q = random({c.B, c.NH, c.T, c.hs}, 13), k = random({c.B, c.NH, c.T, c.hs}, 14),
               v = random({c.B, c.NH, c.T, c.hs}, 15), bias = random({c.NH, c.T, c.T}, 16);
        const real scale = 1 / std::sqrt((real)c.hs);
        auto r = [](const Tensor& x) { return round_bf16(x); };
        check_tiers("causal_attention bf16", {q, k, v}, [=](auto& x) {
            return r(causal_attention(r(x[0]), r(x[1]), r(x[2]), scale, Tensor(), 0, nullptr, false, bf16));
        }, 3e-3);
        check_tiers("causal_attention bf16 with a bias", {q, k, v, bias}, [=](auto& x) {
            return r(causal_attention(r(x[0]), r(x[1]), r(x[2]), scale, x[3], 0, nullptr, false, bf16));
        }, 3e-3);
        check_tiers("causal_attention bf16 with dropout", {q, k, v}, [=](auto& x) {
            Rng rng(17);
            return r(causal_attention(r(x[0]), r(x[1]), r(x[2]), scale, Tensor(), real(0.3), &rng, true, bf16));
        }, 3e-3);
        Tensor qkv = random({c.B, c.T, 3 * c.NH * c.hs}, 18);
        check_tiers("causal_attention_qkv bf16", {qkv, bias}, [=](auto& x) {
            Rng rng(19);
            return r(causal_attention_qkv(r(x[0]), c.NH, scale, x[1], real(0.2), &rng, true, bf16));
        }, 3e-3);
    }
}

// Where the bf16 rounding of the probabilities shows exactly: with q = k = 0 every score is 0, so query
// i's probabilities are 1/(i+1) each, and with v = 1 and a gradient of 1 reaching the output,
//   out_i = (i+1) round_bf16(1/(i+1)),   dv_j = sum_{i >= j} round_bf16(1/(i+1)) (each of hs columns)
// to float rounding of the sums, in both tiers. In fp32 out_i is 1.
TEST_CASE("tiers: causal attention with bf16 operands multiplies the probabilities as bf16", "[tiers]") {
    const int64_t T = 130, hs = 8;  // three strips of queries, three blocks of keys
    for (Kernels tier : {Kernels::reference, Kernels::fast}) {
        INFO((tier == Kernels::fast ? "fast tier" : "reference tier"));
        set_kernels(tier);
        Tensor q = Tensor::zeros({1, 1, T, hs}), k = Tensor::zeros({1, 1, T, hs});
        Tensor v = Tensor::full({1, 1, T, hs}, 1).requires_grad_();
        Tensor out = causal_attention(q, k, v, real(0.5), Tensor(), 0, nullptr, false, Dtype::bf16);
        sum(out).backward();
        Tensor out32 = causal_attention(q, k, v, real(0.5));
        double tail = 0;  // sum over i >= j of round_bf16(1 / (i + 1)), from j = T - 1 down
        for (int64_t j = T - 1; j >= 0; --j) {
            const double p = round_bf16(real(1) / real(j + 1));
            tail += p;
            for (int64_t d = 0; d < hs; ++d) {
                CHECK(out.data()[j * hs + d] == Approx((j + 1) * p).epsilon(2e-5));
                CHECK(v.grad().data()[j * hs + d] == Approx(tail).epsilon(2e-5));
                CHECK(out32.data()[j * hs + d] == Approx(1.0).epsilon(2e-5));
            }
        }
        set_kernels(Kernels::fast);
    }
}

// The same paths at the level a user sees (a second test of each, independent of the op-level ones):
// the whole GPT's loss and every parameter's gradient in the two tiers, with gradients accumulated over
// two micro-batches (linear's weight gradient added to one already there), logits past the caches (the
// cross-entropy's streamed path) and a sequence longer than one key block of the fused attention.
TEST_CASE("tiers: a whole GPT's gradients, accumulated over two micro-batches, logits past the caches", "[tiers][nn]") {
    nn::GPTConfig c;
    c.vocab_size = 16411;  // B * T * vocab floats: past the caches (and not a multiple of 16)
    c.max_seq_len = 80;    // past one key block of the fused attention
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 32;
    const int B = 2, T = 80;
    REQUIRE((int64_t)B * T * c.vocab_size > kPastCaches);
    std::vector<Result> tiers;
    for (Kernels tier : {Kernels::reference, Kernels::fast}) {
        set_kernels(tier);
        nn::GPT model(c, 5);
        Result r;
        for (int micro = 0; micro < 2; ++micro) {  // no zero_grad between: the second adds to the first
            std::vector<int> ids(B * T), targets(B * T);
            for (int i = 0; i < B * T; ++i)
                ids[i] = (i * 7919 + micro * 31) % c.vocab_size, targets[i] = (i * 104729 + micro) % c.vocab_size;
            Tensor loss = model.forward(ids, B, T, targets).loss;
            loss.backward();
            r.out.push_back(loss.item());
        }
        for (auto& p : model.parameters()) r.grads.push_back(values(p.second.grad()));
        tiers.push_back(r);
    }
    set_kernels(Kernels::fast);
    CHECK(relative_error(tiers[1].out, tiers[0].out) <= 2e-5);
    REQUIRE(tiers[1].grads.size() == tiers[0].grads.size());
    for (size_t k = 0; k < tiers[0].grads.size(); ++k) {
        INFO("parameter " << k);
        CHECK(relative_error(tiers[1].grads[k], tiers[0].grads[k]) <= 1e-4);
    }
}

// An op told to store its output in bf16 (`stored`, ops.h) is round_bf16 of the op, forward and
// backward. The reference tier is that composition (dispatch.cpp); the tuned tier rounds inside the op,
// and must give the same bits as its own op followed by its own round_bf16, on every path: a new
// gradient buffer and one already holding a gradient, the gradient written in place over dy's, rows
// past the caches, a broadcast operand, products in fp32 and in bf16. Across the tiers the two agree
// to float rounding, which a bf16 rounding can turn into one bf16 step (2^-8 of a value).
TEST_CASE("tiers: an op storing its output in bf16 is exactly round_bf16 of the op, in both tiers", "[tiers][bf16]") {
    struct Fused {
        std::string what;
        std::vector<Tensor> inputs;
        std::function<Tensor(const std::vector<Tensor>&, Dtype)> op;
    };
    const int64_t big = kPastCaches / 384 + 1;  // rows of 384: past the caches
    std::vector<Fused> ops = {
        {"add", {random({7, 13}, 1), random({7, 13}, 2)}, [](auto& v, Dtype s) { return add(v[0], v[1], s); }},
        {"add past the caches", {random({kPastCaches}, 1), random({kPastCaches}, 2)},
         [](auto& v, Dtype s) { return add(v[0], v[1], s); }},
        {"add, broadcast", {random({3, 5, 13}, 1), random({13}, 2)}, [](auto& v, Dtype s) { return add(v[0], v[1], s); }},
        {"gelu", {random({1003}, 3, 3)}, [](auto& v, Dtype s) { return gelu(v[0], s); }},
        {"gelu past the caches", {random({kPastCaches}, 3, 3)}, [](auto& v, Dtype s) { return gelu(v[0], s); }},
        {"layernorm", {random({37, 96}, 4), random({96}, 5), random({96}, 6)},
         [](auto& v, Dtype s) { return layernorm(v[0], v[1], v[2], 1e-5, s); }},
        {"layernorm past the caches", {random({big, 384}, 4), random({384}, 5), random({384}, 6)},
         [](auto& v, Dtype s) { return layernorm(v[0], v[1], v[2], 1e-5, s); }},
        {"layernorm without bias", {random({37, 96}, 4), random({96}, 5)},
         [](auto& v, Dtype s) { return layernorm(v[0], v[1], Tensor(), 1e-5, s); }},
    };
    for (Dtype inputs : {Dtype::fp32, Dtype::bf16}) {
        const std::string in = inputs == Dtype::bf16 ? " (bf16 products)" : " (fp32 products)";
        ops.push_back({"linear with bias" + in, {random({300, 200}, 6), random({400, 200}, 7), random({400}, 8)},
                       [inputs](auto& v, Dtype s) { return linear(v[0], v[1], v[2], inputs, s); }});
        ops.push_back({"linear" + in, {random({5, 7, 33}, 6), random({29, 33}, 7)},
                       [inputs](auto& v, Dtype s) { return linear(v[0], v[1], Tensor(), inputs, s); }});
    }
    for (const Fused& f : ops)
        for (Feed feed : {Feed::leaves, Feed::op_outputs, Feed::twice}) {
            INFO(f.what << (feed == Feed::leaves ? ", inputs as leaves" : feed == Feed::op_outputs ? ", inputs from an op" : ", twice"));
            auto fused = [&](auto& v) { return f.op(v, Dtype::bf16); };
            auto composed = [&](auto& v) { return round_bf16(f.op(v, Dtype::fp32)); };
            Result a = run(Kernels::fast, f.inputs, fused, feed), b = run(Kernels::fast, f.inputs, composed, feed);
            CHECK(values_differing(a.out, b.out) == 0);
            for (size_t i = 0; i < f.inputs.size(); ++i) {
                INFO("gradient of input " << i);
                CHECK(values_differing(a.grads[i], b.grads[i]) == 0);
            }
            Result r = run(Kernels::reference, f.inputs, fused, feed);
            CHECK(relative_error(a.out, r.out) <= 1.0 / 128);
            for (size_t i = 0; i < f.inputs.size(); ++i) CHECK(relative_error(a.grads[i], r.grads[i]) <= 1.0 / 128);
        }
}
