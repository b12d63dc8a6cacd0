// ops_nn.cpp: the fused ops a transformer is made of, the reference tier (tiers.h). Each works row by
// row over the last axis, and each is one op (one node) rather than a chain of small ones, because its
// backward is short when derived by hand and a chain would store many intermediate tensors. softmax,
// cross_entropy and layernorm have tuned twins in fast/ops_nn.cpp.
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "op_helpers.h"
#include "tiers.h"

namespace ag {

static real row_max(const real* row, int64_t n) {
    real m = row[0];
    for (int64_t j = 1; j < n; ++j) m = std::max(m, row[j]);
    return m;
}

// log sum_j exp(row[j]) computed stably as max + log sum exp(row[j] - max).
static real row_logsumexp(const real* row, int64_t n) {
    real m = row_max(row, n);
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += std::exp((double)(row[j] - m));
    return m + (real)std::log(s);
}

static std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// ---------------------------------------------------------------------------------------------------
// Softmax over the last axis: y_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k. (Subtracting m
// changes nothing mathematically and keeps exp from overflowing.)
namespace reference {
Tensor softmax(const Tensor& x) {
    need_last_axis("softmax", x);
    const int64_t N = x.size(-1), rows = x.numel() / N;
    Tensor out = Tensor::empty(x.shape());
    for (int64_t r = 0; r < rows; ++r) {
        const real* xr = x.data() + r * N;
        real* yr = out.data() + r * N;
        const real m = row_max(xr, N);
        double sum = 0;
        for (int64_t j = 0; j < N; ++j) sum += (yr[j] = std::exp(xr[j] - m));
        for (int64_t j = 0; j < N; ++j) yr[j] = (real)(yr[j] / sum);
    }
    return record(out, "softmax", {x}, [x, N, rows](const Tensor& out) {
        // dy_j/dx_i = y_j (delta_ij - y_i)  =>  dx_i += y_i (dy_i - sum_j dy_j y_j)
        for (int64_t r = 0; r < rows; ++r) {
            const real *y = out.data() + r * N, *dy = out.grad_buffer() + r * N;
            real* dx = x.grad_buffer() + r * N;
            double dot = 0;
            for (int64_t j = 0; j < N; ++j) dot += dy[j] * y[j];
            for (int64_t i = 0; i < N; ++i) dx[i] += y[i] * (dy[i] - (real)dot);
        }
    });
}
}  // namespace reference

// Log-softmax over the last axis: y_j = x_j - logsumexp(x).
Tensor log_softmax(const Tensor& x) {
    need_last_axis("log_softmax", x);
    int64_t N = x.size(-1), rows = x.numel() / N;
    Tensor out = Tensor::empty(x.shape());
    for (int64_t r = 0; r < rows; ++r) {
        const real* xr = x.data() + r * N;
        real lse = row_logsumexp(xr, N);
        for (int64_t j = 0; j < N; ++j) out.data()[r * N + j] = xr[j] - lse;
    }
    return record(out, "log_softmax", {x}, [x, N, rows](const Tensor& out) {
        // dy_j/dx_i = delta_ij - softmax_i  =>  dx_i += dy_i - softmax_i * sum_j dy_j, softmax_i = exp(y_i)
        for (int64_t r = 0; r < rows; ++r) {
            const real *y = out.data() + r * N, *dy = out.grad_buffer() + r * N;
            real* dx = x.grad_buffer() + r * N;
            double total = 0;
            for (int64_t j = 0; j < N; ++j) total += dy[j];
            for (int64_t i = 0; i < N; ++i) dx[i] += dy[i] - std::exp(y[i]) * (real)total;
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// Cross-entropy from logits (..., V) and one integer target per row, over the n rows whose target is
// not ignored:
//   loss = (1/n) sum_r  lse_r - x_r[t_r],   lse_r = log sum_j exp(x_r[j])  (the row's log-sum-exp)
// Fused with the softmax because the gradient is then simply (softmax - onehot) / n. Columns past the
// V classes (padding) take no part and get no gradient.
namespace reference {
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, int ignore_index, int64_t classes) {
    const CrossEntropyShape s = cross_entropy_shape(logits, targets, ignore_index, classes);
    std::vector<real> lse(s.rows, 0);  // saved for backward: softmax_j = exp(x_j - lse)
    double total = 0;
    for (int64_t r = 0; r < s.rows; ++r) {
        if (targets[r] == ignore_index) continue;
        const real* xr = logits.data() + r * s.stride;
        lse[r] = row_logsumexp(xr, s.V);
        total += lse[r] - xr[targets[r]];
    }
    Tensor out = Tensor::empty({});
    out.data()[0] = s.counted ? (real)(total / s.counted) : real(0);
    return record(out, "cross_entropy", {logits}, [logits, targets, ignore_index, lse, s](const Tensor& out) {
        // dloss/dx_r[j] = (softmax(x_r)[j] - [j == t_r]) / n  for each counted row r and class j < V
        const real scale = out.grad_buffer()[0] / (real)std::max<int64_t>(1, s.counted);
        real* dx = logits.grad_buffer();
        for (int64_t r = 0; r < s.rows; ++r) {
            if (targets[r] == ignore_index) continue;
            const real* xr = logits.data() + r * s.stride;
            real* dxr = dx + r * s.stride;
            for (int64_t j = 0; j < s.V; ++j) dxr[j] += scale * std::exp(xr[j] - lse[r]);  // term 1: softmax
            dxr[targets[r]] -= scale;                                                       // term 2: onehot
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm over the last axis (Ba, Kiros & Hinton 2016), per row of C values:
//   mean = (1/C) sum_j x_j,  var = (1/C) sum_j (x_j - mean)^2,  rstd = 1 / sqrt(var + eps)
//   xhat_j = (x_j - mean) * rstd,  y_j = xhat_j * gain_j + bias_j
Tensor layernorm(const Tensor& x, const Tensor& gain, const Tensor& bias, real eps) {
    const int64_t C = layernorm_width(x, gain, bias), rows = x.numel() / C;
    Tensor out = Tensor::empty(x.shape());
    std::vector<real> mean(rows), rstd(rows);  // saved for backward
    for (int64_t r = 0; r < rows; ++r) {
        const real* xr = x.data() + r * C;
        real sum = 0, sq = 0;
        for (int64_t j = 0; j < C; ++j) sum += xr[j];
        mean[r] = sum / (real)C;
        for (int64_t j = 0; j < C; ++j) sq += (xr[j] - mean[r]) * (xr[j] - mean[r]);  // about the mean: no cancellation
        rstd[r] = 1 / std::sqrt(sq / (real)C + eps);
        for (int64_t j = 0; j < C; ++j) {
            const real xhat = (xr[j] - mean[r]) * rstd[r];
            out.data()[r * C + j] = xhat * gain.data()[j] + (bias.defined() ? bias.data()[j] : real(0));
        }
    }
    return record(out, "layernorm", {x, gain, bias}, [x, gain, bias, mean, rstd, C, rows](const Tensor& out) {
        // With g_j = dy_j * gain_j, the gradient reaching xhat_j (docs/layernorm.md derives these):
        //   dx_j    += rstd * (g_j - mean_k(g_k) - xhat_j * mean_k(g_k xhat_k))
        //   dgain_j += dy_j * xhat_j        (summed over rows)
        //   dbias_j += dy_j                 (summed over rows)
        const real* dy_all = out.grad_buffer();
        real* dx_all = x.requires_grad() ? x.grad_buffer() : nullptr;
        real* dgain = gain.requires_grad() ? gain.grad_buffer() : nullptr;
        real* dbias = bias.defined() && bias.requires_grad() ? bias.grad_buffer() : nullptr;
        for (int64_t r = 0; r < rows; ++r) {
            const real *xr = x.data() + r * C, *dy = dy_all + r * C;
            auto xhat = [&](int64_t j) { return (xr[j] - mean[r]) * rstd[r]; };
            real g_mean = 0, gx_mean = 0;
            for (int64_t j = 0; j < C; ++j) {
                const real g = dy[j] * gain.data()[j];
                g_mean += g / (real)C;
                gx_mean += g * xhat(j) / (real)C;
            }
            for (int64_t j = 0; j < C; ++j) {
                const real g = dy[j] * gain.data()[j];
                if (dx_all) dx_all[r * C + j] += rstd[r] * (g - g_mean - xhat(j) * gx_mean);  // term 1, 2, 3
                if (dgain) dgain[j] += dy[j] * xhat(j);
                if (dbias) dbias[j] += dy[j];
            }
        }
    });
}
}  // namespace reference

// ---------------------------------------------------------------------------------------------------
// Embedding: out[n] = table[ids[n]], a gather of rows. Backward scatters the rows back, adding:
// dtable[ids[n]] += dy[n], so an id that occurs twice collects both gradients.
Tensor embedding(const Tensor& table, const std::vector<int>& ids, const Shape& ids_shape) {
    if (table.dim() != 2) throw std::invalid_argument("embedding: the table must be (V, C), got " + table.shape_str());
    if ((int64_t)ids.size() != numel_of(ids_shape))
        throw std::invalid_argument("embedding: " + std::to_string(ids.size()) + " ids given for shape " +
                                    shape_str(ids_shape));
    int64_t V = table.size(0), C = table.size(1);
    for (size_t n = 0; n < ids.size(); ++n)
        if (ids[n] < 0 || ids[n] >= V)
            throw std::out_of_range("embedding: token id " + std::to_string(ids[n]) + " at position " +
                                    std::to_string(n) + " is out of range for a table of " + std::to_string(V) +
                                    " rows");
    Shape out_shape = ids_shape;
    out_shape.push_back(C);
    Tensor out = Tensor::empty(out_shape);
    for (size_t n = 0; n < ids.size(); ++n)
        std::copy(table.data() + ids[n] * C, table.data() + (ids[n] + 1) * C, out.data() + n * C);
    return record(out, "embedding", {table}, [table, ids, C](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dtable = table.grad_buffer();
        for (size_t n = 0; n < ids.size(); ++n)
            for (int64_t c = 0; c < C; ++c) dtable[ids[n] * C + c] += dy[n * C + c];
    });
}

// ---------------------------------------------------------------------------------------------------
// Inverted dropout (Srivastava et al. 2014): y = x * keep / (1 - p), keep ~ Bernoulli(1 - p), so that
// the expected value of y is x and evaluation needs no rescaling. dx += dy * keep / (1 - p).
Tensor dropout(const Tensor& x, real p, Rng& rng, bool training) {
    if (!(p >= 0 && p < 1))
        throw std::invalid_argument("dropout: probability " + format_number(p) + " must be in [0, 1)");
    if (!training || p == 0) return x;
    real scale = 1 / (1 - p);
    std::vector<uint8_t> keep(x.numel());
    Tensor out = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        keep[i] = rng.uniform() >= p;
        out.data()[i] = keep[i] ? x.data()[i] * scale : real(0);
    }
    return record(out, "dropout", {x}, [x, keep, scale](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (size_t i = 0; i < keep.size(); ++i)
            if (keep[i]) dx[i] += dy[i] * scale;
    });
}

// ---------------------------------------------------------------------------------------------------
// Causal mask on scores (..., Tq, Tk): y[i][j] = x[i][j] if j <= i + (Tk - Tq), else -infinity.
// dx[i][j] += dy[i][j] where kept; masked positions receive nothing, so their gradient is exactly 0.
// (With Tq == Tk, the usual case, query i sees keys 0..i.)
static bool causal_keep(int64_t i, int64_t j, int64_t Tq, int64_t Tk) { return j <= i + (Tk - Tq); }

Tensor causal_mask(const Tensor& x) {
    if (x.dim() < 2 || x.size(-2) > x.size(-1))
        throw std::invalid_argument("causal_mask: scores " + x.shape_str() +
                                    " must be (..., Tq, Tk) with no more queries than keys");
    int64_t Tq = x.size(-2), Tk = x.size(-1), mats = x.numel() / (Tq * Tk);
    Tensor out = Tensor::empty(x.shape());
    const real minus_inf = -std::numeric_limits<real>::infinity();
    for (int64_t m = 0; m < mats; ++m)
        for (int64_t i = 0; i < Tq; ++i)
            for (int64_t j = 0; j < Tk; ++j) {
                int64_t k = (m * Tq + i) * Tk + j;
                out.data()[k] = causal_keep(i, j, Tq, Tk) ? x.data()[k] : minus_inf;
            }
    return record(out, "causal_mask", {x}, [x, Tq, Tk, mats](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t m = 0; m < mats; ++m)
            for (int64_t i = 0; i < Tq; ++i)
                for (int64_t j = 0; j < Tk; ++j)
                    if (causal_keep(i, j, Tq, Tk)) dx[(m * Tq + i) * Tk + j] += dy[(m * Tq + i) * Tk + j];
    });
}

}  // namespace ag
