// op_helpers.h: what both tiers of an op share (internal to autograd/): the checks of its arguments,
// with their error messages, and the rules that define its result beyond the math (which element of a
// broadcast operand an output reads, which attention probabilities dropout keeps). Written once here, so
// that the reference tier (ops_*.cpp) and the tuned tier (fast/) cannot disagree on them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rng.h"
#include "tensor.h"

namespace ag {

// Throws unless x has a non-empty last axis (the ops that work row by row over it).
void need_last_axis(const char* op, const Tensor& x);

// "op: shapes (..) and (..) do not fit (why)"
std::string fit_error(const char* op, const Tensor& a, const Tensor& b, const std::string& why);

// ---- broadcasting (add, sub, mul, div): the output is `blocks` consecutive runs of `period` elements.
// A `full` operand is read at the output's own index; the other (a trailing part of the shape, or a
// single value) at the index within the run, so it repeats once per run.
struct Broadcast {
    Shape shape;         // of the output
    int64_t blocks = 1;  // how many times the smaller operand repeats
    int64_t period = 0;  // its number of elements
    bool a_full = true, b_full = true;
    int64_t index_a(int64_t i) const { return a_full ? i : i % period; }
    int64_t index_b(int64_t i) const { return b_full ? i : i % period; }
};
Broadcast broadcast(const char* op, const Tensor& a, const Tensor& b);

// ---- matmul: a (..., M, K) @ b (..., K, N) as `batches` products of one matrix each. A side without
// batch dimensions is shared by every entry (step 0); a shared b lets a's matrices stack into one.
struct MatmulShape {
    Shape out;
    int64_t M = 0, K = 0, N = 0, batches = 1;
    int64_t a_step = 0, b_step = 0, c_step = 0;  // elements between consecutive matrices
};
MatmulShape matmul_shape(const Tensor& a, const Tensor& b);

// ---- linear: x (..., K), W (N, K), bias (N) or undefined; R = the rows of x.
struct LinearShape {
    Shape out;
    int64_t R = 0, K = 0, N = 0;
};
LinearShape linear_shape(const Tensor& x, const Tensor& W, const Tensor& bias);

// ---- cross_entropy: logits (..., stride) whose first V columns are classes; checks the targets and
// returns how many rows count (those whose target is not ignore_index).
struct CrossEntropyShape {
    int64_t rows = 0, stride = 0, V = 0, counted = 0;
};
CrossEntropyShape cross_entropy_shape(const Tensor& logits, const std::vector<int>& targets, int ignore_index,
                                      int64_t classes);

// ---- layernorm: x (..., C), gain (C), bias (C) or undefined; returns C.
int64_t layernorm_width(const Tensor& x, const Tensor& gain, const Tensor& bias);

// ---- attention: dropout on the probabilities without a stored mask. When active, the op draws ONE
// 64-bit seed from the caller's Rng, whatever the shapes; the keep bit of probability (b, h, i, j) is a
// pure function of that seed and its flat index n = ((b NH + h) T + i) T + j: the SplitMix64 scramble of
// seed + (n + 1) * golden gives 53 uniform bits u, kept when u >= p, the Bernoulli(1 - p) of the dropout
// op. Backward recomputes the same bits, and threads need no shared random stream. (FlashAttention
// regenerates its mask the same way, from a counter-based generator.)
struct DropoutMask {
    bool active = false;
    real p = 0, scale = 1;  // scale = 1 / (1 - p)
    uint64_t seed = 0;
    real z(int64_t n) const;  // keep / (1 - p): the factor probability n is multiplied by
};
// Checks the bias ((NH, T, T) or undefined) and the dropout rate, and draws the seed when dropout acts.
DropoutMask attention_dropout(const Tensor& bias, int64_t NH, int64_t T, const Tensor& q, real dropout_p, Rng* rng,
                              bool training);
// Checks q, k, v: each (B, NH, T, hs), all equal.
void check_attention(const Tensor& q, const Tensor& k, const Tensor& v);
// Checks qkv (B, T, 3C) with C a multiple of n_head.
void check_attention_qkv(const Tensor& qkv, int64_t n_head);

}  // namespace ag
