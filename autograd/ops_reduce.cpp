// ops_reduce.cpp: sums, means and maxima, over all elements or over one axis.
#include <stdexcept>
#include <string>
#include <vector>

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

// x viewed as (outer, len, inner): y[o][i] = max_l x[o][l][i]  =>  dx[o][argmax][i] += dy[o][i]. The max
// is not differentiable where two entries tie; the whole gradient goes to the first of them (PyTorch
// picks one too).
Tensor max(const Tensor& x, int axis, bool keepdim) {
    int n = x.dim();
    if (axis < -n || axis >= n)
        throw std::out_of_range("max: axis " + std::to_string(axis) + " is out of range for shape " + x.shape_str());
    if (axis < 0) axis += n;
    int64_t outer = 1, len = x.shape()[axis], inner = 1;
    if (len == 0) throw std::invalid_argument("max: shape " + x.shape_str() + " has nothing to take the maximum of");
    for (int d = 0; d < axis; ++d) outer *= x.shape()[d];
    for (int d = axis + 1; d < n; ++d) inner *= x.shape()[d];

    Shape out_shape = x.shape();
    if (keepdim) out_shape[axis] = 1;
    else out_shape.erase(out_shape.begin() + axis);
    Tensor out = Tensor::empty(out_shape);
    std::vector<int64_t> argmax(outer * inner);  // the l of each output's maximum
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            auto at = [&](int64_t l) { return x.data()[(o * len + l) * inner + i]; };
            int64_t best = 0;
            for (int64_t l = 1; l < len; ++l)
                if (at(l) > at(best)) best = l;
            argmax[o * inner + i] = best;
            out.data()[o * inner + i] = at(best);
        }
    return record(out, "max", {x}, [x, argmax, len, inner](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t k = 0; k < (int64_t)argmax.size(); ++k) {
            const int64_t o = k / inner, i = k % inner;
            dx[(o * len + argmax[k]) * inner + i] += dy[k];
        }
    });
}

// The maximum of all elements: x flattened, then the max over its one axis.
Tensor max(const Tensor& x) { return max(reshape(x, {x.numel()}), 0); }

}  // namespace ag
