// ops_attention.cpp: fused causal self-attention, one op with its forward and backward side by side.
//
// The unfused composition, softmax(causal_mask(q k^T * scale + bias)) @ v, keeps three (B, NH, T, T)
// tensors alive for backward (the logits, the masked logits and the probabilities) and walks them in
// five separate passes. Here each query row is done in one go with an online softmax (Milakov &
// Gimelshein 2018, "Online normalizer calculation for softmax"; the tiling of FlashAttention, Dao et al.
// 2022): the row's scores are computed a block of keys at a time, a running max m and running sum l are
// rescaled whenever a block raises the max, and only logsumexp = m + log l (one number per row) is kept
// for backward, which recomputes the probabilities from q and k. Keys in the future of a query get
// probability exactly 0: they contribute nothing to the output and their gradient is exactly zero.
//
// Threads: one (b, h) head at a time per thread (the backward adds into dK and dV rows that every later
// query also touches, so a head must stay on one thread). The products are small gemms; the softmax
// loops run over a row of a tile, contiguous, so the compiler vectorises them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "ops.h"

namespace ag {

namespace {

constexpr int64_t kBlock = 64;  // queries and keys per tile: longer rows go online, a tile at a time

inline real dot(const real* a, const real* b, int64_t n) {
    real s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
    return s;
}

// Dropout on the attention probabilities without storing a mask. When active, the op draws ONE 64-bit
// seed from the caller's Rng (rng->next_u64()), whatever the shapes. The keep bit of probability
// (b, h, i, j) is then a pure function of that seed and the flat index n = ((b NH + h) T + i) T + j:
// the SplitMix64 scramble of seed + (n + 1) * golden gives 53 uniform bits u, and the value is kept
// when u >= p, exactly the Bernoulli(1 - p) of the dropout op. Backward recomputes the same bits, and
// threads need no shared random stream. (FlashAttention regenerates its mask the same way, from a
// counter-based generator.) Same semantics as dropout(softmax(...)): not the same random draws.
struct DropoutMask {
    bool active = false;
    real p = 0, scale = 1;  // scale = 1 / (1 - p)
    uint64_t seed = 0;
    real z(int64_t n) const {  // keep / (1 - p): the factor probability n is multiplied by
        uint64_t x = seed + (uint64_t)(n + 1) * 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        x ^= x >> 31;
        return (double)(x >> 11) * 0x1.0p-53 >= (double)p ? scale : real(0);
    }
};

std::string shapes_error(const Tensor& a, const Tensor& b, const std::string& why) {
    return "causal_attention: shapes " + a.shape_str() + " and " + b.shape_str() + " do not fit (" + why + ")";
}

}  // namespace

// q, k, v (B, NH, T, hs) -> out (B, NH, T, hs)
//   S = q k^T * scale + bias          (B, NH, T, T), bias (NH, T, T) shared by the batch, optional
//   P = softmax over j <= i of S[i]   (future keys j > i get probability 0)
//   out = dropout(P) v
// Only lse[b, h, i] = logsumexp_j<=i S[i][j] is saved: P[i][j] = exp(S[i][j] - lse[i]) in backward.
//
// Each head is walked in tiles of kBlock queries x kBlock keys, as FlashAttention does: a tile of scores
// is one small gemm (the project's kernel), then the softmax bookkeeping runs over the tile's rows, then
// the tile's probabilities times its values is another gemm. Tiles wholly in the future are skipped;
// in a tile on the diagonal the future entries are computed by the gemm but their probability is set to
// exactly 0, so they add exact zeros to the output and to every gradient.
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, real scale, const Tensor& bias,
                        real dropout_p, Rng* rng, bool training) {
    if (q.dim() != 4) throw std::invalid_argument("causal_attention: q must be (B, NH, T, hs), got " + q.shape_str());
    if (k.shape() != q.shape()) throw std::invalid_argument(shapes_error(q, k, "q and k must be equal"));
    if (v.shape() != q.shape()) throw std::invalid_argument(shapes_error(q, v, "q and v must be equal"));
    const int64_t B = q.size(0), NH = q.size(1), T = q.size(2), hs = q.size(3);
    if (bias.defined() && bias.shape() != Shape{NH, T, T})
        throw std::invalid_argument(shapes_error(q, bias, "the bias must be (NH, T, T) for q (B, NH, T, hs)"));
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

    Tensor out = Tensor::empty(q.shape());
    std::vector<real> lse(B * NH * T);  // (B, NH, T), saved for backward
    const real minus_inf = -std::numeric_limits<real>::infinity();

#pragma omp parallel if (B * NH > 1)
    {
        // one tile: scores, then probabilities (kBlock, kBlock); its rows' output (kBlock, hs), max and sum
        std::vector<real> S(kBlock * kBlock), acc(kBlock * hs), m(kBlock), l(kBlock);
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < B * NH; ++bh) {
            const int64_t h = bh % NH, off = bh * T * hs;
            const real *Q = q.data() + off, *K = k.data() + off, *V = v.data() + off;
            const real* bias_h = bias.defined() ? bias.data() + h * T * T : nullptr;
            for (int64_t i0 = 0; i0 < T; i0 += kBlock) {
                const int64_t nr = std::min(kBlock, T - i0);  // queries i0 .. i0+nr-1
                std::fill(m.begin(), m.end(), minus_inf);
                std::fill(l.begin(), l.end(), real(0));
                std::fill(acc.begin(), acc.end(), real(0));
                for (int64_t j0 = 0; j0 < i0 + nr; j0 += kBlock) {  // keys j0 .. j0+nc-1: none after the last query
                    const int64_t nc = std::min(kBlock, i0 + nr - j0);
                    gemm(false, true, nr, nc, hs, Q + i0 * hs, K + j0 * hs, S.data(), false);  // S = Q K^T
                    for (int64_t r = 0; r < nr; ++r) {
                        const int64_t i = i0 + r, seen = std::min(nc, i - j0 + 1);  // keys this query may see
                        real* s = S.data() + r * nc;
                        real block_max = minus_inf;
                        for (int64_t c = 0; c < seen; ++c) {
                            s[c] = s[c] * scale + (bias_h ? bias_h[i * T + j0 + c] : real(0));
                            block_max = std::max(block_max, s[c]);
                        }
                        if (block_max > m[r]) {  // a new max: what was summed so far shrinks by exp(m - new max)
                            real shrink = std::exp(m[r] - block_max);  // exp(-inf) = 0 in the first tile
                            l[r] *= shrink;
                            for (int64_t d = 0; d < hs; ++d) acc[r * hs + d] *= shrink;
                            m[r] = block_max;
                        }
                        real sum = 0;
                        for (int64_t c = 0; c < seen; ++c) sum += (s[c] = std::exp(s[c] - m[r]));
                        l[r] += sum;
                        for (int64_t c = std::max<int64_t>(seen, 0); c < nc; ++c) s[c] = 0;  // the future
                        if (drop.active)
                            for (int64_t c = 0; c < seen; ++c) s[c] *= drop.z((bh * T + i) * T + j0 + c);
                    }
                    gemm(false, false, nr, hs, nc, S.data(), V + j0 * hs, acc.data(), true);  // acc += P V
                }
                for (int64_t r = 0; r < nr; ++r) {
                    real* o = out.data() + off + (i0 + r) * hs;
                    for (int64_t d = 0; d < hs; ++d) o[d] = acc[r * hs + d] / l[r];
                    lse[bh * T + i0 + r] = m[r] + std::log(l[r]);
                }
            }
        }
    }

    return record(out, "causal_attention", {q, k, v, bias},
                  [q, k, v, bias, scale, drop, lse = std::move(lse), B, NH, T, hs](const Tensor& out) {
        // With P the probabilities (recomputed), Z the dropout factors (1 without dropout) and dO the
        // gradient reaching out = (P * Z) V:
        //   dV = (P * Z)^T dO,  dP = Z * (dO V^T),  dS = P * (dP - rowsum(dO * out))
        //   dQ = dS K * scale,  dK = dS^T Q * scale,  dbias = dS summed over B
        // (rowsum(P * dP) = rowsum(dO * out) because out = (P * Z) V: the softmax backward, one dot per row.)
        // Tile by tile as in forward, each product one gemm.
        const real* dO = out.grad_buffer();
        real* dQ = q.requires_grad() ? q.grad_buffer() : nullptr;  // grad buffers are made here, before
        real* dK = k.requires_grad() ? k.grad_buffer() : nullptr;  // the threads start
        real* dV = v.requires_grad() ? v.grad_buffer() : nullptr;
        real* dbias = bias.defined() && bias.requires_grad() ? bias.grad_buffer() : nullptr;
        // dbias[h] collects from every b: with it, a thread takes all of head h's batch entries.
        const int64_t groups = dbias ? NH : B * NH, per_group = dbias ? B : 1;

#pragma omp parallel if (groups > 1)
        {
            std::vector<real> P(kBlock * kBlock), dS(kBlock * kBlock), D(kBlock);  // one tile
#pragma omp for schedule(static)
            for (int64_t g = 0; g < groups; ++g)
                for (int64_t r_group = 0; r_group < per_group; ++r_group) {
                    const int64_t bh = dbias ? r_group * NH + g : g, h = bh % NH, off = bh * T * hs;
                    const real *Q = q.data() + off, *K = k.data() + off, *V = v.data() + off;
                    const real *O = out.data() + off, *dO_h = dO + off;
                    const real* bias_h = bias.defined() ? bias.data() + h * T * T : nullptr;
                    for (int64_t i0 = 0; i0 < T; i0 += kBlock) {
                        const int64_t nr = std::min(kBlock, T - i0);
                        for (int64_t r = 0; r < nr; ++r)  // D = rowsum(dO * out)
                            D[r] = dot(dO_h + (i0 + r) * hs, O + (i0 + r) * hs, hs);
                        for (int64_t j0 = 0; j0 < i0 + nr; j0 += kBlock) {
                            const int64_t nc = std::min(kBlock, i0 + nr - j0);
                            gemm(false, true, nr, nc, hs, Q + i0 * hs, K + j0 * hs, P.data(), false);      // S
                            gemm(false, true, nr, nc, hs, dO_h + i0 * hs, V + j0 * hs, dS.data(), false);  // dO V^T
                            for (int64_t r = 0; r < nr; ++r) {
                                const int64_t i = i0 + r, seen = std::min(nc, i - j0 + 1);
                                const real lse_i = lse[bh * T + i];
                                real *p = P.data() + r * nc, *ds = dS.data() + r * nc;
                                for (int64_t c = 0; c < seen; ++c)
                                    p[c] = std::exp(p[c] * scale + (bias_h ? bias_h[i * T + j0 + c] : real(0)) - lse_i);
                                for (int64_t c = 0; c < seen; ++c) {
                                    real z = drop.active ? drop.z((bh * T + i) * T + j0 + c) : real(1);
                                    ds[c] = p[c] * (ds[c] * z - D[r]);  // dS
                                    p[c] *= z;                          // P * Z, for dV
                                }
                                for (int64_t c = std::max<int64_t>(seen, 0); c < nc; ++c) p[c] = ds[c] = 0;
                                if (dbias)
                                    for (int64_t c = 0; c < seen; ++c) dbias[(h * T + i) * T + j0 + c] += ds[c];
                                for (int64_t c = 0; c < nc; ++c) ds[c] *= scale;
                            }
                            if (dV) gemm(true, false, nc, hs, nr, P.data(), dO_h + i0 * hs, dV + off + j0 * hs, true);
                            if (dQ) gemm(false, false, nr, hs, nc, dS.data(), K + j0 * hs, dQ + off + i0 * hs, true);
                            if (dK) gemm(true, false, nc, hs, nr, dS.data(), Q + i0 * hs, dK + off + j0 * hs, true);
                        }
                    }
                }
        }
    });
}

}  // namespace ag
