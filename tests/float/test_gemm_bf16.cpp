// gemm_bf16 (and its portable path) against gemm_bf16_reference: C (+)= round_bf16(op(A)) @ round_bf16(op(B)).
//
// The tolerance: every product of two bf16 numbers is exact in fp32, so the fast paths differ from the
// reference (exact products summed in double) only by the fp32 additions. Summing K terms in any order
// in fp32 is off by at most about K * 2^-24 * sum_p |a_ip b_pj| (each addition rounds by at most half an
// ulp, 2^-24, of a partial sum no bigger than that sum); an accumulated C adds one more term, |C|.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <omp.h>
#include <vector>

#include "../../autograd/bf16.h"
#include "../../autograd/fast/kernels.h"
#include "../../autograd/rng.h"

using namespace ag;

static_assert(sizeof(real) == sizeof(float), "these tests check the float build");

namespace {

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, const real*, const real*, real*, bool);

#ifdef AG_GEMM_BF16_AMX
// The AMX path; where the operating system refuses the tiles, gemm_bf16_amx computes nothing and says so
// ("names its path" checks that gemm_bf16 then does not claim AMX), and this runs the vdpbf16ps path.
void amx_path(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C, bool acc) {
    if (!gemm_bf16_amx(ta, tb, M, N, K, A, B, C, acc)) gemm_bf16_dot_product(ta, tb, M, N, K, A, B, C, acc);
}
#endif

struct Path {
    const char* name;
    GemmFn fn;
};
const Path kPaths[] = {{"gemm_bf16", gemm_bf16},
                       {"gemm_bf16_portable", gemm_bf16_portable},
#ifdef AG_GEMM_BF16_DOT_PRODUCT
                       {"gemm_bf16_dot_product", gemm_bf16_dot_product},  // (gemm_bf16 may not take it)
#endif
#ifdef AG_GEMM_BF16_AMX
                       {"gemm_bf16_amx", amx_path},
#endif
};

// Normal numbers that are not bf16-exact (so the packs' rounding matters), and every 7th one exactly
// halfway between two bf16 neighbours (so ties to even matter).
std::vector<real> random_operand(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<real> v(n);
    for (int64_t i = 0; i < n; ++i) {
        v[i] = (real)rng.normal();
        if (i % 7 == 3) v[i] = bits_float((float_bits(round_bf16(v[i])) & 0xffff0000u) | 0x8000u);
    }
    return v;
}

// Element (i, p) of op(A) (M x K) and element (p, j) of op(B) (K x N).
real op_a(const std::vector<real>& A, bool ta, int64_t M, int64_t K, int64_t i, int64_t p) {
    return ta ? A[p * M + i] : A[i * K + p];
}
real op_b(const std::vector<real>& B, bool tb, int64_t N, int64_t K, int64_t p, int64_t j) {
    return tb ? B[j * K + p] : B[p * N + j];
}

// For each path and for 1 and 2 threads, the largest |c - ref| / bound over C, where bound = (K + 1) *
// 2^-24 * (sum_p |a_ip b_pj| + |C0|) (+ a tiny absolute floor): at most 1 when the sums are within the
// fp32 bound. The reference and the bounds are computed once for all of them.
std::vector<double> worst_errors(bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool accumulate) {
    std::vector<real> A = random_operand(M * K, 1 + M + K), B = random_operand(K * N, 2 + N + K);
    std::vector<real> C0 = random_operand(M * N, 3), ref = C0;
    gemm_bf16_reference(ta, tb, M, N, K, A.data(), B.data(), ref.data(), accumulate);
    std::vector<double> bound(M * N);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double terms = accumulate ? std::fabs(C0[i * N + j]) : 0;
            for (int64_t p = 0; p < K; ++p) {
                terms += std::fabs((double)round_bf16(op_a(A, ta, M, K, i, p)) * round_bf16(op_b(B, tb, N, K, p, j)));
            }
            bound[i * N + j] = (double)(K + 1) * std::ldexp(1.0, -24) * terms + 1e-30;
        }
    std::vector<double> worst;
    const int saved = omp_get_max_threads();
    for (const Path& path : kPaths)
        for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            std::vector<real> fast = C0;
            path.fn(ta, tb, M, N, K, A.data(), B.data(), fast.data(), accumulate);
            double w = 0;
            for (int64_t e = 0; e < M * N; ++e) w = std::max(w, std::fabs((double)fast[e] - ref[e]) / bound[e]);
            worst.push_back(w);
        }
    omp_set_num_threads(saved);
    return worst;
}

void check_errors(bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool accumulate) {
    std::vector<double> worst = worst_errors(ta, tb, M, N, K, accumulate);
    for (size_t r = 0; r < worst.size(); ++r) {  // (path, threads): worst_errors' order
        INFO(kPaths[r / 2].name << " on " << (r % 2 + 1) << " thread(s): M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb
                      << " acc=" << accumulate);
        CHECK(worst[r] <= 1.0);
    }
}

}  // namespace

TEST_CASE("gemm_bf16 names its path", "[gemm][bf16]") {
    std::string name = gemm_bf16_kernel_name();
#if defined(AG_GEMM_BF16_AMX)
    real a = 1, b = 1, c = 0;
    if (gemm_bf16_amx(false, false, 1, 1, 1, &a, &b, &c, false))
        CHECK(name == "AMX (tdpbf16ps) 32x32");
    else
        CHECK(name == "portable (AMX refused by the OS; vdpbf16ps is slower here)");
#elif defined(AG_GEMM_BF16_DOT_PRODUCT)
    CHECK(name == "AVX512_BF16 (vdpbf16ps) 12x32");
#else
    CHECK_THAT(name, Catch::Matchers::StartsWith("portable ("));
#endif
}

TEST_CASE("gemm_bf16 equals the reference: every transpose, ragged and odd sizes, accumulate, 1 and 2 threads",
          "[gemm][bf16]") {
    // Sizes straddle the 12 x 32 register block and the shorter bottom tiles (AMX: 32 x 32 tiles, blocks
    // of 32 steps of K), the 16 x 32 steps of the line-major pack (odd K: a pair half padded with 0), the two loop nests (up to 288 rows per thread
    // the few-rows one; more, the blocked one: M = 300 on 1 thread, and 300 x 400 on 2, which split the
    // columns; K = 2100 is cut in slices there) and the split between threads (over 2 MFLOP).
    const int64_t sizes[][3] = {{1, 1, 1},     {7, 5, 3},     {12, 32, 2},    {13, 33, 31},   {11, 31, 33},
                                {25, 65, 1},   {1, 300, 700}, {300, 1, 701},  {37, 1000, 5},  {97, 70, 301},
                                {130, 190, 513}, {300, 40, 2100}, {300, 400, 37}, {45, 96, 1301}};
    for (auto& s : sizes)
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (bool acc : {false, true}) check_errors(ta, tb, s[0], s[1], s[2], acc);
}

TEST_CASE("gemm_bf16 at GPT-2 small's shapes and with few rows and a long K", "[gemm][bf16]") {
    // 256 rows: the few-rows nest; 200 rows (on both thread counts) with K = 5121: A packed in several
    // chunks, the last slice partial and odd; 768 rows: the blocked nest.
    const int64_t sizes[][3] = {{256, 768, 768}, {200, 300, 5121}, {768, 768, 256}};
    for (auto& s : sizes)
        for (bool ta : {false, true})
            for (bool tb : {false, true}) check_errors(ta, tb, s[0], s[1], s[2], true);
}

TEST_CASE("gemm_bf16 with K = 0 gives zeros, or leaves C alone when accumulating", "[gemm][bf16]") {
    for (const Path& path : kPaths) {
        std::vector<real> C = {1, 2, 3, 4};
        path.fn(false, false, 2, 2, 0, nullptr, nullptr, C.data(), true);
        CHECK(C == std::vector<real>{1, 2, 3, 4});
        path.fn(false, false, 2, 2, 0, nullptr, nullptr, C.data(), false);
        CHECK(C == std::vector<real>{0, 0, 0, 0});
    }
}

TEST_CASE("gemm_bf16 on bf16-exact operands equals the fp32 gemm to fp32 rounding", "[gemm][bf16]") {
    // Both compute the same exact products; only the order of the fp32 additions may differ.
    const int64_t M = 256, N = 384, K = 768;
    std::vector<real> A = random_operand(M * K, 11), B = random_operand(K * N, 12);
    round_bf16_inplace(A.data(), M * K);
    round_bf16_inplace(B.data(), K * N);
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            std::vector<real> c_bf16(M * N), c_fp32(M * N);
            gemm_bf16(ta, tb, M, N, K, A.data(), B.data(), c_bf16.data(), false);
            gemm(ta, tb, M, N, K, A.data(), B.data(), c_fp32.data(), false);
            double worst = 0;
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                    double terms = 0;
                    for (int64_t p = 0; p < K; ++p)
                        terms += std::fabs((double)op_a(A, ta, M, K, i, p) * op_b(B, tb, N, K, p, j));
                    double bound = 2.0 * K * std::ldexp(1.0, -24) * terms + 1e-30;  // each side's bound
                    worst = std::max(worst, std::fabs((double)c_bf16[i * N + j] - c_fp32[i * N + j]) / bound);
                }
            INFO("ta=" << ta << " tb=" << tb);
            CHECK(worst <= 1.0);
        }
}

TEST_CASE("gemm_bf16 rounds every operand element as round_bf16 does", "[gemm][bf16]") {
    // op(A) (M x K) times the identity gives round_bf16(op(A)) exactly (one exact product per element,
    // the rest exact zeros), and the identity times op(B) gives round_bf16(op(B)): so every position of
    // both packs, both halves of a pair, and both storage orders. Values: ties (to even, up and down),
    // values that carry into the next binade, large ones still finite after rounding, and subnormals.
    // vdpbf16ps and AMX's tdpbf16ps treat subnormal bf16 inputs as 0 (as the fp32 path does under
    // ./train's flush-to-zero mode), so there the fast paths may give 0; the portable path gives the
    // subnormal itself.
    const int64_t M = 37, K = 45;
    std::vector<real> X(M * K);
    const uint32_t specials[] = {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x3f7fffffu, 0x7f7f7fffu, 0xff7f7fffu,
                                 0x00012345u, 0x80008000u, 0x00018000u, 0x007fffffu, 0x3f800001u, 0xbf8080ffu};
    Rng rng(5);
    for (int64_t i = 0; i < M * K; ++i)
        X[i] = i % 3 == 0 ? bits_float(specials[(i / 3) % 12])
                          : (real)rng.normal() * std::ldexp(1.0f, (int)(i % 61) - 30);  // 2^-30 .. 2^30
    auto identity = [](int64_t n) {
        std::vector<real> I(n * n, 0);
        for (int64_t i = 0; i < n; ++i) I[i * n + i] = 1;
        return I;
    };
    std::vector<real> IK = identity(K), IM = identity(M);
    auto check = [&](const Path& path, const std::vector<real>& got, bool transposed) {
        for (int64_t i = 0; i < M; ++i)
            for (int64_t p = 0; p < K; ++p) {
                real x = transposed ? X[p * M + i] : X[i * K + p], want = round_bf16(x), c = got[i * K + p];
                bool subnormal = want != 0 && std::fabs(want) < std::numeric_limits<float>::min();
                const GemmFn portable = gemm_bf16_portable, chosen = gemm_bf16;
                bool fast = path.fn != portable &&
                            (path.fn != chosen || std::strncmp(gemm_bf16_kernel_name(), "portable", 8) != 0);
                INFO(path.name << " i=" << i << " p=" << p << " x bits=" << std::hex << float_bits(x));
                if (subnormal && fast)
                    CHECK((float_bits(c) == float_bits(want) || c == 0));
                else if (want == 0)  // -0 (a tiny negative x) plus the +0 products is +0
                    CHECK(c == 0);
                else
                    CHECK(float_bits(c) == float_bits(want));
            }
    };
    for (const Path& path : kPaths)
        for (bool t : {false, true}) {
            // X is op(A) (M x K), or op(B) (M x K as the inner dimension by the columns); stored K x M when t
            std::vector<real> c(M * K);
            path.fn(t, false, M, K, K, X.data(), IK.data(), c.data(), false);  // op(A) = X, times I_K
            check(path, c, t);
            path.fn(false, t, M, K, M, IM.data(), X.data(), c.data(), false);  // I_M times op(B) = X
            check(path, c, t);
        }
}

TEST_CASE("gemm_bf16 carries NaN and Inf as IEEE arithmetic does", "[gemm][bf16]") {
    // A (3 x 2) has a NaN in row 0 and, in row 1, the largest float, which rounds to Inf. With B = [1 2; 0 1]:
    // row 0 is NaN, row 1 Inf (Inf * 1 + 5 * 0, Inf * 2 + 5 * 1), row 2 finite. Then B2 = [1 Inf; 0 1]:
    // a 0 of A against the Inf gives NaN (0 * Inf), a 3 gives Inf, a -2 gives -Inf.
    const real inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const real fmax = std::numeric_limits<float>::max();
    std::vector<real> A = {nan, 1, fmax, 5, 3, 0}, B = {1, 2, 0, 1};
    for (const Path& path : kPaths) {
        INFO(path.name);
        std::vector<real> C(6, 7);
        path.fn(false, false, 3, 2, 2, A.data(), B.data(), C.data(), false);
        CHECK(std::isnan(C[0]));
        CHECK(std::isnan(C[1]));
        CHECK(C[2] == inf);
        CHECK(C[3] == inf);
        CHECK(C[4] == 3);
        CHECK(C[5] == 6);
        std::vector<real> A2 = {0, 1, 3, 0, -2, 1}, B2 = {1, inf, 0, 1};
        path.fn(false, false, 3, 2, 2, A2.data(), B2.data(), C.data(), false);
        CHECK(C[0] == 0);
        CHECK(std::isnan(C[1]));
        CHECK(C[2] == 3);
        CHECK(C[3] == inf);
        CHECK(C[4] == -2);
        CHECK(C[5] == -inf);
    }
}

// The epilogue (kernels.h): C (+)= op(A) op(B), then + bias, then rounded, done by each tile as it
// finishes. It must give the bits of the product followed by a pass over C, on every path, both loop
// nests (few rows, blocked), K in several slices, ragged edges, K = 0, with and without accumulating,
// on 1 and 3 threads (each thread finishes its own tiles).
TEST_CASE("every gemm path's epilogue (bias, bf16 rounding) equals a pass over C after the product", "[gemm][bf16]") {
    using GemmThen = void (*)(bool, bool, int64_t, int64_t, int64_t, const real*, const real*, real*, bool,
                              const Epilogue&);
    struct Product {
        const char* name;
        GemmFn plain;
        GemmThen then;
    };
    const std::vector<Product> products = {
        {"gemm", gemm, gemm},
        {"gemm_bf16", gemm_bf16, gemm_bf16},
        {"gemm_bf16_portable", gemm_bf16_portable, gemm_bf16_portable},
#ifdef AG_GEMM_BF16_DOT_PRODUCT
        {"gemm_bf16_dot_product", gemm_bf16_dot_product, gemm_bf16_dot_product},
#endif
    };
    struct Shape {
        int64_t M, N, K;
    };
    const int threads_before = omp_get_max_threads();
    for (const Shape& s : {Shape{7, 45, 33}, Shape{256, 100, 1100}, Shape{300, 70, 1600}, Shape{40, 33, 0}})
        for (const Product& p : products)
            for (int threads : {1, 3})
                for (int variant = 0; variant < 8; ++variant) {
                    const bool ta = variant & 1, tb = variant & 2, accumulate = variant & 4;
                    const std::vector<real> A = random_operand(s.M * s.K, 11), B = random_operand(s.K * s.N, 12);
                    const std::vector<real> bias = random_operand(s.N, 13), C0 = random_operand(s.M * s.N, 14);
                    for (int what = 1; what < 4; ++what) {  // bias, rounding, both
                        const Epilogue then{what & 1 ? bias.data() : nullptr, (what & 2) != 0};
                        omp_set_num_threads(threads);
                        std::vector<real> want = C0, got = C0;
                        p.plain(ta, tb, s.M, s.N, s.K, A.data(), B.data(), want.data(), accumulate);
                        for (int64_t i = 0; i < s.M; ++i)
                            for (int64_t j = 0; j < s.N; ++j) {
                                real& c = want[i * s.N + j];
                                if (then.bias) c += bias[j];
                                if (then.round_bf16) c = round_bf16(c);
                            }
                        p.then(ta, tb, s.M, s.N, s.K, A.data(), B.data(), got.data(), accumulate, then);
                        omp_set_num_threads(threads_before);
                        INFO(p.name << " " << s.M << "x" << s.N << "x" << s.K << " ta " << ta << " tb " << tb
                                    << " accumulate " << accumulate << " bias " << (then.bias != nullptr)
                                    << " round " << then.round_bf16 << " threads " << threads);
                        int64_t differ = 0;
                        for (int64_t i = 0; i < s.M * s.N; ++i) differ += float_bits(got[i]) != float_bits(want[i]);
                        CHECK(differ == 0);
                    }
                }
}
