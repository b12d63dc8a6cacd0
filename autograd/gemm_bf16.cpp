// gemm_bf16.cpp: matrix multiply on bf16 operands held in float memory, with fp32 sums.
//
// C (+)= round_bf16(op(A)) @ round_bf16(op(B)). The model calls it on tensors that are bf16 already
// (see bf16.h), so the rounding is a no-op there; for any other input it rounds exactly as bf16.h does.
// A product of two bf16 numbers is exact in fp32 (8 + 8 significant bits, of 24), so this differs from
// the fp32 gemm on the same rounded inputs only in the order of the fp32 additions.
//
// Three versions:
//   gemm_bf16_reference  plain loops, products summed in double: what the tests compare against;
//   gemm_bf16_portable   (gemm.cpp) the fp32 gemm on packs rounded to bf16: any machine, any build;
//   the AVX512_BF16 path (below) packs the operands as pairs of bf16 for vdpbf16ps, which multiplies
//                        16 lanes x 2 pairs and adds both products into fp32 lanes in one instruction.
// gemm_bf16 takes the last where the build has the instruction (-march with AVX512_BF16, float build),
// else the portable one. The loop nests, the thread grid and the prefetching are gemm.cpp's, shared
// through gemm_loops.h: this file supplies only the bf16 Kernel (its packing, micro-kernel and block
// sizes), which is why it is a file of its own.
#include <algorithm>
#include <cstring>

#include "simd.h"

#include "bf16.h"
#include "gemm_loops.h"
#include "kernels.h"

namespace ag {

// ---------------------------------------------------------------------------------------------------
// The reference: C[i][j] (+)= sum_p round_bf16(op(A)[i][p]) * round_bf16(op(B)[p][j]), summed in double.

void gemm_bf16_reference(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                         const real* B, real* C, bool accumulate) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < K; ++p) {
                real a = transpose_a ? A[p * M + i] : A[i * K + p];
                real b = transpose_b ? B[j * K + p] : B[p * N + j];
                sum += (double)round_bf16(a) * (double)round_bf16(b);
            }
            C[i * N + j] = (real)(accumulate ? C[i * N + j] + sum : sum);
        }
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && !defined(AUTOGRAD_DOUBLE)

namespace {

using gemm_loops::Prefetch;

// ---- rounding, in the pack: bf16.h's bf16_bits on 16 floats at once, in integer arithmetic.
//
// Not vcvtne2ps2bf16: it treats subnormal inputs as zero, and round_bf16 does not. (vdpbf16ps itself
// then treats bf16 subnormal inputs as zero, as the fp32 path does under ./train's flush-to-zero mode;
// only the pack's rounding has to be round_bf16's.)
// Returns each value's bf16 in the top half of its 32-bit lane; the bottom half is left over, and the
// callers below take only the top halves.
struct Rounder {
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x400000);
    __m512i operator()(__m512 x) const {
        const __m512i u = _mm512_castps_si512(x);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, half), lsb);  // to nearest, ties to even
        const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        return _mm512_mask_or_epi32(r, nan, u, quiet);  // NaN: made quiet, sign and top payload kept
    }
};

// The top halves of two vectors' lanes (x = values 0..15, y = 16..31) as 16 pairs: 32-bit word q =
// top(v[2q]) | top(v[2q+1]) << 16.
inline __m512i pairs_of(__m512i x, __m512i y) {
    const __m512i odd_halves = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31,
                                                29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_epi16(x, odd_halves, y);
}

// The top halves of x and y, lane by lane, as pairs: word j = top(x[j]) | top(y[j]) << 16.
inline __m512i interleave_tops(__m512i x, __m512i y) {
    return _mm512_mask_blend_epi16((__mmask32)0xaaaaaaaau, _mm512_srli_epi32(x, 16), y);
}

inline __mmask16 first_lanes(int64_t n) { return (__mmask16)((1u << std::clamp<int64_t>(n, 0, 16)) - 1); }

// ---- packing: both operands as slivers of W lines (W = MR rows of op(A), or NR columns of op(B)), one
// 32-bit word per line per pair of steps: sliver s, pair q holds, for line l in [first + s*W, + W),
//   word[q * W + l] = bf16(X_l[p0 + 2q]) | bf16(X_l[p0 + 2q + 1]) << 16,
// so op(A)'s pack is MR rows x (kc/2) pairs, which the micro-kernel broadcasts a word at a time, and
// op(B)'s is [kc/2][NR][2], one 512-bit load holding 16 columns x 2 steps. An odd kc pads the last pair
// with 0, lines past `count` are 0. As in the fp32 pack, X is stored one of two ways:
//   by_step (A^T stored K x M, or B stored K x N): two consecutive rows of X give a pair's W words;
//   line major (A stored M x K, or B^T stored N x K): 32 consecutive values of a line give it 16 pairs,
//     and 16 lines' pairs are transposed in registers into 16 pairs' lines.
// Both orders read each line of X only 128 bytes at a time (by step: a row, then rows far away), too
// little for the hardware prefetcher to run ahead, so the pack requests the lines it will read a few
// steps on itself: the source is often in L3 or memory (the few-rows nest packs all of A before its
// first product, and the micro-kernel's prefetch of B's next slice into L2 does not always land).
template <int64_t W>
void pack_pairs(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count, int64_t p0,
                int64_t kc, uint32_t* out) {
    constexpr int64_t V = (W + 15) / 16;  // vectors of 16 words per pair step
    const Rounder round;
    const int64_t kq = (kc + 1) / 2;
    for (int64_t s = 0; s < count; s += W, out += W * kq) {
        const int64_t n = std::min(W, count - s);
        if (by_step) {
            __mmask16 valid[V], lanes[V];
            for (int64_t v = 0; v < V; ++v) valid[v] = first_lanes(n - 16 * v), lanes[v] = first_lanes(W - 16 * v);
            for (int64_t q = 0; q < kq; ++q) {
                const real* even = X + (p0 + 2 * q) * lines + first + s;
                const real* odd = 2 * q + 1 < kc ? even + lines : nullptr;
                for (int64_t v = 0; v < V; ++v) {  // the rows 4 pairs on (past X's end, harmless: never faults)
                    _mm_prefetch((const char*)(even + 8 * lines + 16 * v), _MM_HINT_T0);
                    _mm_prefetch((const char*)(even + 9 * lines + 16 * v), _MM_HINT_T0);
                }
                for (int64_t v = 0; v < V; ++v) {
                    __m512i lo = round(_mm512_maskz_loadu_ps(valid[v], even + 16 * v));
                    __m512i hi = odd ? round(_mm512_maskz_loadu_ps(valid[v], odd + 16 * v)) : _mm512_setzero_si512();
                    _mm512_mask_storeu_epi32(out + q * W + 16 * v, lanes[v], interleave_tops(lo, hi));
                }
            }
        } else {
            const real* src = X + (first + s) * K + p0;
            for (int64_t j0 = 0; j0 < W; j0 += 16) {
                const __mmask16 lanes = first_lanes(W - j0);
                for (int64_t q0 = 0; q0 < kq; q0 += 16) {  // 16 pairs: 32 steps of each of 16 lines
                    const int64_t left = kc - 2 * q0;
                    const __mmask16 along0 = first_lanes(left), along1 = first_lanes(left - 16);
                    __m512 r[16];
                    for (int64_t i = 0; i < 16; ++i) {
                        const bool real_line = j0 + i < n;  // else a zero line, loaded from a real one
                        const real* line = src + std::min(j0 + i, n - 1) * K + 2 * q0;
                        _mm_prefetch((const char*)(line + 32), _MM_HINT_T0);
                        _mm_prefetch((const char*)(line + 48), _MM_HINT_T0);
                        __m512i x = round(_mm512_maskz_loadu_ps(real_line ? along0 : 0, line));
                        __m512i y = round(_mm512_maskz_loadu_ps(real_line ? along1 : 0, line + 16));
                        r[i] = _mm512_castsi512_ps(pairs_of(x, y));
                    }
                    gemm_loops::transpose16(r);
                    for (int64_t q = 0; q < std::min<int64_t>(16, kq - q0); ++q)
                        _mm512_mask_storeu_ps(out + (q0 + q) * W + j0, lanes, r[q]);
                }
            }
        }
    }
}

// ---- the micro-kernel: MR x NR of C in MR x NR/16 fp32 accumulators, each vdpbf16ps two steps of K.
//
// Each pair step loads NR/16 vectors of B's pairs and, for each of the MR rows, broadcasts A's pair
// word and does NR/16 vdpbf16ps. The instruction's latency is several cycles and two can start per
// cycle, so it needs at least a dozen independent accumulators: 12 x 32 gives 24, plus 2 B vectors and
// 1 broadcast, within the 32 registers. R rows of the tile (R = MR, or fewer at the bottom edge of C);
// a's slivers are still MR wide. Every other pair step (as often, per step of K, as the fp32 kernel)
// requests one line for the next pack.
constexpr int64_t MR = 12, NR = 32;

template <int R>
void micro_kernel_rows(int64_t kc, const uint32_t* __restrict a, const uint32_t* __restrict b, float* __restrict c,
                       int64_t ldc, bool add, Prefetch& pf) {
    __m512 acc[R][2];
    gemm_loops::start_tile<R>(acc, c, ldc);
    const int64_t kq = (kc + 1) / 2;
    for (int64_t q = 0; q < kq; ++q, a += MR, b += NR) {
        if ((q & 1) == 0) pf.one();
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
        for (int i = 0; i < R; ++i) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    gemm_loops::finish_tile<R>(acc, c, ldc, add);
}

// What gemm_loops.h runs for bf16 pairs. The block sizes are the fp32 kernel's in bytes: a pack's element
// now holds two steps of K, so a slice of K twice as long fits the same caches (KS = 512 measured at
// least as fast as 256 on GPT-2's 256-row products; their blocked products, the weight gradients, have
// K = 256 and never reach KC).
struct Bf16Kernel {
    using Packed = uint32_t;
    static constexpr int64_t KPACK = 2;
    static constexpr int64_t MR = ag::MR, NR = ag::NR;
    static constexpr int64_t KC = 1024, KC_WHOLE = 1536, MC = 16 * MR, NC = 128 * NR;
    static constexpr int64_t FEW_ROWS = 24 * MR, KS = 512, A_CHUNK_BYTES = 1 << 20;
    static void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0,
                       int64_t kc, uint32_t* out) {
        pack_pairs<MR>(A, ta, M, K, i0, mc, p0, kc, out);
    }
    static void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0,
                       int64_t kc, uint32_t* out) {
        pack_pairs<NR>(B, !tb, N, K, j0, nc, p0, kc, out);
    }
    static void micro_kernel(int64_t kc, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool add,
                             Prefetch& pf) {
        micro_kernel_rows<MR>(kc, a, b, c, ldc, add, pf);
    }
    // A full-width tile of fewer than MR rows, written straight into C.
    static bool short_tile(int64_t rows, int64_t kc, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                           bool add, Prefetch& pf) {
        return gemm_loops::with_rows<MR>(rows, [&](auto r) {
            micro_kernel_rows<decltype(r)::value>(kc, a, b, c, ldc, add, pf);
        });
    }
};

}  // namespace

// Which path is faster depends on the CPU, not only on the instruction set: AMD's Zen 4 and 5 run
// vdpbf16ps at the fp32 FMA's instruction rate (twice its multiply-adds), while Intel's CPUs with AMX
// (Sapphire Rapids on) run it at a fraction of that rate, below the fp32 FMA's FLOP rate (`make bench`
// prints both peaks). Their fast bf16 path is AMX's tiles, which this file does not use yet; until it
// does, they take the portable path, the fp32 FMA on the same rounded operands.
#if defined(__AMX_BF16__)
constexpr bool kUseDotProduct = false;
#else
constexpr bool kUseDotProduct = true;
#endif

const char* gemm_bf16_kernel_name() {
    return kUseDotProduct ? "AVX512_BF16 (vdpbf16ps) 12x32"
                          : "portable (AMX CPU: its vdpbf16ps is slower)";
}

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate) {
    if (kUseDotProduct)
        gemm_loops::gemm_threaded<Bf16Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate);
    else
        gemm_bf16_portable(transpose_a, transpose_b, M, N, K, A, B, C, accumulate);
}

void gemm_bf16_dot_product(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                           const real* B, real* C, bool accumulate) {
    gemm_loops::gemm_threaded<Bf16Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate);
}

#else  // no bf16 dot product in this build (or the double build): the portable path

const char* gemm_bf16_kernel_name() { return "portable (fp32 FMA on bf16-rounded operands)"; }

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate) {
    gemm_bf16_portable(transpose_a, transpose_b, M, N, K, A, B, C, accumulate);
}

#endif

}  // namespace ag
