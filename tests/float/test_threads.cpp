// Every threaded split at 1, 3, 5 and 7 threads: gemm's grid of rectangles (and its loop nest, with K
// in several slices), linear's bias gradient (each thread its own columns), the rows of layernorm,
// softmax and cross-entropy, attention's heads, the parts of AdamW's tensors (fp32 and bf16, with and
// without the master copy), clipping's blocks and the pointwise passes. The sizes do not divide evenly
// by any of these thread counts (nor by a vector's width), so the last part is short and the parts'
// starts are rounded. Every split is written so that each value is computed by the same instructions
// however it is cut, so the results must equal the serial (1-thread) run's bit for bit: a part that is
// lost, computed twice or cut mid-vector differs.
#include <catch2/catch.hpp>

#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../../autograd/bf16.h"
#include "../../autograd/fast/kernels.h"
#include "../../autograd/ops.h"
#include "../../autograd/parallel.h"
#include "../../autograd/rng.h"
#include "../../optim/optim.h"

using namespace ag;

namespace {

using Values = std::vector<std::vector<real>>;  // every output and gradient a run produced

std::vector<real> values(const Tensor& t) { return std::vector<real>(t.data(), t.data() + t.numel()); }

Tensor random(const Shape& shape, uint64_t seed) {
    Rng rng(seed);
    return Tensor::randn(shape, rng);
}

// Runs f at each thread count (OpenMP's setting restored after) and compares every value it returns
// against the 1-thread run's.
void check_threads(const std::string& what, const std::function<Values()>& f) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const Values serial = f();
    for (int threads : {3, 5, 7}) {
        omp_set_num_threads(threads);
        const Values got = f();
        INFO(what << " at " << threads << " threads");
        REQUIRE(got.size() == serial.size());
        for (size_t k = 0; k < got.size(); ++k) {
            INFO("result " << k);
            REQUIRE(got[k].size() == serial[k].size());
            size_t differ = 0, first = 0;
            for (size_t i = 0; i < got[k].size(); ++i)
                if (got[k][i] != serial[k][i] && differ++ == 0) first = i;
            INFO("first differing element " << first);
            CHECK(differ == 0);
        }
    }
    omp_set_num_threads(saved);
}

// The output of op on fresh leaves copied from `inputs`, and each leaf's gradient of sum(y * R) for a
// fixed random R, so that every output element's gradient differs.
Values forward_backward(const std::vector<Tensor>& inputs, const std::function<Tensor(const std::vector<Tensor>&)>& op) {
    std::vector<Tensor> leaves;
    for (const Tensor& x : inputs) leaves.push_back(x.clone().requires_grad_());
    Tensor y = op(leaves);
    sum(mul(y, random(y.shape(), 99))).backward();
    Values r{values(y)};
    for (const Tensor& x : leaves) r.push_back(values(x.grad()));
    return r;
}

}  // namespace

TEST_CASE("gemm's grid of rectangles at 1, 3, 5, 7 threads", "[threads]") {
    // 2 M N K well past the size at which the gemm wakes its threads; M and N end in partial tiles.
    for (bool tb : {false, true}) {
        Tensor a = random({203, 67}, 1), b = tb ? random({149, 67}, 2) : random({67, 149}, 2);
        check_threads(tb ? "matmul a @ b^T" : "matmul a @ b", [&] {
            return forward_backward({a, b}, [tb](const std::vector<Tensor>& x) {
                return matmul(x[0], tb ? transpose(x[1]) : x[1]);
            });
        });
    }
}

TEST_CASE("gemm with K in several slices: the same loop nest, so the same sums, at 1, 3, 5, 7 threads", "[threads]") {
    // The two loop nests cut K into different slices and add C up slice by slice, so every thread must
    // take the nest the whole product's rows call for, not the one its own rectangle's would: 600 rows
    // (the blocked nest on 1 thread) fall to 200 or fewer a thread at 3 threads on; 200 rows are the
    // few-rows nest with AVX-512 and the blocked one with AVX2 (144 rows at most there). K = 3001 is
    // several slices in both nests, and several of the few-rows nest's chunks of A.
    using Gemm = void (*)(bool, bool, int64_t, int64_t, int64_t, const real*, const real*, real*, bool);
    const std::pair<const char*, Gemm> kinds[] = {
        {"gemm", gemm}, {"gemm_bf16", gemm_bf16}, {"gemm_bf16_portable", gemm_bf16_portable}};
    const int64_t sizes[][3] = {{600, 100, 3001}, {200, 150, 3001}};
    for (const auto& kind : kinds)
        for (auto& s : sizes)
            for (bool ta : {false, true}) {
                const char* name = kind.first;
                const Gemm f = kind.second;  // (not a structured binding: C++17 lambdas cannot capture those)
                const int64_t M = s[0], N = s[1], K = s[2];
                const std::vector<real> A = values(random({M * K}, 7)), B = values(random({K * N}, 8)),
                                        C0 = values(random({M * N}, 9));
                check_threads(std::string(name) + " " + std::to_string(M) + " rows" + (ta ? ", A^T" : ""), [&] {
                    std::vector<real> C = C0;  // accumulating: C += op(A) B
                    f(ta, false, M, N, K, A.data(), B.data(), C.data(), true);
                    return Values{C};
                });
            }
}

TEST_CASE("linear's bias gradient, each thread its own columns, at 1, 3, 5, 7 threads", "[threads]") {
    // R * N past the threading threshold; N = 371 is not a multiple of 16 nor of any thread count, so
    // the rounded column starts fall mid-row (the bias gradient's split).
    const int64_t R = 97, K = 29, N = 371;
    REQUIRE(worth_threads(R * N));
    Tensor x = random({R, K}, 3), W = random({N, K}, 4), b = random({N}, 5);
    check_threads("linear", [&] {
        return forward_backward({x, W, b}, [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); });
    });
}

TEST_CASE("layernorm, softmax and cross-entropy rows at 1, 3, 5, 7 threads", "[threads]") {
    const int64_t rows = 301, C = 113;
    REQUIRE(worth_threads(rows * C));
    Tensor x = random({rows, C}, 6), gain = random({C}, 7), bias = random({C}, 8);
    check_threads("layernorm", [&] {
        return forward_backward({x, gain, bias}, [](const std::vector<Tensor>& t) { return layernorm(t[0], t[1], t[2]); });
    });
    check_threads("softmax", [&] {
        return forward_backward({x}, [](const std::vector<Tensor>& t) { return softmax(t[0]); });
    });
    std::vector<int> targets(rows);
    for (int64_t r = 0; r < rows; ++r) targets[r] = r % 11 == 0 ? -1 : (int)((r * 37) % C);  // some ignored
    check_threads("cross_entropy", [&] {
        Tensor logits = x.clone().requires_grad_();
        Tensor loss = cross_entropy(logits, targets);
        loss.backward();
        return Values{values(loss), values(logits.grad())};
    });
    check_threads("cross_entropy, backward twice (the gradient recomputed)", [&] {
        Tensor logits = x.clone().requires_grad_();
        Tensor loss = mul(cross_entropy(logits, targets), real(1.5));
        loss.backward();
        return Values{values(loss), values(logits.grad())};
    });
}

TEST_CASE("attention's heads at 1, 3, 5, 7 threads, with and without a bias gradient", "[threads]") {
    // 2 x 3 = 6 heads: 7 threads leave one idle, 5 give one thread two; T spans two key blocks' worth.
    const int64_t B = 2, NH = 3, T = 37, hs = 16;
    Tensor q = random({B, NH, T, hs}, 9), k = random({B, NH, T, hs}, 10), v = random({B, NH, T, hs}, 11);
    Tensor bias = random({NH, T, T}, 12);
    const real scale = real(0.25);
    check_threads("causal_attention", [&] {
        return forward_backward({q, k, v}, [scale](const std::vector<Tensor>& t) {
            return causal_attention(t[0], t[1], t[2], scale);
        });
    });
    check_threads("causal_attention with a bias gradient (one thread per head)", [&] {
        return forward_backward({q, k, v, bias}, [scale](const std::vector<Tensor>& t) {
            return causal_attention(t[0], t[1], t[2], scale, t[3]);
        });
    });
}

TEST_CASE("pointwise passes at 1, 3, 5, 7 threads", "[threads]") {
    Tensor a = random({70001}, 13), b = random({70001}, 14);
    check_threads("gelu, mul, add", [&] {
        return forward_backward({a, b}, [](const std::vector<Tensor>& t) { return add(mul(gelu(t[0]), t[1]), t[0]); });
    });
}

TEST_CASE("AdamW's parts and clipping's blocks at 1, 3, 5, 7 threads", "[threads][optim]") {
    // Several blocks of kThreadsMin and an odd tail: parts start at rounded multiples of 16.
    constexpr int64_t n = 3 * kThreadsMin + 1001;
    auto run = [](optim::AdamWConfig config) {
        Tensor w = random({n / 7, 7}, 15).requires_grad_(), b = random({n % 1000 + 3}, 16).requires_grad_();
        if (config.bf16_params) {
            for (Tensor* t : {&w, &b})
                for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] = round_bf16(t->data()[i]);
        }
        optim::AdamW opt(optim::param_groups({{"w", w}, {"b", b}}, 0.1), config);
        Values r;
        for (int step = 1; step <= 3; ++step) {
            for (Tensor* t : {&w, &b}) {
                real* g = t->grad_buffer();
                for (int64_t i = 0; i < t->numel(); ++i) g[i] = (real)std::sin(0.37 * (double)i + step);
            }
            const double norm = optim::clip_grad_norm({{"w", w}, {"b", b}}, 1.0);
            r.push_back({(real)norm});
            r.push_back(values(w.grad()));
            opt.step(1e-2);
        }
        r.push_back(values(w));
        r.push_back(values(b));
        return r;
    };
    check_threads("AdamW fp32 with clipping", [&] { return run({}); });
    optim::AdamWConfig master;
    master.bf16_params = true;
    check_threads("AdamW bf16 with a master copy", [&] { return run(master); });
    optim::AdamWConfig stochastic = master;
    stochastic.master_weights = false;
    check_threads("AdamW bf16, stochastic rounding", [&] { return run(stochastic); });
}
