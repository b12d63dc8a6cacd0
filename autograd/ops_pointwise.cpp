// ops_pointwise.cpp: elementwise ops. Binary ones broadcast a trailing row or a scalar.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels.h"
#include "ops.h"

namespace ag {

// ---------------------------------------------------------------------------------------------------
// Broadcasting, kept out of the math. The output is cut into `blocks` consecutive runs of `period`
// elements. An operand that is `full` is read at the output's own index; the smaller one (a trailing
// row, or a single value) is read at the index within the run, so it repeats once per run.

namespace {

struct Broadcast {
    Shape shape;         // of the output
    int64_t blocks = 1;  // how many times the smaller operand repeats
    int64_t period = 0;  // its number of elements
    bool a_full = true, b_full = true;
};

Shape strip_leading_ones(Shape s) {
    while (!s.empty() && s.front() == 1) s.erase(s.begin());
    return s;
}

// Is `small` (leading 1s ignored) a trailing part of `big`?
bool is_trailing_part(const Shape& small, const Shape& big) {
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

// Big arrays are shared between the threads; below this, starting them costs more than it saves.
constexpr int64_t kElementsInParallel = 1 << 16;

// Calls f(i, ia, ib) for every output index i, with the indices ia into a and ib into b it combines.
// With `parallel`, different i may run on different threads at once: f may write at i, or at the
// index of a full operand, but must not accumulate into the repeating (smaller) one.
template <class F>
void for_each_pair(const Broadcast& bc, F f, bool parallel) {
    parallel = parallel && bc.blocks * bc.period >= kElementsInParallel;
    if (bc.blocks == 1) {  // same shapes (or a broadcast of one block): share out the elements
#pragma omp parallel for if (parallel) schedule(static)
        for (int64_t j = 0; j < bc.period; ++j) f(j, j, j);
        return;
    }
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t blk = 0; blk < bc.blocks; ++blk) {
        int64_t base = blk * bc.period;
        int64_t a0 = bc.a_full ? base : 0, b0 = bc.b_full ? base : 0;
        for (int64_t j = 0; j < bc.period; ++j) f(base + j, a0 + j, b0 + j);
    }
}

// out[i] = value(i, ia, ib) for every output index i, into a buffer nothing has been read from: the
// output, or a full operand's new gradient (a full operand's index is the output's). Same shapes past
// the caches (over kFarBytes) are computed in pieces in L1 and streamed out (stream_copy, kernels.h), so
// each line of out is written without being read first.
template <class V>
void store_each(const Broadcast& bc, real* out, V value) {
    const int64_t n = bc.blocks * bc.period;
    if (bc.blocks != 1 || n * (int64_t)sizeof(real) <= kFarBytes) {
        for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { out[i] = value(i, ia, ib); }, true);
        return;
    }
    constexpr int64_t kPiece = 256;
#pragma omp parallel
    {
        alignas(64) real piece[kPiece];
#pragma omp for schedule(static) nowait
        for (int64_t i0 = 0; i0 < n; i0 += kPiece) {
            const int64_t i1 = std::min(n, i0 + kPiece);
            for (int64_t i = i0; i < i1; ++i) piece[i - i0] = value(i, i, i);
            stream_copy(out + i0, piece, i1 - i0);
        }
        stream_fence();  // before another thread reads out
    }
}

// The gradient buffer an operand's share goes into: a full operand's is written, not added to, when it
// holds nothing yet (accumulate = false); a repeating operand sums over its repeats, so from zeros.
real* operand_grad(const Tensor& t, bool full, bool& accumulate) {
    accumulate = true;
    return full ? t.grad_to_write(accumulate) : t.grad_buffer();
}

// The skeleton of every binary op: out[i] = forward(a[ia], b[ib]); in backward,
// da[ia] += dy[i] * d_da(a[ia], b[ib]) and db[ib] += dy[i] * d_db(a[ia], b[ib]).
// da_is_dy: d_da is 1 (add, sub), so a full a with no gradient yet takes dy's buffer as it is (the
// residual stream's add: its backward then writes only b's share).
template <class F, class DA, class DB>
Tensor binary(const char* name, const Tensor& a, const Tensor& b, F forward, DA d_da, DB d_db,
              bool da_is_dy = false) {
    Broadcast bc = broadcast(name, a, b);
    Tensor out = Tensor::empty(bc.shape);
    const real *pa = a.data(), *pb = b.data();
    real* y = out.data();
    store_each(bc, y, [&](int64_t, int64_t ia, int64_t ib) { return forward(pa[ia], pb[ib]); });
    return record(out, name, {a, b}, [a, b, bc, d_da, d_db, da_is_dy](const Tensor& out) {
        const real *pa = a.data(), *pb = b.data(), *dy = out.grad_buffer();
        bool accumulate = true;
        if (b.requires_grad()) {  // b first: a may then take dy's buffer
            real* db = operand_grad(b, bc.b_full, accumulate);
            if (accumulate)
                for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { db[ib] += dy[i] * d_db(pa[ia], pb[ib]); },
                              bc.b_full);  // a repeating operand sums over the repeats: one thread
            else
                store_each(bc, db, [&](int64_t i, int64_t ia, int64_t ib) { return dy[i] * d_db(pa[ia], pb[ib]); });
        }
        if (a.requires_grad()) {
            if (da_is_dy && bc.a_full && a.adopt_grad_of(out)) return;  // da = dy: nothing to compute
            real* da = operand_grad(a, bc.a_full, accumulate);
            if (accumulate)
                for_each_pair(bc, [&](int64_t i, int64_t ia, int64_t ib) { da[ia] += dy[i] * d_da(pa[ia], pb[ib]); },
                              bc.a_full);
            else
                store_each(bc, da, [&](int64_t i, int64_t ia, int64_t ib) { return dy[i] * d_da(pa[ia], pb[ib]); });
        }
    });
}

// The skeleton of every unary op: y = forward(x); in backward, dx += dy * derivative(x, y).
template <class F, class D>
Tensor unary(const char* name, const Tensor& x, F forward, D derivative) {
    Tensor out = Tensor::empty(x.shape());
    const real* px = x.data();
    real* y = out.data();
    const int64_t n = x.numel();
#pragma omp parallel for if (n >= kElementsInParallel) schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = forward(px[i]);
    return record(out, name, {x}, [x, derivative, n](const Tensor& out) {
        const real *px = x.data(), *y = out.data(), *dy = out.grad_buffer();
        real* dx = x.grad_buffer();
#pragma omp parallel for if (n >= kElementsInParallel) schedule(static)
        for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * derivative(px[i], y[i]);
    });
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Binary ops: forward, d/da, d/db.

// y = a + b;  dy/da = 1, dy/db = 1
Tensor add(const Tensor& a, const Tensor& b) {
    return binary("add", a, b, [](real x, real y) { return x + y; },
                  [](real, real) { return real(1); }, [](real, real) { return real(1); }, true);
}

// y = a - b;  dy/da = 1, dy/db = -1
Tensor sub(const Tensor& a, const Tensor& b) {
    return binary("sub", a, b, [](real x, real y) { return x - y; },
                  [](real, real) { return real(1); }, [](real, real) { return real(-1); }, true);
}

// y = a * b;  dy/da = b, dy/db = a
Tensor mul(const Tensor& a, const Tensor& b) {
    return binary("mul", a, b, [](real x, real y) { return x * y; },
                  [](real, real y) { return y; }, [](real x, real) { return x; });
}

// y = a / b;  dy/da = 1/b, dy/db = -a/b^2
Tensor div(const Tensor& a, const Tensor& b) {
    return binary("div", a, b, [](real x, real y) { return x / y; },
                  [](real, real y) { return 1 / y; }, [](real x, real y) { return -x / (y * y); });
}

// With a constant: y = x + c (dy/dx = 1) and y = x * c (dy/dx = c).
Tensor add(const Tensor& x, real c) {
    return unary("add", x, [c](real v) { return v + c; }, [](real, real) { return real(1); });
}

Tensor mul(const Tensor& x, real c) {
    return unary("mul", x, [c](real v) { return v * c; }, [c](real, real) { return c; });
}

// ---------------------------------------------------------------------------------------------------
// Unary ops: forward, and the derivative as a function of the input x and the output y.

// y = -x;  dy/dx = -1
Tensor neg(const Tensor& x) {
    return unary("neg", x, [](real v) { return -v; }, [](real, real) { return real(-1); });
}

// y = e^x;  dy/dx = e^x = y
Tensor exp(const Tensor& x) {
    return unary("exp", x, [](real v) { return std::exp(v); }, [](real, real y) { return y; });
}

// y = ln x;  dy/dx = 1/x
Tensor log(const Tensor& x) {
    return unary("log", x, [](real v) { return std::log(v); }, [](real v, real) { return 1 / v; });
}

// y = tanh x;  dy/dx = 1 - tanh^2 x = 1 - y^2
Tensor tanh(const Tensor& x) {
    return unary("tanh", x, [](real v) { return std::tanh(v); }, [](real, real y) { return 1 - y * y; });
}

// y = sqrt x;  dy/dx = 1 / (2 sqrt x) = 1 / (2y)
Tensor sqrt(const Tensor& x) {
    return unary("sqrt", x, [](real v) { return std::sqrt(v); }, [](real, real y) { return 1 / (2 * y); });
}

// y = x^p;  dy/dx = p x^(p-1)
Tensor pow(const Tensor& x, real p) {
    return unary("pow", x, [p](real v) { return std::pow(v, p); },
                 [p](real v, real) { return p * std::pow(v, p - 1); });
}

// y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (we pick 0 at the kink x = 0, as PyTorch does)
Tensor relu(const Tensor& x) {
    return unary("relu", x, [](real v) { return v > 0 ? v : real(0); },
                 [](real v, real) { return v > 0 ? real(1) : real(0); });
}

// GELU, tanh approximation (Hendrycks & Gimpel 2016), as in GPT-2:
//   y = 0.5 x (1 + tanh(u)),  u = s (x + 0.044715 x^3),  s = sqrt(2/pi)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) s (1 + 3 * 0.044715 x^2)
// A fused op: both loops live in kernels.cpp, which computes the same function as x sigma(2u) (as
// 0.5 (1 + tanh u) = sigma(2u)), by hand in vector registers (GELU runs on the 4C-wide MLP
// activations, the largest tensors of a step). Backward needs only x: it recomputes e^(-2u).
Tensor gelu(const Tensor& x) {
    Tensor out = Tensor::empty(x.shape());
    gelu_forward(x.data(), out.data(), x.numel());
    return record(out, "gelu", {x}, [x](const Tensor& out) {
        const real* dy = out.grad_buffer();
        if (real* dx = x.adopt_grad_of(out)) {  // in place: dx overwrites dy (tensor.h)
            gelu_backward(x.data(), dy, dx, x.numel(), false);
            return;
        }
        bool accumulate = true;
        real* dx = x.grad_to_write(accumulate);  // stored, not added, into a buffer with nothing in it yet
        gelu_backward(x.data(), dy, dx, x.numel(), accumulate);
    });
}

}  // namespace ag
