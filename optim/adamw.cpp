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
#include <cmath>

#include "optim.h"

namespace optim {

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWConfig config)
    : Optimizer(std::move(groups), "adamw", /*buffers: m, v*/ 2), config_(config) {}

namespace {

// The numbers one step of one group needs, in the tensors' precision.
struct AdamWCoefficients {
    real lr, wd, beta1, beta2, eps, bias1, bias2;
};

// One pass over one tensor: read g, update m and v, update p.
void adamw_update(real* p, const real* g, real* m, real* v, int64_t n, const AdamWCoefficients& c) {
#pragma omp parallel for if (n >= kParallelMin) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];         // running mean of g
        v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];  // running mean of g^2
        real m_hat = m[i] / c.bias1;                           // bias-corrected
        real v_hat = v[i] / c.bias2;
        p[i] -= c.lr * (m_hat / (std::sqrt(v_hat) + c.eps) + c.wd * p[i]);
    }
}

}  // namespace

void AdamW::step(double lr) {
    ++step_;
    // m and v start at 0, so after t steps they are (1 - beta^t) times too small on average: divide it
    // out. At t=1 this makes m_hat = g and v_hat = g^2, so the first step moves each parameter by
    // about lr * sign(g).
    const double bias1 = 1 - std::pow(config_.beta1, (double)step_);
    const double bias2 = 1 - std::pow(config_.beta2, (double)step_);
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
        for (size_t i = 0; i < group.params.size(); ++i) {
            const ag::Tensor& p = group.params[i].second;
            // Read the gradient buffer directly (p.grad() would allocate a handle). No gradient: the
            // parameter was not used by this loss; skip it, decay included, as PyTorch does. (One
            // difference: PyTorch counts steps per parameter, we count one step for all, so a
            // parameter that was skipped gets a slightly smaller bias correction when it returns.
            // In a GPT every parameter gets a gradient every step, so the two agree.)
            const ag::Storage* grad = p.impl()->grad.get();
            if (!grad) continue;
            adamw_update(p.data(), grad->data, state(gi, i, 0).data(), state(gi, i, 1).data(), p.numel(), c);
        }
    }
}

}  // namespace optim
