// The float build's fused elementwise kernels against double-precision formulas.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "../../autograd/fast/kernels.h"
#include "../../autograd/ops.h"
#include "../../autograd/rng.h"

using namespace ag;

TEST_CASE("float GELU (hand-vectorised, sigmoid form) matches the double tanh formula, forward and backward",
          "[kernels]") {
    const int n = 200001;  // big enough for the threaded path, odd for the loop tails
    std::vector<float> x(n), y(n), dy(n), dx(n, 0.0f);
    for (int i = 0; i < n; ++i) {
        x[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);  // both tails and the curved middle
        dy[i] = 1.0f;
    }
    gelu_forward(x.data(), y.data(), n);
    gelu_backward(x.data(), dy.data(), dx.data(), n);
    double worst_y = 0, worst_dx = 0, worst_tiny = 0;
    const double s = 0.7978845608028654, k = 0.044715;
    for (int i = 0; i < n; ++i) {
        double v = x[i], th = std::tanh(s * (v + k * v * v * v));
        double y_ref = 0.5 * v * (1 + th);
        double d_ref = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * s * (1 + 3 * k * v * v);
        worst_y = std::max(worst_y, std::fabs(y[i] - y_ref) / std::max(1.0, std::fabs(y_ref)));
        worst_dx = std::max(worst_dx, std::fabs(dx[i] - d_ref));
        if (v < -4 && v >= -9) {  // tiny outputs, 1e-28 to 1e-4: relative to themselves, against x sigma(2u)
            double exact = v / (1 + std::exp(-2 * s * (v + k * v * v * v)));
            worst_tiny = std::max(worst_tiny, std::fabs(y[i] - exact) / std::fabs(exact));
        }
        if (v < -9) {  // below 1e-26: exactly 0 (no denormal numbers made)
            REQUIRE(y[i] == 0.0f);
            REQUIRE(dx[i] == 0.0f);
        }
    }
    CHECK(worst_y < 3e-7);   // measured 1.3e-7 (the tanh form was at 3e-7)
    CHECK(worst_dx < 5e-7);  // measured 2.4e-7 (the tanh form was at 2e-6)
    CHECK(worst_tiny < 1e-5);  // x sigma(2u) loses no digits to cancellation (0.5 x (1 + tanh u) lost all)
}

TEST_CASE("float GELU: NaN stays NaN, infinities and huge inputs give the limits, in vector lanes and tails",
          "[kernels]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> special = {nan, inf, -inf, 1e30f, -1e30f, 3e38f, -3e38f, 0.0f, -20.0f, 20.0f};
    // 42 values: the specials at many positions in vectors of 16, 8 or 4 lanes, and all ten of them in
    // the tail after two vectors of 16
    std::vector<float> x(42), y(42), ones(42, 1.0f), dx(42);
    for (size_t i = 0; i < x.size(); ++i) x[i] = special[i % special.size()];
    gelu_forward(x.data(), y.data(), (int64_t)x.size());
    gelu_backward(x.data(), ones.data(), dx.data(), (int64_t)x.size(), false);
    for (size_t i = 0; i < x.size(); ++i) {
        INFO("x = " << x[i]);
        const float v = x[i];
        if (std::isnan(v)) {
            CHECK(std::isnan(y[i]));
            CHECK(std::isnan(dx[i]));
        } else if (v > 0) {  // GELU(x) = x, GELU'(x) = 1
            CHECK(y[i] == v);
            CHECK(dx[i] == 1.0f);
        } else if (v < 0) {  // 0 and 0
            CHECK(y[i] == 0.0f);
            CHECK(dx[i] == 0.0f);
        } else {
            CHECK(y[i] == 0.0f);
            CHECK(dx[i] == 0.5f);
        }
    }
}

TEST_CASE("GELU backward stores, adds or overwrites dy, and arrays past the caches (prefetched, streamed) give the same values",
          "[kernels]") {
    // 3M values (12 MB): the path that prefetches, and streams y and a stored dx out; odd, for the tails.
    for (int n : {1000, 3000001}) {
        INFO("n = " << n);
        std::vector<float> x(n), y(n), dy(n), added(n, 0.0f), stored(n, 123.0f);
        for (int i = 0; i < n; ++i) x[i] = -6.0f + 12.0f * (float)(i % 1001) / 1000.0f, dy[i] = 0.5f + (float)(i % 7);
        gelu_forward(x.data(), y.data(), n);
        gelu_backward(x.data(), dy.data(), added.data(), n);              // 0 + ...
        gelu_backward(x.data(), dy.data(), stored.data(), n, false);      // the 123s are not read
        CHECK(added == stored);
        std::vector<float> in_place(dy);
        gelu_backward(x.data(), in_place.data(), in_place.data(), n, false);  // dx over dy (Tensor::adopt_grad_of)
        CHECK(in_place == stored);
        gelu_backward(x.data(), dy.data(), added.data(), n);              // twice the gradient now
        bool same = true;
        for (int i = 0; i < n; ++i) {
            same = same && added[i] == stored[i] + stored[i];
            same = same && y[i] == y[i % 1001];                           // x repeats every 1001 values
        }
        CHECK(same);
    }
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
    CHECK(row_max(x.data(), n) == 60.0f);
    x[n - 1] = 61;  // in the tail past the last whole vector
    CHECK(row_max(x.data(), n) == 61.0f);
    x[n - 1] = 0;
    float lse = row_logsumexp(x.data(), n);
    CHECK(std::fabs(lse - lse_ref) < 1e-5);
    std::vector<float> next(x.rbegin(), x.rend());
    CHECK(row_logsumexp(x.data(), n, next.data()) == lse);  // prefetching the next row changes nothing
    std::vector<float> stored(n, 7.0f), prefetched(dx);
    add_scaled_softmax_row(x.data(), lse, 0.25f, dx.data(), n);
    add_scaled_softmax_row(x.data(), lse, 0.25f, prefetched.data(), n, true, true);
    add_scaled_softmax_row(x.data(), lse, 0.25f, stored.data(), n, false);  // the 7s are not read
    CHECK(prefetched == dx);
    double worst = 0;
    for (int j = 0; j < n; ++j) {
        worst = std::max(worst, std::fabs(dx[j] - (0.5 + 0.25 * std::exp(x[j] - lse_ref))));
        worst = std::max(worst, std::fabs(stored[j] - 0.25 * std::exp(x[j] - lse_ref)));
    }
    CHECK(worst < 1e-6);
}

TEST_CASE("softmax_gradient_row: cross-entropy's row gradient with one exp per logit, made in place or streamed",
          "[kernels]") {
    const int n = 50257;
    Rng rng(8);
    std::vector<float> x(n);
    for (float& v : x) v = (float)(4 * rng.normal());
    x[n - 1] = 30;  // the maximum, in the tail
    double m = 30, s = 0;
    for (float v : x) s += std::exp((double)v - m);
    const double lse_ref = m + std::log(s), scale = 1.0 / 8;
    const int target = 777;
    std::vector<float> made(n, 7.0f), streamed(n, 7.0f), work(n, 3.0f);  // the 7s and 3s are not read
    const float lse = softmax_gradient_row(x.data(), n, target, (float)scale, made.data());
    CHECK(softmax_gradient_row(x.data(), n, target, (float)scale, streamed.data(), work.data(), x.data()) == lse);
    CHECK(streamed == made);  // through a work row and streaming stores, prefetching a next row: the same
    CHECK(std::fabs(lse - lse_ref) < 1e-5);
    CHECK(lse == row_logsumexp(x.data(), n));
    double worst = 0;
    for (int j = 0; j < n; ++j) {
        const double ref = scale * (std::exp(x[j] - lse_ref) - (j == target));
        worst = std::max(worst, std::fabs(made[j] - ref) / scale);
    }
    CHECK(worst < 1e-6);
    // Logits far below the top give 0 or a normal float, never a denormal (6x slower arithmetic); a NaN
    // logit makes the whole row NaN, so a bad loss is seen.
    std::vector<float> far_below = {0.0f, -50.0f, -86.0f, -90.0f, -150.0f}, g(5);
    softmax_gradient_row(far_below.data(), 5, 0, 1.0f / 256, g.data());
    for (float v : g) CHECK((v == 0.0f || std::fpclassify(v) == FP_NORMAL));
    CHECK(g[1] == Approx(std::exp(-50.0) / 256).epsilon(1e-5));
    CHECK(g[4] == 0.0f);
    std::vector<float> with_nan = {1.0f, std::nanf(""), 2.0f}, gn(3);
    softmax_gradient_row(with_nan.data(), 3, 0, 1.0f, gn.data());
    for (float v : gn) CHECK(std::isnan(v));
}

TEST_CASE("scale_into: stores, adds, in place, past the caches; denormal products are 0, NaN stays", "[kernels]") {
    for (int64_t n : {int64_t(1000), int64_t(3) << 20}) {  // 12 MB: threads, prefetch and streaming stores
        std::vector<float> src((size_t)n), stored((size_t)n, 9.0f), added((size_t)n, 1.0f);
        for (int64_t i = 0; i < n; ++i) src[(size_t)i] = (float)(i % 101) - 50.0f;
        scale_into(src.data(), 0.5f, stored.data(), n, false);
        scale_into(src.data(), 0.5f, added.data(), n, true);
        bool same = true;
        for (int64_t i = 0; i < n; ++i) same = same && stored[(size_t)i] == 0.5f * src[(size_t)i] &&
                                              added[(size_t)i] == 1.0f + 0.5f * src[(size_t)i];
        CHECK(same);
        scale_into(src.data(), 0.5f, src.data(), n, false);  // in place
        CHECK(src == stored);
    }
    std::vector<float> tiny = {1e-30f, -1e-30f, 1e-20f, std::nanf("")}, out(4);
    scale_into(tiny.data(), 1e-10f, out.data(), 4, false);
    CHECK(out[0] == 0.0f);
    CHECK(out[1] == 0.0f);
    CHECK(std::fpclassify(out[2]) == FP_NORMAL);
    CHECK(std::isnan(out[3]));
}

TEST_CASE("the vectorised exp over its whole range, and row_max over every short length", "[kernels]") {
    // e^x through a softmax row with lse = 0 and scale 1: relative error below 3e-7 from -87 to 88 (past
    // those it is clamped); a NaN logit stays a NaN, so a bad loss is seen, not hidden.
    const int n = 1000001;
    std::vector<float> x(n), e(n);
    for (int i = 0; i < n; ++i) x[i] = -87.0f + 175.0f * (float)i / (float)(n - 1);
    add_scaled_softmax_row(x.data(), 0.0f, 1.0f, e.data(), n, false);
    double worst = 0;
    for (int i = 0; i < n; ++i) worst = std::max(worst, std::fabs(e[i] / std::exp((double)x[i]) - 1));
    CHECK(worst < 3e-7);
    // Gradients of logits far below the top (scale 1/256, as from a mean over 256 rows) stay normal
    // floats: scale is folded into the exponent, because denormal arithmetic runs 6x slower. A negative
    // scale (an upstream gradient below 0) multiplies instead.
    std::vector<float> far_below = {0.0f, -50.0f, -90.0f, -150.0f}, g(4);
    add_scaled_softmax_row(far_below.data(), 0.0f, 1.0f / 256, g.data(), 4, false);
    for (float v : g) CHECK(std::fpclassify(v) == FP_NORMAL);
    CHECK(g[0] == Approx(1.0 / 256).epsilon(1e-6));
    CHECK(g[1] == Approx(std::exp(-50.0) / 256).epsilon(1e-5));
    add_scaled_softmax_row(far_below.data(), 0.0f, -0.5f, g.data(), 2, false);
    CHECK(g[0] == -0.5f);
    CHECK(g[1] == Approx(-0.5 * std::exp(-50.0)).epsilon(1e-5));
    std::vector<float> with_nan = {1.0f, std::nanf(""), 2.0f}, out(3);
    add_scaled_softmax_row(with_nan.data(), 0.0f, 1.0f, out.data(), 3, false);
    CHECK(std::isnan(out[1]));
    CHECK(std::isnan(row_logsumexp(with_nan.data(), 3)));
    // row_max keeps 64 running maxima, folded to 16 for the rest of the row, then one: every length up
    // to 200 (each path and each tail), with the maximum at the first, a middle and the last position.
    for (int len = 1; len <= 200; ++len)
        for (int at : {0, len / 2, len - 1}) {
            std::vector<float> row(len);
            for (int j = 0; j < len; ++j) row[j] = (float)((j * 37) % 101) - 200.0f;
            row[at] = 5.0f;
            INFO("length " << len << ", maximum at " << at);
            CHECK(row_max(row.data(), len) == 5.0f);
        }
}

TEST_CASE("flush_denormals_to_zero: denormal results become 0 on this thread, and it can be undone",
          "[kernels]") {
    volatile float tiny = 1e-30f, small = 1e-10f;  // volatile: multiplied at run time, not by the compiler
    flush_denormals_to_zero(true);
    const float flushed = tiny * small;  // 1e-40: below float's smallest normal number
    flush_denormals_to_zero(false);
    const float kept = tiny * small;
#if defined(__SSE__)
    CHECK(flushed == 0.0f);
#else
    (void)flushed;
#endif
    CHECK(kept > 0.0f);
}

TEST_CASE("threaded elementwise ops and linear's bias: the same as one element at a time", "[kernels]") {
    // big enough (>= 65,536 values) for the ops to share the work between threads
    Rng rng(6);
    Tensor a = Tensor::randn({300, 256}, rng).requires_grad_(), row = Tensor::randn({256}, rng).requires_grad_();
    Tensor y = exp(a * row) + a;  // a broadcast mul, a unary op, a same-shape add
    Tensor w = Tensor::randn({300, 256}, rng);
    sum(y * w).backward();
    double worst_y = 0, worst_da = 0;
    std::vector<double> drow(256, 0.0);
    for (int i = 0; i < 300; ++i)
        for (int j = 0; j < 256; ++j) {
            double av = a.data()[i * 256 + j], rv = row.data()[j], e = std::exp(av * rv), wv = w.data()[i * 256 + j];
            worst_y = std::max(worst_y, std::fabs(y.data()[i * 256 + j] - (e + av)) / (1 + e));
            worst_da = std::max(worst_da, std::fabs(a.grad().data()[i * 256 + j] - wv * (e * rv + 1)) / (1 + e));
            drow[j] += wv * e * av;
        }
    CHECK(worst_y < 1e-6);
    CHECK(worst_da < 1e-5);
    for (int j = 0; j < 256; j += 51) CHECK(row.grad().data()[j] == Approx(drow[j]).epsilon(1e-4).margin(1e-3));

    Tensor x = Tensor::randn({256, 384}, rng), W = Tensor::randn({384, 384}, rng, 0.05f);
    Tensor b = Tensor::randn({384}, rng).requires_grad_();
    Tensor out = linear(x, W, b);
    Tensor v = Tensor::randn({256, 384}, rng);
    sum(out * v).backward();
    for (int n : {0, 17, 200, 383}) {  // db[n] = sum over rows of v[r][n]; y[r][n] includes b[n]
        double db = 0;
        for (int r = 0; r < 256; ++r) db += v.data()[r * 384 + n];
        CHECK(b.grad().data()[n] == Approx(db).margin(1e-4));
        double y0 = b.data()[n];
        for (int k = 0; k < 384; ++k) y0 += (double)x.data()[k] * W.data()[n * 384 + k];
        CHECK(out.data()[n] == Approx(y0).margin(1e-4));
    }
}

TEST_CASE("binary ops past the caches (streamed out) and their stored gradients: exact", "[kernels]") {
    // 3,000,001 values (12 MB, past the 8 MB line; odd, for the streaming stores' tail): the forward
    // streams y out; backward stores b's new gradient (streamed) and hands dy's buffer to a, or, for
    // leaves with lazily zeroed buffers, stores both.
    const int64_t n = 3000001;
    Rng rng(12);
    Tensor a = Tensor::randn({n}, rng).requires_grad_(), b = Tensor::randn({n}, rng).requires_grad_();
    Tensor w = Tensor::randn({n}, rng);
    for (bool lazily : {false, true}) {
        INFO((lazily ? "into lazily zeroed buffers" : "into new buffers"));
        if (lazily) a.zero_grad_lazily(), b.zero_grad_lazily();
        Tensor y = sub(a * 2.0f, b);
        sum(y * w).backward();
        bool same = true;
        for (int64_t i = 0; i < n; ++i)
            same = same && y.data()[i] == a.data()[i] * 2.0f - b.data()[i] &&
                   a.grad().data()[i] == w.data()[i] * 2.0f && b.grad().data()[i] == -w.data()[i];
        CHECK(same);
    }
}

TEST_CASE("layernorm past the caches (prefetched, streamed out) gives the same rows as in cache", "[kernels]") {
    // 3001 rows of 769 (9.2 MB, past the 8 MB line): forward streams y out; the first backward writes dx
    // over dy (x has no gradient buffer yet: Tensor::adopt_grad_of), the second, storing dx into x's
    // lazily zeroed buffer, streams dx out. Rows of 769 values start off the 64-byte lines, so the
    // streaming stores' head and tail are used too. Each row's arithmetic is the same as in cache:
    // bit-identical.
    const int64_t rows = 3001, C = 769;
    Rng rng(11);
    Tensor x = Tensor::randn({rows, C}, rng).requires_grad_();
    Tensor gain = Tensor::randn({C}, rng), bias = Tensor::randn({C}, rng), w = Tensor::randn({rows, C}, rng);
    Tensor y = layernorm(x, gain, bias);
    sum(mul(y, w)).backward();  // dy = w
    for (int64_t r0 : {int64_t(0), int64_t(1500), rows - 7}) {
        const int64_t n = 7;  // 7 rows: 21 KB, in cache
        Tensor xs = slice(x, 0, r0, r0 + n).detach().requires_grad_();
        Tensor ys = layernorm(xs, gain, bias);
        sum(mul(ys, slice(w, 0, r0, r0 + n))).backward();
        bool same_y = true, same_dx = true;
        for (int64_t i = 0; i < n * C; ++i) {
            same_y = same_y && ys.data()[i] == y.data()[r0 * C + i];
            same_dx = same_dx && xs.grad().data()[i] == x.grad().data()[r0 * C + i];
        }
        INFO("rows " << r0 << " to " << r0 + n);
        CHECK(same_y);
        CHECK(same_dx);
    }
    std::vector<real> first(x.grad().data(), x.grad().data() + rows * C);
    x.zero_grad_lazily();
    sum(mul(layernorm(x, gain, bias), w)).backward();  // streamed into x's buffer
    CHECK(std::equal(first.begin(), first.end(), x.grad().data()));
    // A third backward adds (no streaming): every gradient doubles exactly.
    sum(mul(layernorm(x, gain, bias), w)).backward();
    bool doubled = true;
    for (int64_t i = 0; i < rows * C; ++i) doubled = doubled && x.grad().data()[i] == first[i] + first[i];
    CHECK(doubled);
}
