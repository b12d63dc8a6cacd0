// gemm.cpp: matrix multiply, plainly and quickly.
#include <algorithm>
#include <cstring>

#include "simd.h"

#include "../bf16.h"
#include "gemm_loops.h"
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
// The optimised kernel: Goto/BLIS blocking, packing, a register-blocked micro-kernel, OpenMP over
// rectangles of C. The loop nests and the thread grid are in gemm_loops.h, shared with gemm_bf16; this
// file supplies what they run for fp32: the micro-kernels, the packing and the block sizes (Fp32Kernel,
// at the end), and the portable bf16 path, which is the same on rounded packs.

namespace {

using gemm_loops::Prefetch;
using gemm_loops::Stream;

// ---- register blocking: the micro-kernel, one per instruction set, chosen at build time.
//
// The micro-kernel keeps an MR x NR block of C in vector registers. Each step p loads NR values of
// op(B) (NR / lanes vectors), then for each of the MR rows broadcasts one value of op(A) and does
// NR / lanes fused multiply-adds. So each step does MR * NR / lanes FMAs for NR / lanes loads plus MR
// broadcasts. The block must be big enough that the FMA units never wait (an FMA takes 4 cycles and
// two can start per cycle, so we need at least 8 independent accumulators) and that loads stay below
// the FMA count, yet fit in the register file with room for the B vectors and a broadcast.
//
//   AVX-512 (32 registers of 16 floats): 12 x 32 -> 24 accumulators, 2 B vectors, 1 broadcast.
//   AVX2+FMA (16 registers of 8 floats):  6 x 16 -> 12 accumulators, 2 B vectors, 1 broadcast.
//   portable C++ (float or double):       6 x two 512-bit vectors' worth, left to the compiler.
//
// micro_kernel(kc, a, b, c, ldc, add, pf): c (MR x NR, row stride ldc) = (add ? c : 0) + a @ b, where
// a holds kc steps of MR values (a[p * MR + i] = op(A)[i][p]) and b kc steps of NR values
// (b[p * NR + j] = op(B)[p][j]); every 4th step also requests one line for the next pack (pf).

#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)

constexpr int64_t MR = 12, NR = 32;
const char* const kernel_name = "avx512 12x32";

// R rows of the tile (R = MR, or fewer at the bottom edge of C: a 256-row C ends in a tile of 4 rows,
// which then costs 4 rows' work, not 12). a's slivers are still MR wide.
template <int R>
void micro_kernel_rows(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                       int64_t ldc, bool add, Prefetch& pf) {
    __m512 acc[R][2];
    gemm_loops::start_tile<R>(acc, c, ldc);
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        if ((p & 3) == 0) pf.one();
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        for (int i = 0; i < R; ++i) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    gemm_loops::finish_tile<R>(acc, c, ldc, add);
}

void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add, Prefetch& pf) {
    micro_kernel_rows<MR>(kc, a, b, c, ldc, add, pf);
}

// A full-width tile of fewer than MR rows, written straight into C. Returns false if it cannot.
bool short_tile(int64_t rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add,
                Prefetch& pf) {
    return gemm_loops::with_rows<MR>(rows, [&](auto r) {
        micro_kernel_rows<decltype(r)::value>(kc, a, b, c, ldc, add, pf);
    });
}

#elif defined(__AVX2__) && defined(__FMA__) && !defined(AUTOGRAD_DOUBLE)

constexpr int64_t MR = 6, NR = 16;
const char* const kernel_name = "avx2 6x16";

void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                  int64_t ldc, bool add, Prefetch& pf) {
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        if ((p & 3) == 0) pf.one();
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        for (int i = 0; i < MR; ++i) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; ++i, c += ldc) {
        if (add) {
            acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(c));
            acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(c + 8));
        }
        _mm256_storeu_ps(c, acc[i][0]);
        _mm256_storeu_ps(c + 8, acc[i][1]);
    }
}

#else

constexpr int64_t MR = 6, NR = 2 * 64 / sizeof(real);  // 6 x 32 floats or 6 x 16 doubles
const char* const kernel_name = "portable 6x(2 vectors)";

void micro_kernel(int64_t kc, const real* __restrict a, const real* __restrict b, real* __restrict c,
                  int64_t ldc, bool add, Prefetch& pf) {
    alignas(64) real acc[MR][NR] = {};
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        if ((p & 3) == 0) pf.one();
        for (int64_t i = 0; i < MR; ++i) {
            real ai = a[i];
#pragma omp simd
            for (int64_t j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
        }
    }
    for (int64_t i = 0; i < MR; ++i, c += ldc)
        for (int64_t j = 0; j < NR; ++j) c[j] = add ? c[j] + acc[i][j] : acc[i][j];
}

#endif

#if !(defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE))
// With MR = 6 a short tile wastes little: the caller computes it aside (see tile).
bool short_tile(int64_t, int64_t, const real*, const real*, real*, int64_t, bool, Prefetch&) { return false; }
#endif

// ---- cache blocking, tuned on the AVX-512 machine on GPT-2's products (MC = 192 beat 264), before
// their 256-row ones moved to the few-rows nest (gemm_loops.h); the weight gradients, thousands of rows, still
// run here. The MC x KC block of a (192 x 512 floats, 384 KB; 576 KB at KC 768) sits in L2 and is swept
// once per sliver of b; a KC x NR sliver of b (64-96 KB) is reused by every sliver of a from L1/L2; the
// KC x NC block of b goes through L2/L3. A big KC means C, read and written once per KC slice, moves
// through memory less often. An inner dimension up to KC_WHOLE is done in one slice (GPT-2's K = 768
// in one slice beats 512 + 256: C makes one trip instead of two); longer ones in slices of KC.
constexpr int64_t KC = 512, KC_WHOLE = 768;
constexpr int64_t MC = 16 * MR;   // 192 rows for AVX-512
constexpr int64_t NC = 128 * NR;  // 4096 columns for AVX-512

// Copy a block that is stored transposed: out[p * W + j] = src[j * ld + p] for p < kc and j < rows,
// and 0 for rows <= j < W. Both packs need it for a row-major operand read along its rows.
void pack_transposed(const real* src, int64_t ld, int64_t rows, int64_t kc, int64_t W, real* out) {
#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
    // 16 x 16 tiles: load 16 rows of 16 values, transpose them in registers, store 16 columns.
    // Masks cover the ragged ends (fewer than 16 values along p, or fewer than 16 lanes of W).
    for (int64_t j0 = 0; j0 < W; j0 += 16) {
        __mmask16 lanes = (__mmask16)((1u << std::min<int64_t>(16, W - j0)) - 1);
        for (int64_t p0 = 0; p0 < kc; p0 += 16) {
            int64_t steps = std::min<int64_t>(16, kc - p0);
            __mmask16 along = (__mmask16)((1u << steps) - 1);
            __m512 r[16];
            for (int64_t i = 0; i < 16; ++i)
                r[i] = j0 + i < rows ? _mm512_maskz_loadu_ps(along, src + (j0 + i) * ld + p0) : _mm512_setzero_ps();
            gemm_loops::transpose16(r);
            for (int64_t q = 0; q < steps; ++q) _mm512_mask_storeu_ps(out + (p0 + q) * W + j0, lanes, r[q]);
        }
    }
#else
    for (int64_t j = 0; j < W; ++j)
        for (int64_t p = 0; p < kc; ++p) out[p * W + j] = j < rows ? src[j * ld + p] : real(0);
#endif
}

// Both operands are packed the same way, as consecutive slivers of W lines (W = MR rows of op(A), or
// W = NR columns of op(B)): sliver s, step p holds lines [first + s*W, first + s*W + W) at inner index
// p0 + p. Lines past `count` are zero. The operand is stored one of two ways:
//   by_step: inner index major (A^T stored K x M, or B stored K x N): a step's W values are contiguous;
//   otherwise line major (A stored M x K, or B^T stored N x K): each line runs along p, so the sliver
//   is a small transpose.
// W is a template argument so that the copy of a step's W values has a size the compiler knows: it
// becomes a few vector moves instead of a call to memcpy for 48 or 128 bytes.
template <int64_t W>
void pack_slivers(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count,
                  int64_t p0, int64_t kc, real* out) {
    for (int64_t s = 0; s < count; s += W, out += W * kc) {
        int64_t n = std::min(W, count - s);
        if (by_step) {
            for (int64_t p = 0; p < kc; ++p) {
                const real* src = X + (p0 + p) * lines + first + s;
                if (n == W)
                    std::memcpy(out + p * W, src, (size_t)W * sizeof(real));
                else
                    for (int64_t i = 0; i < W; ++i) out[p * W + i] = i < n ? src[i] : real(0);
            }
        } else {
            pack_transposed(X + (first + s) * K + p0, K, n, kc, W, out);
        }
    }
}

// op(A) rows [i0, i0 + mc), inner indices [p0, p0 + kc), in slivers of MR rows.
void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            real* out) {
    pack_slivers<MR>(A, ta, M, K, i0, mc, p0, kc, out);
}

// op(B) columns [j0, j0 + nc), inner indices [p0, p0 + kc), in slivers of NR columns.
void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0, int64_t kc,
            real* out) {
    pack_slivers<NR>(B, !tb, N, K, j0, nc, p0, kc, out);
}

// The few-rows nest (gemm_loops.h): products of up to FEW_ROWS rows; A packed in chunks of K of at most
// A_CHUNK_BYTES (in L2); B in slices of KS steps (KS x NR floats: 32 KB for AVX-512, in L1).
constexpr int64_t FEW_ROWS = 24 * MR;  // 288 rows for AVX-512
constexpr int64_t KS = 256;
constexpr int64_t A_CHUNK_BYTES = 1 << 20;

// What gemm_loops.h runs for fp32: packs of floats, the micro-kernel above.
struct Fp32Kernel {
    using Packed = real;
    static constexpr int64_t KPACK = 1;
    static constexpr int64_t MR = ag::MR, NR = ag::NR;
    static constexpr int64_t KC = ag::KC, KC_WHOLE = ag::KC_WHOLE, MC = ag::MC, NC = ag::NC;
    static constexpr int64_t FEW_ROWS = ag::FEW_ROWS, KS = ag::KS, A_CHUNK_BYTES = ag::A_CHUNK_BYTES;
    static void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0,
                       int64_t kc, real* out) {
        ag::pack_a(A, ta, M, K, i0, mc, p0, kc, out);
    }
    static void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0,
                       int64_t kc, real* out) {
        ag::pack_b(B, tb, N, K, j0, nc, p0, kc, out);
    }
    static void micro_kernel(int64_t kc, const real* a, const real* b, real* c, int64_t ldc, bool add,
                             Prefetch& pf) {
        ag::micro_kernel(kc, a, b, c, ldc, add, pf);
    }
    static bool short_tile(int64_t rows, int64_t kc, const real* a, const real* b, real* c, int64_t ldc, bool add,
                           Prefetch& pf) {
        return ag::short_tile(rows, kc, a, b, c, ldc, add, pf);
    }
};

// x[i] = round_bf16(x[i]) over a pack just written (still in L1/L2). A plain loop the compiler
// vectorises; the rounding is bf16.h's own, so the portable path rounds exactly as the op does.
void round_pack(real* x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
}

// The portable bf16 path: the fp32 packs, each element then rounded to the nearest bf16, and the fp32
// micro-kernel on them. A product of two bf16 is exact in fp32 (8 + 8 significant bits of 24), so the
// only rounding left is the fp32 sum's, as in the AVX512_BF16 path. Packs are whole slivers: mc rows
// padded to a multiple of MR (nc columns to NR), each kc long.
struct PortableBf16Kernel : Fp32Kernel {
    static void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0,
                       int64_t kc, real* out) {
        ag::pack_a(A, ta, M, K, i0, mc, p0, kc, out);
        round_pack(out, (mc + MR - 1) / MR * MR * kc);
    }
    static void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0,
                       int64_t kc, real* out) {
        ag::pack_b(B, tb, N, K, j0, nc, p0, kc, out);
        round_pack(out, (nc + NR - 1) / NR * NR * kc);
    }
};

}  // namespace

const char* gemm_kernel_name() { return kernel_name; }

void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate, const Epilogue& then) {
    gemm_loops::gemm_threaded<Fp32Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
}
void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate) {
    gemm(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, Epilogue{});
}

void gemm_bf16_portable(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                        const real* B, real* C, bool accumulate, const Epilogue& then) {
    gemm_loops::gemm_threaded<PortableBf16Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
}
void gemm_bf16_portable(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                        const real* B, real* C, bool accumulate) {
    gemm_bf16_portable(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, Epilogue{});
}

}  // namespace ag
