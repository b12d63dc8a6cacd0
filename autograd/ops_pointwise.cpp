// ops_pointwise.cpp: elementwise ops, the reference tier (tiers.h). Binary ones broadcast a trailing
// part of the shape or a single value (op_helpers.h: which element of each operand an output reads).
#include <cmath>

#include "op_helpers.h"
#include "tiers.h"

namespace ag {

namespace {

// The skeleton of every binary op: y[i] = forward(a[ia], b[ib]), where ia and ib are the elements of a
// and b that output i reads; in backward, by the chain rule,
//   da[ia] += dy[i] * d_da(a[ia], b[ib])      db[ib] += dy[i] * d_db(a[ia], b[ib])
// (an operand that repeats collects one term per output it was read by).
template <class F, class DA, class DB>
Tensor binary(const char* name, const Tensor& a, const Tensor& b, F forward, DA d_da, DB d_db) {
    Broadcast bc = broadcast(name, a, b);
    Tensor out = Tensor::empty(bc.shape);
    for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = forward(a.data()[bc.index_a(i)], b.data()[bc.index_b(i)]);
    return record(out, name, {a, b}, [a, b, bc, d_da, d_db](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* da = a.requires_grad() ? a.grad_buffer() : nullptr;
        real* db = b.requires_grad() ? b.grad_buffer() : nullptr;
        for (int64_t i = 0; i < out.numel(); ++i) {
            const int64_t ia = bc.index_a(i), ib = bc.index_b(i);
            if (da) da[ia] += dy[i] * d_da(a.data()[ia], b.data()[ib]);
            if (db) db[ib] += dy[i] * d_db(a.data()[ia], b.data()[ib]);
        }
    });
}

// The skeleton of every unary op: y = forward(x); in backward, dx += dy * derivative(x, y).
template <class F, class D>
Tensor unary(const char* name, const Tensor& x, F forward, D derivative) {
    Tensor out = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = forward(x.data()[i]);
    return record(out, name, {x}, [x, derivative](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) dx[i] += dy[i] * derivative(x.data()[i], out.data()[i]);
    });
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Binary ops: forward, d/da, d/db. (Their fast twins are in fast/ops_pointwise.cpp.)

namespace reference {

// y = a + b;  dy/da = 1, dy/db = 1
Tensor add(const Tensor& a, const Tensor& b) {
    return binary("add", a, b, [](real x, real y) { return x + y; },
                  [](real, real) { return real(1); }, [](real, real) { return real(1); });
}

// y = a - b;  dy/da = 1, dy/db = -1
Tensor sub(const Tensor& a, const Tensor& b) {
    return binary("sub", a, b, [](real x, real y) { return x - y; },
                  [](real, real) { return real(1); }, [](real, real) { return real(-1); });
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

// GELU, tanh approximation (Hendrycks & Gimpel 2016), as in GPT-2:
//   y = 0.5 x (1 + tanh u),  u = s (x + 0.044715 x^3),  s = sqrt(2/pi)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx,  du/dx = s (1 + 3 * 0.044715 x^2)
Tensor gelu(const Tensor& x) {
    const real s = (real)std::sqrt(2.0 / M_PI), c = (real)0.044715;
    return unary(
        "gelu", x, [=](real v) { return real(0.5) * v * (1 + std::tanh(s * (v + c * v * v * v))); },
        [=](real v, real) {
            const real t = std::tanh(s * (v + c * v * v * v));
            return real(0.5) * (1 + t) + real(0.5) * v * (1 - t * t) * s * (1 + 3 * c * v * v);
        });
}

}  // namespace reference

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

}  // namespace ag
