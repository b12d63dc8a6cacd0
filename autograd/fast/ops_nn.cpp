// fast/ops_nn.cpp: the tuned tier (tiers.h) of softmax, cross_entropy and layernorm: rows shared out
// between threads, prefetching and streaming stores past the caches, sums kept in vector registers,
// cross-entropy's gradient made in its forward, layernorm's gradient written over dy's buffer. The math
// of each, and the ops of this family without a tuned twin, are in ../ops_nn.cpp.
#include <omp.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "../bf16.h"
#include "../op_helpers.h"
#include "../tiers.h"
#include "kernels.h"

namespace ag {
namespace fast {

// ---------------------------------------------------------------------------------------------------
// Softmax over the last axis (the reference's comments have the math), rows shared between threads.
Tensor softmax(const Tensor& x) {
    need_last_axis("softmax", x);
    int64_t N = x.size(-1), rows = x.numel() / N;
    Tensor out = Tensor::empty(x.shape());
#pragma omp parallel for if (worth_threads(rows * N))
    for (int64_t r = 0; r < rows; ++r) {
        const real* xr = x.data() + r * N;
        real* yr = out.data() + r * N;
        real m = row_max(xr, N);
        double s = 0;
        for (int64_t j = 0; j < N; ++j) s += (yr[j] = std::exp(xr[j] - m));
        for (int64_t j = 0; j < N; ++j) yr[j] = (real)(yr[j] / s);
    }
    return record(out, "softmax", {x}, [x, N, rows](const Tensor& out) {
        // dy_j/dx_i = y_j (delta_ij - y_i)  =>  dx_i += y_i (dy_i - sum_j dy_j y_j)
        out.grad_buffer(), x.grad_buffer();  // allocate before the threads start
#pragma omp parallel for if (worth_threads(rows * N))
        for (int64_t r = 0; r < rows; ++r) {
            const real *y = out.data() + r * N, *dy = out.grad_buffer() + r * N;
            real* dx = x.grad_buffer() + r * N;
            double dot = 0;
            for (int64_t j = 0; j < N; ++j) dot += dy[j] * y[j];
            for (int64_t i = 0; i < N; ++i) dx[i] += y[i] * (dy[i] - (real)dot);
        }
    });
}

// Asks for the n values at p to be fetched into the caches (a hint: no fault if p is past the end, and
// n = 0 asks for nothing). A loop over rows of a tensor past the caches that prefetches two rows ahead
// keeps more memory reads in flight than the hardware prefetcher alone does for one stream per core
// (on a tensor in cache the hints only cost time, so only tensors past the caches use them).
static inline void prefetch_row(const real* p, int64_t n) {
    for (int64_t i = 0; i < n; i += 64 / (int64_t)sizeof(real)) __builtin_prefetch(p + i);
}

// ---------------------------------------------------------------------------------------------------
// Cross-entropy from logits (..., V) and one integer target per row:
//   loss = (1/n) sum over the n rows whose target is not ignored of  logsumexp(x_r) - x_r[t_r]
// Fused with the softmax because the gradient is then simply (softmax - onehot) / n.
//
// When a gradient will be wanted, the forward makes it too, while each row is in cache: a row's
// e^(x_j - max) is needed for the loss anyway, and stored, it gives softmax with one multiply. The
// backward then has nothing to compute for the usual upstream gradient of 1: the buffer becomes the
// logits' gradient as it is. That is one exponential per logit instead of two, and one pass over the
// logits in memory instead of two (GPT-2's are 51 MB). It is used once: a
// second backward through the same graph (retain_graph) computes the gradient again from the saved lse.
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, int ignore_index, int64_t classes) {
    const CrossEntropyShape shape = cross_entropy_shape(logits, targets, ignore_index, classes);
    const int64_t stride = shape.stride, rows = shape.rows, V = shape.V, counted = shape.counted;
    std::vector<real> lse(rows);       // saved for backward, so softmax can be recomputed without storing it
    std::vector<double> row_loss(rows, 0.0);
    const bool far = past_caches(rows * stride * (int64_t)sizeof(real));  // past the caches: prefetch, stream
    const bool want_grad = grad_enabled() && logits.requires_grad();
    std::shared_ptr<Storage> made = want_grad ? std::make_shared<Storage>((size_t)(rows * stride)) : nullptr;
    const real per_row = counted ? 1 / (real)counted : real(0);  // dloss/dloss_r for a counted row
#pragma omp parallel if (worth_threads(rows * V))
    {
        std::vector<real> work(want_grad && far ? V : 0);  // past the caches: a row is made here, then streamed
#pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; ++r) {
            const real* xr = logits.data() + r * stride;
            const real* next = far && r + 1 < rows ? xr + stride : nullptr;
            real* g = made ? made->data + r * stride : nullptr;
            if (targets[r] == ignore_index) {
                if (g) std::fill(g, g + stride, real(0));
                continue;
            }
            if (g) {
                lse[r] = softmax_gradient_row(xr, V, targets[r], per_row, g, far ? work.data() : nullptr, next);
                std::fill(g + V, g + stride, real(0));  // the padding classes
            } else {
                lse[r] = row_logsumexp(xr, V, next);
            }
            row_loss[r] = lse[r] - xr[targets[r]];
        }
        if (made && far) stream_fence();  // before another thread reads the gradient
    }
    double total = 0;  // summed in row order, so the loss does not depend on the number of threads
    for (double l : row_loss) total += l;
    Tensor out = Tensor::empty({});
    out.data()[0] = counted ? (real)(total / counted) : real(0);
    return record(out, "cross_entropy", {logits}, [logits, targets, ignore_index, lse, V, stride, counted, far,
                                                   made](const Tensor& out) mutable {
        const real upstream = out.grad_buffer()[0];
        if (made) {  // the gradient the forward made, for an upstream gradient of 1
            std::shared_ptr<Storage> g = std::move(made);  // used once
            if (logits.adopt_grad(g)) {  // nothing there yet (an op's output always: its gradient is freed after use)
                if (upstream != 1) scale_into(g->data, upstream, g->data, logits.numel(), false);
            } else {  // a leaf's buffer (kept, as grad() may share it), or gradient from another consumer
                bool accumulate = true;
                real* dx = logits.grad_to_write(accumulate);
                scale_into(g->data, upstream, dx, logits.numel(), accumulate);
            }
            return;
        }
        // Again (a second backward): dloss/dx_r[j] = (softmax(x_r)[j] - [j == t_r]) / n for every counted
        // row r and class j < V, softmax recomputed from the saved lse.
        real scale = upstream / (real)counted;
        // A buffer with nothing in it yet is written, not added to: then the rows and padding columns
        // that get no gradient must be written as zeros.
        bool accumulate = true;
        real* dx_all = logits.grad_to_write(accumulate);
#pragma omp parallel for if (worth_threads((int64_t)targets.size() * V))
        for (size_t r = 0; r < targets.size(); ++r) {
            real* dx = dx_all + r * stride;
            if (targets[r] == ignore_index) {
                if (!accumulate) std::fill(dx, dx + stride, real(0));
                continue;
            }
            add_scaled_softmax_row(logits.data() + r * stride, lse[r], scale, dx, V, accumulate, far);
            if (!accumulate) std::fill(dx + V, dx + stride, real(0));  // the padding classes
            dx[targets[r]] -= scale;
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm over the last axis (Ba, Kiros & Hinton 2016), per row of C values:
//   mu = mean(x), var = mean((x - mu)^2), rstd = 1 / sqrt(var + eps), xhat = (x - mu) * rstd
//   y = xhat * gain + bias

// The sum over j < n of term(j), in 64 running sums (term j into sum j % 64), folded to 16 in one step
// and then by halves. The compiler keeps the sums in vector registers (four of AVX-512's): independent
// chains of additions in flight, where a simd reduction is one chain (48 dependent vector additions
// for a row of 768). Each sum adds n/64 terms, so rounding stays at float's level. (Folding the 64 by
// halves from the start made a row of 128 take 16.5 ns instead of 9.3; the simd reduction takes 8.5
// there, 29.5 for 768.)
template <typename Term>
static real row_sum(int64_t n, Term term) {
    constexpr int kSums = 64, kLanes = 16;
    real s[kSums] = {}, lane[kLanes];
    int64_t j = 0;
    for (; j + kSums <= n; j += kSums)
        for (int k = 0; k < kSums; ++k) s[k] += term(j + k);
    for (int k = 0; k < kLanes; ++k) lane[k] = (s[k] + s[k + 16]) + (s[k + 32] + s[k + 48]);
    for (int half = kLanes / 2; half >= 1; half /= 2)
        for (int k = 0; k < half; ++k) lane[k] += lane[k + half];
    real total = lane[0];
    for (; j < n; ++j) total += term(j);
    return total;
}

Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps) {
    return fast::layernorm(x, gain, bias, eps, Dtype::fp32);
}

// Stored in bf16, a row of y is rounded while it is in L1, and a row of dy is read through a rounded
// copy (in L1 too).
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps, Dtype stored) {
    const int64_t C = layernorm_width(x, gain, bias), rows = x.numel() / C;
    const bool to_bf16 = stored == Dtype::bf16;
    Tensor out = Tensor::empty(x.shape());
    std::vector<real> mean(rows), rstd(rows);  // saved for backward
    const bool far = past_caches(rows * C * (int64_t)sizeof(real));
    const real* g = gain.data();
    const real* b = bias.defined() ? bias.data() : nullptr;
#pragma omp parallel if (worth_threads(rows * C))
    {
        std::vector<real> row_buf(far ? C : 0);  // past the caches: a row is computed here, then streamed out
#pragma omp for nowait
        for (int64_t r = 0; r < rows; ++r) {
            // Two passes over the row (in L1 after the first): the mean, then the variance about it, which
            // loses no digits however far the mean is from 0.
            const real* xr = x.data() + r * C;
            prefetch_row(xr + 2 * C, far && r + 2 < rows ? C : 0);  // two rows ahead: more reads in flight
            const real mu = row_sum(C, [=](int64_t j) { return xr[j]; }) / (real)C;
            const real var = row_sum(C, [=](int64_t j) { return (xr[j] - mu) * (xr[j] - mu); }) / (real)C;
            const real rs = 1 / std::sqrt(var + eps);
            mean[r] = mu, rstd[r] = rs;
            real* yr = far ? row_buf.data() : out.data() + r * C;
            if (b)
                for (int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - mu) * rs * g[j] + b[j];
            else
                for (int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - mu) * rs * g[j];
            if (to_bf16) round_bf16_span(yr, yr, C);
            if (far) stream_copy(out.data() + r * C, yr, C);
        }
        if (far) stream_fence();  // before another thread reads y
    }
    return record(out, "layernorm", {x, gain, bias}, [x, gain, bias, mean, rstd, C, rows, far, to_bf16](const Tensor& out) {
        // With xhat = (x - mean) * rstd and g = dy * gain (the gradient reaching xhat):
        //   dx     += rstd * (g - mean(g) - xhat * mean(g * xhat))
        //   dgain  += dy * xhat,  dbias += dy      (summed over rows)
        // One pass over x and dy: rows in fixed blocks of kBlock, the blocks shared between threads.
        // Each block sums its rows' dgain and dbias terms in row order into its own partial row; the
        // partials are then added in block order. So the result does not depend on the number of
        // threads, and x and dy are read once (a separate pass for the parameters would read them again).
        constexpr int64_t kBlock = 32;
        const int64_t blocks = (rows + kBlock - 1) / kBlock;
        const real* dy_all = out.grad_buffer();
        const real* gain_v = gain.data();
        bool accumulate = true;  // false: dx's buffer holds nothing yet, and each row is stored, not added
        // In place where it can (tensor.h): a row of dx is written over the row of dy it was computed from.
        real* dx_all = x.requires_grad() ? x.adopt_grad_of(out) : nullptr;
        const bool in_place = dx_all != nullptr;
        if (in_place) accumulate = false;
        else if (x.requires_grad()) dx_all = x.grad_to_write(accumulate);
        real* dgain = gain.requires_grad() ? gain.grad_buffer() : nullptr;
        real* dbias = bias.defined() && bias.requires_grad() ? bias.grad_buffer() : nullptr;
        std::vector<real> partial(dgain || dbias ? blocks * 2 * C : 0, real(0));  // per block: dgain (C), dbias (C)
        const bool stream = far && !accumulate && !in_place;  // a new dx past the caches: streamed, row by row
#pragma omp parallel if (worth_threads(rows * C))
        {
            std::vector<real> row_buf(stream ? C : 0), dy_buf(to_bf16 ? C : 0);
#pragma omp for schedule(static) nowait
            for (int64_t blk = 0; blk < blocks; ++blk) {
                real *pg = dgain || dbias ? partial.data() + blk * 2 * C : nullptr, *pb = pg ? pg + C : nullptr;
                for (int64_t r = blk * kBlock; r < std::min(rows, (blk + 1) * kBlock); ++r) {
                    const real *xr = x.data() + r * C, *dy = dy_all + r * C;
                    prefetch_row(xr + 2 * C, far && r + 2 < rows ? C : 0);
                    prefetch_row(dy + 2 * C, far && r + 2 < rows ? C : 0);
                    if (to_bf16) round_bf16_span(dy, dy_buf.data(), C), dy = dy_buf.data();
                    // One pass over the row for the sums dx needs, which also adds the row's terms of
                    // dgain and dbias to the block's partials; then one pass that writes dx. (The passes
                    // after the first read the row from L1.)
                    const real mu = mean[r], rs = rstd[r];
                    real g_sum = 0, gx_sum = 0;
                    if (pg) {
#pragma omp simd reduction(+ : g_sum, gx_sum)
                        for (int64_t j = 0; j < C; ++j) {
                            const real xhat = (xr[j] - mu) * rs, g = dy[j] * gain_v[j];
                            g_sum += g;
                            gx_sum += g * xhat;
                            pg[j] += dy[j] * xhat;
                            pb[j] += dy[j];
                        }
                    } else if (dx_all) {
#pragma omp simd reduction(+ : g_sum, gx_sum)
                        for (int64_t j = 0; j < C; ++j) {
                            const real g = dy[j] * gain_v[j];
                            g_sum += g;
                            gx_sum += g * (xr[j] - mu) * rs;
                        }
                    }
                    if (!dx_all) continue;
                    const real g_mean = g_sum / (real)C, gx_mean = gx_sum / (real)C;
                    real* dx = dx_all + r * C;
                    if (accumulate) {
#pragma omp simd
                        for (int64_t j = 0; j < C; ++j) {
                            real xhat = (xr[j] - mu) * rs;
                            dx[j] += rs * (dy[j] * gain_v[j] - g_mean - xhat * gx_mean);
                        }
                    } else {  // the same, stored (d may be dy itself: each value is read before it is written)
                        real* d = stream ? row_buf.data() : dx;
#pragma omp simd
                        for (int64_t j = 0; j < C; ++j) {
                            real xhat = (xr[j] - mu) * rs;
                            d[j] = rs * (dy[j] * gain_v[j] - g_mean - xhat * gx_mean);
                        }
                        if (stream) stream_copy(dx, d, C);
                    }
                }
            }
            if (stream) stream_fence();
        }
        for (int64_t blk = 0; blk < blocks && (dgain || dbias); ++blk) {
            const real *pg = partial.data() + blk * 2 * C, *pb = pg + C;
            if (dgain)
                for (int64_t j = 0; j < C; ++j) dgain[j] += pg[j];
            if (dbias)
                for (int64_t j = 0; j < C; ++j) dbias[j] += pb[j];
        }
    });
}

}  // namespace fast
}  // namespace ag
