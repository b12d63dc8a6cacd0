// adamw.cpp: Adam with decoupled weight decay.
//
// Adam (Kingma & Ba 2015) keeps two running averages per parameter: m of the gradient and v of its
// square, and moves each parameter by m / sqrt(v): about lr per step in the direction the gradient
// has consistently pointed, whatever the gradient's scale.
//
// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"): weight decay is NOT added
// to the gradient (L2 regularisation, which Adam would then divide by sqrt(v), so that parameters with
// large gradients are barely decayed); it is applied to the parameter directly, at the same rate for
// every parameter of the group: p -= lr * wd * p. Like PyTorch, the decay is scaled by lr, so it
// follows the schedule.
//
// Speed: a step is a pass over memory (read p, g, m, v; write p, m, v: 28 bytes per parameter, some
// 3.5 GB for GPT-2 small), so it is one fused loop per tensor, a large tensor cut into one contiguous
// part per thread. The arithmetic must then cost less than the memory traffic, which takes vector
// instructions: two divisions and a square root per parameter, one at a time, are slower than the
// memory. GCC vectorises std::sqrt only under -fno-math-errno (a command-line flag: the optimize pragma
// does not reach the sqrt builtin), so on AVX-512 the loop is written with intrinsics, the same
// operations in the same order as the compiled plain loop (which contracts a*b + c into one fused
// multiply-add), so both give the same bits. Elsewhere, and in the double build, the plain loop runs.
// The loop reads four arrays and writes three (four with bf16 master weights: the rounded copy too),
// more streams than the hardware prefetcher keeps far enough ahead: each line would arrive only when
// asked for, at the memory's latency. So the loop requests every stream's line kAhead values on itself.
// `make bench` reports the step against the memory bandwidth (docs/performance.md: what it bought).

#include <algorithm>
#include <cmath>

#include <omp.h>
#include "../autograd/fast/simd.h"
#if defined(__AVX512F__) && !defined(AUTOGRAD_DOUBLE)
#define ADAMW_AVX512 1
#endif

#include "../autograd/bf16.h"
#include "../autograd/parallel.h"
#include "optim.h"

namespace optim {

// The state's kind names the precision too, so that a checkpoint's state is only ever loaded into an
// optimizer that reads it the same way. Buffers: m, v, and the master weights when there are any.
static const char* kind_of(const AdamWConfig& c) {
    return !c.bf16_params ? "adamw" : c.master_weights ? "adamw bf16 master" : "adamw bf16";
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWConfig config)
    : Optimizer(std::move(groups), kind_of(config), config.bf16_params && config.master_weights ? 3 : 2),
      config_(config) {
    if (!config.bf16_params || !config.master_weights) return;
    // The master copy starts as the parameters' values (bf16 numbers), as llm.c's starts.
    for (size_t g = 0; g < groups_.size(); ++g)
        for (size_t i = 0; i < groups_[g].params.size(); ++i) {
            const ag::Tensor& p = groups_[g].params[i].second;
            std::copy(p.data(), p.data() + p.numel(), state(g, i, 2).begin());
        }
}

namespace {

// How far ahead of the element being updated the loops request their lines: 2 KB per stream, about
// the memory's latency times one core's share of its bandwidth, and seven streams of it fit in L1.
constexpr int64_t kAhead = 512;

// Requests the line kAhead values on from x[i], to be written (m, v, p) or only read (g). Near the end
// of a tensor the address is past it: harmless, as a prefetch never faults.
inline void fetch_for_write(const real* x, int64_t i) { __builtin_prefetch(x + i + kAhead, 1, 3); }
inline void fetch_for_read(const real* x, int64_t i) { __builtin_prefetch(x + i + kAhead, 0, 3); }

// The numbers one step of one group needs, in the tensors' precision.
struct AdamWCoefficients {
    real lr, wd, beta1, beta2, eps, bias1, bias2, grad_scale;
};

#ifdef ADAMW_AVX512
// round_bf16 (bf16.h) on 16 lanes, bit for bit: simd.h's rounding, the left-over low halves cleared.
inline __m512 round_bf16_lanes(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(bf16_in_top_halves(x), _mm512_set1_epi32((int)0xffff0000u)));
}
#endif

// One pass over elements [begin, end) of one tensor: read g, update m and v, update p. With `rounded`
// (bf16 parameters with a master copy, which is then p), round_bf16 of each new value is written there
// too, in the same pass. (Its lines are requested ahead like the others'. Streaming stores, which skip
// reading the old lines, measured slower: beside seven other streams, their write-combining buffers
// do not keep up.)
void adamw_range(real* p, const real* g, real* m, real* v, int64_t begin, int64_t end, const AdamWCoefficients c,
                 real* rounded = nullptr) {
#ifdef ADAMW_AVX512
    // 16 at a time; the last, partial, vector is masked, so that every element goes through the same
    // instructions however the tensor is split between threads.
    const __m512 beta1 = _mm512_set1_ps(c.beta1), beta2 = _mm512_set1_ps(c.beta2);
    const __m512 one_minus_beta1 = _mm512_set1_ps(1 - c.beta1), one_minus_beta2 = _mm512_set1_ps(1 - c.beta2);
    const __m512 bias1 = _mm512_set1_ps(c.bias1), bias2 = _mm512_set1_ps(c.bias2), eps = _mm512_set1_ps(c.eps);
    const __m512 lr = _mm512_set1_ps(c.lr), wd = _mm512_set1_ps(c.wd), grad_scale = _mm512_set1_ps(c.grad_scale);
    for (int64_t i = begin; i < end; i += 16) {  // 16 floats: one line of each stream
        fetch_for_read(g, i), fetch_for_write(m, i), fetch_for_write(v, i), fetch_for_write(p, i);
        const __mmask16 k = end - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (end - i)) - 1);
        const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), grad_scale);
        const __m512 mi = _mm512_fmadd_ps(beta1, _mm512_maskz_loadu_ps(k, m + i), _mm512_mul_ps(one_minus_beta1, gi));
        const __m512 vi = _mm512_fmadd_ps(beta2, _mm512_maskz_loadu_ps(k, v + i),
                                          _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, gi), gi));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        const __m512 m_hat = _mm512_div_ps(mi, bias1), v_hat = _mm512_div_ps(vi, bias2);
        const __m512 u = _mm512_div_ps(m_hat, _mm512_add_ps(_mm512_sqrt_ps(v_hat), eps));
        const __m512 pi = _mm512_maskz_loadu_ps(k, p + i);
        const __m512 updated = _mm512_fnmadd_ps(lr, _mm512_fmadd_ps(wd, pi, u), pi);  // p - lr (u + wd p)
        _mm512_mask_storeu_ps(p + i, k, updated);
        if (!rounded) continue;
        fetch_for_write(rounded, i);
        _mm512_mask_storeu_ps(rounded + i, k, round_bf16_lanes(updated));
    }
#else
    for (int64_t i = begin; i < end; ++i) {
        if ((i - begin) % (64 / (int64_t)sizeof(real)) == 0) {  // once per line
            fetch_for_read(g, i), fetch_for_write(m, i), fetch_for_write(v, i), fetch_for_write(p, i);
            if (rounded) fetch_for_write(rounded, i);
        }
        real gi = g[i] * c.grad_scale;                       // the clipped gradient
        m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;          // running mean of g
        v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;     // running mean of g^2
        real m_hat = m[i] / c.bias1;                           // bias-corrected
        real v_hat = v[i] / c.bias2;
        p[i] -= c.lr * (m_hat / (std::sqrt(v_hat) + c.eps) + c.wd * p[i]);
        if (rounded) rounded[i] = ag::round_bf16(p[i]);
    }
#endif
}

// bf16 parameters: how the updated fp32 value becomes the bf16 parameter (see AdamWConfig).
struct Bf16Update {
    real* master;     // the fp32 copy, or null: then the update rounds the bf16 value itself
    bool stochastic;  // without a master copy: stochastic rounding, else to nearest
    uint64_t key;     // sr_key(seed, tensor, step): element i's bits are sr_random(key, i)
};

// Elements [begin, end). With the master copy, the update runs on it and writes the rounded values into
// p in the same pass (p is only written). Without it, in chunks that stay in L1: the bf16 values are
// copied into `work`, go through the same update as fp32 parameters, and are rounded back into p, to
// nearest or stochastically.
void adamw_range_bf16(real* p, const real* g, real* m, real* v, int64_t begin, int64_t end,
                      const AdamWCoefficients& c, const Bf16Update& u) {
    if (u.master) return adamw_range(u.master, g, m, v, begin, end, c, p);
    constexpr int64_t kChunk = 1024;
    alignas(64) real work[kChunk];
    for (int64_t i = begin; i < end; i += kChunk) {
        const int64_t n = std::min(kChunk, end - i);
        // p is read here, not in adamw_range: request its next chunk now
        for (int64_t j = 0; j < n; j += 64 / (int64_t)sizeof(real)) __builtin_prefetch(p + i + kChunk + j, 1, 3);
        std::copy(p + i, p + i + n, work);
        adamw_range(work, g + i, m + i, v + i, 0, n, c);
        if (!u.stochastic) {
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) p[i + j] = ag::round_bf16(work[j]);
        } else {
#pragma omp simd
            for (int64_t j = 0; j < n; ++j)
                p[i + j] = ag::round_bf16_stochastic(work[j], ag::sr_random(u.key, (uint64_t)(i + j)));
        }
    }
}

// One pass over one tensor. A large one is cut into one contiguous part per thread, the parts starting
// at multiples of 16 values (64 bytes: a cache line, and a vector), so no two threads share a line.
// With bf16 parameters (u non-null) each part goes through adamw_range_bf16.
void adamw_update(real* p, const real* g, real* m, real* v, int64_t n, const AdamWCoefficients& c,
                  const Bf16Update* u) {
#pragma omp parallel if (ag::worth_threads(n))
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t part = (n / nt + 15) / 16 * 16;
        const int64_t begin = std::min(n, t * part), end = t == nt - 1 ? n : std::min(n, (t + 1) * part);
        if (u)
            adamw_range_bf16(p, g, m, v, begin, end, c, *u);
        else
            adamw_range(p, g, m, v, begin, end, c);
    }
}

}  // namespace

void AdamW::step(double lr, real grad_scale) {
    ++step_;
    // m and v start at 0, so after t steps they are (1 - beta^t) times too small on average: divide it
    // out. At t=1 this makes m_hat = g and v_hat = g^2, so the first step moves each parameter by
    // about lr * sign(g).
    const double bias1 = 1 - std::pow(config_.beta1, (double)step_);
    const double bias2 = 1 - std::pow(config_.beta2, (double)step_);
    uint64_t tensor = 0;  // the parameter's index over all groups, for the stochastic rounding's key
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const ParamGroup& group = groups_[gi];
        AdamWCoefficients c;
        c.lr = (real)(lr * group.lr_scale);
        c.wd = (real)group.weight_decay;
        c.beta1 = (real)config_.beta1;
        c.beta2 = (real)config_.beta2;
        c.eps = (real)config_.eps;
        c.bias1 = (real)bias1;
        c.bias2 = (real)bias2;
        c.grad_scale = grad_scale;
        for (size_t i = 0; i < group.params.size(); ++i, ++tensor) {
            const ag::Tensor& p = group.params[i].second;
            // Read the gradient buffer directly (p.grad() would allocate a handle). No buffer at all:
            // backward has never reached the parameter; skip it, decay included, as PyTorch does for
            // a gradient of None. A buffer zero_grad() marked and backward has not reached since reads
            // as zeros: that parameter IS updated, decay included, as PyTorch does after
            // zero_grad(set_to_none=False). (PyTorch counts steps per parameter, we count one step for
            // all, so a skipped parameter gets a slightly smaller bias correction when it returns; in
            // a GPT every parameter gets a gradient every step, so the two agree.)
            const ag::Storage* grad = p.impl()->grad.get();
            if (!grad) continue;
            if (p.impl()->grad_stale) p.grad_buffer();  // zeroed lazily and not reached since: zeros
            // The master copy (state 2) exists only in a bf16 run with master weights.
            real* master = config_.bf16_params && config_.master_weights ? state(gi, i, 2).data() : nullptr;
            Bf16Update u{master, config_.stochastic_rounding, ag::sr_key(config_.rounding_seed, tensor, (uint64_t)step_)};
            adamw_update(p.data(), grad->data, state(gi, i, 0).data(), state(gi, i, 1).data(), p.numel(), c,
                         config_.bf16_params ? &u : nullptr);
        }
    }
}

}  // namespace optim
