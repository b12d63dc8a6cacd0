// gemm.cpp: matrix multiply, plainly and quickly.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "simd.h"

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
// The optimised kernel, in the shape of Goto & van de Geijn (2008), "Anatomy of high-performance
// matrix multiplication", with the loop order of the BLIS papers (Van Zee & van de Geijn 2015):
//
//   for each column block of NC            (jc)
//     for each inner slice of KC           (pc)   pack op(B)[pc, jc] (KC x NC) into b_pack
//       for each row block of MC           (ic)   pack op(A)[ic, pc] (MC x KC) into a_pack
//         for each column panel of NR      (jr)   this KC x NR sliver of b_pack stays in L1
//           for each row panel of MR       (ir)   this MR x KC sliver of a_pack streams from L2
//             micro-kernel: C[ir, jr] (MR x NR) += a sliver times b sliver, held in registers
//
// Packing copies each operand into the exact order the micro-kernel reads it, so the micro-kernel
// only ever walks two contiguous arrays; it also absorbs the transposes (op(A), op(B) always come out
// the same) and pads ragged edges with zeros. Each packed element is used MC or NC times, so the copy
// is cheap next to the 2*MC*NC*KC flops it feeds.
//
// A thread with few rows of C (GPT-2's 256 tokens per step) runs a second loop nest instead, in which
// all of its rows of A stay packed and B streams past them once (gemm_few_rows, below). In both, the
// micro-kernel also prefetches what the next pack will read.
//
// Threads (OpenMP) split C into one rectangle each, cutting whichever side makes less repeated
// packing; each thread then runs the loops above on its rectangle with its own buffers, so threads
// never write the same element and need no locks or barriers.

namespace {

// ---- prefetching the next pack's source.
//
// A pack reads its source from L3 or memory, and one core keeps only about 16 cache misses in flight,
// so a pack that waits for its own lines runs at the memory's latency, not its bandwidth: packing the
// output layer's 154 MB weight took 12-15% of that product's time. Instead, while the micro-kernel
// computes on the current packs, it requests the lines the next pack will read, one every 4 steps (a
// few in flight at a time, never enough to stall it), into L2.
//
// Stream: `runs` runs of `per_run` 64-byte lines, `stride` bytes apart, from `base`; one() requests the
// next line. Prefetch: two streams, the one needed sooner first.
struct Stream {
    const char* base = nullptr;
    int64_t stride = 0, per_run = 1, run = 0, line = 0, left = 0;  // left: lines not yet requested
    void one() {
        __builtin_prefetch(base + run * stride + line * 64, 0, 2);  // 2: into L2 (prefetcht1)
        if (++line == per_run) line = 0, ++run;
        --left;
    }
};
struct Prefetch {
    Stream* first;
    Stream* then;
    void one() {
        if (first->left > 0)
            first->one();
        else if (then->left > 0)
            then->one();
    }
};

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
    for (int i = 0; i < R; ++i) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);  // C's rows arrive while we compute
        _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
        if ((p & 3) == 0) pf.one();
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        for (int i = 0; i < R; ++i) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < R; ++i, c += ldc) {
        if (add) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(c));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(c + 16));
        }
        _mm512_storeu_ps(c, acc[i][0]);
        _mm512_storeu_ps(c + 16, acc[i][1]);
    }
}

void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add, Prefetch& pf) {
    micro_kernel_rows<MR>(kc, a, b, c, ldc, add, pf);
}

// A full-width tile of fewer than MR rows, written straight into C. Returns false if it cannot.
bool short_tile(int64_t rows, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool add,
                Prefetch& pf) {
    switch (rows) {
    case 1: micro_kernel_rows<1>(kc, a, b, c, ldc, add, pf); return true;
    case 2: micro_kernel_rows<2>(kc, a, b, c, ldc, add, pf); return true;
    case 3: micro_kernel_rows<3>(kc, a, b, c, ldc, add, pf); return true;
    case 4: micro_kernel_rows<4>(kc, a, b, c, ldc, add, pf); return true;
    case 5: micro_kernel_rows<5>(kc, a, b, c, ldc, add, pf); return true;
    case 6: micro_kernel_rows<6>(kc, a, b, c, ldc, add, pf); return true;
    case 7: micro_kernel_rows<7>(kc, a, b, c, ldc, add, pf); return true;
    case 8: micro_kernel_rows<8>(kc, a, b, c, ldc, add, pf); return true;
    case 9: micro_kernel_rows<9>(kc, a, b, c, ldc, add, pf); return true;
    case 10: micro_kernel_rows<10>(kc, a, b, c, ldc, add, pf); return true;
    case 11: micro_kernel_rows<11>(kc, a, b, c, ldc, add, pf); return true;
    default: return false;
    }
}

// Transpose a 16 x 16 block held in 16 registers (r[i] = row i) in place, so that r[q] = column q:
// interleave 32-bit pairs of rows, then 64-bit pairs, then shuffle 128-bit quarters between registers.
void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {  // t[i] = r[i][0] r[i+1][0] r[i][1] r[i+1][1] ..., per 128-bit quarter
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {  // u[g + k], quarter L: rows g..g+3 of column 4L + k
        u[g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g]), _mm512_castps_pd(t[g + 2])));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g]), _mm512_castps_pd(t[g + 2])));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g + 1]), _mm512_castps_pd(t[g + 3])));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g + 1]), _mm512_castps_pd(t[g + 3])));
    }
    for (int k = 0; k < 4; ++k) {  // gather quarter L of u[k], u[4 + k], u[8 + k], u[12 + k] into column 4L + k
        __m512 lo01 = _mm512_shuffle_f32x4(u[k], u[4 + k], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 lo23 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 hi01 = _mm512_shuffle_f32x4(u[k], u[4 + k], _MM_SHUFFLE(3, 2, 3, 2));
        __m512 hi23 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], _MM_SHUFFLE(3, 2, 3, 2));
        r[0 + k] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + k] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(3, 1, 3, 1));
        r[8 + k] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + k] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(3, 1, 3, 1));
    }
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
// their 256-row ones moved to the few-rows nest below; the weight gradients, thousands of rows, still
// run here. The MC x KC block of a (192 x 512 floats, 384 KB; 576 KB at KC 768) sits in L2 and is swept
// once per sliver of b; a KC x NR sliver of b (64-96 KB) is reused by every sliver of a from L1/L2; the
// KC x NC block of b goes through L2/L3. A big KC means C, read and written once per KC slice, moves
// through memory less often. An inner dimension up to KC_WHOLE is done in one slice (K = 768 measured
// 2-5% faster than 512 + 256); longer ones in slices of KC.
constexpr int64_t KC = 512, KC_WHOLE = 768;
constexpr int64_t MC = 16 * MR;   // 192 rows for AVX-512
constexpr int64_t NC = 128 * NR;  // 4096 columns for AVX-512

// A 64-byte aligned scratch buffer per thread, grown on demand and kept for the next call.
real* scratch(int which, int64_t n) {
    struct Buffer {
        std::unique_ptr<real, decltype(&std::free)> data{nullptr, &std::free};
        int64_t size = 0;
    };
    static thread_local Buffer buffers[2];
    Buffer& buf = buffers[which];
    if (buf.size < n) {
        size_t bytes = (n * sizeof(real) + 63) / 64 * 64;
        buf.data.reset(static_cast<real*>(std::aligned_alloc(64, bytes)));
        buf.size = n;
    }
    return buf.data.get();
}

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
            transpose16(r);
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

// The lines pack_slivers(X, by_step, lines, K, first, count, p0, kc) will read, as a Stream: by step,
// kc runs of `count` values, `lines` apart; otherwise `count` runs of kc values, K apart. A run that
// does not start on a line boundary may touch one line more.
Stream lines_of(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count, int64_t p0,
                int64_t kc) {
    Stream s;
    if (count <= 0 || kc <= 0) return s;
    const real* base = by_step ? X + p0 * lines + first : X + first * K + p0;
    int64_t runs = by_step ? kc : count, len = by_step ? count : kc;
    s.base = reinterpret_cast<const char*>(base);
    s.stride = (by_step ? lines : K) * (int64_t)sizeof(real);
    bool aligned = reinterpret_cast<uintptr_t>(base) % 64 == 0 && s.stride % 64 == 0;
    s.per_run = (len * (int64_t)sizeof(real) + 63) / 64 + (aligned ? 0 : 1);
    s.left = runs * s.per_run;
    return s;
}
Stream next_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t rows, int64_t p0, int64_t kc) {
    return lines_of(A, ta, M, K, i0, rows, p0, kc);
}
Stream next_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t cols, int64_t p0, int64_t kc) {
    return lines_of(B, !tb, N, K, j0, cols, p0, kc);
}

// One tile of C, `rows` x `cols` (at most MR x NR) at c: a full tile, a short one, or a ragged edge
// computed aside and copied in.
void tile(int64_t kc, const real* a, const real* b, real* c, int64_t ldc, int64_t rows, int64_t cols, bool add,
          Prefetch& pf) {
    if (rows == MR && cols == NR) {
        micro_kernel(kc, a, b, c, ldc, add, pf);
    } else if (cols == NR && short_tile(rows, kc, a, b, c, ldc, add, pf)) {
        // done: the bottom rows of C, at their own cost
    } else {
        alignas(64) real edge[MR * NR];
        micro_kernel(kc, a, b, edge, NR, false, pf);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
                c[i * ldc + j] = add ? c[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
    }
}

// C[i0:i1, j0:j1] (+)= op(A)[i0:i1, :] @ op(B)[:, j0:j1], on the calling thread: the five loops above.
// The first row block packs each sliver of B just before its first use. While a block computes, the
// micro-kernel prefetches the next sliver of B (first row block only) and the next block of A.
void gemm_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
                bool accumulate, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const int64_t kc_step = K <= KC_WHOLE ? K : KC;
    real* a_pack = scratch(0, MC * kc_step);
    real* b_pack = scratch(1, kc_step * std::min(NC, (j1 - j0 + NR - 1) / NR * NR));
    for (int64_t jc = j0; jc < j1; jc += NC) {
        int64_t nc = std::min(NC, j1 - jc);
        for (int64_t pc = 0; pc < K; pc += kc_step) {
            int64_t kc = std::min(kc_step, K - pc);
            bool add = accumulate || pc > 0;  // the first slice overwrites C unless accumulating
            for (int64_t ic = i0; ic < i1; ic += MC) {
                int64_t mc = std::min(MC, i1 - ic);
                pack_a(A, ta, M, K, ic, mc, pc, kc, a_pack);
                Stream a_next = next_a(A, ta, M, K, ic + MC, std::min(MC, i1 - ic - MC), pc, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const real* b = b_pack + jr * kc;
                    int64_t cols = std::min(NR, nc - jr);
                    Stream b_next;
                    if (ic == i0) {
                        pack_b(B, tb, N, K, jc + jr, cols, pc, kc, b_pack + jr * kc);
                        b_next = next_b(B, tb, N, K, jc + jr + NR, std::min(NR, nc - jr - NR), pc, kc);
                    }
                    Prefetch pf{&b_next, &a_next};
                    for (int64_t ir = 0; ir < mc; ir += MR)
                        tile(kc, a_pack + ir * kc, b, C + (ic + ir) * N + jc + jr, N, std::min(MR, mc - ir), cols,
                             add, pf);
                }
            }
        }
    }
}

// The same product when the thread has few rows (up to FEW_ROWS; GPT-2's 256 tokens per step): A is
// the small operand, so all its rows are packed at once, in chunks of K of at most A_CHUNK_BYTES that
// stay in L2, and B streams past them once, one sliver at a time, in slices of KS steps that fit in
// L1 (KS x NR floats: 32 KB for AVX-512). Each slice of B meets every row of A the moment it is packed,
// and the prefetcher fetches the next slice meanwhile, so B's source is read once, overlapped with the
// arithmetic. Measured on the output layer's forward (256 x 50304 x 768, 2 threads): 74-76% -> 83-85%
// of peak; GPT-2's other 256-row products gained 2-6 points.
constexpr int64_t FEW_ROWS = 24 * MR;  // 288 rows for AVX-512
constexpr int64_t KS = 256;
constexpr int64_t A_CHUNK_BYTES = 1 << 20;

void gemm_few_rows(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
                   bool accumulate, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const int64_t rows = i1 - i0, mpad = (rows + MR - 1) / MR * MR;
    const int64_t chunk = std::max(KS, A_CHUNK_BYTES / (mpad * (int64_t)sizeof(real)) / KS * KS);
    real* a_pack = scratch(0, mpad * std::min(chunk, K));  // chunk steps of A, slice by slice
    real* b_pack = scratch(1, KS * NR);                     // one slice of one sliver of B
    for (int64_t k0 = 0; k0 < K; k0 += chunk) {
        int64_t kn = std::min(chunk, K - k0);
        for (int64_t pc = 0; pc < kn; pc += KS)
            pack_a(A, ta, M, K, i0, rows, k0 + pc, std::min(KS, kn - pc), a_pack + pc * mpad);
        Stream a_next = next_a(A, ta, M, K, i0, rows, k0 + kn, std::min(chunk, K - k0 - kn));
        for (int64_t jr = j0; jr < j1; jr += NR) {
            int64_t cols = std::min(NR, j1 - jr);
            for (int64_t pc = 0; pc < kn; pc += KS) {
                int64_t kc = std::min(KS, kn - pc);
                bool add = accumulate || k0 + pc > 0;
                pack_b(B, tb, N, K, jr, cols, k0 + pc, kc, b_pack);
                // the next slice: the rest of this sliver, else the start of the next one
                int64_t next_pc = pc + KS < kn ? pc + KS : 0, next_jr = pc + KS < kn ? jr : jr + NR;
                Stream b_next = next_b(B, tb, N, K, next_jr, std::min(NR, j1 - next_jr), k0 + next_pc,
                                       std::min(KS, kn - next_pc));
                Prefetch pf{&b_next, &a_next};
                for (int64_t ir = 0; ir < rows; ir += MR)
                    tile(kc, a_pack + pc * mpad + ir * kc, b_pack, C + (i0 + ir) * N + jr, N, std::min(MR, rows - ir),
                         cols, add, pf);
            }
        }
    }
}

// One thread's rectangle of C, by whichever of the two loop nests above suits its shape.
void gemm_rect(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
               bool accumulate, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (i1 - i0 <= FEW_ROWS)
        gemm_few_rows(ta, tb, M, N, K, A, B, C, accumulate, i0, i1, j0, j1);
    else
        gemm_block(ta, tb, M, N, K, A, B, C, accumulate, i0, i1, j0, j1);
}

// Split [0, n) into `parts` nearly equal pieces whose boundaries are multiples of `step`: piece k.
void split(int64_t n, int64_t step, int parts, int k, int64_t& begin, int64_t& end) {
    int64_t units = (n + step - 1) / step;
    begin = std::min(n, units * k / parts * step);
    end = std::min(n, units * (k + 1) / parts * step);
}

}  // namespace

const char* gemm_kernel_name() { return kernel_name; }

void gemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
          real* C, bool accumulate) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate) std::fill(C, C + M * N, real(0));
        return;
    }
    int threads = 1;
#ifdef _OPENMP
    // Below ~2 MFLOP, waking the other threads costs more than it saves; inside another parallel
    // region (batched matmul shares whole matrices out) this call stays on its thread.
    if (2.0 * M * N * K > 2e6 && !omp_in_parallel()) threads = omp_get_max_threads();
#endif
    if (threads == 1) return gemm_rect(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, 0, M, 0, N);

    // Cut C into a rows x cols grid of rectangles, one per thread. Cutting columns makes every thread
    // pack all of A (M x K), cutting rows all of B (K x N): pick the grid that packs the least.
    int grid_rows = 1;
    double best = -1;
    for (int r = 1; r <= threads; ++r) {
        if (threads % r) continue;
        double packed = double(threads / r) * M * K + double(r) * K * N;
        if (best < 0 || packed < best) best = packed, grid_rows = r;
    }
#pragma omp parallel num_threads(threads)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        int rows = nt == threads ? grid_rows : 1, cols = nt / rows;
        int64_t i0, i1, j0, j1;
        split(M, MR, rows, t / cols, i0, i1);
        split(N, NR, cols, t % cols, j0, j1);
        if (t < rows * cols && i0 < i1 && j0 < j1)
            gemm_rect(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, i0, i1, j0, j1);
    }
}

}  // namespace ag
