// ops.h: every differentiable op. Each is defined in one of the ops_*.cpp files with its forward and
// its backward next to each other.
//
// Shape letters used in comments: B batch, T time (sequence), C channels, V vocabulary, NH heads,
// M/K/N matrix sizes. "..." stands for any number of leading dimensions.
// Axes may be negative, counting from the end as in Python: -1 is the last axis.
#pragma once

#include <vector>

#include "bf16.h"
#include "rng.h"
#include "tensor.h"

namespace ag {

// ---- the two tiers. Every op has a reference version, written to be read (ops_*.cpp); the ones a
// training step spends its time in also have a tuned one (fast/), which computes the same function to
// float rounding. Which runs is chosen here, for the whole process (dispatch.cpp; tiers.h lists the ops
// with both). The double build, which the gradient checks use, has only the reference tier.
enum class Kernels { reference, fast };
void set_kernels(Kernels k);  // default: fast
Kernels kernels();
const char* kernels_name(Kernels k);  // "reference" or "fast"

// ---- the precision an output is stored in. The ops whose outputs a model stores (add, gelu, linear,
// layernorm) take it as their last argument, `stored`: with Dtype::bf16 the op is exactly
// round_bf16(op(...)) (below): its output rounded to the nearest bf16, and on the way back the gradient
// arriving at it rounded too. The reference tier computes it that way, as two ops; the tuned tier
// rounds inside the op, as it writes the output and as it reads the gradient, which saves the two
// passes over memory that round_bf16 would make.

// ---- elementwise, with broadcasting (ops_pointwise.cpp)
// Two shapes fit when they are equal, when one of them (leading 1s ignored) is a trailing part of the
// other, e.g. (C) or (T, C) against (B, T, C), or when one is a single value. The output has the
// larger shape; the smaller operand repeats, and its gradient is summed over the repeats.
Tensor add(const Tensor& a, const Tensor& b, Dtype stored = Dtype::fp32);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, real c);  // a + c
Tensor mul(const Tensor& a, real c);  // a * c

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, real p);  // x^p for a constant p
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, Dtype stored = Dtype::fp32);  // the tanh approximation used by GPT-2

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, real c) { return add(a, c); }
inline Tensor operator+(real c, const Tensor& a) { return add(a, c); }
inline Tensor operator-(const Tensor& a, real c) { return add(a, -c); }
inline Tensor operator-(real c, const Tensor& a) { return add(neg(a), c); }
inline Tensor operator*(const Tensor& a, real c) { return mul(a, c); }
inline Tensor operator*(real c, const Tensor& a) { return mul(a, c); }
inline Tensor operator/(const Tensor& a, real c) { return mul(a, 1 / c); }
inline Tensor operator/(real c, const Tensor& a) { return mul(pow(a, -1), c); }

// ---- matrix products (ops_matmul.cpp)
// a (..., M, K) @ b (..., K, N) -> (..., M, N). The leading (batch) dimensions must be equal, or one
// side is plain 2-D and is shared by every batch entry.
// With inputs = Dtype::bf16, forward and backward multiply bf16 operands (each element rounded to
// bf16, which changes nothing for tensors that are bf16 already) with fp32 sums, on the CPU's bf16
// dot product where it has one (gemm_bf16 in kernels.h); the result itself is fp32.
Tensor matmul(const Tensor& a, const Tensor& b, Dtype inputs = Dtype::fp32);
// x (..., K) @ W^T + bias -> (..., N), with W stored (N, K) as nn.Linear stores it; bias (N) or undefined.
// The bias is added in fp32. `inputs` as for matmul; `stored`, the output's precision, as above.
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& bias = Tensor(), Dtype inputs = Dtype::fp32,
              Dtype stored = Dtype::fp32);

// ---- precision (ops_precision.cpp)
// x rounded to the nearest bf16 (bf16.h); backward stores the gradient rounded too: dx += round_bf16(dy).
Tensor round_bf16(const Tensor& x);

// ---- shapes (ops_shape.cpp). reshape returns a view (shared values); the others copy.
Tensor reshape(const Tensor& x, Shape shape);  // one dimension may be -1: "whatever is left"
Tensor transpose(const Tensor& x);             // swap the last two dimensions
Tensor permute(const Tensor& x, const std::vector<int>& order);  // out dim d = x dim order[d]
Tensor concat(const std::vector<Tensor>& xs, int axis);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end);  // [start, end) along axis
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int axis);

// ---- reductions (ops_reduce.cpp)
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, int axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
Tensor max(const Tensor& x);  // all elements -> shape []; the gradient goes to the first maximum
Tensor max(const Tensor& x, int axis, bool keepdim = false);

// ---- neural-network ops (ops_nn.cpp)
Tensor softmax(const Tensor& x);      // over the last axis
Tensor log_softmax(const Tensor& x);  // over the last axis
// Mean over tokens of -log softmax(logits)[target]: logits (..., V), one target per row of logits
// (targets.size() == logits.numel() / V). Rows whose target is ignore_index count for nothing; if
// every row is ignored the loss is 0. With classes = K < V, only the first K columns are classes: the
// softmax runs over them, targets must be below K, and the other columns (padding) get no gradient.
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, int ignore_index = -1,
                     int64_t classes = -1);
// (x - mean) / sqrt(var + eps) * gain + bias over the last axis: x (..., C), gain (C), bias (C) or undefined.
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps = 1e-5,
                 Dtype stored = Dtype::fp32);
// Rows of table (V, C) picked by ids: out has shape ids_shape + (C).
Tensor embedding(const Tensor& table, const std::vector<int>& ids, const Shape& ids_shape);
// Zero each value with probability p and scale the rest by 1 / (1 - p) (inverted dropout), drawing
// the mask from rng. Identity (the same tensor, nothing drawn) when !training or p == 0.
Tensor dropout(const Tensor& x, real p, Rng& rng, bool training);
// Attention scores x (..., Tq, Tk): position (i, j) is kept when key j is not in the future of query i
// (j <= i + Tk - Tq) and set to -infinity otherwise, so that softmax gives it zero weight.
Tensor causal_mask(const Tensor& x);

// ---- fused attention (ops_attention.cpp)
// Causal self-attention in one op: q, k, v (B, NH, T, hs) -> (B, NH, T, hs),
//   out = dropout(softmax(mask(q k^T * scale + bias))) v,   query i seeing keys 0..i,
// the same as the composition of matmul, mul, add, causal_mask, softmax, dropout and matmul, without
// keeping any (T, T) matrix: an online softmax keeps one logsumexp per row and backward recomputes the
// probabilities. bias: (NH, T, T) added to the logits of every batch entry (ALiBi), or undefined.
// Dropout on the probabilities (inverted, like dropout()) acts only when training && dropout_p > 0;
// it then draws exactly one number from rng, a seed from which each probability's keep bit is hashed.
// With inputs = Dtype::bf16 the op's products multiply bf16 operands with fp32 sums, as matmul's do:
// q, k, v and the gradient reaching the output are rounded to bf16 (a no-op in a bf16 model), and so
// are the two matrices llm.c's train_gpt2.cu stores in bf16 between its attention kernels: the
// probabilities, after dropout, where they multiply v, and the scaled logits' gradient, where it
// multiplies k and q. The softmax itself (max, exp, sum, logsumexp) stays fp32.
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias = Tensor(),
                        real dropout_p = 0, Rng* rng = nullptr, bool training = false, Dtype inputs = Dtype::fp32);
// The same from the attention's input projection as it comes: qkv (B, T, 3C), each row q | k | v with
// head h at columns [h hs, (h+1) hs) of each, C = n_head hs; returns (B, T, C), the heads side by side.
// Equals splitting qkv, permuting to (B, NH, T, hs), causal_attention, and permuting back, without
// those copies. The dropout bits are the same as causal_attention's for the same seed.
Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head, real scale, const Tensor& bias = Tensor(),
                            real dropout_p = 0, Rng* rng = nullptr, bool training = false,
                            Dtype inputs = Dtype::fp32);

}  // namespace ag
