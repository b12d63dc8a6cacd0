// A test of the tests: the gradient checker must catch a backward that is wrong.
#include <catch2/catch.hpp>
#include <cmath>

#include "../gradcheck.h"

using namespace ag;

// GELU with a deliberately wrong backward: the derivative keeps 0.5 (1 + tanh u) and drops the term
// 0.5 x (1 - tanh^2 u) s (1 + 3 * 0.044715 x^2), the kind of slip a hand derivation makes.
static Tensor gelu_missing_a_term(const Tensor& x) {
    const real s = 0.7978845608028654, k = 0.044715;
    Tensor out = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
        real v = x.data()[i];
        out.data()[i] = 0.5 * v * (1 + std::tanh(s * (v + k * v * v * v)));
    }
    return record(out, "gelu_wrong", {x}, [x, s, k](const Tensor& out) {
        const real* dy = out.grad_buffer();
        real* dx = x.grad_buffer();
        for (int64_t i = 0; i < x.numel(); ++i) {
            real v = x.data()[i];
            dx[i] += dy[i] * 0.5 * (1 + std::tanh(s * (v + k * v * v * v)));
        }
    });
}

// mul whose backward forgets the factor b in da (da += dy).
static Tensor mul_dropped_factor(const Tensor& a, const Tensor& b) {
    Tensor out = mul(a.detach(), b.detach());
    return record(out, "mul_wrong", {a, b}, [a, b](const Tensor& out) {
        const real* dy = out.grad_buffer();
        for (int64_t i = 0; i < a.numel(); ++i) {
            a.grad_buffer()[i] += dy[i];
            b.grad_buffer()[i] += dy[i] * a.data()[i];
        }
    });
}

TEST_CASE("the gradient checker reports a wrong GELU backward as failing", "[gradcheck]") {
    Rng rng(3);
    Tensor x = Tensor::uniform({4, 5}, rng, -3, 3).requires_grad_();
    GradCheck right = gradcheck([](auto& in) { return gelu(in[0]); }, {x});
    GradCheck wrong = gradcheck([](auto& in) { return gelu_missing_a_term(in[0]); }, {x});
    INFO("right: " << right.worst << "; wrong: " << wrong.worst);
    CHECK(right.passes(1e-6));
    CHECK_FALSE(wrong.passes(1e-6));
    CHECK(wrong.max_rel_error > 1e-2);  // not a near miss: the error is gross
}

TEST_CASE("the gradient checker reports a dropped factor as failing", "[gradcheck]") {
    Rng rng(4);
    Tensor a = Tensor::uniform({3, 3}, rng, -1, 1).requires_grad_();
    Tensor b = Tensor::uniform({3, 3}, rng, 2, 3).requires_grad_();
    GradCheck wrong = gradcheck([](auto& in) { return mul_dropped_factor(in[0], in[1]); }, {a, b});
    INFO(wrong.worst);
    CHECK_FALSE(wrong.passes(1e-6));
}

TEST_CASE("the gradient checker projects on random weights, not on sum(y)", "[gradcheck]") {
    // A softmax whose backward uses the plain mean of dy where the weighted sum sum_j dy_j y_j belongs.
    // With L = sum(softmax(x)) every dy is 1, and both give dx = 0: a check on sum(y) would pass it.
    Rng rng(5);
    Tensor x = Tensor::uniform({2, 6}, rng, -1, 1).requires_grad_();
    auto softmax_mean_bug = [](const Tensor& in) {
        Tensor out = softmax(in.detach());
        return record(out, "softmax_wrong", {in}, [in](const Tensor& out) {
            const real *y = out.data(), *dy = out.grad_buffer();
            real* dx = in.grad_buffer();
            for (int r = 0; r < 2; ++r) {
                double mean_dy = 0;
                for (int j = 0; j < 6; ++j) mean_dy += dy[r * 6 + j] / 6;
                for (int j = 0; j < 6; ++j) dx[r * 6 + j] += y[r * 6 + j] * (dy[r * 6 + j] - mean_dy);
            }
        });
    };
    sum(softmax_mean_bug(x)).backward();
    for (int i = 0; i < 12; ++i) CHECK(std::fabs(x.grad().data()[i]) < 1e-15);  // sum(y) sees nothing wrong

    GradCheck wrong = gradcheck([&](auto& in) { return softmax_mean_bug(in[0]); }, {x});
    INFO(wrong.worst);
    CHECK_FALSE(wrong.passes(1e-6));
}
