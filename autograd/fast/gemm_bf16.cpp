// gemm_bf16.cpp: matrix multiply on bf16 operands held in float memory, with fp32 sums.
//
// C (+)= round_bf16(op(A)) @ round_bf16(op(B)). The model calls it on tensors that are bf16 already
// (see bf16.h), so the rounding is a no-op there; for any other input it rounds exactly as bf16.h does.
// A product of two bf16 numbers is exact in fp32 (8 + 8 significant bits, of 24), so this differs from
// the fp32 gemm on the same rounded inputs only in the order of the fp32 additions.
//
// Four versions:
//   gemm_bf16_reference  plain loops, products summed in double: what the tests compare against;
//   gemm_bf16_portable   (gemm.cpp) the fp32 gemm on packs rounded to bf16: any machine, any build;
//   the AVX512_BF16 path (below) packs the operands as pairs of bf16 for vdpbf16ps, which multiplies
//                        16 lanes x 2 pairs and adds both products into fp32 lanes in one instruction;
//   the AMX path         (below) the same pairs in tiles for tdpbf16ps, a 16 x 32 by 32 x 16 product in
//                        one instruction (Intel, Sapphire Rapids on).
// gemm_bf16 takes the fastest the build and the CPU have (bf16_path, at the end). The loop nests, the
// thread grid and the prefetching are gemm.cpp's, shared through gemm_loops.h: this file supplies only
// the two bf16 Kernels (their packing, micro-kernels and block sizes), which is why it is a file of its own.
#include <algorithm>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "simd.h"

#include "../bf16.h"
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
// Returns each value's bf16 in the top half of its 32-bit lane (simd.h); the bottom half is left over,
// and the callers below take only the top halves.
inline __m512i rounded(__m512 x) { return bf16_in_top_halves(x); }

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
// PAIRS > 1 (the AMX kernel's op(B), whose tiles hold 16 pair steps) rounds each sliver's pair steps up
// to a multiple of PAIRS, the added ones 0.
template <int64_t W, int64_t PAIRS = 1>
void pack_pairs(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count, int64_t p0,
                int64_t kc, uint32_t* out) {
    constexpr int64_t V = (W + 15) / 16;  // vectors of 16 words per pair step
    const int64_t kq = (kc + 1) / 2, kq_stored = (kq + PAIRS - 1) / PAIRS * PAIRS;
    for (int64_t s = 0; s < count; s += W, out += W * kq_stored) {
        const int64_t n = std::min(W, count - s);
        if (kq_stored > kq) std::memset(out + kq * W, 0, (kq_stored - kq) * W * sizeof(uint32_t));
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
                    __m512i lo = rounded(_mm512_maskz_loadu_ps(valid[v], even + 16 * v));
                    __m512i hi = odd ? rounded(_mm512_maskz_loadu_ps(valid[v], odd + 16 * v)) : _mm512_setzero_si512();
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
                        __m512i x = rounded(_mm512_maskz_loadu_ps(real_line ? along0 : 0, line));
                        __m512i y = rounded(_mm512_maskz_loadu_ps(real_line ? along1 : 0, line + 16));
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

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
// ---- AMX: Intel's tile unit (Sapphire Rapids on). Eight tile registers of up to 16 rows x 64 bytes;
// tdpbf16ps C += A B takes a 16 x 16 fp32 tile C, a 16-row tile A of 16 bf16 pairs per row (32 steps of K)
// and a tile B of 16 pair steps x 16 columns, each row holding the 16 columns' pairs: a 16 x 32 by 32 x 16
// product in one instruction. The micro-kernel holds a 32 x 32 tile of C in four tiles, loads two tiles
// of A and two of B per 32 steps of K, and does four products:
//   tmm0 = C[0:16, 0:16]   tmm1 = C[0:16, 16:32]   tmm4 = A rows 0:16    tmm6 = B columns 0:16
//   tmm2 = C[16:32, 0:16]  tmm3 = C[16:32, 16:32]  tmm5 = A rows 16:32   tmm7 = B columns 16:32
// Its packed element is 64 bytes, a tile row: 16 pairs of one line of op(A) (32 steps of K), so a sliver
// of A is, per 32 steps, 32 such rows, and two tile loads at a stride of 64 bytes take it. A sliver of B is
// pack_pairs<32>'s (pair step q: the 32 columns' words), its pair steps rounded up to 16 per block, which
// two tile loads at a stride of 128 bytes split into the two column halves.
struct alignas(64) TileRow {
    uint32_t pair[16];
};

// Linux hands out the tile registers' 8 KB of state only to a process that asks for it (arch_prctl,
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); without it the first tile instruction faults. Asked once.
bool amx_permitted() {
    static const bool granted = [] {
#if defined(__linux__) && defined(SYS_arch_prctl)
        constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
        return false;
#endif
    }();
    return granted;
}

// Every tile 16 rows x 64 bytes (palette 1). The configuration belongs to each thread, so each thread
// loads it before its first product, and keeps it: nothing else in the program uses the tiles.
void configure_tiles() {
    static thread_local bool configured = false;
    if (configured) return;
    struct alignas(64) {
        uint8_t palette = 1, start_row = 0, reserved[14] = {};
        uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
        uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
    } config;
    _tile_loadconfig(&config);
    configured = true;
}

// Lines [first, first + count) of X (rows of op(A)), steps [p0, p0 + kc), as slivers of 32 lines: for each
// block of 32 steps, 32 TileRows (line l's pairs of those steps), lines past count and steps past kc 0.
// X stored line major (A, M x K): a line's 32 values are two loads, paired in a register. Stored by step
// (A^T, K x M): pair step q of 16 lines comes from two rows of X, and 16 pair steps of 16 lines are then
// transposed in registers into the 16 lines' TileRows.
void pack_tile_rows(const real* X, bool by_step, int64_t lines, int64_t K, int64_t first, int64_t count,
                    int64_t p0, int64_t kc, TileRow* out) {
    constexpr int64_t W = 32;
    const int64_t blocks = (kc + 31) / 32;
    for (int64_t s = 0; s < count; s += W, out += W * blocks) {
        const int64_t n = std::min(W, count - s);
        for (int64_t kb = 0; kb < blocks; ++kb) {
            const int64_t left = kc - 32 * kb;  // steps of this block inside kc
            TileRow* block = out + kb * W;
            if (!by_step) {
                const __mmask16 along0 = first_lanes(left), along1 = first_lanes(left - 16);
                for (int64_t l = 0; l < W; ++l) {
                    if (l >= n) {
                        _mm512_store_si512(block + l, _mm512_setzero_si512());
                        continue;
                    }
                    const real* line = X + (first + s + l) * K + p0 + 32 * kb;
                    _mm_prefetch((const char*)(line + 32), _MM_HINT_T0);
                    _mm_prefetch((const char*)(line + 48), _MM_HINT_T0);
                    __m512i x = rounded(_mm512_maskz_loadu_ps(along0, line));
                    __m512i y = rounded(_mm512_maskz_loadu_ps(along1, line + 16));
                    _mm512_store_si512(block + l, pairs_of(x, y));
                }
            } else {
                for (int64_t g = 0; g < W; g += 16) {
                    const __mmask16 valid = first_lanes(n - g);
                    __m512 r[16];
                    for (int64_t q = 0; q < 16; ++q) {  // pair step q: steps 2q, 2q + 1 of the block
                        const int64_t step = 32 * kb + 2 * q;
                        const real* even = X + (p0 + step) * lines + first + s + g;
                        _mm_prefetch((const char*)(even + 32 * lines), _MM_HINT_T0);
                        __m512i lo = step < kc ? rounded(_mm512_maskz_loadu_ps(valid, even)) : _mm512_setzero_si512();
                        __m512i hi = step + 1 < kc ? rounded(_mm512_maskz_loadu_ps(valid, even + lines))
                                                   : _mm512_setzero_si512();
                        r[q] = _mm512_castsi512_ps(interleave_tops(lo, hi));
                    }
                    gemm_loops::transpose16(r);  // r[l] = line g + l's 16 pairs
                    for (int64_t l = 0; l < 16; ++l) _mm512_store_si512(block + g + l, _mm512_castps_si512(r[l]));
                }
            }
        }
    }
}

// C's 32 x 32 tile (row stride ldc) = (add ? C : 0) + a sliver @ b sliver over kc steps. Eight prefetches
// of the next packs' lines per block of 32 steps: a block takes about as long as 32 steps of the fp32
// kernel take for 4, and the next slice of B (its source in memory, for GPT-2's weights) must arrive
// before it is packed.
void amx_micro_kernel(int64_t kc, const TileRow* a, const TileRow* b, float* c, int64_t ldc, bool add, Prefetch& pf) {
    configure_tiles();
    const int64_t row_bytes = ldc * (int64_t)sizeof(float), blocks = (kc + 31) / 32;
    float* c_low = c + 16 * ldc;
    if (add) {
        _tile_loadd(0, c, row_bytes);
        _tile_loadd(1, c + 16, row_bytes);
        _tile_loadd(2, c_low, row_bytes);
        _tile_loadd(3, c_low + 16, row_bytes);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t kb = 0; kb < blocks; ++kb, a += 32, b += 32) {
        for (int i = 0; i < 8; ++i) pf.one();
        _tile_loadd(4, a, 64);
        _tile_loadd(5, a + 16, 64);
        _tile_loadd(6, b, 128);
        _tile_loadd(7, b->pair + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, row_bytes);
    _tile_stored(1, c + 16, row_bytes);
    _tile_stored(2, c_low, row_bytes);
    _tile_stored(3, c_low + 16, row_bytes);
}

// What gemm_loops.h runs with AMX. A packed element is 32 steps of K, so KS and KC stay multiples of it;
// the block sizes are the vdpbf16ps kernel's in bytes. A tile of C shorter or narrower than 32 x 32 (the
// edges) is computed aside and copied in by gemm_loops' tile().
struct AmxKernel {
    using Packed = TileRow;
    static constexpr int64_t KPACK = 32;
    static constexpr int64_t MR = 32, NR = 32;
    static constexpr int64_t KC = 1024, KC_WHOLE = 1536, MC = 6 * MR, NC = 128 * NR;
    static constexpr int64_t FEW_ROWS = 9 * MR, KS = 512, A_CHUNK_BYTES = 1 << 20;
    static void pack_a(const real* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t p0,
                       int64_t kc, TileRow* out) {
        pack_tile_rows(A, ta, M, K, i0, mc, p0, kc, out);
    }
    static void pack_b(const real* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t nc, int64_t p0,
                       int64_t kc, TileRow* out) {
        pack_pairs<NR, 16>(B, !tb, N, K, j0, nc, p0, kc, out->pair);
    }
    static void micro_kernel(int64_t kc, const TileRow* a, const TileRow* b, float* c, int64_t ldc, bool add,
                             Prefetch& pf) {
        amx_micro_kernel(kc, a, b, c, ldc, add, pf);
    }
    static bool short_tile(int64_t, int64_t, const TileRow*, const TileRow*, float*, int64_t, bool, Prefetch&) {
        return false;
    }
};
static_assert(sizeof(TileRow) == 64 && AmxKernel::KS % AmxKernel::KPACK == 0 && AmxKernel::KC % AmxKernel::KPACK == 0,
              "a packed element is one 64-byte tile row, and slices hold whole ones");
#endif  // AMX

}  // namespace

// Which path is fastest depends on the CPU, not only on the instruction set: AMD's Zen 4 and 5 run
// vdpbf16ps at the fp32 FMA's instruction rate (twice its multiply-adds), while Intel's CPUs with AMX
// (Sapphire Rapids on) run it at a fraction of that rate, below the fp32 FMA's FLOP rate (`make bench`
// prints both peaks); there the AMX tiles are the fast path, and where the operating system refuses
// them, the portable path (the fp32 FMA on the same rounded operands) is the faster of the other two.
enum class Path { dot_product, amx, portable };
Path bf16_path() {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    return amx_permitted() ? Path::amx : Path::portable;
#else
    return Path::dot_product;
#endif
}

const char* gemm_bf16_kernel_name() {
    switch (bf16_path()) {
        case Path::amx: return "AMX (tdpbf16ps) 32x32";
        case Path::dot_product: return "AVX512_BF16 (vdpbf16ps) 12x32";
        default: return "portable (AMX refused by the OS; vdpbf16ps is slower here)";
    }
}

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate, const Epilogue& then) {
    switch (bf16_path()) {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
        case Path::amx:
            return gemm_loops::gemm_threaded<AmxKernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
#endif
        case Path::dot_product:
            return gemm_loops::gemm_threaded<Bf16Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
        default:
            return gemm_bf16_portable(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
    }
}

void gemm_bf16_dot_product(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                           const real* B, real* C, bool accumulate, const Epilogue& then) {
    gemm_loops::gemm_threaded<Bf16Kernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
}
void gemm_bf16_dot_product(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A,
                           const real* B, real* C, bool accumulate) {
    gemm_bf16_dot_product(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, Epilogue{});
}

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
bool gemm_bf16_amx_tiles() {
    if (!amx_permitted()) return false;
    configure_tiles();
    return true;
}

bool gemm_bf16_amx(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                   real* C, bool accumulate, const Epilogue& then) {
    if (!amx_permitted()) return false;
    gemm_loops::gemm_threaded<AmxKernel>(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
    return true;
}
bool gemm_bf16_amx(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
                   real* C, bool accumulate) {
    return gemm_bf16_amx(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, Epilogue{});
}
#endif

#else  // no bf16 dot product in this build (or the double build): the portable path

const char* gemm_bf16_kernel_name() { return "portable (fp32 FMA on bf16-rounded operands)"; }

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate, const Epilogue& then) {
    gemm_bf16_portable(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, then);
}

#endif

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, const real* A, const real* B,
               real* C, bool accumulate) {
    gemm_bf16(transpose_a, transpose_b, M, N, K, A, B, C, accumulate, Epilogue{});
}

}  // namespace ag
