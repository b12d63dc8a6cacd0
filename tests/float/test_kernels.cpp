// The optimised float kernels against the reference kernels, and float ops against double math.
#include <catch2/catch.hpp>
#include <cmath>
#include <omp.h>
#include <vector>

#include "../../autograd/fast/kernels.h"
#include "../../autograd/ops.h"

using namespace ag;

static_assert(sizeof(real) == sizeof(float), "these tests check the float build");

static std::vector<real> random_vector(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<real> v(n);
    for (real& x : v) x = (real)rng.normal();
    return v;
}

// Max over elements of |fast - ref| / (sum_p |a_ip b_pj| + tiny): the error relative to the size of
// the terms summed, which is what float rounding is proportional to (about K * 6e-8 at worst).
static double gemm_error(bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool accumulate) {
    std::vector<real> A = random_vector(M * K, 1 + M), B = random_vector(K * N, 2 + N);
    std::vector<real> C0 = random_vector(M * N, 3);
    std::vector<real> fast = C0, ref = C0;
    gemm(ta, tb, M, N, K, A.data(), B.data(), fast.data(), accumulate);
    gemm_reference(ta, tb, M, N, K, A.data(), B.data(), ref.data(), accumulate);
    double worst = 0;
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double scale = accumulate ? std::fabs(C0[i * N + j]) : 0;
            for (int64_t p = 0; p < K; ++p) {
                double a = ta ? A[p * M + i] : A[i * K + p], b = tb ? B[j * K + p] : B[p * N + j];
                scale += std::fabs(a * b);
            }
            double err = std::fabs((double)fast[i * N + j] - ref[i * N + j]) / (scale + 1e-30);
            worst = std::max(worst, err);
        }
    return worst;
}

TEST_CASE("optimised gemm equals the reference: every transpose, odd sizes, accumulate, 1 and 2 threads",
          "[kernels]") {
    // Sizes straddle the register block (at most 12 x 32, and the shorter bottom tiles), the 16 x 16
    // transposes of the packing, the two loop nests (up to 288 rows per thread: B in slices of 256
    // steps; more rows: blocks of MC = 192 rows, K up to 768 in one slice, longer K in slices of 512)
    // and the split between threads; enough flops to use threads.
    const int64_t sizes[][3] = {{1, 1, 1},      {7, 5, 3},       {6, 32, 17},    {12, 32, 16},   {13, 33, 257},
                                {11, 31, 15},   {25, 65, 33},    {97, 70, 300},  {200, 513, 64}, {385, 47, 129},
                                {64, 64, 32},   {1, 300, 700},   {300, 1, 700},  {37, 1000, 5},  {130, 190, 513},
                                {400, 96, 250}, {28, 64, 769},   {45, 96, 1300}};
    int saved = omp_get_max_threads();
    for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        for (auto& s : sizes)
            for (bool ta : {false, true})
                for (bool tb : {false, true})
                    for (bool acc : {false, true}) {
                        INFO("threads=" << threads << " M=" << s[0] << " N=" << s[1] << " K=" << s[2] << " ta=" << ta
                                        << " tb=" << tb << " acc=" << acc);
                        CHECK(gemm_error(ta, tb, s[0], s[1], s[2], acc) < 1e-5);
                    }
    }
    omp_set_num_threads(saved);
}

TEST_CASE("gemm with few rows and a long K: A packed in several chunks, B streamed in slices", "[kernels]") {
    // Up to 288 rows per thread take the few-rows path: A's rows are packed in chunks of K of at most
    // 1 MB (61 rows: 3584 steps; 200 rows: 1280), B's slivers in slices of 256 steps. These K need two
    // chunks and end in a partial slice; the rows and columns end in short and ragged tiles.
    const int64_t sizes[][3] = {{61, 200, 4500}, {200, 300, 1500}};
    int saved = omp_get_max_threads();
    for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        for (auto& s : sizes)
            for (bool ta : {false, true})
                for (bool tb : {false, true}) {
                    INFO("threads=" << threads << " M=" << s[0] << " N=" << s[1] << " K=" << s[2] << " ta=" << ta
                                    << " tb=" << tb);
                    CHECK(gemm_error(ta, tb, s[0], s[1], s[2], tb) < 1e-5);
                }
    }
    omp_set_num_threads(saved);
}

TEST_CASE("gemm called from inside a parallel region (batched matmul) stays correct", "[kernels]") {
    const int64_t batch = 6, M = 70, N = 45, K = 90;
    std::vector<real> A = random_vector(batch * M * K, 5), B = random_vector(batch * K * N, 6);
    std::vector<real> fast(batch * M * N), ref(batch * M * N);
#pragma omp parallel for num_threads(2)
    for (int64_t b = 0; b < batch; ++b)
        gemm(false, true, M, N, K, A.data() + b * M * K, B.data() + b * K * N, fast.data() + b * M * N, false);
    for (int64_t b = 0; b < batch; ++b)
        gemm_reference(false, true, M, N, K, A.data() + b * M * K, B.data() + b * K * N, ref.data() + b * M * N, false);
    for (int64_t i = 0; i < batch * M * N; ++i) CHECK(fast[i] == Approx(ref[i]).margin(1e-4));
}

TEST_CASE("optimised gemm at GPT-2 small's shapes (B*T = 256 rows)", "[kernels]") {
    CHECK(gemm_error(false, true, 256, 2304, 768, false) < 1e-5);  // c_attn forward, x @ W^T
    CHECK(gemm_error(false, false, 256, 768, 3072, true) < 1e-5);  // dX = dY @ W (mlp c_proj)
    CHECK(gemm_error(true, false, 768, 768, 256, true) < 1e-5);    // dW = dY^T @ X (attn c_proj)
}

TEST_CASE("gemm with K = 0 gives zeros, or leaves C alone when accumulating", "[kernels]") {
    std::vector<real> C = {1, 2, 3, 4};
    gemm(false, false, 2, 2, 0, nullptr, nullptr, C.data(), true);
    CHECK(C == std::vector<real>{1, 2, 3, 4});
    gemm(false, false, 2, 2, 0, nullptr, nullptr, C.data(), false);
    CHECK(C == std::vector<real>{0, 0, 0, 0});
}

TEST_CASE("float linear forward and backward agree with double arithmetic", "[kernels]") {
    Rng rng(7);
    Tensor x = Tensor::randn({4, 16, 64}, rng), W = Tensor::randn({48, 64}, rng, 0.1f), b = Tensor::randn({48}, rng);
    W.requires_grad_();
    x.requires_grad_();
    Tensor y = linear(x, W, b);
    sum(y).backward();
    // y[r][n] = sum_k x[r][k] W[n][k] + b[n]; dW[n][k] = sum_r x[r][k]; dx[r][k] = sum_n W[n][k]
    for (int r : {0, 17, 63})
        for (int n : {0, 5, 47}) {
            double expect = b.data()[n];
            for (int k = 0; k < 64; ++k) expect += (double)x.data()[r * 64 + k] * W.data()[n * 64 + k];
            CHECK(y.data()[r * 48 + n] == Approx(expect).margin(1e-4));
        }
    for (int k : {0, 31, 63}) {
        double dW = 0, dx = 0;
        for (int r = 0; r < 64; ++r) dW += x.data()[r * 64 + k];
        for (int n = 0; n < 48; ++n) dx += W.data()[n * 64 + k];
        CHECK(W.grad().data()[3 * 64 + k] == Approx(dW).margin(1e-4));
        CHECK(x.grad().data()[5 * 64 + k] == Approx(dx).margin(1e-5));
    }
}
