// gradcheck.h: compare backward() with finite differences.
//
// For a function f(inputs) -> y of any shape we check the scalar L = sum_i w_i y_i, with w a fixed
// random vector. (Checking sum(y) instead would hide bugs: softmax and layernorm outputs sum to a
// constant, so any error that adds a constant to every gradient would pass.)
//
// The numerical derivative of L in one input element uses the fourth-order central difference
//   dL/dx ~ (-L(x+2h) + 8 L(x+h) - 8 L(x-h) + L(x-2h)) / (12 h),  h = 1e-4,
// whose truncation error is O(h^4) ~ 1e-16 and whose rounding error is ~1e-12 in double, so the
// checks can demand relative errors of 1e-6 and far better. The engine must be built with
// -DAUTOGRAD_DOUBLE for this (the tests are).
//
// Relative error per element: |analytic - numeric| / max(|analytic|, |numeric|, 1e-3). The 1e-3 floor
// keeps elements whose true gradient is (nearly) zero from dividing noise by noise; there the check is
// an absolute one, at 1e-9 for a tolerance of 1e-6.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../autograd/ops.h"

static_assert(sizeof(ag::real) == sizeof(double), "gradient checks need the engine built with -DAUTOGRAD_DOUBLE");

struct GradCheck {
    double max_rel_error = 0;  // the worst element over all inputs
    std::string worst;         // where it was, and both values
    int checked = 0;           // how many elements were compared
    bool passes(double tolerance) const { return checked > 0 && max_rel_error <= tolerance; }
};

using Fn = std::function<ag::Tensor(const std::vector<ag::Tensor>&)>;

// The projection L = sum_i w_i y_i, computed outside the graph, in double.
inline double project(const ag::Tensor& y, const std::vector<double>& w) {
    double L = 0;
    for (int64_t i = 0; i < y.numel(); ++i) L += w[i] * y.data()[i];
    return L;
}

// Checks every input that requires grad. max_per_input > 0 checks only that many elements of each
// input (spread evenly, always including the first and last), for big tensors.
inline GradCheck gradcheck(const Fn& f, const std::vector<ag::Tensor>& inputs, int max_per_input = 0,
                           uint64_t seed = 12345, double h = 1e-4) {
    using namespace ag;
    GradCheck result;

    // Analytic: backward of L = sum(y * w).
    for (const Tensor& x : inputs) x.zero_grad();
    Tensor y = f(inputs);
    std::vector<double> w(y.numel());
    Rng rng(seed);
    for (double& wi : w) wi = rng.normal();
    Tensor w_tensor = Tensor::empty(y.shape());
    for (int64_t i = 0; i < y.numel(); ++i) w_tensor.data()[i] = (real)w[i];
    sum(mul(y, w_tensor)).backward();

    // Numeric, one element at a time.
    NoGradGuard no_grad;
    auto L_at = [&](real* value, double at) {
        *value = (real)at;
        return project(f(inputs), w);
    };
    for (size_t k = 0; k < inputs.size(); ++k) {
        const Tensor& x = inputs[k];
        if (!x.requires_grad()) continue;
        int64_t n = x.numel();
        int64_t count = (max_per_input > 0 && max_per_input < n) ? max_per_input : n;
        for (int64_t c = 0; c < count; ++c) {
            int64_t e = count > 1 ? c * (n - 1) / (count - 1) : 0;
            real* value = x.data() + e;
            double x0 = *value;
            double numeric = (-L_at(value, x0 + 2 * h) + 8 * L_at(value, x0 + h) - 8 * L_at(value, x0 - h) +
                              L_at(value, x0 - 2 * h)) / (12 * h);
            *value = (real)x0;
            double analytic = x.grad().defined() ? x.grad().data()[e] : 0.0;
            double err = std::fabs(analytic - numeric) /
                         std::max({std::fabs(analytic), std::fabs(numeric), 1e-3});
            if (std::isnan(err)) err = INFINITY;
            if (result.checked == 0 || err > result.max_rel_error) {
                result.max_rel_error = err;
                char buf[200];
                std::snprintf(buf, sizeof buf, "input %zu %s element %lld: analytic %.12g numeric %.12g", k,
                              x.shape_str().c_str(), (long long)e, analytic, numeric);
                result.worst = buf;
            }
            ++result.checked;
        }
    }
    return result;
}

// The bar every gradient check in the double build meets: a relative error of at most 1e-6 (smooth ops
// typically reach 1e-10 or better).
constexpr double kTolerance = 1e-6;

// CHECKs that f's gradients with respect to `inputs` match finite differences (max_per_input as for
// gradcheck), saying which element was worst when they do not.
inline void expect_gradients(const Fn& f, const std::vector<ag::Tensor>& inputs, int max_per_input = 0) {
    GradCheck r = gradcheck(f, inputs, max_per_input);
    INFO("worst: " << r.worst << " (relative error " << r.max_rel_error << ")");
    CHECK(r.checked > 0);
    CHECK(r.max_rel_error <= kTolerance);
}

// Inputs for the checks, marked as wanting gradients: uniform in [lo, hi], or normal with stddev.
inline ag::Tensor uniform_param(const ag::Shape& shape, uint64_t seed, ag::real lo = -1, ag::real hi = 1) {
    ag::Rng rng(seed);
    return ag::Tensor::uniform(shape, rng, lo, hi).requires_grad_();
}
inline ag::Tensor normal_param(const ag::Shape& shape, uint64_t seed, ag::real stddev = 1) {
    ag::Rng rng(seed);
    return ag::Tensor::randn(shape, rng, stddev).requires_grad_();
}
