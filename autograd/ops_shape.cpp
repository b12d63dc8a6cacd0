// ops_shape.cpp: ops that move values around without arithmetic.
//
// Tensors here are always contiguous and row-major. reshape is therefore free (a view sharing the
// values); transpose and permute copy into the new order, which keeps every other op simple: no op
// ever has to deal with strides.
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "ops.h"

namespace ag {

static int normalize_axis(const char* op, int axis, const Tensor& x) {
    int n = x.dim();
    if (axis < -n || axis >= n)
        throw std::out_of_range(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for shape " +
                                x.shape_str());
    return axis < 0 ? axis + n : axis;
}

// Sizes before, along, and after an axis: x viewed as (outer, len, inner).
struct AxisView {
    int64_t outer = 1, len, inner = 1;
    AxisView(const Shape& s, int axis) : len(s[axis]) {
        for (int d = 0; d < axis; ++d) outer *= s[d];
        for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
    }
};

// ---------------------------------------------------------------------------------------------------
// y = x with another shape (same values, shared). dx += dy, element for element.
Tensor reshape(const Tensor& x, Shape shape) {
    int64_t known = 1, free_dim = -1;
    for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == -1 && free_dim < 0) free_dim = (int64_t)d;
        else known *= shape[d];
    }
    if (free_dim >= 0 && known > 0 && x.numel() % known == 0) shape[free_dim] = x.numel() / known;
    if (numel_of(shape) != x.numel() || (free_dim >= 0 && shape[free_dim] < 0))
        throw std::invalid_argument("reshape: shape " + x.shape_str() + " (" + std::to_string(x.numel()) +
                                    " elements) cannot be viewed as " + shape_str(shape));
    auto view = std::make_shared<TensorImpl>();
    view->shape = shape;
    view->storage = x.impl()->storage;
    return record(Tensor(view), "reshape", {x}, [x](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += dy[i];
    });
}

// ---------------------------------------------------------------------------------------------------
// Permute: output dimension d is input dimension order[d]. We walk the output in order with an
// odometer over its index, and keep the matching input offset up to date using the input's strides.
// f(i, j, len) is told that output values [i, i + len) are input values [j, j + len): when the last
// dimension stays last (as when attention splits heads), whole rows move at once; otherwise len is 1.
template <class F>
static void for_each_permuted(const Shape& in_shape, const std::vector<int>& order, F f) {
    int n = (int)in_shape.size();
    std::vector<int64_t> in_stride(n, 1);
    for (int d = n - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * in_shape[d + 1];
    int64_t run = 1;
    if (n > 0 && order[n - 1] == n - 1) run = in_shape[--n];  // the odometer walks the other dimensions
    Shape out_shape(n);
    std::vector<int64_t> step(n);  // input offset moved by one step along output dimension d
    for (int d = 0; d < n; ++d) {
        out_shape[d] = in_shape[order[d]];
        step[d] = in_stride[order[d]];
    }
    int64_t runs = run ? numel_of(in_shape) / run : 0, in_offset = 0;
    std::vector<int64_t> index(n, 0);
    for (int64_t r = 0; r < runs; ++r) {
        f(r * run, in_offset, run);
        for (int d = n - 1; d >= 0; --d) {  // advance the odometer
            in_offset += step[d];
            if (++index[d] < out_shape[d]) break;
            in_offset -= step[d] * out_shape[d];
            index[d] = 0;
        }
    }
}

static Tensor permute_op(const char* name, const Tensor& x, std::vector<int> order) {
    int n = x.dim();
    std::vector<bool> seen(n, false);
    bool ok = (int)order.size() == n;
    for (int& d : order) {
        if (ok && d < 0) d += n;
        ok = ok && d >= 0 && d < n && !seen[d];
        if (ok) seen[d] = true;
    }
    if (!ok) throw std::invalid_argument(std::string(name) + ": the order given is not a permutation of the " +
                                         std::to_string(n) + " dimensions of shape " + x.shape_str());
    Shape out_shape(n);
    for (int d = 0; d < n; ++d) out_shape[d] = x.shape()[order[d]];
    Tensor out = Tensor::empty(out_shape);
    const real* px = x.data();
    real* y = out.data();
    for_each_permuted(x.shape(), order, [&](int64_t i, int64_t j, int64_t len) {
        std::copy(px + j, px + j + len, y + i);
    });
    return record(out, name, {x}, [x, order](const Tensor& out) {
        // y[i] = x[j]  =>  dx[j] += dy[i], the same walk backwards
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for_each_permuted(x.shape(), order, [&](int64_t i, int64_t j, int64_t len) {
            for (int64_t k = 0; k < len; ++k) dx[j + k] += dy[i + k];
        });
    });
}

Tensor permute(const Tensor& x, const std::vector<int>& order) { return permute_op("permute", x, order); }

// (..., M, N) -> (..., N, M)
Tensor transpose(const Tensor& x) {
    if (x.dim() < 2)
        throw std::invalid_argument("transpose: shape " + x.shape_str() + " has fewer than 2 dimensions");
    std::vector<int> order(x.dim());
    std::iota(order.begin(), order.end(), 0);
    std::swap(order[x.dim() - 1], order[x.dim() - 2]);
    return permute_op("transpose", x, order);
}

// ---------------------------------------------------------------------------------------------------
// Concat: each input viewed as (outer, len_k, inner) is copied into its columns [off_k, off_k + len_k)
// of the output (outer, sum len, inner). Backward hands each input back its own columns of dy.
Tensor concat(const std::vector<Tensor>& xs, int axis) {
    if (xs.empty()) throw std::invalid_argument("concat: no tensors given");
    axis = normalize_axis("concat", axis, xs[0]);
    Shape out_shape = xs[0].shape();
    out_shape[axis] = 0;
    for (const Tensor& x : xs) {
        bool fits = x.dim() == xs[0].dim();
        for (int d = 0; fits && d < x.dim(); ++d) fits = d == axis || x.shape()[d] == xs[0].shape()[d];
        if (!fits)
            throw std::invalid_argument("concat: shapes " + xs[0].shape_str() + " and " + x.shape_str() +
                                        " differ outside axis " + std::to_string(axis));
        out_shape[axis] += x.shape()[axis];
    }
    Tensor out = Tensor::empty(out_shape);
    AxisView ov(out_shape, axis);
    int64_t offset = 0;
    std::vector<int64_t> offsets;
    for (const Tensor& x : xs) {
        AxisView v(x.shape(), axis);
        for (int64_t o = 0; o < v.outer; ++o)
            std::copy(x.data() + o * v.len * v.inner, x.data() + (o + 1) * v.len * v.inner,
                      out.data() + (o * ov.len + offset) * ov.inner);
        offsets.push_back(offset);
        offset += v.len;
    }
    return record(out, "concat", xs, [xs, offsets, ov](const Tensor& out) {
        const real* dy = out.grad_buffer();
        if (ov.outer == 0) return;  // nothing to hand back from an empty tensor
        for (size_t k = 0; k < xs.size(); ++k) {
            if (!xs[k].requires_grad()) continue;
            int64_t block = xs[k].numel() / ov.outer;  // len_k * inner values per outer index
            real* dx = xs[k].grad_buffer();
            for (int64_t o = 0; o < ov.outer; ++o) {
                const real* src = dy + (o * ov.len + offsets[k]) * ov.inner;
                for (int64_t j = 0; j < block; ++j) dx[o * block + j] += src[j];
            }
        }
    });
}

// y = x[..., start:end, ...] along axis (a copy). dx[..., start:end, ...] += dy; the rest of dx is untouched.
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end) {
    axis = normalize_axis("slice", axis, x);
    AxisView v(x.shape(), axis);
    if (start < 0 || end > v.len || start > end)
        throw std::out_of_range("slice: range [" + std::to_string(start) + ", " + std::to_string(end) +
                                ") does not fit axis " + std::to_string(axis) + " of shape " + x.shape_str());
    Shape out_shape = x.shape();
    out_shape[axis] = end - start;
    Tensor out = Tensor::empty(out_shape);
    int64_t block = (end - start) * v.inner;  // contiguous values copied per outer index
    for (int64_t o = 0; o < v.outer; ++o) {
        const real* src = x.data() + (o * v.len + start) * v.inner;
        std::copy(src, src + block, out.data() + o * block);
    }
    return record(out, "slice", {x}, [x, v, start, block](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t o = 0; o < v.outer; ++o)
            for (int64_t j = 0; j < block; ++j) dx[(o * v.len + start) * v.inner + j] += dy[o * block + j];
    });
}

// Consecutive slices of the given sizes, which must add up to the length of the axis.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int axis) {
    int a = normalize_axis("split", axis, x);
    int64_t total = 0;
    for (int64_t s : sizes) total += s;
    if (total != x.shape()[a])
        throw std::invalid_argument("split: sizes adding up to " + std::to_string(total) + " do not cover axis " +
                                    std::to_string(a) + " of shape " + x.shape_str());
    std::vector<Tensor> parts;
    int64_t start = 0;
    for (int64_t s : sizes) {
        parts.push_back(slice(x, a, start, start + s));
        start += s;
    }
    return parts;
}

}  // namespace ag
