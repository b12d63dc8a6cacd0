// The float build's fused elementwise kernels against double-precision formulas.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "../../autograd/kernels.h"
#include "../../autograd/rng.h"

using namespace ag;

TEST_CASE("float GELU (vectorised tanh) matches the double formula, forward and backward", "[kernels]") {
    const int n = 200001;  // big enough for the threaded path, odd for the loop tails
    std::vector<float> x(n), y(n), t(n), dy(n), dx(n, 0.0f);
    for (int i = 0; i < n; ++i) {
        x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);  // both tails and the curved middle
        dy[i] = 1.0f;
    }
    gelu_forward(x.data(), y.data(), t.data(), n);
    gelu_backward(x.data(), t.data(), dy.data(), dx.data(), n);
    double worst_y = 0, worst_dx = 0;
    const double s = 0.7978845608028654, k = 0.044715;
    for (int i = 0; i < n; ++i) {
        double v = x[i], th = std::tanh(s * (v + k * v * v * v));
        double y_ref = 0.5 * v * (1 + th);
        double d_ref = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * s * (1 + 3 * k * v * v);
        worst_y = std::max(worst_y, std::fabs(y[i] - y_ref) / std::max(1.0, std::fabs(y_ref)));
        worst_dx = std::max(worst_dx, std::fabs(dx[i] - d_ref));
    }
    CHECK(worst_y < 1e-6);
    CHECK(worst_dx < 4e-6);  // float's own rounding of the derivative's terms (each up to ~5) is ~1e-6
}

TEST_CASE("float softmax rows (vectorised exp) match double math, GPT-2's vocabulary size", "[kernels]") {
    const int n = 50257;  // odd, for the loop tails
    Rng rng(5);
    std::vector<float> x(n), dx(n, 0.5f);
    for (float& v : x) v = (float)(4 * rng.normal());  // a spread of logits, far from 0
    x[123] = 60;                                          // a dominant one: the maximum must be taken out first
    double m = 60, s = 0;
    for (float v : x) s += std::exp((double)v - m);
    double lse_ref = m + std::log(s);
    float lse = logsumexp_row(x.data(), n);
    CHECK(std::fabs(lse - lse_ref) < 1e-5);
    add_scaled_softmax_row(x.data(), lse, 0.25f, dx.data(), n);
    double worst = 0;
    for (int j = 0; j < n; ++j) worst = std::max(worst, std::fabs(dx[j] - (0.5 + 0.25 * std::exp(x[j] - lse_ref))));
    CHECK(worst < 1e-6);
}
