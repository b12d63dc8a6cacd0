// kernels.cpp: the elementwise kernels (GELU, softmax rows). Matrix multiply is in gemm.cpp.

// GCC vectorises a loop with a clamp (a compare and select) only when it may assume that comparing
// floats raises no trap; nothing here relies on floating-point traps, so say so (clang needs nothing).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <omp.h>

#include "simd.h"

#include "../bf16.h"
#if defined(__SSE__)
#include <xmmintrin.h>  // _mm_getcsr, _mm_setcsr
#endif

namespace ag {

// ---------------------------------------------------------------------------------------------------
// GELU

namespace {

// Lanes: one vector register of floats (16 with AVX-512, 8 with AVX2, 4 with SSE2, which every x86-64
// has) with the few operations the formulas below use. A formula is written once, as a template, and
// runs on Lanes in GELU's loops and on one float (or double) everywhere else. GELU writes its vectors
// by hand because the compiler, vectorising a loop itself, turns the clamp inside exp (std::min and
// std::max, which must pass a NaN through) into compares and blends and works out the clamped lanes'
// results separately, every time, and for the form below adds a division that makes denormal numbers
// (docs/performance.md has what each cost when measured).
#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
#define LANE_BYTES 64
#elif defined(__AVX2__) && !defined(AUTOGRAD_DOUBLE)
#define LANE_BYTES 32
#elif defined(__SSE2__) && !defined(AUTOGRAD_DOUBLE)
#define LANE_BYTES 16
#endif
#ifdef LANE_BYTES
// GCC's (and clang's) vector types: + - * / on them are the vector instructions, a float operand is
// broadcast to every lane, and they are the types __m512, __m256 and __m128 are made of, so the
// intrinsics take them too.
typedef float FloatLanes __attribute__((vector_size(LANE_BYTES)));
typedef uint32_t BitLanes __attribute__((vector_size(LANE_BYTES)));  // unsigned: a shift may push bits out
struct Lanes {
    static constexpr int kWidth = LANE_BYTES / 4;
    FloatLanes v;
    Lanes(FloatLanes a) : v(a) {}
    Lanes(float a) : v(FloatLanes{} + a) {}
    static Lanes load(const float* p) {
        FloatLanes v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    void store(float* p) const { std::memcpy(p, &v, sizeof v); }
};
inline Lanes operator+(Lanes a, Lanes b) { return a.v + b.v; }
inline Lanes operator-(Lanes a, Lanes b) { return a.v - b.v; }
inline Lanes operator*(Lanes a, Lanes b) { return a.v * b.v; }
inline Lanes operator/(Lanes a, Lanes b) { return a.v / b.v; }
inline Lanes shift_into_exponent(Lanes s) { return (FloatLanes)((BitLanes)s.v << 23); }  // each lane's bits
// What the compiler would not choose well by itself: the min and max instructions (which return their
// second operand when either is a NaN: x goes second, so a NaN stays NaN), and zeroing lanes by a
// compare (not-less-than, true for a NaN). INTRINSIC(min_ps) is _mm512_min_ps, _mm256_min_ps or
// _mm_min_ps.
#if LANE_BYTES == 64
#define INTRINSIC(name) _mm512_##name
#elif LANE_BYTES == 32
#define INTRINSIC(name) _mm256_##name
#else
#define INTRINSIC(name) _mm_##name
#endif
inline Lanes at_most(Lanes x, float hi) { return INTRINSIC(min_ps)(Lanes(hi).v, x.v); }
inline Lanes at_least(Lanes x, float lo) { return INTRINSIC(max_ps)(Lanes(lo).v, x.v); }
inline Lanes clamp(Lanes x, float lo, float hi) { return at_most(at_least(x, lo), hi); }
inline Lanes zero_where_below(Lanes x, float x0, Lanes value) {  // value, or 0 in the lanes where x < x0
#if LANE_BYTES == 64
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x.v, Lanes(x0).v, _CMP_NLT_UQ), value.v);
#elif LANE_BYTES == 32
    return _mm256_and_ps(_mm256_cmp_ps(x.v, Lanes(x0).v, _CMP_NLT_UQ), value.v);
#else
    return _mm_and_ps(_mm_cmpnlt_ps(x.v, Lanes(x0).v), value.v);
#endif
}
inline double sum_of(Lanes a) {  // the lanes added up, in double
    float lane[Lanes::kWidth];
    a.store(lane);
    double s = 0;
    for (float v : lane) s += v;
    return s;
}
#endif
// The scalar forms of the Lanes helpers above, for loops the compiler vectorises itself. clamp and
// shift_into_exponent serve the float exp only, which the double build (std::exp) never calls.
[[maybe_unused]] inline float clamp(float x, float lo, float hi) { return std::min(std::max(x, lo), hi); }
inline real at_most(real x, real hi) { return std::min(x, hi); }
inline real zero_where_below(real x, real x0, real value) { return x < x0 ? 0 : value; }
[[maybe_unused]] inline float shift_into_exponent(float s) {
    uint32_t bits;  // unsigned: the shift pushes the high bits out, which a signed int may not do
    std::memcpy(&bits, &s, sizeof bits);
    bits <<= 23;
    float shifted;
    std::memcpy(&shifted, &bits, sizeof shifted);
    return shifted;
}

// e^x for float (one float, or Lanes), written so that the compiler can vectorise a loop of it
// (std::exp is a library call it cannot): x = k ln2 + r with k an integer and |r| <= ln2/2, then
// e^x = 2^k e^r, e^r by its Taylor series to r^6 (relative error below 2e-7 on that range) and 2^k by
// writing k into the exponent bits. Rounding x / ln2 to k takes one addition: past 1.5 * 2^23 a float
// has no bits below the units, so adding that rounds to the nearest integer, and adding the exponent
// bias 127 in the same step leaves k + 127 in the sum's lowest bits, ready to be shifted into the
// exponent field. (A floor and a float-to-int conversion would do the same in more instructions, on
// the path of every softmax row.)
template <typename V>
inline V exp_vectorisable(V x, float hi = 88.0f) {  // (GELU asks for a lower cap: e^x is then e^hi above hi)
    x = clamp(x, -87.0f, hi);                        // keep 2^k a normal float: k in [-125, 127]
    constexpr float kRound = 12582912.0f + 127.0f;   // 1.5 * 2^23, plus the bias
    const V sum = x * 1.44269504f + kRound;          // 1.5 * 2^23 + 127 + k, k = round(x / ln2)
    const V k = sum - kRound;                        // exact
    V r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;  // ln2 split in two for exactness
    V p = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    // the low 9 bits of sum, k + 127 (in [2, 254]), move into the exponent; the rest falls off
    return p * shift_into_exponent(sum);
}

#ifdef AUTOGRAD_DOUBLE
inline double exp_fast(double x) { return std::exp(x); }
#else
inline float exp_fast(float x) { return exp_vectorisable(x); }
#endif
#ifdef LANE_BYTES
inline Lanes exp_fast(Lanes x) { return exp_vectorisable(x); }
#endif

// In float, an explicit request to vectorise a loop (the double build calls std::exp, which cannot be
// vectorised, and clang would warn about the request). The caller has the threads.
#ifdef AUTOGRAD_DOUBLE
#define FLOAT_SIMD
#define FLOAT_SIMD_SUM_S
#else
#define FLOAT_SIMD _Pragma("omp simd")
#define FLOAT_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")  // adds into the variable named s
#endif

// GELU, written as GELU(x) = x sigma(2u) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): the
// same function as GPT-2's 0.5 x (1 + tanh u), since 0.5 (1 + tanh u) = sigma(2u). One exponential
// and one division a value, and no 1 + tanh u that cancels to nothing for very negative x.
// With q = sigma(2u) = 1 / (1 + e) and e = e^(-2u), so that 1 - q = e q:
//   GELU'(x) = q + x q (1 - q) 2u'(x) = q (1 + w e q),  w = x 2u'(x) = x 2 sqrt(2/pi) (1 + 3 0.044715 x^2)
constexpr real kGeluS = (real)0.7978845608028654;  // sqrt(2 / pi)
constexpr real kGeluK = (real)0.044715;

// Below x = -9, GELU(x) and GELU'(x) are smaller than 1e-26 and are returned as 0: they would come out
// there as tiny numbers (and past x = -10 as denormal ones, which are slow unless denormals are
// flushed, and which dy * GELU'(x) would make for any small dy). So e^(-2u) is capped at e^80, which
// keeps q and everything made from it normal, and the lanes below -9 are then set to 0.
constexpr real kGeluZeroBelow = -9;

template <typename V>
inline V minus_two_u(V x) {
    return x * ((-2 * kGeluS) + (-2 * kGeluS * kGeluK) * (x * x));
}
// e^(-2u), at most e^80 (never inf, so e q is never inf * 0)
template <typename V>
inline V gelu_e(V x) {
    return exp_vectorisable(minus_two_u(x), 80.0f);
}
#ifdef AUTOGRAD_DOUBLE
inline double gelu_e(double x) { return std::exp(std::min(minus_two_u(x), 80.0)); }
#endif
template <typename V>
inline V gelu_value(V x) {
    return zero_where_below(x, kGeluZeroBelow, x / (1 + gelu_e(x)));
}
template <typename V>
inline V gelu_slope(V x) {  // GELU'(x)
    const V e = gelu_e(x), q = 1 / (1 + e);
    const V c = at_most(x, 1e9f);  // in w, x is capped: w would overflow, and w e q < 1e-11 past 1e9
    const V w = c * ((2 * kGeluS) + (6 * kGeluS * kGeluK) * (c * c));
    return zero_where_below(x, kGeluZeroBelow, q * (1 + w * (e * q)));  // e q = 1 - q <= 1; w e could overflow
}

}  // namespace

void stream_copy(real* dst, const real* src, int64_t n) {
#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
    int64_t i = 0;
    for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % 64 != 0; ++i) dst[i] = src[i];  // up to a line
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
#elif defined(__AVX__) && !defined(AUTOGRAD_DOUBLE)
    int64_t i = 0;
    for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % 32 != 0; ++i) dst[i] = src[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
#else
    std::memcpy(dst, src, n * sizeof(real));  // no streaming stores known at build time
#endif
}

void stream_fence() {
#if defined(__AVX__) && !defined(AUTOGRAD_DOUBLE)
    _mm_sfence();
#endif
}

// Zeroes `bytes` bytes at x with streaming stores (SSE2, there on every x86-64), memset elsewhere.
static void zero_streaming(char* x, size_t bytes) {
#ifdef __SSE2__
    size_t head = std::min(bytes, (size_t)((16 - (uintptr_t)x % 16) % 16));  // up to a 16-byte boundary
    std::memset(x, 0, head);
    size_t i = head;
    for (; i + 16 <= bytes; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(x + i), _mm_setzero_si128());
    std::memset(x + i, 0, bytes - i);
    _mm_sfence();  // the streamed zeros are in memory before anyone reads them
#else
    std::memset(x, 0, bytes);
#endif
}

// Zeros into x[0..n) (all bits zero is +0.0). A big buffer (a gradient can be 150 MB) is shared
// between the threads, each clearing its own contiguous part, the parts starting at multiples of 64
// bytes (a cache line).
void fill_zeros(real* x, int64_t n) {
    const bool stream = past_caches(n * (int64_t)sizeof(real));
#pragma omp parallel if (worth_threads(n))
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t part = (n / nt + 15) / 16 * 16;
        const int64_t begin = std::min(n, t * part), end = t == nt - 1 ? n : std::min(n, (t + 1) * part);
        char* bytes = reinterpret_cast<char*>(x + begin);
        const size_t count = (size_t)(end - begin) * sizeof(real);
        if (stream) zero_streaming(bytes, count);
        else std::memset(bytes, 0, count);
    }
}

void flush_denormals_to_zero(bool on) {
#if defined(__SSE__)
    constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;  // bits of the SSE control register
    const unsigned bits = kFlushToZero | kDenormalsAreZero;
    _mm_setcsr(on ? _mm_getcsr() | bits : _mm_getcsr() & ~bits);
#else
    (void)on;
#endif
}

// Runs body(begin, end, out, shift) over [0, n) in pieces of kPiece values, on all threads when n is
// big; body computes values begin..end-1 of the output into out[i - shift]. For arrays past the caches
// (past_caches, parallel.h):
//   - each piece first asks for the inputs two pieces ahead (software prefetch): more memory reads in
//     flight than the hardware prefetcher keeps for one stream per core;
//   - when `stream` (the output overwrites dst), each piece is computed into a buffer in L1 and then
//     streamed out to dst (stream_copy), which saves reading dst's lines before writing them.
constexpr int64_t kPiece = 256;
template <typename F>
void in_pieces(int64_t n, const real* in1, const real* in2, real* dst, bool stream, F body) {
    const bool far = past_caches(n * (int64_t)sizeof(real));
    stream = stream && far;
#pragma omp parallel if (worth_threads(n))
    {
        alignas(64) real piece[kPiece];
#pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < n; i += kPiece) {
            if (far && i + 3 * kPiece <= n)
                for (int64_t j = i + 2 * kPiece; j < i + 3 * kPiece; j += 64 / (int64_t)sizeof(real)) {
                    __builtin_prefetch(in1 + j);
                    if (in2) __builtin_prefetch(in2 + j);
                }
            const int64_t end = std::min(n, i + kPiece);
            if (stream) {
                body(i, end, piece, i);
                stream_copy(dst + i, piece, end - i);
            } else {
                body(i, end, dst, 0);
            }
        }
        if (stream) stream_fence();  // before another thread reads dst
    }
}

namespace {
// y = GELU(x) over a span, and dx = dy GELU'(x) (or dx += ...): whole vectors of Lanes, then the
// values left over one at a time, with the same formulas
void gelu_forward_span(const real* x, real* y, int64_t n) {
    int64_t i = 0;
#ifdef LANE_BYTES
    for (; i + Lanes::kWidth <= n; i += Lanes::kWidth) gelu_value(Lanes::load(x + i)).store(y + i);
#else
FLOAT_SIMD
#endif
    for (int64_t j = i; j < n; ++j) y[j] = gelu_value(x[j]);
}

template <bool kAdd>
void gelu_backward_span(const real* x, const real* dy, real* dx, int64_t n) {
    int64_t i = 0;
#ifdef LANE_BYTES
    for (; i + Lanes::kWidth <= n; i += Lanes::kWidth) {
        Lanes d = Lanes::load(dy + i) * gelu_slope(Lanes::load(x + i));
        (kAdd ? Lanes::load(dx + i) + d : d).store(dx + i);
    }
#else
FLOAT_SIMD
#endif
    for (int64_t j = i; j < n; ++j) {
        const real d = dy[j] * gelu_slope(x[j]);
        dx[j] = kAdd ? dx[j] + d : d;
    }
}
}  // namespace

void gelu_forward(const real* x, real* y, int64_t n, bool to_bf16) {
    in_pieces(n, x, nullptr, y, true, [=](int64_t begin, int64_t end, real* out, int64_t shift) {
        gelu_forward_span(x + begin, out + begin - shift, end - begin);
        if (to_bf16) round_bf16_span(out + begin - shift, out + begin - shift, end - begin);  // still in L1
    });
}

// dx += dy * GELU'(x), or dx = ...: into a new buffer (not read at all, so it may stream), or over dy
// itself (dx == dy: each value is read, then written, in place; no streaming). GELU'(x) is computed
// again from x: a few vector instructions, cheaper than writing it to memory in forward and reading it
// back.
void gelu_backward(const real* x, const real* dy, real* dx, int64_t n, bool accumulate, bool dy_to_bf16) {
    const bool stream = !accumulate && dx != dy;
    in_pieces(n, x, dy, dx, stream, [=](int64_t begin, int64_t end, real* out, int64_t shift) {
        real* to = out + begin - shift;
        const real* d = dy + begin;
        alignas(64) real rounded[kPiece];
        if (dy_to_bf16) round_bf16_span(d, rounded, end - begin), d = rounded;
        if (accumulate)
            gelu_backward_span<true>(x + begin, d, to, end - begin);
        else
            gelu_backward_span<false>(x + begin, d, to, end - begin);
    });
}

// ---------------------------------------------------------------------------------------------------
// Softmax rows

// The largest of x[0..n), in 64 running maxima (value j into lane j % 64): the compiler keeps them in
// four vector registers, four independent chains of compares. (One running maximum is a chain of
// dependent compares, one element at a time, which GCC does not vectorise even under "omp simd
// reduction(max)"; one vector of 16 is still a chain, several times slower on a long row.) The lanes
// are then folded to 16 for the rest of a short row (attention's tiles are 64 wide or less).
real row_max(const real* x, int64_t n) {
    constexpr int kWide = 64, kLanes = 16;
    real wide[kWide], lane[kLanes];
    for (int k = 0; k < kWide; ++k) wide[k] = x[0];
    int64_t j = 0;
    for (; j + kWide <= n; j += kWide)
        for (int k = 0; k < kWide; ++k) wide[k] = wide[k] > x[j + k] ? wide[k] : x[j + k];
    for (int k = 0; k < kLanes; ++k) {
        real a = wide[k] > wide[k + 16] ? wide[k] : wide[k + 16];
        real b = wide[k + 32] > wide[k + 48] ? wide[k + 32] : wide[k + 48];
        lane[k] = a > b ? a : b;
    }
    for (; j + kLanes <= n; j += kLanes)
        for (int k = 0; k < kLanes; ++k) lane[k] = lane[k] > x[j + k] ? lane[k] : x[j + k];
    for (int half = kLanes / 2; half >= 1; half /= 2)  // 16 lanes to 1 in four halvings, not 16 compares in a row
        for (int k = 0; k < half; ++k) lane[k] = lane[k] > lane[k + half] ? lane[k] : lane[k + half];
    real m = lane[0];
    for (; j < n; ++j) m = m > x[j] ? m : x[j];
    return m;
}

namespace {
// sum_j e^(x_j - shift) over a row, and with kStore also e[j] = e^(x_j - shift). 50,000 terms: one
// running sum per lane of a vector register, in the tensor's precision (term j into sum j % 16 with
// AVX-512), emptied into a double every 1024 terms, so that the rounding stays at float's level
// without converting every term. `next` (the next row, or null) is fetched meanwhile, one prefetch per
// vector of this row. In Lanes (see GELU), since the compiler's own vectors of the same loop spend
// extra instructions on the clamp inside exp (the note at the top of this file).
template <bool kStore>
double exp_sum_row(const real* x, int64_t n, real shift, real* e, const real* next) {
    constexpr int64_t kBlock = 1024;
    double s = 0;
    int64_t j = 0;
#ifdef LANE_BYTES
    constexpr int kLanes = Lanes::kWidth;
    while (j + kLanes <= n) {
        Lanes lane = 0.0f;
        for (int64_t end = std::min(n - kLanes, j + kBlock); j <= end; j += kLanes) {
            if (next) __builtin_prefetch(next + j);
            const Lanes v = exp_fast(Lanes::load(x + j) - shift);
            if (kStore) v.store(e + j);
            lane = lane + v;
        }
        s += sum_of(lane);
    }
#else
    constexpr int kLanes = 16;
    while (j + kLanes <= n) {
        real lane[kLanes] = {};
        for (int64_t end = std::min(n - kLanes, j + kBlock); j <= end; j += kLanes) {
            if (next) __builtin_prefetch(next + j);
            for (int k = 0; k < kLanes; ++k) {
                const real v = exp_fast(x[j + k] - shift);
                if (kStore) e[j + k] = v;
                lane[k] += v;
            }
        }
        for (int k = 0; k < kLanes; ++k) s += lane[k];
    }
#endif
    for (; j < n; ++j) {
        const real v = exp_fast(x[j] - shift);
        if (kStore) e[j] = v;
        s += v;
    }
    return s;
}
}  // namespace

real row_logsumexp(const real* x, int64_t n, const real* next) {
    const real m = row_max(x, n);
    return m + (real)std::log(exp_sum_row<false>(x, n, m, nullptr, next));
}

real softmax_gradient_row(const real* x, int64_t n, int64_t target, real scale, real* g, real* work,
                          const real* next) {
    real* e = work ? work : g;  // e_j = e^(x_j - max), then scaled in place: in L2 either way
    const real m = row_max(x, n);
    const double s = exp_sum_row<true>(x, n, m, e, next);
    // softmax_j = e_j / s. A product below float's smallest normal number would be denormal, and
    // arithmetic on denormals takes the CPU's slow path: such terms (logits 80+ nats below the top) become 0
    // before the multiply, never after it. e_j itself is normal: exp clamps its argument at -87.
    const real c = (real)(scale / s);
    const real tiny = std::numeric_limits<real>::min() / c;
FLOAT_SIMD
    for (int64_t j = 0; j < n; ++j) e[j] = (e[j] < tiny ? real(0) : e[j]) * c;  // (a NaN stays)
    e[target] -= scale;
    if (work) stream_copy(g, work, n);
    return m + (real)std::log(s);
}

void scale_into(const real* src, real u, real* dst, int64_t n, bool accumulate) {
    // As above, a product that would be denormal is 0: |src_j| below (smallest normal) / |u|; a NaN stays.
    const real tiny = u != 0 ? std::numeric_limits<real>::min() / std::fabs(u) : std::numeric_limits<real>::max();
    auto scaled = [=](real v) { return (std::fabs(v) < tiny ? real(0) : v) * u; };
    if (accumulate)
        in_pieces(n, src, dst, dst, false, [=](int64_t begin, int64_t end, real* out, int64_t shift) {
FLOAT_SIMD
            for (int64_t i = begin; i < end; ++i) out[i - shift] = dst[i] + scaled(src[i]);
        });
    else
        in_pieces(n, src, nullptr, dst, src != dst, [=](int64_t begin, int64_t end, real* out, int64_t shift) {
FLOAT_SIMD
            for (int64_t i = begin; i < end; ++i) out[i - shift] = scaled(src[i]);
        });
}

void add_scaled_softmax_row(const real* x, real lse, real scale, real* dx, int64_t n, bool accumulate,
                            bool prefetch) {
    // With scale > 0, scale * e^(x_j - lse) is computed as e^(x_j - shift), shift = lse - ln(scale):
    // the same number, but float's e^ never returns less than the smallest normal number (it clamps
    // its argument at -87), whereas scale times e^(x_j - lse) is denormal for a logit about 82 nats
    // below the top (scale = 1/256), and arithmetic on denormals takes the CPU's slow path.
    const bool fold = scale > 0;
    const real shift = fold ? (real)((double)lse - std::log((double)scale)) : lse;
    const real mult = fold ? real(1) : scale;
    constexpr int64_t kPiece = 256, kAhead = 2 * kPiece;  // values: prefetch 2 KB ahead of the reads
    for (int64_t j0 = 0; j0 < n; j0 += kPiece) {
        const int64_t j1 = std::min(n, j0 + kPiece);
        if (prefetch)
            for (int64_t j = j0 + kAhead; j < std::min(n, j1 + kAhead); j += 64 / (int64_t)sizeof(real)) {
                __builtin_prefetch(x + j);
                if (accumulate) __builtin_prefetch(dx + j);
            }
        if (accumulate) {
FLOAT_SIMD
            for (int64_t j = j0; j < j1; ++j) dx[j] += mult * exp_fast(x[j] - shift);
        } else {
FLOAT_SIMD
            for (int64_t j = j0; j < j1; ++j) dx[j] = mult * exp_fast(x[j] - shift);
        }
    }
}

real exp_shifted_row(real* x, int64_t n, real shift) {
    real s = 0;
FLOAT_SIMD_SUM_S
    for (int64_t j = 0; j < n; ++j) {
        x[j] = exp_fast(x[j] - shift);
        s += x[j];
    }
    return s;
}

}  // namespace ag
