// ops_attention.cpp: causal self-attention as one op, the reference tier (tiers.h). For each head it
// keeps the whole (T, T) matrix of probabilities, and its backward is the chain rule through the three
// steps written out. The tuned twin (fast/ops_attention.cpp) computes the same function without any
// (T, T) matrix: an online softmax over tiles of keys, the probabilities recomputed in backward.
//
// q, k, v (B, NH, T, hs) -> out (B, NH, T, hs), for each head (b, h):
//   S = q k^T * scale + bias          (T, T); bias (NH, T, T) shared by the batch, optional
//   P = softmax over j <= i of S[i]   future keys j > i get probability exactly 0
//   Pd = P * Z                        Z: dropout's factor, keep / (1 - p) (op_helpers.h), 1 without it
//   out = Pd v
// With bf16 inputs every product's operands are rounded to bf16 (op(x) below; fp32 sums): q, k, v,
// dout, and Pd where it multiplies v and dS * scale where it multiplies k and q. That is where llm.c's
// train_gpt2.cu stores bf16 between its attention kernels (att and dpreatt); the softmax is fp32.
#include <algorithm>
#include <cmath>
#include <vector>

#include "op_helpers.h"
#include "tiers.h"

namespace ag {
namespace reference {

namespace {

// One head's sizes and where its rows start in q, k, v, out (all (T, hs) blocks) and in the bias.
struct HeadView {
    int64_t T, hs, offset, bias_offset, mask_offset;  // mask_offset: (b NH + h) T T, dropout's index base
    Dtype inputs;                                     // the products' operands: fp32, or rounded to bf16
    real op(real x) const { return inputs == Dtype::bf16 ? ag::round_bf16(x) : x; }  // a product's operand
};

// Forward of one head: P (T, T), kept for backward, and out.
void head_forward(const HeadView& hv, const real* q, const real* k, const real* v, real scale, const real* bias,
                  const DropoutMask& drop, real* P, real* out) {
    const int64_t T = hv.T, hs = hv.hs;
    const real *Q = q + hv.offset, *K = k + hv.offset, *V = v + hv.offset;
    for (int64_t i = 0; i < T; ++i) {
        real* p = P + i * T;
        real m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {  // S[i][j] = q_i . k_j * scale + bias[i][j]
            real s = 0;
            for (int64_t d = 0; d < hs; ++d) s += hv.op(Q[i * hs + d]) * hv.op(K[j * hs + d]);
            p[j] = s * scale + (bias ? bias[hv.bias_offset + i * T + j] : real(0));
            m = std::max(m, p[j]);
        }
        double sum = 0;  // P[i][j] = exp(S[i][j] - m) / sum over j <= i
        for (int64_t j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - m));
        for (int64_t j = 0; j <= i; ++j) p[j] = (real)(p[j] / sum);
        for (int64_t j = i + 1; j < T; ++j) p[j] = 0;
        for (int64_t d = 0; d < hs; ++d) {  // out[i] = sum_j P[i][j] Z[i][j] v_j
            real o = 0;
            for (int64_t j = 0; j <= i; ++j)
                o += hv.op(p[j] * (drop.active ? drop.z(hv.mask_offset + i * T + j) : 1)) * hv.op(V[j * hs + d]);
            out[hv.offset + i * hs + d] = o;
        }
    }
}

// Backward of one head, from the forward's three steps in reverse:
//   dv_j     += sum_i Pd[i][j] dout_i                              (out = Pd v)
//   dPd[i][j] = dout_i . v_j,   dP[i][j] = dPd[i][j] Z[i][j]
//   dS[i][j]  = P[i][j] (dP[i][j] - sum_k P[i][k] dP[i][k])        (softmax's backward, row i)
//   dq_i     += scale sum_j dS[i][j] k_j,   dk_j += scale sum_i dS[i][j] q_i,   dbias[i][j] += dS[i][j]
// (sum_k P[i][k] dP[i][k] = sum_k Pd[i][k] dPd[i][k]; in bf16 it is summed over Pd as the forward
// multiplied it, rounded: the tuned tier gets this sum as dout_i . out_i.)
void head_backward(const HeadView& hv, const real* q, const real* k, const real* v, real scale,
                   const DropoutMask& drop, const real* P, const real* dout, real* dq, real* dk, real* dv,
                   real* dbias) {
    const int64_t T = hv.T, hs = hv.hs;
    const real *Q = q + hv.offset, *K = k + hv.offset, *V = v + hv.offset, *dO = dout + hv.offset;
    std::vector<real> dP(T);
    for (int64_t i = 0; i < T; ++i) {
        const real* p = P + i * T;
        real row_dot = 0;  // sum_k P[i][k] dP[i][k]
        for (int64_t j = 0; j <= i; ++j) {
            const real z = drop.active ? drop.z(hv.mask_offset + i * T + j) : 1;
            const real pd = hv.op(p[j] * z);  // Pd[i][j], as the forward multiplied it
            real dpd = 0;
            for (int64_t d = 0; d < hs; ++d) dpd += hv.op(dO[i * hs + d]) * hv.op(V[j * hs + d]);
            dP[j] = dpd * z;
            row_dot += pd * dpd;
            if (dv)
                for (int64_t d = 0; d < hs; ++d) dv[hv.offset + j * hs + d] += pd * hv.op(dO[i * hs + d]);
        }
        for (int64_t j = 0; j <= i; ++j) {
            const real ds = p[j] * (dP[j] - row_dot);
            if (dbias) dbias[hv.bias_offset + i * T + j] += ds;
            const real ds_scaled = hv.op(scale * ds);
            for (int64_t d = 0; d < hs; ++d) {
                if (dq) dq[hv.offset + i * hs + d] += ds_scaled * hv.op(K[j * hs + d]);
                if (dk) dk[hv.offset + j * hs + d] += ds_scaled * hv.op(Q[i * hs + d]);
            }
        }
    }
}

}  // namespace

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias,
                        real dropout_p, Rng* rng, bool training, Dtype inputs) {
    check_attention(q, k, v);
    const int64_t B = q.size(0), NH = q.size(1), T = q.size(2), hs = q.size(3);
    const DropoutMask drop = attention_dropout(bias, NH, T, q, dropout_p, rng, training);
    Tensor out = Tensor::empty(q.shape());
    std::vector<real> P(B * NH * T * T);  // every head's probabilities, kept for backward
    auto head = [=](int64_t b, int64_t h) {
        const int64_t bh = b * NH + h;
        return HeadView{T, hs, bh * T * hs, h * T * T, bh * T * T, inputs};
    };
    const real* bias_data = bias.defined() ? bias.data() : nullptr;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < NH; ++h)
            head_forward(head(b, h), q.data(), k.data(), v.data(), scale, bias_data, drop, &P[head(b, h).mask_offset],
                         out.data());
    return record(out, "causal_attention", {q, k, v, bias}, [=, P = std::move(P)](const Tensor& out) {
        real* dq = q.requires_grad() ? q.grad_buffer() : nullptr;
        real* dk = k.requires_grad() ? k.grad_buffer() : nullptr;
        real* dv = v.requires_grad() ? v.grad_buffer() : nullptr;
        real* dbias = bias.defined() && bias.requires_grad() ? bias.grad_buffer() : nullptr;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < NH; ++h)
                head_backward(head(b, h), q.data(), k.data(), v.data(), scale, drop, &P[head(b, h).mask_offset],
                              out.grad_buffer(), dq, dk, dv, dbias);
    });
}

// The same from the attention's input projection as it comes: qkv (B, T, 3C) split into q, k, v, each
// (B, T, C) viewed as (B, T, NH, hs) and permuted to (B, NH, T, hs); the output permuted back to
// (B, T, C). Written with other ops, whose backward passes do the reverse copies.
Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head, real scale, const Tensor& bias, real dropout_p,
                            Rng* rng, bool training, Dtype inputs) {
    check_attention_qkv(qkv, n_head);
    const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, hs = C / n_head;
    std::vector<Tensor> parts = split(qkv, {C, C, C}, 2);
    auto heads = [&](const Tensor& x) { return permute(reshape(x, {B, T, n_head, hs}), {0, 2, 1, 3}); };
    Tensor y = reference::causal_attention(heads(parts[0]), heads(parts[1]), heads(parts[2]), scale, bias, dropout_p, rng,
                                           training, inputs);
    return reshape(permute(y, {0, 2, 1, 3}), {B, T, C});
}

}  // namespace reference
}  // namespace ag
