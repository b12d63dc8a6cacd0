// ops_reduce.cpp: sums, means and maxima.
#include <stdexcept>

#include "ops.h"

namespace ag {

// y = sum_i x_i  =>  dx_i += dy (every element contributed with weight 1)
Tensor sum(const Tensor& x) {
    Tensor out = Tensor::empty({});
    double total = 0;  // accumulate in double: a float sum of a million values loses digits
    for (int64_t i = 0; i < x.numel(); ++i) total += x.data()[i];
    out.data()[0] = (real)total;
    return record(out, "sum", {x}, [x](const Tensor& out) {
        real dy = out.grad_buffer()[0];
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += dy;
    });
}

// x viewed as (outer, len, inner): y[o][i] = sum_l x[o][l][i]  =>  dx[o][l][i] += dy[o][i]
Tensor sum(const Tensor& x, int axis, bool keepdim) {
    int n = x.dim();
    if (axis < -n || axis >= n)
        throw std::out_of_range("sum: axis " + std::to_string(axis) + " is out of range for shape " + x.shape_str());
    if (axis < 0) axis += n;
    int64_t outer = 1, len = x.shape()[axis], inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.shape()[d];
    for (int d = axis + 1; d < n; ++d) inner *= x.shape()[d];

    Shape out_shape = x.shape();
    if (keepdim) out_shape[axis] = 1;
    else out_shape.erase(out_shape.begin() + axis);
    Tensor out = Tensor::zeros(out_shape);
    const real* px = x.data();
    real* y = out.data();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t l = 0; l < len; ++l)
            for (int64_t i = 0; i < inner; ++i) y[o * inner + i] += px[(o * len + l) * inner + i];

    return record(out, "sum", {x}, [x, outer, len, inner](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t l = 0; l < len; ++l)
                for (int64_t i = 0; i < inner; ++i) dx[(o * len + l) * inner + i] += dy[o * inner + i];
    });
}

// A mean is a sum times 1/n; its gradient follows from those two ops.
Tensor mean(const Tensor& x) { return mul(sum(x), real(1) / (real)x.numel()); }

Tensor mean(const Tensor& x, int axis, bool keepdim) {
    Tensor s = sum(x, axis, keepdim);  // checks the axis
    return mul(s, real(1) / (real)x.size(axis));
}

// y = max_j x[..., j] over the last axis  =>  dx[..., argmax] += dy. The max is not differentiable
// where two entries tie; we send the whole gradient to the first of them (PyTorch picks one too).
Tensor max(const Tensor& x) {
    if (x.dim() < 1 || x.size(-1) == 0)
        throw std::invalid_argument("max: shape " + x.shape_str() + " has no last axis to take the maximum over");
    int64_t N = x.size(-1), rows = x.numel() / N;
    Shape out_shape(x.shape().begin(), x.shape().end() - 1);
    Tensor out = Tensor::empty(out_shape);
    std::vector<int64_t> argmax(rows);
    for (int64_t r = 0; r < rows; ++r) {
        const real* row = x.data() + r * N;
        int64_t best = 0;
        for (int64_t j = 1; j < N; ++j)
            if (row[j] > row[best]) best = j;
        argmax[r] = best;
        out.data()[r] = row[best];
    }
    return record(out, "max", {x}, [x, argmax, N](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (size_t r = 0; r < argmax.size(); ++r) dx[r * N + argmax[r]] += dy[r];
    });
}

}  // namespace ag
