// optim/: parameter groups, AdamW and SGD against hand computations and a reference, clipping,
// schedules, and exact save/restore of the optimizer state. Float build, as training uses.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../../autograd/bf16.h"
#include "../../autograd/rng.h"
#include "../../optim/optim.h"

using namespace ag;
using Catch::Matchers::Contains;

namespace {

Tensor param(const Shape& shape, const std::vector<real>& values) {
    return Tensor::from(shape, values).requires_grad_();
}

void set_grad(const Tensor& p, const std::vector<real>& g) {
    REQUIRE((int64_t)g.size() == p.numel());
    std::copy(g.begin(), g.end(), p.grad_buffer());
}

std::vector<real> values(const Tensor& t) { return std::vector<real>(t.data(), t.data() + t.numel()); }
std::vector<real> grads(const Tensor& t) { return values(t.grad()); }

// A deterministic, varied gradient value for element i of tensor k at step t.
real fake_grad(int k, int64_t i, int t) {
    return (real)(std::sin(1.3 * (double)i + 0.7 * t + 2.1 * k) * (0.5 + 0.3 * k) + 0.05 * std::cos(0.1 * t));
}

std::string saved(const optim::Optimizer& opt) {
    std::ostringstream out(std::ios::binary);
    opt.save_state(out);
    return out.str();
}

void load(optim::Optimizer& opt, const std::string& bytes) {
    std::istringstream in(bytes, std::ios::binary);
    opt.load_state(in);
}

}  // namespace

// ---------------------------------------------------------------- groups

TEST_CASE("decays(): 2-D and up are decayed, 1-D never", "[optim][groups]") {
    CHECK(optim::decays(Tensor::zeros({4, 3})));
    CHECK(optim::decays(Tensor::zeros({2, 3, 4})));
    CHECK_FALSE(optim::decays(Tensor::zeros({7})));

    NamedTensors params = {{"wte.weight", Tensor::zeros({10, 4})},
                           {"h.0.ln_1.weight", Tensor::zeros({4})},
                           {"h.0.attn.c_attn.weight", Tensor::zeros({4, 12})},
                           {"h.0.attn.c_attn.bias", Tensor::zeros({12})}};
    auto groups = optim::param_groups(params);
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].name == "decay");
    CHECK(groups[0].weight_decay == 0.1);
    CHECK(groups[1].name == "no_decay");
    CHECK(groups[1].weight_decay == 0);
    REQUIRE(groups[0].params.size() == 2);
    CHECK(groups[0].params[0].first == "wte.weight");  // in the order given
    CHECK(groups[0].params[1].first == "h.0.attn.c_attn.weight");
    REQUIRE(groups[1].params.size() == 2);
    CHECK(groups[1].params[0].first == "h.0.ln_1.weight");
    CHECK(optim::num_params(groups[0]) == 40 + 48);
    CHECK(optim::num_params(groups[1]) == 4 + 12);

    std::string text = optim::describe(groups);
    CHECK_THAT(text, Contains("decay") && Contains("2 tensors") && Contains("88 parameters") &&
                         Contains("weight decay 0.1") && Contains("16 parameters") && Contains("weight decay 0"));

    NamedTensors with_undefined = {{"w", Tensor()}};
    CHECK_THROWS_AS(optim::param_groups(with_undefined), std::invalid_argument);
}

TEST_CASE("decay_all: every parameter in the decay group, the 1-D ones too, and decayed", "[optim][groups]") {
    Tensor w = param({2, 2}, {1, -2, 4, 8});
    Tensor ln = param({2}, {1, 2});
    auto groups = optim::param_groups({{"w", w}, {"ln.weight", ln}, {"w_again", w}}, 0.25, true);
    REQUIRE(groups.size() == 2);
    REQUIRE(groups[0].params.size() == 2);  // the tied weight still once
    CHECK(groups[0].params[1].first == "ln.weight");
    CHECK(groups[1].params.empty());

    // Zero gradient, lr*wd = 1/8: both shrink to 7/8; under the 2-D rule the gain would stay.
    optim::AdamW opt(groups);
    opt.zero_grad();
    w.grad_buffer();
    ln.grad_buffer();
    opt.step(0.5);
    CHECK(values(ln) == std::vector<real>{0.875f, 1.75f});
    CHECK(values(w) == std::vector<real>{0.875f, -1.75f, 3.5f, 7});
}

TEST_CASE("a tied weight is one parameter: grouped, decayed and updated once", "[optim][groups]") {
    Tensor wte = param({2, 2}, {1.5, -3, 0.75, 8});
    Tensor ln = param({2}, {1, 1});
    NamedTensors params = {{"wte.weight", wte}, {"ln_f.weight", ln}, {"lm_head.weight", wte}};
    auto groups = optim::param_groups(params);
    REQUIRE(groups[0].params.size() == 1);
    CHECK(groups[0].params[0].first == "wte.weight");  // under its first name
    CHECK(optim::num_params(groups[0]) == 4);

    // Zero gradient, lr*wd = 1/8: decayed once gives exactly 7/8 of p (twice would give 49/64).
    optim::AdamW opt(optim::param_groups(params, 0.25));
    opt.zero_grad();
    wte.grad_buffer();
    ln.grad_buffer();
    opt.step(0.5);
    CHECK(values(wte) == std::vector<real>{1.3125f, -2.625f, 0.65625f, 7});
    CHECK(values(ln) == std::vector<real>{1, 1});

    // With a gradient: the same bits as the tensor listed once (one m, one v, one update).
    Tensor a = param({2, 3}, {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f}), b = a.clone().requires_grad_();
    optim::AdamW tied(optim::param_groups({{"a", a}, {"a_again", a}}));
    optim::AdamW once(optim::param_groups({{"b", b}}));
    for (int t = 1; t <= 3; ++t) {
        for (int64_t i = 0; i < 6; ++i) a.grad_buffer()[i] = b.grad_buffer()[i] = fake_grad(0, i, t);
        tied.step(1e-2);
        once.step(1e-2);
    }
    CHECK(std::memcmp(a.data(), b.data(), 6 * sizeof(real)) == 0);

    // Groups that list one tensor twice are refused, not updated twice.
    std::vector<optim::ParamGroup> twice = {{"x", {{"a", a}}, 0.1, 1}, {"y", {{"a2", a}}, 0, 1}};
    CHECK_THROWS_WITH(optim::AdamW(twice), Contains("'a2' is listed twice"));
}

// ---------------------------------------------------------------- AdamW

TEST_CASE("one AdamW step equals a hand computation, decayed and non-decayed", "[optim][adamw]") {
    // lr 0.01, betas (0.9, 0.95), eps 1e-8, wd 0.1 on W (2-D), 0 on b (1-D).
    // At t=1, bias correction gives m_hat = g, v_hat = g^2, so the Adam direction is u = g / (|g| + eps):
    //   g = 0.2 -> u = 0.99999995,  g = -0.1 -> u = -0.9999999,  g = 1e-8 -> u = 0.5 (eps matters),  g = 0 -> u = 0
    // and p_new = p - lr * (u + wd * p).
    Tensor W = param({2, 2}, {0.5f, -1.0f, 2.0f, -0.4f});
    Tensor b = param({2}, {0.5f, -0.3f});
    set_grad(W, {0.2f, -0.1f, 1e-8f, 0.0f});
    set_grad(b, {0.2f, 1e-8f});
    optim::AdamW opt(optim::param_groups({{"W", W}, {"b", b}}));
    opt.step(0.01);
    CHECK(opt.step_count() == 1);

    const double expected_W[4] = {
        0.5 - 0.01 * (0.99999995 + 0.1 * 0.5),    // 0.4895000005
        -1.0 - 0.01 * (-0.9999999 + 0.1 * -1.0),  // -0.989000001
        2.0 - 0.01 * (0.5 + 0.1 * 2.0),           // 1.993
        -0.4 - 0.01 * (0.0 + 0.1 * -0.4),         // -0.3996: decay alone
    };
    const double expected_b[2] = {
        0.5 - 0.01 * 0.99999995,  // 0.4900000005
        -0.3 - 0.01 * 0.5,        // -0.305
    };
    for (int i = 0; i < 4; ++i) CHECK(W.data()[i] == Approx(expected_W[i]).epsilon(1e-6));
    for (int i = 0; i < 2; ++i) CHECK(b.data()[i] == Approx(expected_b[i]).epsilon(1e-6));
}

namespace {

// The textbook algorithm (Loshchilov & Hutter 2019, Algorithm 2 with Adam's bias correction), in double,
// one parameter at a time: the independent implementation the optimizer is checked against.
struct ReferenceAdamW {
    std::vector<double> p, m, v;
    double wd, lr_scale;

    void step(int t, double lr, const std::vector<real>& g) {
        const double b1 = 0.9, b2 = 0.95, eps = 1e-8;
        for (size_t i = 0; i < p.size(); ++i) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
            double m_hat = m[i] / (1 - std::pow(b1, t));
            double v_hat = v[i] / (1 - std::pow(b2, t));
            p[i] -= lr * lr_scale * (m_hat / (std::sqrt(v_hat) + eps) + wd * p[i]);
        }
    }
};

}  // namespace

namespace {

// Ten AdamW steps on `shapes` against ReferenceAdamW. With bf16 parameters (and the master copy) the
// parameters start as bf16 numbers and each step's result is the double reference rounded to bf16, to
// within the float arithmetic's differences: half a bf16 step of the value plus the fp32 margin.
void check_ten_steps(const std::vector<Shape>& shapes, optim::AdamWConfig config) {
    std::vector<Tensor> ps;
    std::vector<ReferenceAdamW> ref;
    for (size_t k = 0; k < shapes.size(); ++k) {
        ps.push_back(Tensor::zeros(shapes[k]));
        for (int64_t i = 0; i < ps[k].numel(); ++i) {
            const real p0 = (real)(0.8 * std::cos(0.9 * (double)i + (double)k));
            ps[k].data()[i] = config.bf16_params ? round_bf16(p0) : p0;
        }
        ps[k].requires_grad_();
        std::vector<double> p0(ps[k].data(), ps[k].data() + ps[k].numel());
        bool decayed = ps[k].dim() >= 2;
        ref.push_back({p0, std::vector<double>(p0.size()), std::vector<double>(p0.size()), decayed ? 0.1 : 0.0,
                       decayed ? 1.0 : 2.0});
    }
    NamedTensors named;
    for (size_t k = 0; k < ps.size(); ++k) named.push_back({"p" + std::to_string(k), ps[k]});
    auto groups = optim::param_groups(named);
    groups[1].lr_scale = 2;  // a per-group learning-rate multiplier, on the non-decayed group
    optim::AdamW opt(groups, config);
    optim::Schedule schedule{optim::ScheduleKind::cosine, 1e-2, 3, 10, 0.1};

    for (int t = 1; t <= 10; ++t) {
        double lr = optim::learning_rate(schedule, t - 1);
        for (size_t k = 0; k < ps.size(); ++k) {
            std::vector<real> g((size_t)ps[k].numel());
            for (size_t i = 0; i < g.size(); ++i) g[i] = fake_grad((int)k, (int64_t)i, t);
            set_grad(ps[k], g);
            ref[k].step(t, lr, g);
        }
        opt.step(lr);
    }
    int64_t values = 0, unmoved = 0;
    for (size_t k = 0; k < ps.size(); ++k)
        for (int64_t i = 0; i < ps[k].numel(); ++i, ++values) {
            const double r = ref[k].p[(size_t)i], p0 = 0.8 * std::cos(0.9 * (double)i + (double)k);
            // float m, v and p against double: we see differences under 2e-7 after ten steps
            const double margin = 1e-6 + (config.bf16_params ? std::abs(r) / 256 : 0);
            if (std::abs(ps[k].data()[i] - r) > margin)  // (one CHECK per element would be millions)
                FAIL("tensor " << k << " element " << i << ": " << ps[k].data()[i] << ", reference " << r);
            if (std::abs(r - p0) <= 1e-4) ++unmoved;
        }
    // and the parameters did move well beyond that tolerance (all of the small tensors' values; among
    // many, a few whose gradients happen to cancel move less)
    CHECK(unmoved <= values / 100);
}

}  // namespace

// Small tensors take one loop per tensor (the vector loop's masked tail, or the scalar loop, as the
// build has it); the large ones, of sizes no thread count divides, are cut into one part per thread.
// (`make test` runs these in the native build and in the portable ones, which compile only the scalar
// loop.)
TEST_CASE("ten AdamW steps match a straightforward double-precision implementation", "[optim][adamw]") {
    const std::vector<Shape> small = {{3, 4}, {4}, {5, 3}, {3}};
    const std::vector<Shape> large = {{331, 101}, {32771}, {5, 3}, {3}};
    optim::AdamWConfig bf16;
    bf16.bf16_params = true;
    for (bool split : {false, true}) {
        INFO((split ? "tensors split between threads" : "small tensors"));
        {
            INFO("fp32 parameters");
            check_ten_steps(split ? large : small, {});
        }
        {
            INFO("bf16 parameters with an fp32 master copy");
            check_ten_steps(split ? large : small, bf16);
        }
    }
}

TEST_CASE("zero gradient: 1-D parameters untouched, 2-D ones shrink by exactly lr*wd*p", "[optim][adamw]") {
    // Dyadic numbers (lr*wd = 1/8) make "exactly" exact in any rounding: p -> 7/8 p.
    Tensor W = param({2, 2}, {1.5f, -3.0f, 0.75f, 8.0f});
    Tensor b = param({3}, {1.5f, -2.0f, 0.1f});
    W.grad_buffer();  // zero gradients, defined
    b.grad_buffer();
    optim::AdamW opt(optim::param_groups({{"W", W}, {"b", b}}, 0.25));
    opt.step(0.5);
    CHECK(values(W) == std::vector<real>{1.3125f, -2.625f, 0.65625f, 7.0f});
    CHECK(values(b) == std::vector<real>{1.5f, -2.0f, 0.1f});

    // GPT-like numbers: lr 6e-4, wd 0.1, p -> p - 6e-5 p, to within float rounding of the result.
    Tensor W2 = param({2, 3}, {0.02f, -0.5f, 1.0f, 3.0f, -7.0f, 0.3f});
    Tensor b2 = param({3}, {1.0f, 0.0f, -0.25f});
    W2.grad_buffer();
    b2.grad_buffer();
    std::vector<real> before = values(W2);
    optim::AdamW opt2(optim::param_groups({{"W", W2}, {"b", b2}}));
    for (int t = 0; t < 3; ++t) {
        std::vector<real> p0 = values(W2);
        opt2.step(6e-4);
        for (int i = 0; i < 6; ++i) CHECK(W2.data()[i] == Approx(p0[i] - 6e-4 * 0.1 * p0[i]).epsilon(1e-7));
        CHECK(values(b2) == std::vector<real>{1.0f, 0.0f, -0.25f});
    }
    for (int i = 0; i < 6; ++i) CHECK(W2.data()[i] != before[i]);

    // The same holds for SGD, which shares the groups and the decoupled decay.
    Tensor W3 = param({1, 2}, {1.5f, -3.0f}), b3 = param({2}, {1.5f, -3.0f});
    W3.grad_buffer();
    b3.grad_buffer();
    optim::SGD sgd(optim::param_groups({{"W", W3}, {"b", b3}}, 0.25));
    sgd.step(0.5);
    CHECK(values(W3) == std::vector<real>{1.3125f, -2.625f});
    CHECK(values(b3) == std::vector<real>{1.5f, -3.0f});
}

TEST_CASE("a parameter backward never reached (no gradient) is skipped, decay included", "[optim][adamw]") {
    Tensor used = param({2, 2}, {1, 2, 3, 4});
    Tensor unused = param({2, 2}, {1, 2, 3, 4});  // grad() undefined
    set_grad(used, {0.1f, 0.1f, 0.1f, 0.1f});
    for (int kind = 0; kind < 2; ++kind) {
        auto groups = optim::param_groups({{"used", used}, {"unused", unused}});
        std::unique_ptr<optim::Optimizer> opt;
        if (kind == 0) opt = std::make_unique<optim::AdamW>(groups);
        else opt = std::make_unique<optim::SGD>(groups);
        opt->step(0.1);
        CHECK(values(unused) == std::vector<real>{1, 2, 3, 4});
        CHECK_FALSE(unused.grad().defined());
        CHECK(used.data()[0] != 1);
    }
}

TEST_CASE("per-group options can change between steps", "[optim][adamw]") {
    Tensor W = param({2, 2}, {1.5f, -3.0f, 0.75f, 8.0f}), b = param({2}, {1, 2});
    set_grad(W, {0, 0, 0, 0});
    set_grad(b, {0.5f, -0.5f});
    optim::AdamW opt(optim::param_groups({{"W", W}, {"b", b}}, 0.25));
    opt.set_weight_decay(0, 0);  // no decay on W: a zero gradient leaves it as it is
    opt.set_lr_scale(1, 0);      // b frozen
    opt.step(0.5);
    CHECK(values(W) == std::vector<real>{1.5f, -3.0f, 0.75f, 8.0f});
    CHECK(values(b) == std::vector<real>{1, 2});
    opt.set_weight_decay(0, 0.25);
    opt.set_lr_scale(1, 1);
    opt.step(0.5);
    CHECK(values(W) == std::vector<real>{1.3125f, -2.625f, 0.65625f, 7.0f});
    CHECK(b.data()[0] < 1);
    CHECK(opt.groups()[0].weight_decay == 0.25);
    CHECK_THROWS_AS(opt.set_lr_scale(2, 1), std::out_of_range);
}

// ---------------------------------------------------------------- SGD

TEST_CASE("SGD with momentum equals a hand computation", "[optim][sgd]") {
    // lr 0.1, momentum 0.9, wd 0.1 on W (2-D), 0 on b (1-D). buf = 0.9*buf + g; p -= 0.1*(buf + wd*p).
    Tensor b = param({2}, {1.0f, -0.5f});
    Tensor W = param({1, 2}, {2.0f, 1.0f});
    optim::SGD opt(optim::param_groups({{"b", b}, {"W", W}}), optim::SGDConfig{0.9});

    // step 1: b: buf = [0.5, -1],  b = [1 - 0.05, -0.5 + 0.1] = [0.95, -0.4]
    //         W: buf = [1, 0],     W = [2 - 0.1*(1 + 0.2), 1 - 0.1*(0 + 0.1)] = [1.88, 0.99]
    set_grad(b, {0.5f, -1.0f});
    set_grad(W, {1.0f, 0.0f});
    opt.step(0.1);
    CHECK(b.data()[0] == Approx(0.95).epsilon(1e-6));
    CHECK(b.data()[1] == Approx(-0.4).epsilon(1e-6));
    CHECK(W.data()[0] == Approx(1.88).epsilon(1e-6));
    CHECK(W.data()[1] == Approx(0.99).epsilon(1e-6));

    // step 2: b: buf = [0.45 + 0.5, -0.9 + 0.5] = [0.95, -0.4],  b = [0.95 - 0.095, -0.4 + 0.04] = [0.855, -0.36]
    //         W: buf = [0.9 + 1, 0 + 0.5] = [1.9, 0.5],
    //            W = [1.88 - 0.1*(1.9 + 0.188), 0.99 - 0.1*(0.5 + 0.099)] = [1.6712, 0.9301]
    set_grad(b, {0.5f, 0.5f});
    set_grad(W, {1.0f, 0.5f});
    opt.step(0.1);
    CHECK(b.data()[0] == Approx(0.855).epsilon(1e-6));
    CHECK(b.data()[1] == Approx(-0.36).epsilon(1e-6));
    CHECK(W.data()[0] == Approx(1.6712).epsilon(1e-6));
    CHECK(W.data()[1] == Approx(0.9301).epsilon(1e-6));
    CHECK(opt.step_count() == 2);

    opt.zero_grad();
    CHECK(grads(b) == std::vector<real>{0, 0});
    CHECK(grads(W) == std::vector<real>{0, 0});
}

// ---------------------------------------------------------------- clipping

TEST_CASE("clip_grad_norm: one global norm, one scale factor, pre-clip norm returned", "[optim][clip]") {
    // Gradients [1, 2, 2, 0] and [0, 4, 0]: sum of squares 9 + 16 = 25, norm 5.
    Tensor a = param({2, 2}, {0, 0, 0, 0}), b = param({3}, {0, 0, 0}), none = param({2}, {0, 0});
    set_grad(a, {1, 2, 2, 0});
    set_grad(b, {0, 4, 0});
    // a is tied (listed twice: counted once); `none` has no gradient (left out).
    NamedTensors params = {{"a", a}, {"b", b}, {"none", none}, {"a_tied", a}};

    SECTION("above max_norm: every gradient scaled by max_norm / norm") {
        double norm = optim::clip_grad_norm(params, 1.0);
        CHECK(norm == Approx(5.0).epsilon(1e-12));  // the pre-clip norm
        std::vector<real> ga = grads(a), gb = grads(b);
        const real orig_a[4] = {1, 2, 2, 0}, orig_b[3] = {0, 4, 0};
        for (int i = 0; i < 4; ++i)
            if (orig_a[i] != 0) CHECK(ga[i] / orig_a[i] == Approx(0.2).epsilon(1e-6));
        for (int i = 0; i < 3; ++i)
            if (orig_b[i] != 0) CHECK(gb[i] / orig_b[i] == Approx(0.2).epsilon(1e-6));
        CHECK(optim::clip_grad_norm(params, 0) == Approx(1.0).epsilon(1e-6));  // post-clip norm == max_norm
        CHECK_FALSE(none.grad().defined());
    }
    SECTION("below max_norm: nothing changes") {
        CHECK(optim::clip_grad_norm(params, 10.0) == Approx(5.0).epsilon(1e-12));
        CHECK(grads(a) == std::vector<real>{1, 2, 2, 0});
        CHECK(grads(b) == std::vector<real>{0, 4, 0});
    }
    SECTION("max_norm <= 0: measure only") {
        CHECK(optim::clip_grad_norm(params, 0) == Approx(5.0).epsilon(1e-12));
        CHECK(optim::clip_grad_norm(params, -1) == Approx(5.0).epsilon(1e-12));
        CHECK(grads(a) == std::vector<real>{1, 2, 2, 0});
    }
    SECTION("a NaN or Inf gradient is reported and nothing is changed") {
        b.grad_buffer()[2] = std::numeric_limits<real>::quiet_NaN();
        CHECK(std::isnan(optim::clip_grad_norm(params, 1.0)));
        CHECK(grads(a) == std::vector<real>{1, 2, 2, 0});
        CHECK(b.grad().data()[1] == 4);
        b.grad_buffer()[2] = std::numeric_limits<real>::infinity();
        double norm = optim::clip_grad_norm(params, 1.0);
        CHECK(std::isinf(norm));
        CHECK(grads(a) == std::vector<real>{1, 2, 2, 0});
        CHECK(b.grad().data()[1] == 4);
    }
}

TEST_CASE("clip_grad_norm on tensors large enough to be split across threads", "[optim][clip]") {
    Tensor big = Tensor::zeros({300, 250}).requires_grad_();  // 75000 values: several blocks
    Tensor small = param({3}, {0, 0, 0});
    std::fill(big.grad_buffer(), big.grad_buffer() + big.numel(), real(0.5));
    set_grad(small, {3, 4, 0});
    NamedTensors params = {{"big", big}, {"small", small}};
    const double expected = std::sqrt(75000 * 0.25 + 25);
    CHECK(optim::clip_grad_norm(params, 2.0) == Approx(expected).epsilon(1e-12));
    CHECK(optim::clip_grad_norm(params, 0) == Approx(2.0).epsilon(1e-6));
    const real factor = big.grad().data()[0] / real(0.5);
    CHECK(factor == Approx(2.0 / expected).epsilon(1e-6));
    for (int64_t i = 0; i < big.numel(); ++i)
        if (big.grad().data()[i] != big.grad().data()[0]) FAIL("element " << i << " scaled differently");
    CHECK(small.grad().data()[0] / 3 == Approx(factor).epsilon(1e-6));
}

TEST_CASE("grad_norm of varied values at every tail length: the 64 running sums against a double sum",
          "[optim][clip]") {
    Rng rng(7);
    for (int64_t n : {1, 15, 63, 64, 65, 127, 1023, 1024, 1089, 40000, 70001}) {
        Tensor p = Tensor::zeros({n}).requires_grad_();
        Tensor noise = Tensor::randn({n}, rng);
        std::copy(noise.data(), noise.data() + n, p.grad_buffer());
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += (double)noise.data()[i] * (double)noise.data()[i];
        INFO("n = " << n);
        CHECK(optim::grad_norm({{"p", p}}) == Approx(std::sqrt(sum)).epsilon(1e-6));
    }
}

// ---------------------------------------------------------------- schedules

TEST_CASE("learning-rate schedules at their boundaries", "[optim][schedule]") {
    using optim::learning_rate;
    const double peak = 1e-3, lo = 1e-4;  // floor 10% of peak
    optim::Schedule cosine{optim::ScheduleKind::cosine, peak, 10, 100, 0.1};
    optim::Schedule linear{optim::ScheduleKind::linear, peak, 10, 100, 0.1};

    for (const optim::Schedule& s : {cosine, linear}) {
        INFO(optim::schedule_name(s.kind));
        CHECK(learning_rate(s, 0) == Approx(peak / 10).epsilon(1e-12));  // step 0: peak * 1/warmup
        CHECK(learning_rate(s, 4) == Approx(peak / 2).epsilon(1e-12));
        CHECK(learning_rate(s, 9) == Approx(peak).epsilon(1e-12));       // end of warmup: the peak
        CHECK(learning_rate(s, 10) < peak);                              // decay starts
        CHECK(learning_rate(s, 54) == Approx((peak + lo) / 2).epsilon(1e-12));  // halfway through the decay
        CHECK(learning_rate(s, 99) == Approx(lo).epsilon(1e-12));        // the last step: the floor
        CHECK(learning_rate(s, 100) == Approx(lo).epsilon(1e-12));       // past it: stays there
        CHECK(learning_rate(s, 100000) == Approx(lo).epsilon(1e-12));

        // monotone: rising through warmup, never rising after, always within [floor, peak]
        for (int64_t step = 1; step < 10; ++step) CHECK(learning_rate(s, step) > learning_rate(s, step - 1));
        for (int64_t step = 10; step < 150; ++step) {
            CHECK(learning_rate(s, step) <= learning_rate(s, step - 1));
            CHECK(learning_rate(s, step) >= lo * (1 - 1e-12));
        }
    }
    // cosine vs linear: the cosine stays higher early in the decay, lower late
    CHECK(learning_rate(cosine, 20) > learning_rate(linear, 20));
    CHECK(learning_rate(cosine, 90) < learning_rate(linear, 90));
    // a fifth into the decay (step 27: t = 28, r = (28 - 10) / 90 = 0.2), by the formulas
    const double pi = std::acos(-1.0);
    CHECK(learning_rate(cosine, 27) == Approx(lo + (peak - lo) * (1 + std::cos(pi * 0.2)) / 2).epsilon(1e-12));
    CHECK(learning_rate(linear, 27) == Approx(lo + (peak - lo) * 0.8).epsilon(1e-12));

    // no warmup: step 0 is already one step into the decay
    optim::Schedule cold{optim::ScheduleKind::cosine, peak, 0, 100, 0.1};
    CHECK(learning_rate(cold, 0) < peak);
    CHECK(learning_rate(cold, 0) > 0.999 * peak);
    CHECK(learning_rate(cold, 99) == Approx(lo).epsilon(1e-12));

    // constant: the same warmup, then the peak forever
    optim::Schedule constant{optim::ScheduleKind::constant, peak, 5, 100, 0.1};
    CHECK(learning_rate(constant, 0) == Approx(peak / 5).epsilon(1e-12));
    CHECK(learning_rate(constant, 4) == Approx(peak).epsilon(1e-12));
    CHECK(learning_rate(constant, 99) == peak);
    CHECK(learning_rate(constant, 5000) == peak);
    constant.warmup = 0;
    CHECK(learning_rate(constant, 0) == peak);

    // names, and nonsense refused
    CHECK(optim::schedule_kind("cosine") == optim::ScheduleKind::cosine);
    CHECK(optim::schedule_kind("linear") == optim::ScheduleKind::linear);
    CHECK(optim::schedule_kind("constant") == optim::ScheduleKind::constant);
    CHECK_THROWS_WITH(optim::schedule_kind("cosin"), Contains("unknown learning-rate schedule 'cosin'"));
    CHECK_THROWS_AS(learning_rate(cosine, -1), std::invalid_argument);
    optim::Schedule empty = cosine;
    empty.total = 0;
    CHECK_THROWS_AS(learning_rate(empty, 0), std::invalid_argument);
}

// ---------------------------------------------------------------- state

namespace {

// A small "model": one tensor big enough for the parallel update path, a matrix, a vector.
NamedTensors make_model() {
    NamedTensors model = {{"wte.weight", Tensor::zeros({300, 128})},
                          {"h.0.attn.c_attn.weight", Tensor::zeros({8, 24})},
                          {"h.0.ln_1.bias", Tensor::zeros({8})}};
    for (size_t k = 0; k < model.size(); ++k) {
        Tensor& p = model[k].second;
        for (int64_t i = 0; i < p.numel(); ++i) p.data()[i] = (real)(0.02 * std::cos(0.37 * (double)i + (double)k));
        p.requires_grad_();
    }
    return model;
}

NamedTensors copy_of(const NamedTensors& model) {
    NamedTensors out;
    for (const auto& [name, p] : model) out.push_back({name, p.clone().requires_grad_()});
    return out;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& kind, const NamedTensors& model) {
    if (kind == "adamw") return std::make_unique<optim::AdamW>(optim::param_groups(model));
    return std::make_unique<optim::SGD>(optim::param_groups(model));
}

// One training step as the trainer does it: fresh gradients, clip, step on the schedule.
void train_step(optim::Optimizer& opt, const NamedTensors& model, int t) {
    opt.zero_grad();
    for (size_t k = 0; k < model.size(); ++k) {
        real* g = model[k].second.grad_buffer();
        for (int64_t i = 0; i < model[k].second.numel(); ++i) g[i] = fake_grad((int)k, i, t) * 0.05f;
    }
    optim::clip_grad_norm(model, 1.0);
    opt.step(optim::learning_rate({optim::ScheduleKind::cosine, 1e-2, 2, 6, 0.1}, t - 1));
}

bool same_bits(const NamedTensors& a, const NamedTensors& b) {
    for (size_t k = 0; k < a.size(); ++k)
        if (std::memcmp(a[k].second.data(), b[k].second.data(), (size_t)a[k].second.numel() * sizeof(real)) != 0)
            return false;
    return true;
}

}  // namespace

TEST_CASE("save, restore, step: bit-identical to never stopping", "[optim][state]") {
    for (const char* kind : {"adamw", "sgd"}) {
        INFO(kind);
        // Run A: six steps without stopping; its state after three is saved on the way.
        NamedTensors model_a = make_model();
        auto opt_a = make_optimizer(kind, model_a);
        for (int t = 1; t <= 3; ++t) train_step(*opt_a, model_a, t);
        std::string state = saved(*opt_a);
        NamedTensors model_b = copy_of(model_a);  // the checkpoint's weights
        NamedTensors model_c = copy_of(model_a);
        for (int t = 4; t <= 6; ++t) train_step(*opt_a, model_a, t);

        // Run B: a new process: fresh optimizer, weights and state restored, the same last three steps.
        auto opt_b = make_optimizer(kind, model_b);
        load(*opt_b, state);
        CHECK(opt_b->step_count() == 3);
        for (int t = 4; t <= 6; ++t) train_step(*opt_b, model_b, t);
        CHECK(same_bits(model_a, model_b));
        CHECK(saved(*opt_a) == saved(*opt_b));

        // Run C: the same without restoring the state differs, so the test above has teeth.
        auto opt_c = make_optimizer(kind, model_c);
        for (int t = 4; t <= 6; ++t) train_step(*opt_c, model_c, t);
        CHECK_FALSE(same_bits(model_a, model_c));
    }
}

TEST_CASE("load_state refuses a state that does not fit, and says what differs", "[optim][state]") {
    Tensor w = param({2, 3}, {1, 2, 3, 4, 5, 6}), b = param({3}, {1, 2, 3});
    optim::AdamW source(optim::param_groups({{"w", w}, {"b", b}}));
    set_grad(w, {1, 1, 1, 1, 1, 1});
    set_grad(b, {1, 1, 1});
    source.step(0.1);
    const std::string state = saved(source);

    Tensor w_small = param({2, 2}, {1, 2, 3, 4}), v = param({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor b2 = param({3}, {1, 2, 3});

    optim::AdamW wrong_size(optim::param_groups({{"w", w_small}, {"b", b2}}));
    CHECK_THROWS_WITH(load(wrong_size, state),
                      Contains("optimizer state: parameter 'w' has 6 values in the checkpoint but 4 in the model"));

    optim::AdamW wrong_name(optim::param_groups({{"v", v}, {"b", b2}}));
    CHECK_THROWS_WITH(load(wrong_name, state),
                      Contains("optimizer state: parameter 'w' in the checkpoint where the model has 'v'"));

    optim::AdamW wrong_count(optim::param_groups({{"w", v}}));
    CHECK_THROWS_WITH(load(wrong_count, state),
                      Contains("optimizer state: 2 parameters in the checkpoint but 1 in the model"));

    optim::SGD wrong_kind(optim::param_groups({{"w", v}, {"b", b2}}));
    CHECK_THROWS_WITH(load(wrong_kind, state),
                      Contains("optimizer state: written by 'adamw' but this optimizer is 'sgd'"));

    optim::AdamW target(optim::param_groups({{"w", v}, {"b", b2}}));
    for (size_t cut : {size_t(0), size_t(5), size_t(20), state.size() / 2, state.size() - 1})
        CHECK_THROWS_WITH(load(target, state.substr(0, cut)), Contains("optimizer state: truncated"));

    std::string bad_magic = state;
    bad_magic[0] = 'X';
    CHECK_THROWS_WITH(load(target, bad_magic), Contains("optimizer state: bad magic"));

    std::string bad_version = state;
    bad_version[8] = 7;  // the u32 after the 8-byte magic
    CHECK_THROWS_WITH(load(target, bad_version), Contains("optimizer state: version 7"));

    // a step count the next step() could not add one to (signed overflow) is as corrupt as a negative one
    const size_t step_at = 8 + 4 + 4 + 4 + 5;  // magic, version, sizeof(real), "adamw" with its length
    for (int64_t step : {INT64_MAX, int64_t(-1)}) {
        std::string bad_step = state;
        std::memcpy(&bad_step[step_at], &step, sizeof step);
        CHECK_THROWS_WITH(load(target, bad_step), Contains("optimizer state: corrupt (step " + std::to_string(step) + ")"));
    }
    std::string big_step = state;
    const int64_t big = INT64_MAX - 1;
    std::memcpy(&big_step[step_at], &big, sizeof big);
    optim::AdamW late(optim::param_groups({{"w", v}, {"b", b2}}));
    load(late, big_step);
    CHECK(late.step_count() == INT64_MAX - 1);

    // A failed load leaves the optimizer as it was; a good one then succeeds.
    CHECK(target.step_count() == 0);
    const std::string before = saved(target);
    CHECK_THROWS(load(target, state.substr(0, state.size() - 1)));
    CHECK(saved(target) == before);
    load(target, state);
    CHECK(target.step_count() == 1);
    CHECK(saved(target) == state);
}

TEST_CASE("clipping inside the step: grad_norm + step(lr, clip_factor) equals clip_grad_norm + step, bit for bit",
          "[optim][clip]") {
    auto make = [](uint64_t seed) {  // three tensors, one above the parallel threshold, with gradients
        Rng rng(seed);
        NamedTensors params;
        for (int64_t n : {(int64_t)7, (int64_t)1000, ag::kThreadsMin + 37}) {
            Tensor p = Tensor::randn({n}, rng).requires_grad_();
            std::vector<real> g(n);
            for (real& x : g) x = (real)(3 * rng.normal());
            set_grad(p, g);
            params.push_back({"p" + std::to_string(n), p});
        }
        return params;
    };
    for (int kind = 0; kind < 2; ++kind) {
        NamedTensors a = make(9), b = make(9);
        auto opt = [&](const NamedTensors& p) -> std::unique_ptr<optim::Optimizer> {
            if (kind == 0) return std::make_unique<optim::AdamW>(optim::param_groups(p));
            return std::make_unique<optim::SGD>(optim::param_groups(p));
        };
        auto oa = opt(a), ob = opt(b);
        for (int step = 0; step < 3; ++step) {
            double na = optim::clip_grad_norm(a, 1.0);
            oa->step(1e-2);
            double nb = optim::grad_norm(b);
            CHECK(optim::clip_factor(nb, 1.0) < 1);  // the gradients are far above norm 1: clipping is on
            ob->step(1e-2, optim::clip_factor(nb, 1.0));
            CHECK(na == nb);
            for (size_t i = 0; i < a.size(); ++i) {
                INFO("kind " << kind << ", step " << step << ", " << a[i].first);
                CHECK(values(a[i].second) == values(b[i].second));
            }
            for (size_t i = 0; i < a.size(); ++i) set_grad(a[i].second, grads(b[i].second));  // a's were scaled in place
        }
    }
    CHECK(optim::clip_factor(0.5, 1.0) == 1);
    CHECK(optim::clip_factor(5.0, 0) == 1);
    CHECK(optim::clip_factor(NAN, 1.0) == 1);
    CHECK(optim::clip_factor(4.0, 1.0) == real(0.25));
}
