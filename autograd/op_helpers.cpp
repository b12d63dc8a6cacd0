// op_helpers.cpp: argument checks and shared rules of the ops (op_helpers.h).
#include "op_helpers.h"

#include <algorithm>
#include <stdexcept>

namespace ag {

void need_last_axis(const char* op, const Tensor& x) {
    if (x.dim() < 1 || x.size(-1) == 0)
        throw std::invalid_argument(std::string(op) + ": shape " + x.shape_str() + " has no last axis to work on");
}

std::string fit_error(const char* op, const Tensor& a, const Tensor& b, const std::string& why) {
    return std::string(op) + ": shapes " + a.shape_str() + " and " + b.shape_str() + " do not fit (" + why + ")";
}

// ---- broadcasting

static Shape strip_leading_ones(Shape s) {
    while (!s.empty() && s.front() == 1) s.erase(s.begin());
    return s;
}

// Is `small` (leading 1s ignored) a trailing part of `big`?
static bool is_trailing_part(const Shape& small, const Shape& big) {
    Shape s = strip_leading_ones(small);
    if (s.size() > big.size()) return false;
    return std::equal(s.begin(), s.end(), big.end() - (long)s.size());
}

Broadcast broadcast(const char* op, const Tensor& a, const Tensor& b) {
    Broadcast bc;
    if (a.shape() == b.shape()) {
        bc.shape = a.shape();
        bc.period = a.numel();
        return bc;
    }
    bool a_bigger = a.numel() > b.numel() || (a.numel() == b.numel() && a.dim() >= b.dim());
    const Tensor& big = a_bigger ? a : b;
    const Tensor& small = a_bigger ? b : a;
    if (small.numel() != 1 && !is_trailing_part(small.shape(), big.shape()))
        throw std::invalid_argument(std::string(op) + ": shapes " + a.shape_str() + " and " + b.shape_str() +
                                    " do not broadcast (one must equal the other, be a trailing part of it, "
                                    "or have a single element)");
    bc.shape = big.shape();
    bc.period = small.numel();
    bc.blocks = bc.period ? big.numel() / bc.period : 0;
    (a_bigger ? bc.b_full : bc.a_full) = false;
    return bc;
}

// ---- matmul and linear

MatmulShape matmul_shape(const Tensor& a, const Tensor& b) {
    if (a.dim() < 2 || b.dim() < 2) throw std::invalid_argument(fit_error("matmul", a, b, "both need 2 or more dimensions"));
    MatmulShape s;
    s.M = a.size(-2), s.K = a.size(-1), s.N = b.size(-1);
    if (b.size(-2) != s.K)
        throw std::invalid_argument(fit_error("matmul", a, b, "inner dimensions " + std::to_string(s.K) + " and " +
                                                                   std::to_string(b.size(-2)) + " differ"));
    Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    if (!batch_a.empty() && !batch_b.empty() && batch_a != batch_b)
        throw std::invalid_argument(fit_error("matmul", a, b, "batch dimensions differ"));
    s.out = batch_a.empty() ? batch_b : batch_a;
    s.out.push_back(s.M);
    s.out.push_back(s.N);
    s.batches = numel_of(s.out) / std::max<int64_t>(1, s.M * s.N);
    if (batch_b.empty()) {  // b is shared by every batch entry: a's matrices stack into one tall one
        s.M *= s.batches;
        s.batches = 1;
    }
    s.a_step = batch_a.empty() ? 0 : s.M * s.K;
    s.b_step = batch_b.empty() ? 0 : s.K * s.N;
    s.c_step = s.M * s.N;
    return s;
}

LinearShape linear_shape(const Tensor& x, const Tensor& W, const Tensor& bias) {
    if (W.dim() != 2 || x.dim() < 1 || x.size(-1) != W.size(1))
        throw std::invalid_argument(fit_error("linear", x, W, "input features must equal the weight's (N, K) K"));
    LinearShape s;
    s.K = W.size(1), s.N = W.size(0), s.R = s.K ? x.numel() / s.K : 0;
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != s.N))
        throw std::invalid_argument(fit_error("linear", W, bias, "bias must be (N) for a weight (N, K)"));
    s.out = x.shape();
    s.out.back() = s.N;
    return s;
}

// ---- cross_entropy and layernorm

CrossEntropyShape cross_entropy_shape(const Tensor& logits, const std::vector<int>& targets, int ignore_index,
                                      int64_t classes) {
    need_last_axis("cross_entropy", logits);
    CrossEntropyShape s;
    s.stride = logits.size(-1), s.rows = logits.numel() / s.stride;  // row r starts at r * stride
    if (classes > s.stride || classes == 0 || classes < -1)
        throw std::invalid_argument("cross_entropy: " + std::to_string(classes) + " classes asked of logits " +
                                    logits.shape_str());
    s.V = classes >= 0 ? classes : s.stride;  // the softmax runs over columns 0 .. V-1
    if ((int64_t)targets.size() != s.rows)
        throw std::invalid_argument("cross_entropy: " + std::to_string(targets.size()) + " targets given for logits " +
                                    logits.shape_str() + " (" + std::to_string(s.rows) + " rows of " +
                                    std::to_string(s.stride) + " values)");
    for (int64_t r = 0; r < s.rows; ++r) {
        int t = targets[r];
        if (t == ignore_index) continue;
        if (t < 0 || t >= s.V)
            throw std::out_of_range("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                                    " is out of range for " + std::to_string(s.V) + " classes");
        ++s.counted;
    }
    return s;
}

int64_t layernorm_width(const Tensor& x, const Tensor& gain, const Tensor& bias) {
    need_last_axis("layernorm", x);
    const int64_t C = x.size(-1);
    if (gain.dim() != 1 || gain.size(0) != C)
        throw std::invalid_argument("layernorm: shapes " + x.shape_str() + " and " + gain.shape_str() +
                                    " do not fit (the gain must be (C) for x (..., C))");
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != C))
        throw std::invalid_argument("layernorm: shapes " + x.shape_str() + " and " + bias.shape_str() +
                                    " do not fit (the bias must be (C) for x (..., C))");
    return C;
}

// ---- attention

real DropoutMask::z(int64_t n) const {
    uint64_t x = seed + (uint64_t)(n + 1) * 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (double)(x >> 11) * 0x1.0p-53 >= (double)p ? scale : real(0);
}

DropoutMask attention_dropout(const Tensor& bias, int64_t NH, int64_t T, const Tensor& q, real dropout_p, Rng* rng,
                              bool training) {
    if (bias.defined() && bias.shape() != Shape{NH, T, T})
        throw std::invalid_argument(fit_error("causal_attention", q, bias,
                                              "the bias must be (NH, T, T) for " + std::to_string(NH) +
                                                  " heads of length " + std::to_string(T)));
    if (!(dropout_p >= 0 && dropout_p < 1))
        throw std::invalid_argument("causal_attention: dropout probability " + std::to_string(dropout_p) +
                                    " must be in [0, 1)");
    DropoutMask drop;
    if (training && dropout_p > 0) {
        if (!rng) throw std::invalid_argument("causal_attention: dropout in training mode needs an Rng");
        drop.active = true;
        drop.p = dropout_p;
        drop.scale = 1 / (1 - dropout_p);
        drop.seed = rng->next_u64();
    }
    return drop;
}

void check_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
    if (q.dim() != 4) throw std::invalid_argument("causal_attention: q must be (B, NH, T, hs), got " + q.shape_str());
    if (k.shape() != q.shape()) throw std::invalid_argument(fit_error("causal_attention", q, k, "q and k must be equal"));
    if (v.shape() != q.shape()) throw std::invalid_argument(fit_error("causal_attention", q, v, "q and v must be equal"));
}

void check_attention_qkv(const Tensor& qkv, int64_t n_head) {
    if (n_head <= 0 || qkv.dim() != 3 || qkv.size(2) % (3 * n_head) != 0)
        throw std::invalid_argument("causal_attention_qkv: qkv must be (B, T, 3C) with C a multiple of " +
                                    std::to_string(n_head) + " heads, got " + qkv.shape_str());
}

}  // namespace ag
