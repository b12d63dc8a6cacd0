// clip.cpp: global gradient-norm clipping.
//
// Pascanu, Mikolov & Bengio 2013 ("On the difficulty of training recurrent neural networks"): when the
// gradient is occasionally huge (a rare batch, a loss spike), one step along it can throw the weights
// far out of the region training had reached. Rescaling it to a fixed length keeps its DIRECTION and
// caps the step size. "Global" means one norm over all gradients concatenated, and one scale factor for
// every tensor, so the relative sizes of the tensors' gradients are unchanged (clipping each tensor on
// its own would change the direction).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "../autograd/bf16.h"
#include "optim.h"

namespace optim {

// sum of x[i]^2 over one block, in 64 running sums (value i into sum i % 64) in the gradients' own
// precision, emptied into a double every 1024 values (16 per sum): the order of the additions is
// written out, so the compiler keeps the sums in vector registers (four with AVX-512), and the result
// does not depend on it. Four independent sums, not one: a single vector of sums is a chain of
// dependent additions, each waiting for the last. And a hint 4 KB ahead keeps more reads in flight
// than the hardware prefetcher does for one stream per core. (Converting every value to double instead
// would halve the vector's width.)
// With kRound, each value is first rounded to bf16 in place (round_grads_to_bf16): the same pass.
template <bool kRound = false>
static double block_sum_of_squares(std::conditional_t<kRound, real*, const real*> x, int64_t n) {
    auto value = [x](int64_t i) {
        if constexpr (kRound) x[i] = ag::round_bf16(x[i]);
        return x[i];
    };
    constexpr int kSums = 64, kEmpty = 1024, kAhead = 4096 / (int)sizeof(real);
    double total = 0;
    int64_t i = 0;
    while (i + kSums <= n) {
        real s[kSums] = {};
        for (int64_t end = std::min(n - kSums, i + kEmpty); i <= end; i += kSums) {
            for (int k = 0; k < kSums; k += 64 / (int)sizeof(real)) __builtin_prefetch(x + i + k + kAhead);
            for (int k = 0; k < kSums; ++k) {
                const real v = value(i + k);
                s[k] += v * v;
            }
        }
        for (int k = 0; k < kSums; ++k) total += s[k];
    }
    for (; i < n; ++i) {
        const double v = (double)value(i);
        total += v * v;
    }
    return total;
}

// sum of x[i]^2, accumulated in double. The tensor is cut into fixed blocks whose partial sums are
// added in order, so the result is the same whatever the number of threads (a run reproduces exactly).
template <bool kRound = false>
static double sum_of_squares(std::conditional_t<kRound, real*, const real*> x, int64_t n) {
    const int64_t block = ag::kThreadsMin;
    const int64_t blocks = (n + block - 1) / block;
    std::vector<double> partial((size_t)blocks);
#pragma omp parallel for if (blocks > 1) schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
        partial[(size_t)b] = block_sum_of_squares<kRound>(x + b * block, std::min(n, (b + 1) * block) - b * block);
    double total = 0;
    for (double s : partial) total += s;
    return total;
}

static void scale(real* x, int64_t n, real factor) {
#pragma omp parallel for if (ag::worth_threads(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

namespace {

struct Grad {
    real* data;
    int64_t n;
};

// The gradients to clip: each tensor once (a tied weight is listed twice but has one gradient),
// leaving out the ones backward did not reach.
std::vector<Grad> unique_grads(const ag::NamedTensors& params) {
    std::vector<Grad> grads;
    std::unordered_set<const ag::TensorImpl*> seen;
    for (const auto& np : params) {
        const ag::Tensor& p = np.second;
        if (p.defined() && p.impl()->grad && seen.insert(p.impl()).second)
            grads.push_back({p.grad_buffer(), p.numel()});  // (a lazily zeroed one becomes zeros)
    }
    return grads;
}

double norm_of(const std::vector<Grad>& grads) {  // sqrt(sum over every gradient value g of g^2)
    double sum = 0;
    for (const Grad& g : grads) sum += sum_of_squares(g.data, g.n);
    return std::sqrt(sum);
}

}  // namespace

double grad_norm(const ag::NamedTensors& params) { return norm_of(unique_grads(params)); }

// g *= max_norm / norm, the same factor for every tensor, so that the new norm is max_norm. (PyTorch
// divides by norm + 1e-6 instead; we need no guard, as norm > max_norm > 0 here.) An Inf or NaN norm
// gives 1: scaling would spread it into every gradient; the trainer skips such a step.
real clip_factor(double norm, double max_norm) {
    return max_norm > 0 && std::isfinite(norm) && norm > max_norm ? (real)(max_norm / norm) : real(1);
}

double clip_grad_norm(const ag::NamedTensors& params, double max_norm) {
    std::vector<Grad> grads = unique_grads(params);
    const double norm = norm_of(grads);
    const real factor = clip_factor(norm, max_norm);
    if (factor != 1)
        for (const Grad& g : grads) scale(g.data, g.n, factor);
    return norm;
}

// The norm's own pass, rounding each value before it squares it.
double round_grads_to_bf16(const ag::NamedTensors& params) {
    double sum = 0;
    for (const Grad& g : unique_grads(params)) sum += sum_of_squares<true>(g.data, g.n);
    return std::sqrt(sum);
}

}  // namespace optim
