// The fused causal_attention op in the float build, at a training-sized shape, against the textbook
// formulas evaluated in double (forward and the gradients of L = sum(w * out)). The float composition of
// ops is measured against the same reference, so the fused op is held to the error float arithmetic
// already makes.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "../../autograd/ops.h"

using namespace ag;

namespace {

// out = softmax(mask(q k^T * scale + bias)) v per head, in double, with the full (T, T) matrices, and the
// gradients from dO = w:  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(P * dP)),
// dQ = dS K scale,  dK = dS^T Q scale.
struct Reference {
    std::vector<double> out, dq, dk, dv;
};

Reference reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias, const Tensor& w,
                    double scale) {
    const int64_t B = q.size(0), NH = q.size(1), T = q.size(2), hs = q.size(3);
    Reference r;
    r.out.assign(q.numel(), 0);
    r.dq.assign(q.numel(), 0);
    r.dk.assign(q.numel(), 0);
    r.dv.assign(q.numel(), 0);
    std::vector<double> P(T * T), dP(T * T);
    for (int64_t bh = 0; bh < B * NH; ++bh) {
        const int64_t off = bh * T * hs, h = bh % NH;
        auto at = [&](const Tensor& t, int64_t row, int64_t d) { return (double)t.data()[off + row * hs + d]; };
        for (int64_t i = 0; i < T; ++i) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j <= i; ++j) {
                double x = 0;
                for (int64_t d = 0; d < hs; ++d) x += at(q, i, d) * at(k, j, d);
                P[i * T + j] = x * scale + bias.data()[(h * T + i) * T + j];
                m = std::max(m, P[i * T + j]);
            }
            for (int64_t j = 0; j <= i; ++j) s += (P[i * T + j] = std::exp(P[i * T + j] - m));
            for (int64_t j = 0; j <= i; ++j) P[i * T + j] /= s;
            for (int64_t j = 0; j <= i; ++j)
                for (int64_t d = 0; d < hs; ++d) r.out[off + i * hs + d] += P[i * T + j] * at(v, j, d);
        }
        for (int64_t i = 0; i < T; ++i) {
            double rowsum = 0;
            for (int64_t j = 0; j <= i; ++j) {
                double x = 0;
                for (int64_t d = 0; d < hs; ++d) x += at(w, i, d) * at(v, j, d);
                dP[i * T + j] = x;
                rowsum += P[i * T + j] * x;
            }
            for (int64_t j = 0; j <= i; ++j) {
                double ds = P[i * T + j] * (dP[i * T + j] - rowsum);
                for (int64_t d = 0; d < hs; ++d) {
                    r.dv[off + j * hs + d] += P[i * T + j] * at(w, i, d);
                    r.dq[off + i * hs + d] += ds * scale * at(k, j, d);
                    r.dk[off + j * hs + d] += ds * scale * at(q, i, d);
                }
            }
        }
    }
    return r;
}

// max |a - ref| / max |ref|: the error relative to the size of the values.
double error(const Tensor& a, const std::vector<double>& ref) {
    double worst = 0, size = 0;
    for (size_t e = 0; e < ref.size(); ++e) {
        worst = std::max(worst, std::fabs(a.data()[e] - ref[e]));
        size = std::max(size, std::fabs(ref[e]));
    }
    return worst / size;
}

}  // namespace

// T = 64 is one tile (the diagonal one); T = 150 is three key blocks, the last ragged (64 + 64 + 22), so
// the online softmax rescales across tiles and rows end inside a vector; T = 300 is also two query
// blocks (256 + 44).
TEST_CASE("float causal_attention matches double formulas at B=4, NH=4, T=64, 150 and 300, hs=32",
          "[attention][float]") {
    const int64_t B = 4, NH = 4, hs = 32, T = GENERATE(64, 150, 300);
    INFO("T = " << T);
    Rng rng(5);
    Tensor q = Tensor::randn({B, NH, T, hs}, rng).requires_grad_();
    Tensor k = Tensor::randn({B, NH, T, hs}, rng).requires_grad_();
    Tensor v = Tensor::randn({B, NH, T, hs}, rng).requires_grad_();
    Tensor bias = Tensor::randn({NH, T, T}, rng, 0.5);
    Tensor w = Tensor::randn({B, NH, T, hs}, rng);
    const real scale = 1 / std::sqrt((real)hs);
    Reference ref = reference(q, k, v, bias, w, scale);

    auto measure = [&](bool fused, double errors[4]) {
        for (const Tensor& t : {q, k, v}) t.zero_grad();
        Tensor out = fused ? causal_attention(q, k, v, scale, bias)
                           : matmul(softmax(causal_mask(matmul(q, transpose(k)) * scale + bias)), v);
        sum(out * w).backward();
        errors[0] = error(out, ref.out);
        errors[1] = error(q.grad(), ref.dq);
        errors[2] = error(k.grad(), ref.dk);
        errors[3] = error(v.grad(), ref.dv);
    };
    double f[4], c[4];
    measure(true, f);
    measure(false, c);
    const char* names[] = {"out", "dq", "dk", "dv"};
    for (int n = 0; n < 4; ++n) {
        INFO(names[n] << ": fused error " << f[n] << ", composite error " << c[n]);
        CHECK(f[n] < 1e-5);            // float has 24 bits: ~6e-8 per rounding, sums of 64 terms
        CHECK(f[n] < 4 * c[n] + 1e-6); // and no worse than the ops it replaces, give or take
    }
}
