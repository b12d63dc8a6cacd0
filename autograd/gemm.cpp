// gemm.cpp: matrix multiply, plainly and quickly.
#include <algorithm>

#include "kernels.h"

namespace ag {

// Element (i, p) of op(A), which is M x K; element (p, j) of op(B), which is K x N.
static inline real a_at(const real* A, bool transpose_a, int64_t M, int64_t K, int64_t i, int64_t p) {
    return transpose_a ? A[p * M + i] : A[i * K + p];
}
static inline real b_at(const real* B, bool transpose_b, int64_t N, int64_t K, int64_t p, int64_t j) {
    return transpose_b ? B[j * K + p] : B[p * N + j];
}

// ---------------------------------------------------------------------------------------------------
// The reference: C[i][j] = sum_p op(A)[i][p] * op(B)[p][j]. One multiply-add per innermost step.

void gemm_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                    const real* B, real* C, bool accumulate) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            real sum = 0;
            for (int64_t p = 0; p < K; ++p)
                sum += a_at(A, transpose_a, M, K, i, p) * b_at(B, transpose_b, N, K, p, j);
            C[i * N + j] = accumulate ? C[i * N + j] + sum : sum;
        }
}

// ---------------------------------------------------------------------------------------------------
// The optimised kernel, in the classic shape of Goto & van de Geijn (2008), "Anatomy of
// high-performance matrix multiplication":
//
//   the output is cut into tiles of MC x NC; OpenMP hands whole tiles to threads, so threads never
//   write the same element and need no locks;
//   for each slice of KC along the inner dimension, a tile copies ("packs") its MC x KC piece of A
//   and KC x NC piece of B into small contiguous buffers that stay in the L2/L1 caches, laid out in
//   the order the micro-kernel reads them;
//   the micro-kernel computes an MR x NR block of C in registers: for each p, MR values of A times
//   NR values of B, NR being two SIMD vectors wide, so the compiler turns the inner loop into FMAs.
//
// Packing also absorbs the transposes: op(A) and op(B) always come out in the same layout.

namespace {

constexpr int64_t VEC = 64 / sizeof(real);  // values in one 512-bit vector: 16 floats or 8 doubles
constexpr int64_t MR = 6;                   // rows of C per micro-kernel
constexpr int64_t NR = 2 * VEC;             // columns of C per micro-kernel
constexpr int64_t KC = 256;                 // inner-dimension slice
constexpr int64_t MC = 16 * MR;             // tile rows    (96)
constexpr int64_t NC = 8 * NR;              // tile columns (256 floats, 128 doubles)

// Pack rows [i0, i0 + mc) and inner indices [p0, p0 + kc) of op(A) as consecutive panels of MR rows:
// panel r, step p holds op(A)[i0 + r*MR + 0 .. MR-1][p0 + p]. Rows past M are zero.
void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            real* out) {
    for (int64_t r = 0; r < mc; r += MR)
        for (int64_t p = 0; p < kc; ++p)
            for (int64_t i = 0; i < MR; ++i)
                *out++ = (r + i < mc) ? a_at(A, ta, M, K, i0 + r + i, p0 + p) : real(0);
}

// Pack inner indices [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) as consecutive panels of NR
// columns: panel c, step p holds op(B)[p0 + p][j0 + c*NR + 0 .. NR-1]. Columns past N are zero.
void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0, int64_t kc,
            real* out) {
    for (int64_t c = 0; c < nc; c += NR)
        for (int64_t p = 0; p < kc; ++p)
            for (int64_t j = 0; j < NR; ++j)
                *out++ = (c + j < nc) ? b_at(B, tb, N, K, p0 + p, j0 + c + j) : real(0);
}

// acc (MR x NR) = sum over p of a[p] (MR values) outer-product b[p] (NR values).
inline void micro_kernel(int64_t kc, const real* __restrict a, const real* __restrict b, real acc[MR][NR]) {
    for (int64_t i = 0; i < MR; ++i)
        for (int64_t j = 0; j < NR; ++j) acc[i][j] = 0;
    for (int64_t p = 0; p < kc; ++p) {
        for (int64_t i = 0; i < MR; ++i) {
            real ai = a[p * MR + i];
#pragma omp simd
            for (int64_t j = 0; j < NR; ++j) acc[i][j] += ai * b[p * NR + j];
        }
    }
}

// One MC x NC tile of C, starting at row i0 and column j0.
void gemm_tile(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
               bool accumulate, int64_t i0, int64_t j0) {
    alignas(64) static thread_local real a_pack[MC * KC];
    alignas(64) static thread_local real b_pack[KC * NC];
    int64_t mc = std::min(MC, M - i0), nc = std::min(NC, N - j0);
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
        int64_t kc = std::min(KC, K - p0);
        pack_a(A, ta, M, K, i0, mc, p0, kc, a_pack);
        pack_b(B, tb, N, K, j0, nc, p0, kc, b_pack);
        bool overwrite = (p0 == 0 && !accumulate);
        for (int64_t r = 0; r < mc; r += MR)
            for (int64_t c = 0; c < nc; c += NR) {
                alignas(64) real acc[MR][NR];
                micro_kernel(kc, a_pack + r * kc, b_pack + c * kc, acc);
                int64_t rows = std::min(MR, mc - r), cols = std::min(NR, nc - c);
                for (int64_t i = 0; i < rows; ++i) {
                    real* crow = C + (i0 + r + i) * N + j0 + c;
                    for (int64_t j = 0; j < cols; ++j) crow[j] = overwrite ? acc[i][j] : crow[j] + acc[i][j];
                }
            }
    }
}

}  // namespace

void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate) std::fill(C, C + M * N, real(0));
        return;
    }
    int64_t tiles_m = (M + MC - 1) / MC, tiles_n = (N + NC - 1) / NC;
    bool worth_threads = 2.0 * M * N * K > 1e6;  // below ~1 MFLOP, starting threads costs more than it saves
#pragma omp parallel for collapse(2) schedule(dynamic) if (worth_threads)
    for (int64_t ti = 0; ti < tiles_m; ++ti)
        for (int64_t tj = 0; tj < tiles_n; ++tj)
            gemm_tile(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, ti * MC, tj * NC);
}

}  // namespace ag
