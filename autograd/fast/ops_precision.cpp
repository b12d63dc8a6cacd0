// fast/ops_precision.cpp: the tuned tier of round_bf16 (tiers.h; the math is in ../ops_precision.cpp):
// the rounding in vector registers (bf16.cpp), and the gradient rounded in place where the input's
// buffer can take dy's.
#include "../bf16.h"
#include "../tiers.h"

namespace ag {
namespace fast {

// y = round_bf16(x);  dx += round_bf16(dy)
Tensor round_bf16(const Tensor& x) {
    Tensor out = Tensor::empty(x.shape());
    round_bf16_into(x.data(), out.data(), x.numel());
    return record(out, "round_bf16", {x}, [x](const Tensor& out) {
        const real* dy = out.grad_buffer();
        if (real* dx = x.adopt_grad_of(out)) {  // in place: dx overwrites dy (tensor.h)
            round_bf16_inplace(dx, x.numel());
            return;
        }
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += ag::round_bf16(dy[i]);
    });
}

}  // namespace fast
}  // namespace ag
