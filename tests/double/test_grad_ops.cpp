// Gradient checks of every op, in double precision, against fourth-order central differences.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "../gradcheck.h"

using namespace ag;
using Catch::Matchers::Contains;

namespace {

// Values in [lo, hi] with a random sign, never closer to 0 than lo: for kinks and divisors.
Tensor away_from_zero(const Shape& shape, uint64_t seed, real lo = 0.2, real hi = 2) {
    Rng rng(seed);
    Tensor t = Tensor::uniform(shape, rng, lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i)
        if (rng.uniform() < 0.5) t.data()[i] = -t.data()[i];
    return t.requires_grad_();
}

}  // namespace

TEST_CASE("add, sub, mul, div on equal shapes", "[grad][pointwise]") {
    Tensor a = uniform_param({2, 3, 4}, 1), b = away_from_zero({2, 3, 4}, 2);
    expect_gradients([](auto& in) { return add(in[0], in[1]); }, {a, b});
    expect_gradients([](auto& in) { return sub(in[0], in[1]); }, {a, b});
    expect_gradients([](auto& in) { return mul(in[0], in[1]); }, {a, b});
    expect_gradients([](auto& in) { return div(in[0], in[1]); }, {a, b});
}

TEST_CASE("binary ops broadcast a trailing row, in either operand order", "[grad][pointwise]") {
    Tensor x = uniform_param({2, 5, 8}, 3);
    Tensor row = away_from_zero({8}, 4);       // (C) against (B, T, C)
    Tensor plane = away_from_zero({5, 8}, 5);  // (T, C) against (B, T, C)
    Tensor row1 = away_from_zero({1, 8}, 6);   // leading 1s are ignored
    for (const Tensor& small : {row, plane, row1}) {
        expect_gradients([](auto& in) { return add(in[0], in[1]); }, {x, small});
        expect_gradients([](auto& in) { return sub(in[1], in[0]); }, {x, small});
        expect_gradients([](auto& in) { return mul(in[0], in[1]); }, {x, small});
        expect_gradients([](auto& in) { return div(in[0], in[1]); }, {x, small});
        expect_gradients([](auto& in) { return div(in[1], away_from_zero({2, 5, 8}, 7) * in[0]); }, {x, small});
    }
    REQUIRE(add(x, row).shape() == Shape{2, 5, 8});
    REQUIRE(add(row, x).shape() == Shape{2, 5, 8});
}

TEST_CASE("binary ops broadcast a scalar tensor, and constants", "[grad][pointwise]") {
    Tensor x = away_from_zero({3, 4}, 8);
    Tensor s = away_from_zero({}, 9), s1 = away_from_zero({1}, 10);
    expect_gradients([](auto& in) { return mul(in[0], in[1]); }, {x, s});
    expect_gradients([](auto& in) { return div(in[1], in[0]); }, {x, s1});
    expect_gradients([](auto& in) { return sub(in[1], in[0]); }, {x, s});
    expect_gradients([](auto& in) { return in[0] * 3.0 + 2.0; }, {x});
    expect_gradients([](auto& in) { return 2.0 / in[0] - 1.0; }, {x});
    expect_gradients([](auto& in) { return 1.5 - in[0] / 4.0; }, {x});
}

TEST_CASE("unary ops: neg exp log tanh sqrt pow", "[grad][pointwise]") {
    Tensor x = uniform_param({3, 7}, 11, -2, 2);
    Tensor pos = uniform_param({3, 7}, 12, 0.1, 3);
    expect_gradients([](auto& in) { return neg(in[0]); }, {x});
    expect_gradients([](auto& in) { return exp(in[0]); }, {x});
    expect_gradients([](auto& in) { return log(in[0]); }, {pos});
    expect_gradients([](auto& in) { return tanh(in[0]); }, {x});
    expect_gradients([](auto& in) { return sqrt(in[0]); }, {pos});
    expect_gradients([](auto& in) { return pow(in[0], 3); }, {x});
    expect_gradients([](auto& in) { return pow(in[0], -1.5); }, {pos});
    expect_gradients([](auto& in) { return pow(in[0], 0.5); }, {pos});
}

TEST_CASE("relu away from its kink, and its exact zero gradient below it", "[grad][pointwise]") {
    Tensor x = away_from_zero({4, 6}, 13);
    expect_gradients([](auto& in) { return relu(in[0]); }, {x});
    x.zero_grad();
    sum(relu(x)).backward();
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(x.grad().data()[i] == (x.data()[i] > 0 ? 1.0 : 0.0));
}

TEST_CASE("gelu (tanh approximation) matches its formula and its gradient", "[grad][pointwise]") {
    Tensor x = uniform_param({5, 9}, 14, -4, 4);
    expect_gradients([](auto& in) { return gelu(in[0]); }, {x});
    // values from the formula 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed by hand
    Tensor y = gelu(Tensor::from({3}, {1.0, -1.0, 0.0}));
    CHECK(y.data()[0] == Approx(0.8411919906082768).epsilon(1e-12));
    CHECK(y.data()[1] == Approx(-0.15880800939172324).epsilon(1e-12));
    CHECK(y.data()[2] == 0.0);
}

TEST_CASE("matmul: 2-D, batched, and batched against a shared 2-D matrix", "[grad][matmul]") {
    expect_gradients([](auto& in) { return matmul(in[0], in[1]); }, {uniform_param({3, 4}, 15), uniform_param({4, 5}, 16)});
    expect_gradients([](auto& in) { return matmul(in[0], in[1]); }, {uniform_param({2, 3, 4, 5}, 17), uniform_param({2, 3, 5, 2}, 18)});
    expect_gradients([](auto& in) { return matmul(in[0], in[1]); }, {uniform_param({2, 3, 4}, 19), uniform_param({4, 6}, 20)});
    expect_gradients([](auto& in) { return matmul(in[0], in[1]); }, {uniform_param({3, 4}, 21), uniform_param({2, 4, 5}, 22)});
    // only one side wanting a gradient
    Tensor data = uniform_param({3, 4}, 23);
    data.requires_grad_(false);
    expect_gradients([data](auto& in) { return matmul(data, in[0]); }, {uniform_param({4, 2}, 24)});
}

TEST_CASE("matmul agrees with a hand computation", "[matmul]") {
    Tensor a = Tensor::from({2, 2}, {1, 2, 3, 4}), b = Tensor::from({2, 2}, {5, 6, 7, 8});
    Tensor c = matmul(a, b);
    CHECK(std::vector<real>(c.data(), c.data() + 4) == std::vector<real>{19, 22, 43, 50});
}

TEST_CASE("linear: x @ W^T + b with W stored (out, in)", "[grad][matmul]") {
    Tensor x = uniform_param({2, 5, 8}, 25), W = uniform_param({6, 8}, 26), b = uniform_param({6}, 27);
    expect_gradients([](auto& in) { return linear(in[0], in[1], in[2]); }, {x, W, b});
    expect_gradients([](auto& in) { return linear(in[0], in[1]); }, {x, W});
    // same numbers as matmul with an explicit transpose
    Tensor y1 = linear(x, W, b), y2 = add(matmul(x, transpose(W)), b);
    for (int64_t i = 0; i < y1.numel(); ++i) CHECK(y1.data()[i] == Approx(y2.data()[i]).epsilon(1e-12));
}

TEST_CASE("reshape, transpose, permute", "[grad][shape]") {
    Tensor x = uniform_param({2, 3, 4}, 28);
    Tensor w = uniform_param({4, 3, 2}, 29);  // so that the order of elements matters
    expect_gradients([w](auto& in) { return mul(reshape(in[0], {4, -1, 2}), w); }, {x});
    expect_gradients([](auto& in) { return transpose(in[0]); }, {x});
    expect_gradients([](auto& in) { return permute(in[0], {2, 0, 1}); }, {x});
    expect_gradients([](auto& in) { return permute(in[0], {1, 3, 0, 2}); }, {uniform_param({2, 3, 4, 5}, 30)});
    Tensor t = transpose(x);
    REQUIRE(t.shape() == Shape{2, 4, 3});
    CHECK(t.data()[1 * 12 + 2 * 3 + 1] == x.data()[1 * 12 + 1 * 4 + 2]);  // t[1][2][1] == x[1][1][2]
    Tensor p = permute(x, {2, 0, 1});
    REQUIRE(p.shape() == Shape{4, 2, 3});
    CHECK(p.data()[3 * 6 + 1 * 3 + 2] == x.data()[1 * 12 + 2 * 4 + 3]);  // p[3][1][2] == x[1][2][3]
    Tensor v = reshape(x, {6, 4});
    CHECK(v.data() == x.data());  // a view: the same values, not a copy
}

TEST_CASE("concat, slice, split along any axis", "[grad][shape]") {
    Tensor a = uniform_param({2, 3, 4}, 31), b = uniform_param({2, 1, 4}, 32), c = uniform_param({2, 2, 4}, 33);
    expect_gradients([](auto& in) { return concat({in[0], in[1], in[2]}, 1); }, {a, b, c});
    expect_gradients([](auto& in) { return concat({in[0], in[1]}, 0); }, {a, uniform_param({1, 3, 4}, 34)});
    expect_gradients([](auto& in) { return concat({in[0], in[1]}, -1); }, {a, uniform_param({2, 3, 2}, 35)});
    expect_gradients([](auto& in) { return slice(in[0], 1, 1, 3); }, {a});
    expect_gradients([](auto& in) { return slice(in[0], -1, 0, 1); }, {a});
    expect_gradients([](auto& in) {
        auto parts = split(in[0], {1, 3}, 2);
        return mul(parts[0], sum(parts[1], -1, true));
    }, {a});
    Tensor round_trip = concat(split(a, {2, 1}, 1), 1);
    for (int64_t i = 0; i < a.numel(); ++i) CHECK(round_trip.data()[i] == a.data()[i]);
}

TEST_CASE("sum and mean over all and over an axis", "[grad][reduce]") {
    Tensor x = uniform_param({2, 3, 4}, 36);
    expect_gradients([](auto& in) { return sum(in[0]); }, {x});
    expect_gradients([](auto& in) { return mean(in[0]); }, {x});
    for (int axis : {0, 1, 2, -1})
        for (bool keep : {false, true}) {
            expect_gradients([=](auto& in) { return sum(in[0], axis, keep); }, {x});
            expect_gradients([=](auto& in) { return mean(in[0], axis, keep); }, {x});
        }
    CHECK(sum(x, 1, true).shape() == Shape{2, 1, 4});
    CHECK(mean(x, -1).shape() == Shape{2, 3});
}

TEST_CASE("max over an axis or over everything sends the gradient to the maximum", "[grad][reduce]") {
    // distinct values, at least 0.05 apart, so the finite-difference steps never swap the order
    Tensor x = Tensor::empty({3, 5});
    Rng rng(37);
    for (int64_t i = 0; i < 15; ++i) x.data()[i] = 0.05 * (double)((i * 7) % 15) + 0.001 * rng.uniform();
    x.requires_grad_();
    expect_gradients([](auto& in) { return max(in[0], -1); }, {x});
    expect_gradients([](auto& in) { return max(in[0], 0, true); }, {x});
    expect_gradients([](auto& in) { return max(in[0]); }, {x});
    CHECK(max(x).shape() == Shape{});
    CHECK(max(x).data()[0] == *std::max_element(x.data(), x.data() + 15));
    CHECK(max(x, 0, true).shape() == Shape{1, 5});
    x.zero_grad();
    Tensor m = max(x, -1);
    REQUIRE(m.shape() == Shape{3});
    sum(m).backward();
    for (int r = 0; r < 3; ++r) {
        double row_grad = 0;
        for (int j = 0; j < 5; ++j) row_grad += x.grad().data()[r * 5 + j];
        CHECK(row_grad == 1.0);
    }
}

TEST_CASE("softmax and log_softmax over the last axis", "[grad][nn]") {
    Tensor x = uniform_param({2, 3, 6}, 38, -3, 3);
    expect_gradients([](auto& in) { return softmax(in[0]); }, {x});
    expect_gradients([](auto& in) { return log_softmax(in[0]); }, {x});
    // numerically stable: huge logits give finite, correct results
    Tensor big = Tensor::from({1, 3}, {1000, 1001, 1002});
    Tensor p = softmax(big), lp = log_softmax(big);
    CHECK(p.data()[2] == Approx(0.6652409557748219).epsilon(1e-12));
    CHECK(lp.data()[0] == Approx(-2.4076059644443806).epsilon(1e-12));
}

TEST_CASE("cross-entropy from logits, with repeated targets and an ignore index", "[grad][nn]") {
    Tensor logits = uniform_param({2, 5, 11}, 39, -2, 2);
    std::vector<int> targets = {3, 3, 0, 10, 3, -1, 7, 7, -1, 2};
    expect_gradients([&](auto& in) { return cross_entropy(in[0], targets); }, {logits});
    expect_gradients([&](auto& in) { return cross_entropy(in[0], {4, 4, 100, 4}, 100); }, {uniform_param({4, 6}, 40)});

    // the value: the mean over the 8 counted rows of logsumexp - logit[target]
    double expected = 0;
    for (int r = 0; r < 10; ++r) {
        if (targets[r] == -1) continue;
        const real* row = logits.data() + r * 11;
        double s = 0;
        for (int j = 0; j < 11; ++j) s += std::exp(row[j]);
        expected += std::log(s) - row[targets[r]];
    }
    CHECK(cross_entropy(logits, targets).item() == Approx(expected / 8).epsilon(1e-12));

    // ignored rows get exactly zero gradient; if every row is ignored the loss is 0. Both when the
    // gradient is added to zeros and when it is written into a buffer that holds old values (lazily
    // zeroed, after two backwards filled it).
    for (bool lazily : {false, true}) {
        if (lazily) {
            cross_entropy(logits, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}).backward();
            cross_entropy(logits, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}).backward();
            logits.zero_grad_lazily();
        } else {
            logits.zero_grad();
        }
        cross_entropy(logits, targets).backward();
        for (int j = 0; j < 11; ++j) CHECK(logits.grad().data()[5 * 11 + j] == 0.0);
        for (int j = 0; j < 11; ++j) CHECK(logits.grad().data()[8 * 11 + j] == 0.0);
    }
    CHECK(cross_entropy(logits, std::vector<int>(10, -1)).item() == 0.0);
}

TEST_CASE("cross-entropy over the first K of V columns: padding takes no part and gets no gradient", "[grad][nn]") {
    // rows of 9 values of which the first 6 are classes (as llm.c pads GPT-2's vocabulary)
    Tensor padded = uniform_param({4, 9}, 45, -2, 2);
    std::vector<int> targets = {5, 0, 2, 5};
    expect_gradients([&](auto& in) { return cross_entropy(in[0], targets, -1, 6); }, {padded});

    // the same loss as the 6 class columns alone, whatever the padding holds
    Tensor classes = Tensor::empty({4, 6});
    for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 6; ++j) classes.data()[r * 6 + j] = padded.data()[r * 9 + j];
    for (int r = 0; r < 4; ++r) padded.data()[r * 9 + 7] = 50;  // a huge padding logit changes nothing
    CHECK(cross_entropy(padded, targets, -1, 6).item() == Approx(cross_entropy(classes, targets).item()).epsilon(1e-14));
    padded.zero_grad();
    cross_entropy(padded, targets, -1, 6).backward();
    for (int r = 0; r < 4; ++r)
        for (int j = 6; j < 9; ++j) CHECK(padded.grad().data()[r * 9 + j] == 0.0);
    // and when written over old values (a lazily zeroed buffer, as the optimizer leaves it)
    std::fill(padded.grad().data(), padded.grad().data() + 36, real(7));
    padded.zero_grad_lazily();
    cross_entropy(padded, targets, -1, 6).backward();
    for (int r = 0; r < 4; ++r)
        for (int j = 6; j < 9; ++j) CHECK(padded.grad().data()[r * 9 + j] == 0.0);

    // a target in the padding, or more classes than columns, is an error
    CHECK_THROWS_WITH(cross_entropy(padded, {1, 6, 0, 0}, -1, 6), Contains("target 6 at row 1 is out of range for 6 classes"));
    CHECK_THROWS_WITH(cross_entropy(padded, targets, -1, 10), Contains("10 classes asked of logits [4, 9]"));
}

TEST_CASE("gradients made in place or handed over: through op outputs, several consumers, a second backward",
          "[grad][nn]") {
    // An op whose input is another op's output (no gradient buffer yet) computes the input's gradient
    // in place over its output's (GELU, layernorm, add, sub), and cross-entropy hands over the gradient
    // its forward made: checked here against finite differences, as for leaves.
    Tensor x = uniform_param({4, 6}, 60, -2, 2), y = uniform_param({4, 6}, 61), g = uniform_param({6}, 62, 0.5, 1.5), b = uniform_param({6}, 63);
    expect_gradients([](auto& in) { return gelu(in[0] * 1.5); }, {x});
    expect_gradients([](auto& in) { return layernorm(in[0] * 1.5, in[1], in[2]); }, {x, g, b});
    expect_gradients([](auto& in) { return add(in[0] * 2.0, in[1] * 3.0); }, {x, y});
    expect_gradients([](auto& in) { return sub(in[0] * 2.0, in[1] * 3.0); }, {x, y});
    // one op output used twice by one op, or by two ops: both shares arrive
    expect_gradients([](auto& in) { Tensor t = in[0] * 2.0; return add(t, t); }, {x});
    expect_gradients([](auto& in) { Tensor t = in[0] * 2.0; return add(gelu(t), layernorm(t, in[1], in[2])); },
                     {x, g, b});
    expect_gradients([](auto& in) { Tensor t = in[0] * 2.0; return add(layernorm(t, in[1], in[2]), gelu(t)); },
                     {x, g, b});
    // logits an op's output; a loss scaled (upstream gradient 3, not 1); logits with a second consumer,
    // whose share comes before or after cross-entropy's
    std::vector<int> targets = {0, 5, -1, 2};
    expect_gradients([&](auto& in) { return cross_entropy(in[0] * 1.5, targets) * 3.0; }, {x});
    expect_gradients([&](auto& in) { Tensor l = in[0] * 1.5; return add(cross_entropy(l, targets), sum(l * l)); }, {x});
    expect_gradients([&](auto& in) { Tensor l = in[0] * 1.5; return add(sum(l * l), cross_entropy(l, targets)); }, {x});

    // A second backward through the same graph (retain_graph) computes cross-entropy's gradient again,
    // from the saved log-sum-exp: the same numbers as the one the forward made.
    Tensor logits = uniform_param({4, 6}, 64, -2, 2);
    Tensor loss = cross_entropy(logits * 1.0, targets) * 0.5;
    loss.backward(true);
    std::vector<real> first(logits.grad().data(), logits.grad().data() + 24);
    logits.zero_grad();
    loss.backward();
    for (int i = 0; i < 24; ++i) CHECK(logits.grad().data()[i] == Approx(first[i]).epsilon(1e-13).margin(1e-15));
    CHECK(first[2 * 6 + 1] == 0.0);  // the ignored row
}

TEST_CASE("cross-entropy equals -log_softmax picked at the target", "[nn]") {
    Tensor logits = uniform_param({4, 7}, 41, -3, 3);
    std::vector<int> targets = {1, 6, 0, 1};
    Tensor lp = log_softmax(logits);
    double expected = 0;
    for (int r = 0; r < 4; ++r) expected -= lp.data()[r * 7 + targets[r]] / 4;
    CHECK(cross_entropy(logits, targets).item() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("layernorm with gain and bias", "[grad][nn]") {
    Tensor x = uniform_param({2, 3, 8}, 42, -2, 2), g = uniform_param({8}, 43, 0.5, 1.5), b = uniform_param({8}, 44);
    expect_gradients([](auto& in) { return layernorm(in[0], in[1], in[2]); }, {x, g, b});
    // 70 rows: the backward's row blocks (32 rows each) and their partial sums of dgain and dbias
    expect_gradients([](auto& in) { return layernorm(in[0], in[1], in[2]); },
                     {uniform_param({2, 35, 6}, 46, -2, 2), uniform_param({6}, 47, 0.5, 1.5), uniform_param({6}, 48)});
    expect_gradients([](auto& in) { return layernorm(in[0], in[1], Tensor()); }, {x, g});
    // unit gain, zero bias: every row has mean 0 and variance var/(var+eps)
    Tensor y = layernorm(x, Tensor::full({8}, 1), Tensor::zeros({8}));
    for (int r = 0; r < 6; ++r) {
        double m = 0, v = 0, xm = 0, xv = 0;
        for (int j = 0; j < 8; ++j) m += y.data()[r * 8 + j] / 8, xm += x.data()[r * 8 + j] / 8;
        for (int j = 0; j < 8; ++j) {
            v += std::pow(y.data()[r * 8 + j] - m, 2) / 8;
            xv += std::pow(x.data()[r * 8 + j] - xm, 2) / 8;
        }
        CHECK(std::fabs(m) < 1e-12);
        CHECK(v == Approx(xv / (xv + 1e-5)).epsilon(1e-12));
    }
}

TEST_CASE("embedding gathers rows and scatter-adds gradients of repeated ids", "[grad][nn]") {
    Tensor table = uniform_param({11, 8}, 45);
    std::vector<int> ids = {3, 0, 3, 10, 3, 5, 0, 1, 2, 3};  // 3 occurs four times, 0 twice
    expect_gradients([&](auto& in) { return embedding(in[0], ids, {2, 5}); }, {table});
    Tensor e = embedding(table, ids, {2, 5});
    REQUIRE(e.shape() == Shape{2, 5, 8});
    CHECK(e.data()[3 * 8 + 4] == table.data()[10 * 8 + 4]);
    table.zero_grad();
    sum(e).backward();
    CHECK(table.grad().data()[3 * 8] == 4.0);
    CHECK(table.grad().data()[0 * 8] == 2.0);
    CHECK(table.grad().data()[4 * 8] == 0.0);  // id 4 never occurs
}

TEST_CASE("dropout with a fixed mask: inverted scaling, and identity in eval or at p = 0", "[grad][nn]") {
    Tensor x = uniform_param({4, 50}, 46);
    expect_gradients([](auto& in) {
        Rng rng(99);  // the same mask at every evaluation
        return dropout(in[0], 0.3, rng, true);
    }, {x});
    Rng rng(5);
    Tensor y = dropout(x, 0.25, rng, true);
    int64_t zeros = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
        if (y.data()[i] == 0) ++zeros;
        else CHECK(y.data()[i] == Approx(x.data()[i] / 0.75).epsilon(1e-12));
    }
    CHECK(zeros > 20);  // about 50 of 200 expected
    CHECK(zeros < 80);
    uint64_t state = rng.state;
    CHECK(dropout(x, 0.25, rng, false).impl() == x.impl());
    CHECK(dropout(x, 0.0, rng, true).impl() == x.impl());
    CHECK(rng.state == state);  // nothing drawn when dropout does nothing
}

TEST_CASE("causal mask: masked positions get exactly zero gradient", "[grad][nn]") {
    Tensor scores = uniform_param({2, 2, 4, 4}, 47, -2, 2);
    expect_gradients([](auto& in) { return softmax(causal_mask(in[0])); }, {scores});
    Tensor wide = uniform_param({3, 5}, 48, -2, 2);  // 3 queries that are the last 3 of 5 keys
    expect_gradients([](auto& in) { return softmax(causal_mask(in[0])); }, {wide});

    Tensor w = uniform_param({2, 2, 4, 4}, 49);
    scores.zero_grad();
    sum(mul(softmax(causal_mask(scores)), w)).backward();
    Tensor p = softmax(causal_mask(scores));
    for (int m = 0; m < 4; ++m)
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                int64_t k = (m * 4 + i) * 4 + j;
                if (j > i) {
                    CHECK(scores.grad().data()[k] == 0.0);
                    CHECK(p.data()[k] == 0.0);
                } else if (i > 0) {  // row 0 has one key: its softmax is 1 whatever the score, gradient 0
                    CHECK(scores.grad().data()[k] != 0.0);
                }
            }
}

TEST_CASE("a small attention-like graph built from the ops", "[grad][composite]") {
    // q, k, v (B=2, T=4, C=6): softmax(mask(q k^T / sqrt C)) v, then a layernorm and a loss
    Tensor q = uniform_param({2, 4, 6}, 50), k = uniform_param({2, 4, 6}, 51), v = uniform_param({2, 4, 6}, 52);
    Tensor g = uniform_param({6}, 53, 0.5, 1.5), b = uniform_param({6}, 54);
    expect_gradients([](auto& in) {
        Tensor att = softmax(causal_mask(matmul(in[0], transpose(in[1])) / std::sqrt(6.0)));
        Tensor y = layernorm(add(matmul(att, in[2]), in[0]), in[3], in[4]);
        return cross_entropy(y, {0, 1, 2, 3, 4, 5, 0, 1});
    }, {q, k, v, g, b});
}
