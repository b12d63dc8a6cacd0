// sgd.cpp: stochastic gradient descent with momentum, and AdamW's decoupled weight decay.
//
// Heavy-ball momentum in PyTorch's form (no dampening, not Nesterov):
//   buf = mu * buf + g        (buf starts at 0, so the first step's buf is g)
//   p  -= lr * (buf + wd * p)
// It is here mostly so that the Optimizer interface is not shaped around one algorithm, and as a
// baseline: on transformers it needs a much larger learning rate than AdamW and trains worse.
#include "optim.h"

namespace optim {

SGD::SGD(std::vector<ParamGroup> groups, SGDConfig config)
    : Optimizer(std::move(groups), "sgd", /*buffers: momentum*/ 1), config_(config) {}

static void sgd_update(real* p, const real* g, real* buf, int64_t n, real lr, real wd, real mu, real grad_scale) {
#pragma omp parallel for if (ag::worth_threads(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        buf[i] = mu * buf[i] + g[i] * grad_scale;
        p[i] -= lr * (buf[i] + wd * p[i]);
    }
}

void SGD::step(double lr, real grad_scale) {
    ++step_;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const ParamGroup& group = groups_[gi];
        for (size_t i = 0; i < group.params.size(); ++i) {
            const ag::Tensor& p = group.params[i].second;
            const ag::Storage* grad = p.impl()->grad.get();
            if (!grad) continue;  // not reached by backward: skipped entirely, as in AdamW
            if (p.impl()->grad_stale) p.grad_buffer();  // zeroed lazily and not reached since: zeros
            sgd_update(p.data(), grad->data, state(gi, i, 0).data(), p.numel(), (real)(lr * group.lr_scale),
                       (real)group.weight_decay, (real)config_.momentum, grad_scale);
        }
    }
}

}  // namespace optim
