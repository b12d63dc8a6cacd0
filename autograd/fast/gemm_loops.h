// gemm_loops.h: the loop nests of the packed matrix multiply, shared by gemm (fp32, gemm.cpp) and
// gemm_bf16 (gemm_bf16.cpp). Internal to those two files.
//
// The blocking loops, the thread grid and the prefetching do not depend on what a packed element is,
// so they are written once here, as templates on a Kernel: a struct that names the element format,
// how op(A) and op(B) are packed into it, the micro-kernel that multiplies two packs into a tile of C,
// and the block sizes that suit that micro-kernel. gemm.cpp defines the fp32 Kernel (and the portable
// bf16 one, the fp32 micro-kernel on rounded packs); gemm_bf16.cpp the AVX512_BF16 one.
//
//   struct Kernel {
//       using Packed = ...;                   // a pack's element: real, or uint32_t holding two bf16
//       static constexpr int64_t KPACK;       // steps of K per packed element: 1, or 2 for bf16 pairs
//       static constexpr int64_t MR, NR;      // the register block: a tile of C is MR x NR
//       static constexpr int64_t KC, KC_WHOLE, MC, NC;        // the blocked nest's block sizes
//       static constexpr int64_t FEW_ROWS, KS, A_CHUNK_BYTES;  // the few-rows nest's
//       // op(A) rows [i0, i0 + mc) (op(B) columns [j0, j0 + nc)), steps [p0, p0 + kc), as slivers of
//       // MR rows (NR columns), each steps(kc) x MR (x NR) Packed values; padding past the edges is 0.
//       static void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc,
//                          int64_t p0, int64_t kc, Packed* out);
//       static void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc,
//                          int64_t p0, int64_t kc, Packed* out);
//       // c (MR x NR, row stride ldc) = (add ? c : 0) + a sliver @ b sliver, over kc steps of K
//       static void micro_kernel(int64_t kc, const Packed* a, const Packed* b, real* c, int64_t ldc,
//                                bool add, Prefetch& pf);
//       // the same for a full-width tile of `rows` < MR rows, straight into C; false if it cannot
//       static bool short_tile(int64_t rows, int64_t kc, const Packed* a, const Packed* b, real* c,
//                              int64_t ldc, bool add, Prefetch& pf);
//   };
//
// The loops, in the shape of Goto & van de Geijn (2008), "Anatomy of high-performance matrix
// multiplication", with the loop order of the BLIS papers (Van Zee & van de Geijn 2015):
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
// A product with few rows of C (GPT-2's 256 tokens per step) runs a second loop nest instead, in which
// a thread's rows of A all stay packed and B streams past them once (gemm_few_rows, below). In both,
// the micro-kernel also prefetches what the next pack will read.
//
// Threads (OpenMP) split C into one rectangle each, cutting whichever side makes less repeated
// packing; each thread then runs the loops above on its rectangle with its own buffers, so threads
// never write the same element and need no locks or barriers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "simd.h"

#include "../bf16.h"
#include "../tensor.h"
#include "kernels.h"

namespace ag {
namespace gemm_loops {

// Calls f(std::integral_constant<int, R>{}) for the R in [1, kMax) that equals rows, and returns true;
// false if none does. It turns a run-time row count into the template argument of a micro-kernel
// written for R rows (a short tile at the bottom edge of C), instead of a switch with a case per R.
template <int kMax, int R = 1, class F>
bool with_rows(int64_t rows, F&& f) {
    if constexpr (R >= kMax) {
        return false;
    } else {
        if (rows == R) return f(std::integral_constant<int, R>{}), true;
        return with_rows<kMax, R + 1>(rows, f);
    }
}

// ---- the two ends of an AVX-512 micro-kernel, shared by the fp32 and the bf16 one: an R x 32 tile
// of C held in R x 2 vectors of 16 fp32 accumulators.
#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
// Zero the accumulators, and request the tile's rows of C, so that they arrive while the products run.
template <int R>
inline void start_tile(__m512 (&acc)[R][2], const float* c, int64_t ldc) {
    for (int i = 0; i < R; ++i) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
    }
}
// C's tile (row stride ldc) = (add ? C's tile : 0) + the accumulators.
template <int R>
inline void finish_tile(__m512 (&acc)[R][2], float* c, int64_t ldc, bool add) {
    for (int i = 0; i < R; ++i, c += ldc) {
        if (add) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(c));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(c + 16));
        }
        _mm512_storeu_ps(c, acc[i][0]);
        _mm512_storeu_ps(c + 16, acc[i][1]);
    }
}
#endif

// ---- prefetching the next pack's source.
//
// A pack reads its source from L3 or memory, and one core keeps only about 16 cache misses in flight,
// so a pack that waits for its own lines runs at the memory's latency, not its bandwidth (packing the
// output layer's weight, larger than the caches, took a clear share of that product's time). Instead,
// while the micro-kernel computes on the current packs, it requests the lines the next pack will read,
// one every few steps (a few in flight at a time, never enough to stall it), into L2.
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

// The lines a pack of X will read, as a Stream. X is op(A) or op(B) as stored: by_step (inner index
// major: A^T stored K x M, or B stored K x N) it is kc runs of `count` values, `lines` apart;
// otherwise (line major) `count` runs of kc values, K apart. A run that does not start on a line
// boundary may touch one line more.
inline Stream lines_of(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count,
                       int64_t p0, int64_t kc) {
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
// What pack_a (rows of op(A)) and pack_b (columns of op(B)) will read.
inline Stream next_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t rows, int64_t p0,
                     int64_t kc) {
    return lines_of(A, ta, M, K, i0, rows, p0, kc);
}
inline Stream next_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t cols, int64_t p0,
                     int64_t kc) {
    return lines_of(B, !tb, N, K, j0, cols, p0, kc);
}

// A 64-byte aligned scratch buffer per thread (which = 0 for A's pack, 1 for B's), grown on demand and
// kept for the next call; shared by every Kernel, so a thread holds one pair whatever it multiplies.
inline void* scratch_bytes(int which, int64_t bytes) {
    struct Buffer {
        std::unique_ptr<char, decltype(&std::free)> data{nullptr, &std::free};
        int64_t size = 0;
    };
    static thread_local Buffer buffers[2];
    Buffer& buf = buffers[which];
    if (buf.size < bytes) {
        buf.data.reset(static_cast<char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
        buf.size = bytes;
    }
    return buf.data.get();
}
template <class T>
T* scratch(int which, int64_t n) {
    return static_cast<T*>(scratch_bytes(which, n * (int64_t)sizeof(T)));
}

// Packed elements that kc steps of K take in one line of a sliver (kc, or kc / 2 rounded up for pairs).
template <class Kernel>
constexpr int64_t steps(int64_t kc) {
    return (kc + Kernel::KPACK - 1) / Kernel::KPACK;
}

// One tile of C, `rows` x `cols` (at most MR x NR) at c: a full tile, a short one, or a ragged edge
// computed aside and copied in.
template <class Kernel>
void tile(int64_t kc, const typename Kernel::Packed* a, const typename Kernel::Packed* b, real* c, int64_t ldc,
          int64_t rows, int64_t cols, bool add, Prefetch& pf) {
    constexpr int64_t MR = Kernel::MR, NR = Kernel::NR;
    if (rows == MR && cols == NR) {
        Kernel::micro_kernel(kc, a, b, c, ldc, add, pf);
    } else if (cols == NR && Kernel::short_tile(rows, kc, a, b, c, ldc, add, pf)) {
        // done: the bottom rows of C, at their own cost
    } else {
        alignas(64) real edge[MR * NR];
        Kernel::micro_kernel(kc, a, b, edge, NR, false, pf);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
                c[i * ldc + j] = add ? c[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
    }
}

// The epilogue (kernels.h) on a finished tile of C, rows x cols at c (row stride ldc), whose first
// column is column j of C: it is in L1, just stored by the micro-kernel, so this costs a few vector
// instructions per row where a pass after the product would read and write all of C in memory.
inline bool any(const Epilogue& then) { return then.bias || then.round_bf16; }
inline void finish(const Epilogue& then, real* c, int64_t ldc, int64_t rows, int64_t cols, int64_t j) {
    for (int64_t i = 0; i < rows; ++i, c += ldc) {
        if (then.bias) {
            const real* b = then.bias + j;
#pragma omp simd
            for (int64_t n = 0; n < cols; ++n) c[n] += b[n];
        }
        if (then.round_bf16) round_bf16_span(c, c, cols);
    }
}

// C[i0:i1, j0:j1] (+)= op(A)[i0:i1, :] @ op(B)[:, j0:j1], on the calling thread: the five loops above.
// The first row block packs each sliver of B just before its first use. While a block computes, the
// micro-kernel prefetches the next sliver of B (first row block only) and the next block of A.
template <class Kernel>
void gemm_block(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
                bool accumulate, const Epilogue& then, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    using Packed = typename Kernel::Packed;
    constexpr int64_t MR = Kernel::MR, NR = Kernel::NR, MC = Kernel::MC, NC = Kernel::NC;
    const int64_t kc_step = K <= Kernel::KC_WHOLE ? K : Kernel::KC;
    const int64_t kc_packed = steps<Kernel>(kc_step);  // a line's packed length in a full slice
    Packed* a_pack = scratch<Packed>(0, MC * kc_packed);
    Packed* b_pack = scratch<Packed>(1, kc_packed * std::min(NC, (j1 - j0 + NR - 1) / NR * NR));
    for (int64_t jc = j0; jc < j1; jc += NC) {
        int64_t nc = std::min(NC, j1 - jc);
        for (int64_t pc = 0; pc < K; pc += kc_step) {
            int64_t kc = std::min(kc_step, K - pc), kp = steps<Kernel>(kc);
            bool add = accumulate || pc > 0;  // the first slice overwrites C unless accumulating
            bool last = pc + kc == K && any(then);
            for (int64_t ic = i0; ic < i1; ic += MC) {
                int64_t mc = std::min(MC, i1 - ic);
                Kernel::pack_a(A, ta, M, K, ic, mc, pc, kc, a_pack);
                Stream a_next = next_a(A, ta, M, K, ic + MC, std::min(MC, i1 - ic - MC), pc, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const Packed* b = b_pack + jr * kp;
                    int64_t cols = std::min(NR, nc - jr);
                    Stream b_next;
                    if (ic == i0) {
                        Kernel::pack_b(B, tb, N, K, jc + jr, cols, pc, kc, b_pack + jr * kp);
                        b_next = next_b(B, tb, N, K, jc + jr + NR, std::min(NR, nc - jr - NR), pc, kc);
                    }
                    Prefetch pf{&b_next, &a_next};
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        real* c = C + (ic + ir) * N + jc + jr;
                        tile<Kernel>(kc, a_pack + ir * kp, b, c, N, std::min(MR, mc - ir), cols, add, pf);
                        if (last) finish(then, c, N, std::min(MR, mc - ir), cols, jc + jr);
                    }
                }
            }
        }
    }
}

// The same product when it has few rows (up to FEW_ROWS; GPT-2's 256 tokens per step): A is
// the small operand, so all its rows are packed at once, in chunks of K of at most A_CHUNK_BYTES that
// stay in L2, and B streams past them once, one sliver at a time, in slices of KS steps that fit in
// L1. Each slice of B meets every row of A the moment it is packed, and the prefetcher fetches the
// next slice meanwhile, so B's source is read once, overlapped with the arithmetic (in fp32 it measured
// faster than the blocked nest on every one of GPT-2's 256-row products). KS and the chunk are
// multiples of KPACK, so only the last slice of K can end in half a pair.
template <class Kernel>
void gemm_few_rows(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
                   bool accumulate, const Epilogue& then, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    using Packed = typename Kernel::Packed;
    constexpr int64_t MR = Kernel::MR, NR = Kernel::NR, KS = Kernel::KS;
    static_assert(KS % Kernel::KPACK == 0, "slices of B must hold whole pairs");
    const int64_t rows = i1 - i0, mpad = (rows + MR - 1) / MR * MR;
    const int64_t chunk =
        std::max(KS, Kernel::A_CHUNK_BYTES * Kernel::KPACK / (mpad * (int64_t)sizeof(Packed)) / KS * KS);
    Packed* a_pack = scratch<Packed>(0, mpad * steps<Kernel>(std::min(chunk, K)));  // chunk steps of A
    Packed* b_pack = scratch<Packed>(1, steps<Kernel>(KS) * NR);                    // one slice of B
    for (int64_t k0 = 0; k0 < K; k0 += chunk) {
        int64_t kn = std::min(chunk, K - k0);
        for (int64_t pc = 0; pc < kn; pc += KS)
            Kernel::pack_a(A, ta, M, K, i0, rows, k0 + pc, std::min(KS, kn - pc), a_pack + steps<Kernel>(pc) * mpad);
        Stream a_next = next_a(A, ta, M, K, i0, rows, k0 + kn, std::min(chunk, K - k0 - kn));
        for (int64_t jr = j0; jr < j1; jr += NR) {
            int64_t cols = std::min(NR, j1 - jr);
            for (int64_t pc = 0; pc < kn; pc += KS) {
                int64_t kc = std::min(KS, kn - pc);
                bool add = accumulate || k0 + pc > 0;
                bool last = k0 + pc + kc == K && any(then);
                Kernel::pack_b(B, tb, N, K, jr, cols, k0 + pc, kc, b_pack);
                // the next slice: the rest of this sliver, else the start of the next one
                int64_t next_pc = pc + KS < kn ? pc + KS : 0, next_jr = pc + KS < kn ? jr : jr + NR;
                Stream b_next = next_b(B, tb, N, K, next_jr, std::min(NR, j1 - next_jr), k0 + next_pc,
                                       std::min(KS, kn - next_pc));
                Prefetch pf{&b_next, &a_next};
                const Packed* a_slice = a_pack + steps<Kernel>(pc) * mpad;
                for (int64_t ir = 0; ir < rows; ir += MR) {
                    real* c = C + (i0 + ir) * N + jr;
                    tile<Kernel>(kc, a_slice + ir * steps<Kernel>(kc), b_pack, c, N, std::min(MR, rows - ir), cols,
                                 add, pf);
                    if (last) finish(then, c, N, std::min(MR, rows - ir), cols, jr);
                }
            }
        }
    }
}

// One thread's rectangle of C, by whichever of the two loop nests above suits the product's shape.
// The choice is the whole product's (M rows), not the rectangle's: the nests cut K into different
// slices (KC or all of K, against KS) and C adds up slice by slice, so a product whose threads chose by
// their own rows would round differently at different thread counts (a 2048-row product split into
// 256-row rectangles at 8 threads, for one). Measured on 1 thread, at the rectangles' shapes the two
// nests run within a few percent of each other.
template <class Kernel>
void gemm_rect(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const real* A, const real* B, real* C,
               bool accumulate, const Epilogue& then, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (M <= Kernel::FEW_ROWS)
        gemm_few_rows<Kernel>(ta, tb, M, N, K, A, B, C, accumulate, then, i0, i1, j0, j1);
    else
        gemm_block<Kernel>(ta, tb, M, N, K, A, B, C, accumulate, then, i0, i1, j0, j1);
}

// Split [0, n) into `parts` nearly equal pieces whose boundaries are multiples of `step`: piece k.
inline void split(int64_t n, int64_t step, int parts, int k, int64_t& begin, int64_t& end) {
    int64_t units = (n + step - 1) / step;
    begin = std::min(n, units * k / parts * step);
    end = std::min(n, units * (k + 1) / parts * step);
}

// The whole product, C (M x N) (+)= op(A) @ op(B), then the epilogue, on a grid of threads: what gemm
// and gemm_bf16 call.
template <class Kernel>
void gemm_threaded(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                   const real* B, real* C, bool accumulate, const Epilogue& then) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate) std::fill(C, C + M * N, real(0));
        if (any(then)) finish(then, C, N, M, N, 0);
        return;
    }
    int threads = 1;
#ifdef _OPENMP
    // Below ~2 MFLOP, waking the other threads costs more than it saves; inside another parallel
    // region (batched matmul shares whole matrices out) this call stays on its thread.
    if (2.0 * M * N * K > 2e6 && !omp_in_parallel()) threads = omp_get_max_threads();
#endif
    if (threads == 1)
        return gemm_rect<Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then, 0, M, 0, N);

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
        split(M, Kernel::MR, rows, t / cols, i0, i1);
        split(N, Kernel::NR, cols, t % cols, j0, j1);
        if (t < rows * cols && i0 < i1 && j0 < j1)
            gemm_rect<Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then, i0, i1, j0, j1);
    }
}

#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
// Transpose a 16 x 16 block of 32-bit values held in 16 registers (r[i] = row i) in place, so that
// r[q] = column q: interleave 32-bit pairs of rows, then 64-bit pairs, then shuffle 128-bit quarters
// between registers. The fp32 packs move floats with it, the bf16 packs pairs of bf16.
inline void transpose16(__m512 r[16]) {
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
#endif

}  // namespace gemm_loops
}  // namespace ag
