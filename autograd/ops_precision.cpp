// ops_precision.cpp: round_bf16, the op that makes a tensor bf16 storage (the reference tier; its tuned
// twin, in fast/, rounds in vector registers and in place).
//
// Mixed-precision training (llm.c's train_gpt2.cu) keeps parameters, activations and gradients in
// bf16 and does the arithmetic that needs it (sums, normalisation statistics, softmax) in fp32. Here
// every value stays a float in memory; round_bf16 is put where llm.c would store a bf16, and from
// then on the tensor holds only bf16 numbers (bf16.h), exactly what bf16 memory would hold.
#include "bf16.h"
#include "tiers.h"

namespace ag {
namespace reference {

// Forward: y = round_bf16(x), to the nearest bf16 (ties to even).
// Backward: rounding is a step function, whose true derivative is 0 almost everywhere; like every
// mixed-precision trainer, we treat the rounding error as noise and pass the gradient straight
// through, dx = dy, and the gradient is stored in bf16 too, as llm.c stores it:
//   dx += round_bf16(dy)
Tensor round_bf16(const Tensor& x) {
    Tensor out = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = ag::round_bf16(x.data()[i]);
    return record(out, "round_bf16", {x}, [x](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += ag::round_bf16(dy[i]);
    });
}

}  // namespace reference
}  // namespace ag
