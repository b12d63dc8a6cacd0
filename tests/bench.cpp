// bench.cpp: how close the kernels come to this machine's limits (`make bench`).
//
// First it measures the limits themselves, in this process: the fp32 FMA peak (a loop of independent
// fused multiply-adds that never leaves the registers) and the memory bandwidth (a copy and a triad
// over arrays much larger than the caches), on 1 thread and on all threads. Then every kernel is
// reported as a figure and as a fraction of the limit that bounds it, measured in the same run, so
// that the ratios stay meaningful on a noisy or clock-drifting host.
//
// Each figure is the median of several repetitions, with the spread (min-max) beside it. The output is
// a Markdown table, to paste into an issue as is.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <omp.h>
#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12's own AVX-512 header trips its -Wuninitialized (GCC bug 105593); the warning is about the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "../autograd/kernels.h"
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

// Memory bandwidth in bytes/s over arrays of n floats, counting each byte read or written once:
// copy (y = x, 8 bytes per element) or triad (z = x + s y, 12 bytes per element).
Stats bandwidth(const char* kind, std::vector<float>& x, std::vector<float>& y, std::vector<float>& z,
                int threads) {
    const int64_t n = (int64_t)x.size();
    float *px = x.data(), *py = y.data(), *pz = z.data();
    if (std::strcmp(kind, "copy") == 0)
        return measure_rate(8.0 * n, [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t i = 0; i < n; ++i) py[i] = px[i];
        }, 0.1);
    if (std::strcmp(kind, "memcpy") == 0)  // std::memcpy, each thread on its own contiguous chunk
        return measure_rate(8.0 * n, [&] {
#pragma omp parallel num_threads(threads)
            {
                int t = omp_get_thread_num(), nt = omp_get_num_threads();
                int64_t begin = n * t / nt, end = n * (t + 1) / nt;
                std::memcpy(py + begin, px + begin, (end - begin) * sizeof(float));
            }
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

std::vector<float> random_floats(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(n);
    for (float& x : v) x = (float)rng.normal();
    return v;
}

void bench_gemm(const GemmCase& g, double peak1, double peak2, int threads) {
    std::vector<float> A = random_floats(g.M * g.K, 1), B = random_floats(g.K * g.N, 2), C(g.M * g.N);
    auto body = [&] { gemm(g.ta, g.tb, g.M, g.N, g.K, A.data(), B.data(), C.data(), g.accumulate); };
    double flops = 2.0 * g.M * g.N * g.K;
    omp_set_num_threads(1);
    Stats s1 = measure_rate(flops, body);
    omp_set_num_threads(threads);
    Stats s2 = measure_rate(flops, body);
    std::string shape = fmt("%.0fx%.0fx%.0f", g.M, g.N, g.K) + (g.ta ? " A^T" : "") + (g.tb ? " B^T" : "");
    row(g.what, shape, "GFLOP/s", s1, peak1, s2, peak2, 1e9);
}

// Many small independent products, shared out whole between threads as batched matmul does
// (attention's scores and outputs: one per batch entry and head).
void bench_gemm_batched(const char* what, int64_t batch, bool tb, int64_t M, int64_t N, int64_t K,
                        double peak1, double peak2, int threads) {
    std::vector<float> A = random_floats(batch * M * K, 1), B = random_floats(batch * K * N, 2), C(batch * M * N);
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
    row(what, shape, "GFLOP/s", s1, peak1, s2, peak2, 1e9);
}

// ---------------------------------------------------------------------------------------------------
// Whole training steps: zero_grad, forward, backward, clip to norm 1, AdamW, as ./train does them.
// FLOPs per step = 6 x parameters x tokens + 12 x layers x C x T x tokens (attention), the and
// PaLM's count; MFU is that over the time, as a fraction of the FMA peak on the same threads.
// "memory" is how much the process grew from before the model was built to after the steps: parameters,
// gradients, AdamW's two moments, and the activations the caching allocator keeps for the next step.
double resident_mb() {
    std::ifstream f("/proc/self/statm");
    long pages_total = 0, pages_resident = 0;
    f >> pages_total >> pages_resident;
    return (double)pages_resident * 4096.0 / 1e6;
}

void bench_step(const char* what, const nn::GPTConfig& config, int B, int T, int reps, double peak) {
    double rss_before = resident_mb();
    nn::GPT model(config, 1);
    ag::NamedTensors params = model.parameters();
    optim::AdamW opt(optim::param_groups(params));
    std::vector<int> ids(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) {
        ids[i] = (i * 7919) % config.vocab_size;
        targets[i] = (i * 104729 + 3) % config.vocab_size;
    }
    auto step = [&] {
        opt.zero_grad();
        model.forward(ids, B, T, targets).loss.backward();
        optim::clip_grad_norm(params, 1.0);
        opt.step(1e-4);
    };
    step();  // warm up: the first step allocates gradients, moments and the allocator's cache
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        double t0 = now_seconds();
        step();
        ms.push_back(1000 * (now_seconds() - t0));
    }
    Stats s = stats_of(ms);
    double n = (double)model.num_parameters();
    double flops = (6.0 * n + 12.0 * config.n_layer * config.n_embd * T) * B * T;
    std::printf("| %-26s | %9.1f M | %-25s | %9.0f | %6.1f%% | %7.0f MB (%5.0f MB state)   |\n", what, n / 1e6,
                fmt("%7.1f (%.1f-%.1f)", s.median, s.min, s.max).c_str(), B * T / (s.median / 1000),
                100 * flops / (s.median / 1000) / peak, resident_mb() - rss_before, 16.0 * n / 1e6);
}

void bench_training_steps(double fma_peak_all) {
    std::printf("\n### Whole training steps (all threads: forward, backward, clip, AdamW)\n\n");
    std::printf("| %-26s | %11s | %-25s | %9s | %7s | %-30s |\n", "model", "parameters", "ms/step: median (min-max)",
                "tokens/s", "MFU", "memory (params+grads+m+v)");
    std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(), std::string(13, '-').c_str(),
                std::string(27, '-').c_str(), std::string(11, '-').c_str(), std::string(9, '-').c_str(),
                std::string(32, '-').c_str());
    nn::GPTConfig small;  // ./train's default model: 4 layers, 4 heads, 128 wide, bytes (V = 256)
    small.max_seq_len = 64;
    bench_step("default model, 16 x 64", small, 16, 64, 20, fma_peak_all);
    bench_step("baby GPT (nanoGPT) 12 x 64", small, 12, 64, 20, fma_peak_all);  // same shape, batch 12
    bench_step("GPT-2 124M, 4 x 64", nn::GPTConfig::gpt2(), 4, 64, 3, fma_peak_all);
}

std::string load_average() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    if (!(f >> a >> b >> c)) return "unknown";
    return a + " " + b + " " + c;
}

}  // namespace

int main() {
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
    // The limits are the best repetition, not the median: another program can only slow a measurement
    // down, and a limit measured low would flatter every ratio below it.
    double bw_1 = std::max(copy_1.max, triad_1.max), bw_n = std::max(copy_n.max, triad_n.max);
    const double fma_1 = peak_1.max, fma_n = peak_n.max;

    table_header("Machine limits, measured in this run", "of max", threads);
    row("fp32 FMA peak", "registers only", "GFLOP/s", peak_1, fma_1, peak_n, fma_n, 1e9);
    row("memory bandwidth: copy", "192 MB, y = x", "GB/s", copy_1, bw_1, copy_n, bw_n, 1e9);
    row("memory bandwidth: triad", "192 MB, z = x + s y", "GB/s", triad_1, bw_1, triad_n, bw_n, 1e9);
    std::printf("\nBelow, each %% is of the matching limit (its best repetition): the FMA peak for gemm, the better of copy and triad "
                "for memory-bound kernels, on the same number of threads.\n");

    // ---- gemm at GPT-2 small's linear layers: R = B*T = 256 rows, C = 768
    table_header("gemm at GPT-2 small's shapes (B*T = 256)", "of peak", threads);
    struct Layer {
        const char* name;
        int64_t out, in;
    };
    const Layer gpt2[] = {{"attn qkv", 2304, 768}, {"attn proj", 768, 768}, {"mlp fc", 3072, 768}, {"mlp proj", 768, 3072}};
    for (const Layer& l : gpt2) {
        std::string f = std::string(l.name) + " fwd x W^T", dx = std::string(l.name) + " dX = dY W",
                    dw = std::string(l.name) + " dW = dY^T X";
        bench_gemm({f.c_str(), false, true, 256, l.out, l.in, false}, fma_1, fma_n, threads);
        bench_gemm({dx.c_str(), false, false, 256, l.in, l.out, true}, fma_1, fma_n, threads);
        bench_gemm({dw.c_str(), true, false, l.out, l.in, 256, true}, fma_1, fma_n, threads);
    }

    // ---- gemm at the default model's shapes: B=16, T=64 (R = 1024), C=128, 4 heads of 32, V=256
    table_header("gemm at the default model's shapes (B*T = 1024, C = 128)", "of peak", threads);
    const Layer small[] = {{"attn qkv", 384, 128}, {"attn proj", 128, 128}, {"mlp fc", 512, 128},
                           {"mlp proj", 128, 512}, {"lm head", 256, 128}};
    for (const Layer& l : small) {
        std::string f = std::string(l.name) + " fwd x W^T", dx = std::string(l.name) + " dX = dY W",
                    dw = std::string(l.name) + " dW = dY^T X";
        bench_gemm({f.c_str(), false, true, 1024, l.out, l.in, false}, fma_1, fma_n, threads);
        bench_gemm({dx.c_str(), false, false, 1024, l.in, l.out, true}, fma_1, fma_n, threads);
        bench_gemm({dw.c_str(), true, false, l.out, l.in, 1024, true}, fma_1, fma_n, threads);
    }
    bench_gemm_batched("attn scores q k^T", 64, true, 64, 64, 32, fma_1, fma_n, threads);
    bench_gemm_batched("attn out att v", 64, false, 64, 32, 64, fma_1, fma_n, threads);

    // ---- memory-bound baselines (layernorm, cross-entropy, AdamW will be compared with these)
    table_header("Memory-bound baselines", "of bw", threads);
    Stats memcpy_1 = bandwidth("memcpy", x, y, z, 1), memcpy_n = bandwidth("memcpy", x, y, z, threads);
    row("memcpy", "192 MB", "GB/s", memcpy_1, bw_1, memcpy_n, bw_n, 1e9);

    // ---- whole training steps
    bench_training_steps(fma_n);

    std::printf("\nload average at end: %s  ·  bench took %.0f s\n", load_average().c_str(), now_seconds() - t_start);
    return 0;
}
