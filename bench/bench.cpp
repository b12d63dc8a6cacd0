// bench.cpp: how close the kernels come to this machine's limits (`make bench`).
//
// First it measures the limits themselves, in this process: the fp32 FMA peak (a loop of independent
// fused multiply-adds that never leaves the registers) and the memory bandwidth (a copy, a triad and
// an in-place update over arrays much larger than the caches), on 1 thread and on all threads. Then every kernel is
// reported as a figure and as a fraction of the limit that bounds it, measured in the same run, so
// that the ratios stay meaningful on a noisy or clock-drifting host.
//
// Each figure is the median of several repetitions, with the spread (min-max) beside it. The output is
// a Markdown table, to paste into an issue as is.
//
// The sections: gemm (the matrix multiplies at GPT-2's and the default model's shapes); bf16 (gemm_bf16
// at GPT-2's shapes, against the bf16 dot-product peak, also measured in this process); the
// memory-bound kernels (layernorm, crossentropy, gelu, add, adamw, clip, zero_grad), each as the bytes
// it must move per call over the time, against the bandwidth limit and against a memcpy of the same
// bytes; steps (whole training steps, with MFU); and scaling (GPT-2's step at 1, 2, 4, ... threads, as
// parallel efficiency). `make bench` runs them all but scaling, which takes minutes; to run some, name
// them: `build/bench adamw layernorm`, `build/bench scaling` (the limits are always measured first;
// `memory` names all the memory-bound ones).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <omp.h>
#ifdef __GLIBC__
#include <malloc.h>  // malloc_trim
#endif
#include "../autograd/fast/simd.h"

#include "../autograd/bf16.h"
#include "../autograd/fast/kernels.h"
#include "../autograd/memory.h"
#include "../autograd/ops.h"
#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "../autograd/rng.h"

using namespace ag;

static_assert(sizeof(real) == sizeof(float), "the benchmark measures the float build");

namespace {

constexpr int kReps = 5;  // repetitions of every measurement

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median, min and max of one figure over the repetitions.
struct Stats {
    double median, min, max;
};
Stats stats_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

// Runs `body` (which does `work` units of work: flops or bytes) enough times to last about
// `seconds`, kReps times over, and returns the rate (work per second) of each repetition.
Stats measure_rate(double work, const std::function<void()>& body, double seconds = 0.03) {
    body();  // warm up: caches, page faults, the thread pool
    double t0 = now_seconds();
    body();
    double once = std::max(now_seconds() - t0, 1e-7);
    int calls = std::max(1, (int)(seconds / once));
    std::vector<double> rates;
    for (int r = 0; r < kReps; ++r) {
        double start = now_seconds();
        for (int c = 0; c < calls; ++c) body();
        rates.push_back(work * calls / (now_seconds() - start));
    }
    return stats_of(rates);
}

// The same for a body that needs prepare() (untimed) before each call: each call is timed alone.
Stats measure_rate(double work, const std::function<void()>& body, double seconds,
                   const std::function<void()>& prepare) {
    auto timed_call = [&] {
        prepare();
        double start = now_seconds();
        body();
        return now_seconds() - start;
    };
    timed_call();  // warm up
    int calls = std::max(1, (int)(seconds / std::max(timed_call(), 1e-7)));
    std::vector<double> rates;
    for (int r = 0; r < kReps; ++r) {
        double busy = 0;
        for (int c = 0; c < calls; ++c) busy += timed_call();
        rates.push_back(work * calls / busy);
    }
    return stats_of(rates);
}

// ---------------------------------------------------------------------------------------------------
// The limits.

// fp32 FMA peak of `threads` threads, in FLOP/s: each thread runs 16 independent chains of vector FMAs
// (enough to cover the FMA latency on two FMA units), never touching memory.
#if defined(__AVX512F__)
using Vec = __m512;
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vset(float x) { return _mm512_set1_ps(x); }
inline float vfirst(Vec v) { return _mm512_cvtss_f32(v); }
const char* const vec_name = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vset(float x) { return _mm256_set1_ps(x); }
inline float vfirst(Vec v) { return _mm256_cvtss_f32(v); }
const char* const vec_name = "avx2";
#else
using Vec = float;  // no vector FMA known at build time: the scalar rate is the honest "peak"
inline Vec vfma(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec vset(float x) { return x; }
inline float vfirst(Vec v) { return v; }
const char* const vec_name = "scalar";
#endif
constexpr int kLanes = sizeof(Vec) / sizeof(float);

volatile float sink;  // results land here, so the compiler cannot drop the loops

Stats fma_peak(int threads) {
    const int64_t iters = 1 << 20;
    const double flops = 2.0 * 16 * kLanes * iters * threads;
    return measure_rate(flops, [&] {
#pragma omp parallel num_threads(threads)
        {
            Vec acc[16];
            for (int i = 0; i < 16; ++i) acc[i] = vset(1.0f + i * 1e-3f);
            Vec m = vset(0.9999999f), a = vset(1e-7f);
            for (int64_t it = 0; it < iters; ++it)
                for (int i = 0; i < 16; ++i) acc[i] = vfma(acc[i], m, a);
            float s = 0;
            for (int i = 0; i < 16; ++i) s += vfirst(acc[i]);
            sink = s;
        }
    });
}

// std::memcpy of n floats, each thread on its own contiguous chunk.
void parallel_memcpy(float* dst, const float* src, int64_t n, int threads) {
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = n * t / nt, end = n * (t + 1) / nt;
        std::memcpy(dst + begin, src + begin, (end - begin) * sizeof(float));
    }
}

// Memory bandwidth in bytes/s over arrays of n floats, counting each byte read or written once:
// copy (y = x, 8 bytes per element), triad (z = x + s y, 12), update (y = x + s y, 12, in place) or
// read (a sum of squares of x, 4).
// A store into a line the core has not read first reads it anyway (read for ownership), so copy and
// triad move 4 bytes per element more than they count; update writes only lines it has read, so on
// many machines it is the fastest: every byte it moves is counted. (memcpy's streaming stores skip
// the read instead.)
Stats bandwidth(const char* kind, std::vector<float>& x, std::vector<float>& y, std::vector<float>& z,
                int threads) {
    const int64_t n = (int64_t)x.size();
    float *px = x.data(), *py = y.data(), *pz = z.data();
    if (std::strcmp(kind, "copy") == 0)
        return measure_rate(8.0 * n, [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t i = 0; i < n; ++i) py[i] = px[i];
        }, 0.1);
    if (std::strcmp(kind, "memcpy") == 0)
        return measure_rate(8.0 * n, [&] { parallel_memcpy(py, px, n, threads); }, 0.1);
    if (std::strcmp(kind, "read") == 0)  // a read-only pass, as the gradient norm makes: s += x^2 (n % 1024 == 0)
        return measure_rate(4.0 * n, [&] {
            float s = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : s)
            for (int64_t b = 0; b < n; b += 1024) {
                float lanes[64] = {};  // independent sums, so the additions do not wait on each other
                for (int64_t i = b; i < std::min(n, b + 1024); i += 64) {
                    for (int k = 0; k < 64; k += 16) __builtin_prefetch(px + i + k + 1024);
                    for (int k = 0; k < 64; ++k) lanes[k] += px[i + k] * px[i + k];
                }
                for (float l : lanes) s += l;
            }
            sink = s;
        }, 0.1);
    if (std::strcmp(kind, "update") == 0)  // y converges to 2 x: no overflow however often it runs
        return measure_rate(12.0 * n, [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t i = 0; i < n; ++i) py[i] = px[i] + 0.5f * py[i];
        }, 0.1);
    return measure_rate(12.0 * n, [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; ++i) pz[i] = px[i] + 0.5f * py[i];
    }, 0.1);
}

// ---------------------------------------------------------------------------------------------------
// Printing: one Markdown row per measurement.

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
    char buf[128];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}

void row(const std::string& what, const std::string& shape, const std::string& unit, Stats s1, double peak1,
         Stats s2, double peak2, double scale) {
    std::printf("| %-26s | %-20s | %-7s | %-26s | %6.1f%% | %-27s | %6.1f%% |\n", what.c_str(), shape.c_str(),
                unit.c_str(), fmt("%7.1f (%.0f-%.0f)", s1.median / scale, s1.min / scale, s1.max / scale).c_str(),
                100 * s1.median / peak1,
                fmt("%7.1f (%.0f-%.0f)", s2.median / scale, s2.min / scale, s2.max / scale).c_str(),
                100 * s2.median / peak2);
}

void table_header(const char* title, const char* of_what, int threads) {
    std::printf("\n### %s\n\n", title);
    std::printf("| %-26s | %-20s | %-7s | %-26s | %-7s | %-27s | %-7s |\n", "what", "shape", "unit",
                "1 thread: median (min-max)", of_what, (std::to_string(threads) + " threads: median (min-max)").c_str(),
                of_what);
    std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(), std::string(22, '-').c_str(),
                std::string(9, '-').c_str(), std::string(28, '-').c_str(), std::string(9, '-').c_str(),
                std::string(29, '-').c_str(), std::string(9, '-').c_str());
}

// ---------------------------------------------------------------------------------------------------
// gemm: one product C (M x N) (+)= op(A) (M x K) op(B) (K x N), on 1 thread and on all threads.

struct GemmCase {
    const char* what;
    bool ta, tb;
    int64_t M, N, K;
    bool accumulate;
};

// Operands are tensors, 64-byte aligned as in training: std::vector's large blocks start 16 bytes into
// a page, which splits every row of C across an extra cache line and made the output layer's products
// measure 3-8% slower than they run in a step.
Tensor random_floats(int64_t n, uint64_t seed) {
    Rng rng(seed);
    return Tensor::randn({n}, rng);
}

// Measured rows wait here and are printed together, once the FMA peak has been measured again: another
// program on the host can hold a core during the first measurement (the 2-thread "peak" then reads as
// one core's, and every product would show over 100%).
struct GemmRow {
    std::string title;  // non-empty: a table starts here
    std::string what, shape;
    Stats s1, s2;
};

// With bf16, gemm_bf16 on operands rounded to bf16 (as the model calls it) instead of gemm.
GemmRow bench_gemm(const GemmCase& g, int threads, bool bf16 = false) {
    Tensor A = random_floats(g.M * g.K, 1), B = random_floats(g.K * g.N, 2), C = Tensor::zeros({g.M * g.N});
    if (bf16) round_bf16_inplace(A.data(), g.M * g.K), round_bf16_inplace(B.data(), g.K * g.N);
    using Product = void (*)(bool, bool, int64_t, int64_t, int64_t, const real*, const real*, real*, bool);
    const Product product = bf16 ? Product(gemm_bf16) : Product(gemm);
    auto body = [&] { product(g.ta, g.tb, g.M, g.N, g.K, A.data(), B.data(), C.data(), g.accumulate); };
    double flops = 2.0 * g.M * g.N * g.K;
    omp_set_num_threads(1);
    Stats s1 = measure_rate(flops, body);
    omp_set_num_threads(threads);
    Stats s2 = measure_rate(flops, body);
    std::string shape = fmt("%.0fx%.0fx%.0f", g.M, g.N, g.K) + (g.ta ? " A^T" : "") + (g.tb ? " B^T" : "");
    return {"", g.what, shape, s1, s2};
}

// Many small independent products, shared out whole between threads as batched matmul does
// (attention's scores and outputs: one per batch entry and head).
GemmRow bench_gemm_batched(const char* what, int64_t batch, bool tb, int64_t M, int64_t N, int64_t K, int threads) {
    Tensor A = random_floats(batch * M * K, 1), B = random_floats(batch * K * N, 2), C = Tensor::zeros({batch * M * N});
    auto body_on = [&](int nt) {
        return [&, nt] {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t b = 0; b < batch; ++b)
                gemm(false, tb, M, N, K, A.data() + b * M * K, B.data() + b * K * N, C.data() + b * M * N, false);
        };
    };
    double flops = 2.0 * batch * M * N * K;
    Stats s1 = measure_rate(flops, body_on(1)), s2 = measure_rate(flops, body_on(threads));
    std::string shape = std::to_string(batch) + " x " + fmt("%.0fx%.0fx%.0f", M, N, K) + (tb ? " B^T" : "");
    return {"", what, shape, s1, s2};
}

// The linear layers' three products (forward, dX, dW) at GPT-2 small's shapes and at the default
// model's, and attention's batched products.
// A linear layer y = x W^T with W (out, in), over `rows` rows of x: its three products, forward and
// both backward ones, each a row of the table.
struct Layer {
    const char* name;
    int64_t out, in;
};
void bench_layer_products(const Layer& l, int64_t rows, int threads, std::vector<GemmRow>& out, bool bf16 = false) {
    std::string f = std::string(l.name) + " fwd x W^T", dx = std::string(l.name) + " dX = dY W",
                dw = std::string(l.name) + " dW = dY^T X";
    out.push_back(bench_gemm({f.c_str(), false, true, rows, l.out, l.in, false}, threads, bf16));
    out.push_back(bench_gemm({dx.c_str(), false, false, rows, l.in, l.out, true}, threads, bf16));
    out.push_back(bench_gemm({dw.c_str(), true, false, l.out, l.in, rows, true}, threads, bf16));
}

// fma_1, fma_n: the peaks measured at the start; the rows are printed against these or the peaks
// measured again after the products, whichever are higher.
void bench_gemms(double fma_1, double fma_n, int threads) {
    std::vector<GemmRow> rows;
    // ---- gemm at GPT-2 small's linear layers: R = B*T = 256 rows, C = 768
    rows.push_back({"gemm at GPT-2 small's shapes (B*T = 256)", "", "", {}, {}});
    const Layer gpt2[] = {{"attn qkv", 2304, 768}, {"attn proj", 768, 768}, {"mlp fc", 3072, 768}, {"mlp proj", 768, 3072},
                          {"lm head", 50304, 768}};  // the vocabulary padded to 50304, as llm.c pads it
    for (const Layer& l : gpt2) bench_layer_products(l, 256, threads, rows);

    // ---- gemm at the default model's shapes: B=16, T=64 (R = 1024), C=128, 4 heads of 32, V=256
    rows.push_back({"gemm at the default model's shapes (B*T = 1024, C = 128)", "", "", {}, {}});
    const Layer small[] = {{"attn qkv", 384, 128}, {"attn proj", 128, 128}, {"mlp fc", 512, 128},
                           {"mlp proj", 128, 512}, {"lm head", 256, 128}};
    for (const Layer& l : small) bench_layer_products(l, 1024, threads, rows);
    rows.push_back(bench_gemm_batched("attn scores q k^T", 64, true, 64, 64, 32, threads));
    rows.push_back(bench_gemm_batched("attn out att v", 64, false, 64, 32, 64, threads));

    const double again_1 = fma_peak(1).max, again_n = fma_peak(threads).max;
    const double peak_1 = std::max(fma_1, again_1), peak_n = std::max(fma_n, again_n);
    std::printf("\ngemm rows are of the FMA peak measured before them or after them, whichever was higher: "
                "%.0f GFLOP/s on 1 thread (%.0f before, %.0f after), %.0f on %d (%.0f before, %.0f after).\n",
                peak_1 / 1e9, fma_1 / 1e9, again_1 / 1e9, peak_n / 1e9, threads, fma_n / 1e9, again_n / 1e9);
    for (const GemmRow& r : rows) {
        if (!r.title.empty())
            table_header(r.title.c_str(), "of peak", threads);
        else
            row(r.what, r.shape, "GFLOP/s", r.s1, peak_1, r.s2, peak_n, 1e9);
    }
}

// ---------------------------------------------------------------------------------------------------
// bf16: gemm_bf16 at GPT-2 small's products, against the bf16 dot-product peak.

// The bf16 dot-product peak of `threads` threads, in FLOP/s: each thread runs 16 independent chains of
// vdpbf16ps (enough to cover its latency on two units, as fma_peak's FMAs), never touching memory. One
// instruction does 2 multiply-adds in each of 16 lanes: 64 FLOP. Without AVX512_BF16 in the build,
// gemm_bf16 runs fp32 FMAs, and the fp32 FMA peak is its limit.
#if defined(__AVX512BF16__)
const char* const bf16_peak_name = "vdpbf16ps";
Stats bf16_peak(int threads) {
    const int64_t iters = 1 << 20;
    const double flops = 64.0 * 16 * iters * threads;
    return measure_rate(flops, [&] {
#pragma omp parallel num_threads(threads)
        {
            __m512 acc[16];
            for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
            // pairs of bf16: 1e-4 (0x38d1) and 1 (0x3f80), so that the sums stay small
            __m512bh a = (__m512bh)_mm512_set1_epi32(0x38d138d1), b = (__m512bh)_mm512_set1_epi32(0x3f803f80);
            for (int64_t it = 0; it < iters; ++it)
                for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
            float s = 0;
            for (int i = 0; i < 16; ++i) s += _mm512_cvtss_f32(acc[i]);
            sink = s;
        }
    });
}
#else
const char* const bf16_peak_name = "no bf16 dot product in this build: the fp32 FMA peak";
Stats bf16_peak(int threads) { return fma_peak(threads); }
#endif

#ifdef AG_GEMM_BF16_AMX
// AMX: tdpbf16ps into four C tiles from tiles held in registers, each instruction 16 x 16 x 32
// multiply-adds (16,384 FLOP), each thread's tiles configured as gemm_bf16's AMX path has them.
Stats amx_peak(int threads) {
    const int64_t iters = 1 << 16;
    const double flops = 4.0 * 16384 * iters * threads;
    return measure_rate(flops, [&] {
#pragma omp parallel num_threads(threads)
        {
            gemm_bf16_amx_tiles();
            // zero inputs: the rate does not depend on the values
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            _tile_zero(4);
            _tile_zero(5);
            _tile_zero(6);
            _tile_zero(7);
            for (int64_t it = 0; it < iters; ++it) {
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            alignas(64) float out[256];
            _tile_stored(0, out, 64);
            sink = out[0];
        }
    });
}
#endif

// The limit of the path gemm_bf16 takes: AMX's peak, the bf16 dot product's, or the fp32 FMA's where it
// takes the portable path (on CPUs whose dot product is the slower of the two: gemm_bf16.cpp).
bool bf16_dot_path() { return std::strncmp(gemm_bf16_kernel_name(), "AVX512_BF16", 11) == 0; }
bool bf16_amx_path() { return std::strncmp(gemm_bf16_kernel_name(), "AMX", 3) == 0; }
Stats bf16_path_peak(int threads) {
#ifdef AG_GEMM_BF16_AMX
    if (bf16_amx_path()) return amx_peak(threads);
#endif
    return bf16_dot_path() ? bf16_peak(threads) : fma_peak(threads);
}
const char* bf16_path_peak_name() {
    return bf16_amx_path() ? "AMX peak (tdpbf16ps)" : "fp32 FMA peak (its path's)";
}

// gemm_bf16 on bf16 operands at GPT-2 small's linear layers (the same products as the gemm section),
// each as a fraction of its path's peak measured before or after them, whichever is higher.
void bench_gemms_bf16(int threads) {
    const Stats dot_1 = bf16_peak(1), dot_n = bf16_peak(threads);
    const Stats before_1 = bf16_dot_path() ? dot_1 : bf16_path_peak(1);
    const Stats before_n = bf16_dot_path() ? dot_n : bf16_path_peak(threads);
    std::vector<GemmRow> rows;
    const Layer gpt2[] = {{"attn qkv", 2304, 768}, {"attn proj", 768, 768}, {"mlp fc", 3072, 768}, {"mlp proj", 768, 3072},
                          {"lm head", 50304, 768}};
    for (const Layer& l : gpt2) bench_layer_products(l, 256, threads, rows, true);
    const Stats after_1 = bf16_path_peak(1), after_n = bf16_path_peak(threads);
    const double peak_1 = std::max(before_1.max, after_1.max), peak_n = std::max(before_n.max, after_n.max);

    table_header("gemm_bf16 at GPT-2 small's shapes (B*T = 256; of its path's peak)", "of peak", threads);
    row(std::string("bf16 peak (") + bf16_peak_name + ")", "registers only", "GFLOP/s", dot_1, peak_1, dot_n, peak_n,
        1e9);
    if (!bf16_dot_path())
        row(bf16_path_peak_name(), "registers only", "GFLOP/s", before_1, peak_1, before_n, peak_n, 1e9);
    for (const GemmRow& r : rows) row(r.what, r.shape, "GFLOP/s", r.s1, peak_1, r.s2, peak_n, 1e9);
    std::printf("\ngemm_bf16 path: %s. Operands rounded to bf16 first, as the model holds them. Rows are of its "
                "path's peak measured before them or after them, whichever was higher: %.0f GFLOP/s on 1 thread (%.0f before, "
                "%.0f after), %.0f on %d (%.0f before, %.0f after).\n",
                gemm_bf16_kernel_name(), peak_1 / 1e9, before_1.max / 1e9, after_1.max / 1e9, peak_n / 1e9, threads,
                before_n.max / 1e9, after_n.max / 1e9);
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------------
// Memory-bound kernels: layernorm, cross-entropy, GELU, the residual add, AdamW, clipping, zero_grad.
//
// Each is reported as the bytes it must move per call (every tensor read or written once per pass,
// counted in the table's notes) over the time: a rate comparable with the bandwidth limit. Beside it,
// the same bytes moved by memcpy, measured right after on the same threads: half of them copied from one
// buffer into another (at most 1 GB copied: past the caches the rate no longer depends on the size,
// except that glibc's memcpy switches to streaming stores above a size per call, about the L3 per
// thread). A kernel whose working set fits in a cache is marked so: its rate can beat the memory
// bandwidth, and its memcpy then runs in the cache too.

// What the memory-bound measurements need from the limits: the bandwidths (best repetition).
struct Machine {
    int threads;
    double bw_1, bw_n;
};

// The size of this machine's level-`level` data cache in bytes, from sysfs; 0 if unknown.
int64_t cache_bytes(int level) {
    for (int i = 0; i < 8; ++i) {
        std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
        std::ifstream level_file(dir + "level"), size_file(dir + "size"), type_file(dir + "type");
        int l = 0;
        std::string size, type;
        if (!(level_file >> l) || !(size_file >> size) || !(type_file >> type)) break;
        if (l != level || type == "Instruction" || size.empty()) continue;
        int64_t v = std::atoll(size.c_str());
        return size.back() == 'K' ? v << 10 : size.back() == 'M' ? v << 20 : v;
    }
    return 0;
}

// "4x64x768 (3.1 MB, in L2)": the shape, the working set, and the smallest cache that holds it
// (one core's L2; the L3 is shared).
std::string with_working_set(const std::string& shape, double bytes) {
    static const int64_t l2 = cache_bytes(2), l3 = cache_bytes(3);
    const char* where = bytes <= l2 ? "in L2" : bytes <= l3 ? "in L3" : l3 ? "> L3" : "cache sizes unknown";
    return shape + fmt(bytes < 1e7 ? " (%.1f MB, " : " (%.0f MB, ", bytes / 1e6) + where + ")";
}

// Two buffers for a memcpy that moves `bytes` (half read, half written), at most 1 GB each. The source
// is written once, so that the copy reads real memory rather than the kernel's shared page of zeros.
struct MemcpyBuffers {
    explicit MemcpyBuffers(double bytes)
        : n(std::max<int64_t>(16, std::min<int64_t>((int64_t)(bytes / 8), 1 << 28))), src(new float[n]),
          dst(new float[n]) {
        float* s = src.get();
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) s[i] = (float)(i & 1023);
    }
    Stats rate(int threads) const {
        return measure_rate(8.0 * (double)n, [&] { parallel_memcpy(dst.get(), src.get(), n, threads); }, 0.05);
    }
    int64_t n;
    std::unique_ptr<float[]> src, dst;
};

void bw_table_header(int threads) {
    std::printf("\n### Memory-bound kernels: bytes the kernel must move / time\n\n");
    std::printf("| %-28s | %-40s | %7s | %-25s | %-6s | %-9s | %-25s | %-6s | %-9s |\n", "what", "shape (working set)",
                "MB/call", "1 thread: GB/s (min-max)", "of bw", "of memcpy",
                (std::to_string(threads) + " threads: GB/s (min-max)").c_str(), "of bw", "of memcpy");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(42, '-').c_str(),
                std::string(9, '-').c_str(), std::string(27, '-').c_str(), std::string(8, '-').c_str(),
                std::string(11, '-').c_str(), std::string(27, '-').c_str(), std::string(8, '-').c_str(),
                std::string(11, '-').c_str());
}

// Times `body` (which moves `bytes`; with `prepare`, untimed, before each call) on 1 thread and on all,
// each followed by a memcpy of the same bytes, and prints the row.
void bench_memory_bound(const std::string& what, const std::string& shape, double bytes, double working_set,
                        const std::function<void()>& body, const Machine& m,
                        const std::function<void()>& prepare = nullptr) {
    MemcpyBuffers copy(bytes);
    auto rate = [&] { return prepare ? measure_rate(bytes, body, 0.05, prepare) : measure_rate(bytes, body, 0.05); };
    omp_set_num_threads(1);
    Stats k1 = rate(), c1 = copy.rate(1);
    omp_set_num_threads(m.threads);
    Stats kn = rate(), cn = copy.rate(m.threads);
    auto gbs = [](Stats s) { return fmt("%6.1f (%.1f-%.1f)", s.median / 1e9, s.min / 1e9, s.max / 1e9); };
    std::printf("| %-28s | %-40s | %7.0f | %-25s | %5.0f%% | %8.0f%% | %-25s | %5.0f%% | %8.0f%% |\n", what.c_str(),
                with_working_set(shape, working_set).c_str(), bytes / 1e6, gbs(k1).c_str(), 100 * k1.median / m.bw_1,
                100 * k1.median / c1.median, gbs(kn).c_str(), 100 * kn.median / m.bw_n, 100 * kn.median / cn.median);
    std::fflush(stdout);
}

// Values in [-scale, scale] from a fixed pattern: fast (no random numbers for 100M values), and
// varied enough that no kernel meets only one value.
void fill(real* p, int64_t n, double scale) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i)
        p[i] = (real)(scale * ((double)((uint64_t)i * 2654435761u % 2001) / 1000.0 - 1.0));
}

Tensor filled(const Shape& shape, double scale) {
    Tensor t = Tensor::empty(shape);
    fill(t.data(), t.numel(), scale);
    return t;
}

// An upstream gradient of n values, to hand to an op's backward.
std::shared_ptr<Storage> upstream_gradient(int64_t n) {
    auto dy = std::make_shared<Storage>((size_t)n);
    fill(dy->data, n, 1e-2);
    return dy;
}

// A tensor with the values of `leaf` that is an op's output, as the inputs of these ops are in a step
// (GELU's is the first linear's output): here of an op whose backward does nothing. Its gradient
// buffer is freed after each call (backward() does that to an op's output once its op has run), so an
// op may compute its gradient in place over its output's (Tensor::adopt_grad_of).
Tensor op_output(const Tensor& leaf) {
    return record(leaf.detach(), "input", {leaf}, [](const Tensor&) {});
}

// One op's forward, then its backward from an upstream gradient dy: what the op costs inside a
// training step, with no loss on top of it. With `fresh` (a buffer of dy's size) the op's output gets
// that buffer, holding dy's values (copied by refresh(), before the call is timed), as the next op's
// backward would hand it over, and the op may overwrite it; without, it gets dy itself, shared.
struct Upstream {
    explicit Upstream(int64_t n) : dy(upstream_gradient(n)) {}
    void refresh() {  // untimed: a new buffer from the caching allocator, holding dy
        fresh = std::make_shared<Storage>(dy->size);
        std::copy(dy->data, dy->data + dy->size, fresh->data);
    }
    std::shared_ptr<Storage> dy, fresh;
};

void forward_backward(const std::function<Tensor()>& op, Upstream& up) {
    Tensor y = op();
    y.impl()->grad = up.fresh ? std::move(up.fresh) : up.dy;
    y.impl()->node->backward(y);
}

// layernorm (B*T, C) as in a pre-LN block: forward reads x and writes y; backward reads x and dy, and
// adds into dx (x is the residual stream, whose gradient already holds the residual add's share).
// 24 bytes per value (mean and rstd, one per row, and gain, bias and their gradients, C each, are
// left out); working set x, y, dy, dx: 16 bytes per value.
void bench_layernorm(const char* shape, int64_t rows, int64_t C, const Machine& m) {
    Tensor x = filled({rows, C}, 1.0).requires_grad_();
    Tensor gain = filled({C}, 1.0).requires_grad_(), bias = filled({C}, 0.1).requires_grad_();
    Upstream up(rows * C);
    double values = (double)(rows * C);
    x.grad_buffer();  // zeros, then the calls' gradients add up (1e-2 each: no overflow)
    bench_memory_bound("layernorm fwd+bwd", shape, 24 * values, 16 * values,
                       [&] { forward_backward([&] { return layernorm(x, gain, bias); }, up); }, m);
}

// cross-entropy from logits (rows, V), as the loss: forward reads the logits (softmax, log-sum-exp,
// loss) and writes dlogits (the gradient, made while each row is in cache); backward, from the usual
// upstream gradient of 1, hands that buffer over. 8 bytes per logit (a row is read more than once in
// forward, max then exponentials, but from the L2: a row is at most 200 KB); working set logits,
// dlogits: 8 bytes per logit. The logits are an op's output, as in a step (the output layer's), here
// of an op whose backward does nothing: so their gradient buffer is new each call, then freed.
void bench_cross_entropy(const char* shape, int64_t rows, int64_t V, const Machine& m) {
    Tensor weights = filled({rows, V}, 3.0).requires_grad_();
    std::vector<int> targets((size_t)rows);
    for (int64_t r = 0; r < rows; ++r) targets[(size_t)r] = (int)((r * 7919) % V);
    double values = (double)(rows * V);
    bench_memory_bound("cross-entropy fwd+bwd", shape, 8 * values, 8 * values, [&] {
        Tensor logits = record(weights.detach(), "logits", {weights}, [](const Tensor&) {});
        cross_entropy(logits, targets).backward();
    }, m);
}

// GELU over n values, as in an MLP: forward reads x and writes y; backward reads x and dy and writes
// dx over dy (x, the first linear's output, has no gradient yet: so dx is computed in place). 20 bytes
// per value; working set x, y, dy: 12.
void bench_gelu(const char* shape, int64_t n, const Machine& m) {
    Tensor leaf = filled({n}, 3.0).requires_grad_();
    Tensor x = op_output(leaf);
    Upstream up(n);
    bench_memory_bound("GELU fwd+bwd", shape, 20.0 * (double)n, 12.0 * (double)n,
                       [&] { forward_backward([&] { return gelu(x); }, up); }, m, [&] {
                           x.impl()->grad.reset();
                           up.refresh();
                       });
}

// The residual add y = a + b over n values, as in a block: forward reads a and b and writes y;
// backward hands dy's buffer to a as its gradient (a, the residual stream, has none yet), and copies
// dy into b's new gradient. 20 bytes per value (fwd: a, b in, y out; bwd: dy in, db out); working
// set a, b, y, dy, db: 20.
void bench_add(const char* shape, int64_t n, const Machine& m) {
    Tensor leaf_a = filled({n}, 1.0).requires_grad_(), leaf_b = filled({n}, 0.5).requires_grad_();
    Tensor a = op_output(leaf_a), b = op_output(leaf_b);
    Upstream up(n);
    bench_memory_bound("residual add fwd+bwd", shape, 20.0 * (double)n, 20.0 * (double)n,
                       [&] { forward_backward([&] { return add(a, b); }, up); }, m, [&] {
                           a.impl()->grad.reset();
                           b.impl()->grad.reset();
                           up.refresh();
                       });
}

// The optimizer's passes over GPT-2 small's 124M parameters (its 148 tensors, as ./train has them),
// with gradients as after a backward:
//   AdamW step                reads p, g, m, v, writes p, m, v: 28 bytes per parameter
//   AdamW step, bf16 master   reads the master copy, g, m, v, writes them (not g) and p: 32 bytes
//   clip_grad_norm, measure   reads g: 4 bytes (max_norm <= 0: the norm only)
//   clip_grad_norm, clip      reads g, then reads and writes g (scaling): 12 bytes
//   zero_grad                 writes g: 4 bytes (Tensor::zero_grad on each parameter: the eager zeroing;
//                             the optimizer's zero_grad only marks the buffers, see zero_grad_lazily)
void bench_optimizer(const std::set<std::string>& want, const Machine& m) {
    nn::GPT model(nn::GPTConfig::gpt2(), 1);
    ag::NamedTensors params = model.parameters();
    optim::AdamW opt(optim::param_groups(params));
    int64_t n = 0;
    for (const optim::ParamGroup& g : opt.groups()) n += optim::num_params(g);
    for (const auto& np : params) fill(np.second.grad_buffer(), np.second.numel(), 1e-3);
    const std::string shape = "GPT-2 124M, " + std::to_string(params.size()) + " tensors";
    const double values = (double)n;
    if (want.count("adamw")) {
        bench_memory_bound("AdamW step", shape, 28 * values, 16 * values, [&] { opt.step(1e-4); }, m);
        // --dtype bf16's update: the fp32 master copy is updated and rounded into the parameter
        optim::AdamWConfig c;
        c.bf16_params = true;
        optim::AdamW bf16(optim::param_groups(params), c);
        bench_memory_bound("AdamW step, bf16 master", shape, 32 * values, 20 * values, [&] { bf16.step(1e-4); }, m);
    }
    if (want.count("clip")) {
        bench_memory_bound("clip_grad_norm: norm only", shape, 4 * values, 4 * values,
                           [&] { optim::clip_grad_norm(params, 0); }, m);
        // Clip to slightly below the last call's norm every time, so that every call scales.
        double max_norm = optim::clip_grad_norm(params, 0);
        bench_memory_bound("clip_grad_norm: norm + scale", shape, 12 * values, 4 * values,
                           [&] { optim::clip_grad_norm(params, max_norm *= 0.999); }, m);
    }
    if (want.count("zero_grad"))
        bench_memory_bound("zero_grad (eager)", shape, 4 * values, 4 * values, [&] {
            for (const auto& np : params) np.second.zero_grad();
        }, m);
}

// memcpy_1, memcpy_n: the limits' memcpy, which moved memcpy_bytes per call.
void bench_memory_kernels(const std::set<std::string>& want, const Machine& m, Stats memcpy_1, Stats memcpy_n,
                          double memcpy_bytes) {
    bw_table_header(m.threads);
    auto gbs = [](Stats s) { return fmt("%6.1f (%.1f-%.1f)", s.median / 1e9, s.min / 1e9, s.max / 1e9); };
    std::printf("| %-28s | %-40s | %7.0f | %-25s | %5.0f%% | %8.0f%% | %-25s | %5.0f%% | %8.0f%% |\n", "memcpy",
                with_working_set("192 MB copied", memcpy_bytes).c_str(), memcpy_bytes / 1e6, gbs(memcpy_1).c_str(),
                100 * memcpy_1.median / m.bw_1, 100.0, gbs(memcpy_n).c_str(), 100 * memcpy_n.median / m.bw_n, 100.0);
    // Each kernel at a shape of a step this bench times (in cache) and at a GPT-2 shape past the caches.
    if (want.count("layernorm")) {
        bench_layernorm("GPT-2 step, 4x64x768", 4 * 64, 768, m);
        bench_layernorm("32x1024x768", 32 * 1024, 768, m);
        release_cached_memory();
    }
    if (want.count("crossentropy")) {
        bench_cross_entropy("6-layer step, 8x256x256", 8 * 256, 256, m);
        bench_cross_entropy("GPT-2, 4x256x50257", 4 * 256, 50257, m);
        release_cached_memory();
    }
    if (want.count("gelu")) {
        bench_gelu("GPT-2 step, 4x64x3072", 4 * 64 * 3072, m);
        bench_gelu("8x1024x3072", 8 * 1024 * 3072, m);
        release_cached_memory();
    }
    if (want.count("add")) {
        bench_add("GPT-2 step, 4x64x768", 4 * 64 * 768, m);
        bench_add("32x1024x768", 32 * 1024 * 768, m);
        release_cached_memory();
    }
    if (want.count("adamw") || want.count("clip") || want.count("zero_grad")) {
        bench_optimizer(want, m);
        release_cached_memory();
    }
    std::printf("\nBytes counted per call, each tensor read or written once per pass, each op as in a step "
                "(notes in tests/bench.cpp): layernorm 24 per value (fwd: x in, y out; bwd: x, dy, dx in, dx out: "
                "the residual stream's gradient is added to), cross-entropy 8 per logit (fwd: logits in, dlogits "
                "out, made while a row is in cache; bwd: nothing to move), GELU 20 per value (fwd: x in, y out; "
                "bwd: x, dy in, dx out, written over dy), add 20 per value (fwd: a, b in, y out; bwd: dy in, db out; "
                "dy's buffer becomes da), AdamW 28 per parameter "
                "(p, g, m, v in; p, m, v out; with bf16 master weights 32: master, g, m, v in; master, m, v, "
                "p out), clip 4 (norm) + 8 (scale), zero_grad 4. \"of bw\" is of the "
                "bandwidth limit above (\"bw\"). A kernel that stores into lines it has not read also reads them "
                "first (read for ownership), which its count leaves out, unless it streams them: zero_grad and memcpy "
                "do on large buffers (the C library's memset and memcpy), and so do layernorm, GELU, cross-entropy and add "
                "past the caches (over 8 MB). \"of memcpy\" is "
                "of a memcpy moving the same bytes on the same threads.\n");
}

// ---------------------------------------------------------------------------------------------------
// Fused causal attention (causal_attention_qkv, as the model calls it), forward and backward of one
// layer, from the input projection (B, T, 3C), which is an op's output as in a step, so its gradient
// buffer is new each call. FLOPs counted as MFU counts attention: 12 x C x T^2 x B per layer, forward
// and backward, the whole T x T of scores although half of them are in the future. (The kernel skips
// the future's tiles, so on that count it can show more than the work it does.)
void bench_attention(const std::string& what, int64_t B, int64_t T, int64_t C, int64_t NH, Dtype inputs,
                     double peak_1, double peak_n, int threads) {
    Tensor qkv = op_output(filled({B, T, 3 * C}, 1.0).requires_grad_());
    auto dy = upstream_gradient(B * T * C);
    const real scale = (real)(1.0 / std::sqrt((double)(C / NH)));
    auto body = [&] {
        qkv.impl()->grad.reset();  // as backward() frees an op's output gradient
        Tensor out = causal_attention_qkv(qkv, NH, scale, Tensor(), 0, nullptr, false, inputs);
        out.impl()->grad = dy;
        out.impl()->node->backward(out);
    };
    const double flops = 12.0 * (double)C * (double)T * (double)T * (double)B;
    omp_set_num_threads(1);
    Stats s1 = measure_rate(flops, body);
    omp_set_num_threads(threads);
    Stats s2 = measure_rate(flops, body);
    const std::string shape = fmt("%.0fx%.0fx%.0f", B, T, C) + fmt(", %.0f heads", NH);
    row(what, shape, "GFLOP/s", s1, peak_1, s2, peak_n, 1e9);
    std::fflush(stdout);
}

// Each shape in fp32 (of the FMA peak at the start) and with bf16 operands (of gemm_bf16's path's peak,
// measured here), one after the other.
void bench_attentions(double fma_1, double fma_n, int threads) {
    const double bf16_1 = bf16_path_peak(1).max, bf16_n = bf16_path_peak(threads).max;
    table_header("Fused causal attention, forward + backward of one layer (fp32: of the FMA peak at the start; "
                 "bf16: of gemm_bf16's path's peak)", "of peak", threads);
    struct Shape {
        const char* what;
        int64_t B, T, C, NH;
    };
    for (const Shape& a : {Shape{"default model", 16, 64, 128, 4}, Shape{"6-layer model", 8, 256, 384, 6},
                           Shape{"GPT-2 124M", 4, 64, 768, 12}, Shape{"GPT-2 124M, T = 1024", 1, 1024, 768, 12}}) {
        bench_attention(a.what, a.B, a.T, a.C, a.NH, Dtype::fp32, fma_1, fma_n, threads);
        bench_attention(std::string(a.what) + ", bf16", a.B, a.T, a.C, a.NH, Dtype::bf16, bf16_1, bf16_n, threads);
    }
    std::printf("\nbf16 peak: %.0f GFLOP/s on 1 thread, %.0f on %d (%s).\n", bf16_1 / 1e9, bf16_n / 1e9, threads,
                gemm_bf16_kernel_name());
    release_cached_memory();
}

// ---------------------------------------------------------------------------------------------------
// Whole training steps: zero_grad, forward, backward, clip to norm 1, AdamW, as ./train does them.
// FLOPs per step = 6 x parameters x tokens + 12 x layers x C x T x tokens (attention), PaLM's
// count (Chowdhery et al. 2022, appendix B); MFU is that over the time, as a fraction of the FMA peak on the same threads.
// "memory" is how much the process grew from before the model was built to after the steps: parameters,
// gradients, AdamW's two moments, and the activations the caching allocator keeps for the next step.
double resident_mb() {
    std::ifstream f("/proc/self/statm");
    long pages_total = 0, pages_resident = 0;
    f >> pages_total >> pages_resident;
    return (double)pages_resident * 4096.0 / 1e6;
}

// B*T token ids and targets for a timed step: spread over the vocabulary, the same every run.
void step_tokens(const nn::GPTConfig& config, int B, int T, std::vector<int>& ids, std::vector<int>& targets) {
    ids.resize(B * T), targets.resize(B * T);
    for (int i = 0; i < B * T; ++i) {
        ids[i] = (i * 7919) % config.vocab_size;
        targets[i] = (i * 104729 + 3) % config.vocab_size;
    }
}

// A model, its AdamW and a fixed batch. step() is one training step as ./train takes it: zero_grad,
// forward, backward, the gradient norm (in bf16 the pass that also rounds the gradients), clipping to
// 1, AdamW (in bf16 with master weights).
struct StepRunner {
    nn::GPT model;
    ag::NamedTensors params;
    optim::AdamW opt;
    std::vector<int> ids, targets;
    int B, T;
    bool bf16;
    StepRunner(const nn::GPTConfig& config, int B_, int T_, Dtype dtype = Dtype::fp32)
        : model(config, 1), params(in_dtype(model, dtype).parameters()), opt(optim::param_groups(params), adamw(dtype)),
          B(B_), T(T_), bf16(dtype == Dtype::bf16) {
        step_tokens(config, B, T, ids, targets);
    }
    void step() {
        opt.zero_grad();
        model.forward(ids, B, T, targets).loss.backward();
        const double norm = bf16 ? optim::round_grads_to_bf16(params) : optim::grad_norm(params);
        opt.step(1e-4, optim::clip_factor(norm, 1.0));
    }
    static nn::GPT& in_dtype(nn::GPT& m, Dtype d) {
        m.set_dtype(d);
        return m;
    }
    static optim::AdamWConfig adamw(Dtype d) {
        optim::AdamWConfig c;
        c.bf16_params = d == Dtype::bf16;
        return c;
    }
};

void bench_step(const char* what, const nn::GPTConfig& config, int B, int T, int reps, double peak) {
    // Start from a process holding no freed memory (the allocator's cache, and what the C library keeps
    // after earlier sections freed it), so that the growth is this model's.
    release_cached_memory();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    double rss_before = resident_mb();
    StepRunner run(config, B, T);
    run.step();  // warm up: the first step allocates gradients, moments and the allocator's cache
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        double t0 = now_seconds();
        run.step();
        ms.push_back(1000 * (now_seconds() - t0));
    }
    Stats s = stats_of(ms);
    double n = (double)run.model.num_parameters();
    double flops = (6.0 * n + 12.0 * config.n_layer * config.n_embd * T) * B * T;
    std::printf("| %-26s | %9.1f M | %10.1f | %-25s | %9.0f | %6.1f%% | %7.0f MB (%5.0f MB state)   |\n", what,
                n / 1e6, flops / 1e9, fmt("%7.1f (%.1f-%.1f)", s.median, s.min, s.max).c_str(),
                B * T / (s.median / 1000), 100 * flops / (s.median / 1000) / peak, resident_mb() - rss_before,
                16.0 * n / 1e6);
    std::fflush(stdout);
}

// One model in fp32 and the same in bf16 (./train --dtype bf16: bf16 storage, master weights, the
// gradients rounded by the norm's pass), stepped in turn, so that both medians come from the same
// minutes of a noisy host; then the ratio of the two.
void bench_step_pair(const char* what, const nn::GPTConfig& config, int B, int T, int reps, double fma_peak,
                     double bf16_peak) {
    release_cached_memory();
    StepRunner fp32(config, B, T), bf16(config, B, T, Dtype::bf16);
    fp32.step(), bf16.step();  // warm up
    std::vector<double> ms32, ms16;
    for (int r = 0; r < reps; ++r) {
        double t0 = now_seconds();
        fp32.step();
        double t1 = now_seconds();
        bf16.step();
        ms32.push_back(1000 * (t1 - t0)), ms16.push_back(1000 * (now_seconds() - t1));
    }
    const double n = (double)fp32.model.num_parameters();
    const double flops = (6.0 * n + 12.0 * config.n_layer * config.n_embd * T) * B * T;
    for (int k = 0; k < 2; ++k) {
        Stats st = stats_of(k == 0 ? ms32 : ms16);
        std::printf("| %-26s | %9.1f M | %10.1f | %-25s | %9.0f | %6.1f%% | %-30s |\n",
                    (std::string(what) + (k == 0 ? ", fp32" : ", bf16")).c_str(), n / 1e6, flops / 1e9,
                    fmt("%7.1f (%.1f-%.1f)", st.median, st.min, st.max).c_str(), B * T / (st.median / 1000),
                    100 * flops / (st.median / 1000) / (k == 0 ? fma_peak : bf16_peak),
                    k == 0 ? "MFU of the fp32 FMA peak" : "MFU of gemm_bf16's peak");
    }
    std::vector<double> ratio;
    for (int r = 0; r < reps; ++r) ratio.push_back(ms16[r] / ms32[r]);
    Stats q = stats_of(ratio);
    std::printf("| %-26s | %11s | %10s | %-25s | %9s | %7s | %-30s |\n", (std::string(what) + ", bf16 / fp32").c_str(),
                "", "", fmt("%.2fx (%.2f-%.2f)", q.median, q.min, q.max).c_str(), "", "", "time, step by step");
    std::fflush(stdout);
}

void bench_training_steps(double fma_peak_all, double bf16_peak_all) {
    std::printf("\n### Whole training steps (all threads: forward, backward, clip, AdamW)\n\n");
    std::printf("| %-26s | %11s | %10s | %-25s | %9s | %7s | %-30s |\n", "model", "parameters", "GFLOP/step",
                "ms/step: median (min-max)", "tokens/s", "MFU", "memory (params+grads+m+v)");
    std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(), std::string(13, '-').c_str(),
                std::string(12, '-').c_str(), std::string(27, '-').c_str(), std::string(11, '-').c_str(),
                std::string(9, '-').c_str(), std::string(32, '-').c_str());
    nn::GPTConfig small;  // ./train's default model: 4 layers, 4 heads, 128 wide, bytes (V = 256)
    small.max_seq_len = 64;
    bench_step("default model, 16 x 64", small, 16, 64, 20, fma_peak_all);
    bench_step("baby GPT (nanoGPT) 12 x 64", small, 12, 64, 20, fma_peak_all);  // same shape, batch 12
    // nanoGPT's shakespeare-char model: 6 layers, 6 heads, 384 wide, bytes, T_max 256, at batch 8 x 256
    nn::GPTConfig char_model;
    char_model.n_layer = 6;
    char_model.n_head = 6;
    char_model.n_embd = 384;
    char_model.max_seq_len = 256;
    bench_step("6-layer 384-wide, 8 x 256", char_model, 8, 256, 5, fma_peak_all);
    nn::GPTConfig gpt2 = nn::GPTConfig::gpt2();
    gpt2.padded_vocab_size = 50304;  // as llm.c and ./train on token files pad it
    bench_step("GPT-2 124M, 4 x 64", gpt2, 4, 64, 3, fma_peak_all);
    std::printf("\nThe same two models in fp32 and in bf16 (--dtype bf16, master weights), a step of each in turn:\n\n");
    bench_step_pair("6-layer 384-wide, 8 x 256", char_model, 8, 256, 7, fma_peak_all, bf16_peak_all);
    bench_step_pair("GPT-2 124M, 4 x 64", gpt2, 4, 64, 7, fma_peak_all, bf16_peak_all);
}

// Where the step's scaling goes: at each thread count, the FMA peak (registers only: what the host
// gives this process's threads, which other programs on a shared machine take from) and three of the
// step's products at this batch (the MLP's, which with the output layer's are most of its FLOPs), on
// the same operands each repetition. Each as a multiple of its 1-thread rate, and that over the
// threads: a product whose efficiency follows the peak's is held back by the host, one below it by
// the product itself.
void bench_scaling_parts(const std::vector<int>& counts, int64_t BT) {
    const GemmCase cases[] = {{"mlp fc fwd x W^T", false, true, BT, 3072, 768, false},
                              {"mlp fc dX = dY W", false, false, BT, 768, 3072, false},
                              {"mlp fc dW = dY^T X", true, false, 3072, 768, BT, false}};
    std::printf("\nThe FMA peak and three of the step's products at this batch, each thread count's rate over the "
                "1-thread rate, and that over the threads:\n\n| threads | FMA peak (registers) |");
    for (const GemmCase& g : cases) std::printf(" %s, %.0fx%.0fx%.0f |", g.what, (double)g.M, (double)g.N, (double)g.K);
    std::printf("\n|--------:|---:|---:|---:|---:|\n");
    std::vector<Tensor> A, B, C;
    for (const GemmCase& g : cases) {
        A.push_back(random_floats(g.M * g.K, 1)), B.push_back(random_floats(g.K * g.N, 2));
        C.push_back(Tensor::zeros({g.M * g.N}));
    }
    std::vector<double> one(4, 0);
    for (int t : counts) {
        omp_set_num_threads(t);
        std::vector<double> rate = {fma_peak(t).median};
        for (size_t i = 0; i < 3; ++i) {
            const GemmCase& g = cases[i];
            rate.push_back(measure_rate(2.0 * g.M * g.N * g.K, [&] {
                               gemm(g.ta, g.tb, g.M, g.N, g.K, A[i].data(), B[i].data(), C[i].data(), false);
                           }).median);
        }
        std::printf("| %7d |", t);
        for (size_t i = 0; i < 4; ++i) {
            if (t == counts.front()) one[i] = rate[i];
            std::printf(" %.0f GFLOP/s: %.1fx, %.0f%% |", rate[i] / 1e9, rate[i] / one[i], 100 * rate[i] / one[i] / t);
        }
        std::printf("\n");
        std::fflush(stdout);
    }
}

// Scaling: the same GPT-2 step on 1, 2, 4, ... threads up to all of them (and all of them if that is
// not a power of two), at a batch large enough to give every thread work, as parallel efficiency:
// time on 1 thread / (threads x time on that many). Not run by default (the 1-thread step of GPT-2 at
// 16 x 256 takes tens of seconds); `build/bench scaling` runs it.
void bench_scaling(int max_threads) {
    const int B = 16, T = 256, reps = 3;
    nn::GPTConfig gpt2 = nn::GPTConfig::gpt2();
    gpt2.padded_vocab_size = 50304;
    std::printf("\n### Scaling: GPT-2 124M, %d x %d, fp32 (forward, backward, clip, AdamW)\n\n", B, T);
    std::printf("| threads | ms/step: median (min-max) | speed-up | parallel efficiency |\n");
    std::printf("|--------:|---------------------------|---------:|--------------------:|\n");
    std::vector<int> counts;
    for (int t = 1; t < max_threads; t *= 2) counts.push_back(t);
    counts.push_back(max_threads);
    release_cached_memory();
    StepRunner run(gpt2, B, T);
    double one = 0;
    for (int t : counts) {
        omp_set_num_threads(t);
        run.step();  // warm up at this thread count (the allocator's cache, the threads themselves)
        std::vector<double> ms;
        for (int r = 0; r < reps; ++r) {
            double t0 = now_seconds();
            run.step();
            ms.push_back(1000 * (now_seconds() - t0));
        }
        Stats s = stats_of(ms);
        if (t == 1) one = s.median;
        std::printf("| %7d | %-25s | %7.2fx | %18.0f%% |\n", t,
                    fmt("%7.1f (%.1f-%.1f)", s.median, s.min, s.max).c_str(), one / s.median,
                    100 * one / (t * s.median));
        std::fflush(stdout);
    }
    bench_scaling_parts(counts, B * T);
    omp_set_num_threads(max_threads);
}

std::string load_average() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    if (!(f >> a >> b >> c)) return "unknown";
    return a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
    // The sections to run: those named on the command line, or all of them but scaling (minutes long).
    const std::vector<std::string> all = {"gemm", "bf16",  "attention", "layernorm", "crossentropy", "gelu",
                                          "add",  "adamw", "clip",      "zero_grad", "steps", "scaling"};
    const std::vector<std::string> memory = {"layernorm", "crossentropy", "gelu", "add", "adamw", "clip", "zero_grad"};
    std::set<std::string> want;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "memory") want.insert(memory.begin(), memory.end());
        else if (std::find(all.begin(), all.end(), a) != all.end()) want.insert(a);
        else {
            const bool help = a == "--help" || a == "-h";
            FILE* out = help ? stdout : stderr;
            if (!help) std::fprintf(out, "%s: no section '%s'\n", argv[0], a.c_str());
            std::fprintf(out, "usage: %s [section ...]   (no section: all but scaling)\nsections:", argv[0]);
            for (const std::string& s : all) std::fprintf(out, " %s", s.c_str());
            std::fprintf(out, ", or memory (all the memory-bound ones)\n");
            return help ? 0 : 2;
        }
    }
    if (want.empty()) want.insert(all.begin(), all.end() - 1);
    bool any_memory = false;
    for (const std::string& s : memory) any_memory = any_memory || want.count(s);

    ag::flush_denormals_to_zero();  // as ./train runs (kernels.h), before OpenMP starts its threads
    const int threads = omp_get_max_threads();
    double t_start = now_seconds();
    std::printf("## make bench\n\n");
    std::printf("threads: %d (OMP_NUM_THREADS)  ·  gemm micro-kernel: %s  ·  peak loop: %s, %d floats/vector  ·  "
                "load average at start: %s\n",
                threads, gemm_kernel_name(), vec_name, kLanes, load_average().c_str());

    // ---- the limits
    Stats peak_1 = fma_peak(1), peak_n = fma_peak(threads);
    const int64_t n = 48 << 20;  // 192 MB per array: well past the caches of one core
    std::vector<float> x(n, 1.0f), y(n, 2.0f), z(n, 0.0f);
    Stats copy_1 = bandwidth("copy", x, y, z, 1), copy_n = bandwidth("copy", x, y, z, threads);
    Stats triad_1 = bandwidth("triad", x, y, z, 1), triad_n = bandwidth("triad", x, y, z, threads);
    Stats update_1 = bandwidth("update", x, y, z, 1), update_n = bandwidth("update", x, y, z, threads);
    Stats read_1 = bandwidth("read", x, y, z, 1), read_n = bandwidth("read", x, y, z, threads);
    // The limits are the best repetition, not the median: another program can only slow a measurement
    // down, and a limit measured low would flatter every ratio below it.
    double bw_1 = std::max({copy_1.max, triad_1.max, update_1.max, read_1.max});
    double bw_n = std::max({copy_n.max, triad_n.max, update_n.max, read_n.max});
    const double fma_1 = peak_1.max, fma_n = peak_n.max;

    table_header("Machine limits, measured in this run", "of max", threads);
    row("fp32 FMA peak", "registers only", "GFLOP/s", peak_1, fma_1, peak_n, fma_n, 1e9);
    row("memory bandwidth: copy", "192 MB, y = x", "GB/s", copy_1, bw_1, copy_n, bw_n, 1e9);
    row("memory bandwidth: triad", "192 MB, z = x + s y", "GB/s", triad_1, bw_1, triad_n, bw_n, 1e9);
    row("memory bandwidth: update", "192 MB, y = x + s y", "GB/s", update_1, bw_1, update_n, bw_n, 1e9);
    row("memory bandwidth: read", "192 MB, s += x^2", "GB/s", read_1, bw_1, read_n, bw_n, 1e9);
    std::printf("\nBelow, each %% is of the matching limit (its best repetition): the FMA peak for gemm, the best of copy, triad, "
                "update and read (\"bw\") for memory-bound kernels, on the same number of threads. Copy and triad count 8 and 12 "
                "bytes per element but also read each line they store into (read for ownership); update writes only "
                "lines it has read, so every byte it moves is counted. Read only reads (4 bytes per element): the most a "
                "pass that only reads, such as the gradient norm, can reach.\n");

    if (want.count("gemm")) bench_gemms(fma_1, fma_n, threads);
    if (want.count("bf16")) bench_gemms_bf16(threads);
    if (want.count("attention")) bench_attentions(fma_1, fma_n, threads);

    // ---- memory-bound kernels, against the bandwidth and against memcpy
    if (any_memory) {
        Stats memcpy_1 = bandwidth("memcpy", x, y, z, 1), memcpy_n = bandwidth("memcpy", x, y, z, threads);
        x = y = z = std::vector<float>();  // 600 MB the rest does not need
        bench_memory_kernels(want, {threads, bw_1, bw_n}, memcpy_1, memcpy_n, 8.0 * (double)n);
    }

    // ---- whole training steps
    // MFU is of the FMA peak measured again here, or at the start if that was better: a busy host
    // (other programs on the cores) slows a measurement down, never up.
    if (want.count("steps")) bench_training_steps(std::max(fma_n, fma_peak(threads).max), bf16_path_peak(threads).max);

    if (want.count("scaling")) bench_scaling(threads);

    std::printf("\nload average at end: %s  ·  bench took %.0f s\n", load_average().c_str(), now_seconds() - t_start);
    return 0;
}
