// dispatch.cpp: the one place that chooses between the two tiers (tiers.h) of an op.
#include "tiers.h"

namespace ag {

static Kernels g_kernels = Kernels::fast;

void set_kernels(Kernels k) { g_kernels = k; }

Kernels kernels() {
#ifdef AUTOGRAD_DOUBLE
    return Kernels::reference;  // the double build's gradient checks check the reference tier
#else
    return g_kernels;
#endif
}

const char* kernels_name(Kernels k) { return k == Kernels::fast ? "fast" : "reference"; }

static bool fast_tier() { return kernels() == Kernels::fast; }

// The reference tier's output stored in `stored` (ops.h): the op, then round_bf16 for bf16.
static Tensor stored_as(const Tensor& y, Dtype stored) { return stored == Dtype::bf16 ? reference::round_bf16(y) : y; }

Tensor add(const Tensor& a, const Tensor& b, Dtype stored) {
    return fast_tier() ? fast::add(a, b, stored) : stored_as(reference::add(a, b), stored);
}
Tensor sub(const Tensor& a, const Tensor& b) { return fast_tier() ? fast::sub(a, b) : reference::sub(a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return fast_tier() ? fast::mul(a, b) : reference::mul(a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return fast_tier() ? fast::div(a, b) : reference::div(a, b); }
Tensor gelu(const Tensor& x, Dtype stored) {
    return fast_tier() ? fast::gelu(x, stored) : stored_as(reference::gelu(x), stored);
}

Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs) {
    return fast_tier() ? fast::matmul(a, b, inputs) : reference::matmul(a, b, inputs);
}
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias, Dtype inputs, Dtype stored) {
    return fast_tier() ? fast::linear(x, W, bias, inputs, stored)
                       : stored_as(reference::linear(x, W, bias, inputs), stored);
}
Tensor round_bf16(const Tensor& x) { return fast_tier() ? fast::round_bf16(x) : reference::round_bf16(x); }

Tensor softmax(const Tensor& x) { return fast_tier() ? fast::softmax(x) : reference::softmax(x); }
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, int ignore_index, int64_t classes) {
    return fast_tier() ? fast::cross_entropy(logits, targets, ignore_index, classes)
                       : reference::cross_entropy(logits, targets, ignore_index, classes);
}
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps, Dtype stored) {
    return fast_tier() ? fast::layernorm(x, gain, bias, eps, stored)
                       : stored_as(reference::layernorm(x, gain, bias, eps), stored);
}

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias,
                        real dropout_p, Rng* rng, bool training, Dtype inputs) {
    return fast_tier() ? fast::causal_attention(q, k, v, scale, bias, dropout_p, rng, training, inputs)
                       : reference::causal_attention(q, k, v, scale, bias, dropout_p, rng, training, inputs);
}
Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head, real scale, const Tensor& bias, real dropout_p,
                            Rng* rng, bool training, Dtype inputs) {
    return fast_tier() ? fast::causal_attention_qkv(qkv, n_head, scale, bias, dropout_p, rng, training, inputs)
                       : reference::causal_attention_qkv(qkv, n_head, scale, bias, dropout_p, rng, training, inputs);
}

}  // namespace ag
