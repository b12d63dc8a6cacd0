// tiers.h: the ops that come in two tiers (internal to autograd/). The reference tier, in ops_*.cpp, is
// written to be read: plain loops or other ops, each backward's math in a comment above it, gradients
// added with += into grad_buffer(). The tuned tier, in fast/, computes the same functions fast: packed
// gemm, vector code, threads, streaming stores, gradients written in place. Both have the signatures of
// ops.h (the tuned tier has four more, at the end, for outputs stored in bf16); dispatch.cpp, the one
// place that chooses between them, defines the ops.h names. Every other op has only its reference
// version, defined under its ops.h name.
#pragma once

#include "ops.h"

// The ops with both tiers, declared once for each namespace below.
#define AG_TWO_TIER_OPS                                                                                          \
    Tensor add(const Tensor& a, const Tensor& b);                                                                \
    Tensor sub(const Tensor& a, const Tensor& b);                                                                \
    Tensor mul(const Tensor& a, const Tensor& b);                                                                \
    Tensor div(const Tensor& a, const Tensor& b);                                                                \
    Tensor gelu(const Tensor& x);                                                                                \
    Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs);                                               \
    Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs);                           \
    Tensor round_bf16(const Tensor& x);                                                                          \
    Tensor softmax(const Tensor& x);                                                                             \
    Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, int ignore_index, int64_t classes); \
    Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps);                         \
    Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias,   \
                            real dropout_p, Rng* rng, bool training, Dtype inputs);                              \
    Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head, real scale, const Tensor& bias, real dropout_p, \
                                Rng* rng, bool training, Dtype inputs);

namespace ag {
namespace reference {
AG_TWO_TIER_OPS
}
namespace fast {
AG_TWO_TIER_OPS
// The ops that also store their output in bf16 in their own pass (`stored`, ops.h). The reference tier
// has no such argument: dispatch.cpp follows its op with round_bf16, which is what `stored` means.
Tensor add(const Tensor& a, const Tensor& b, Dtype stored);
Tensor gelu(const Tensor& x, Dtype stored);
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs, Dtype stored);
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps, Dtype stored);
}
}  // namespace ag

#undef AG_TWO_TIER_OPS
