// The graph engine itself: accumulation, backward twice, no-grad, deep graphs, freeing memory, errors.
#include <catch2/catch.hpp>
#include <memory>

#include "../../autograd/memory.h"
#include "../../autograd/ops.h"

using namespace ag;
using Catch::Matchers::Contains;

static Tensor leaf(const Shape& shape, std::vector<real> values) {
    return Tensor::from(shape, values).requires_grad_();
}

TEST_CASE("a tensor used twice gets both contributions", "[engine]") {
    Tensor a = leaf({3}, {1, 2, 3});
    sum(add(a, a)).backward();  // d(2a)/da = 2
    for (int i = 0; i < 3; ++i) CHECK(a.grad().data()[i] == 2.0);

    Tensor b = leaf({3}, {1, 2, 3});
    sum(mul(b, b)).backward();  // d(b^2)/db = 2b
    for (int i = 0; i < 3; ++i) CHECK(b.grad().data()[i] == 2.0 * b.data()[i]);

    // a diamond: c feeds two branches that meet again
    Tensor x = leaf({2}, {0.5, -1.5});
    Tensor c = exp(x);
    sum(add(mul(c, 3.0), tanh(c))).backward();
    for (int i = 0; i < 2; ++i) {
        double e = std::exp(x.data()[i]), t = std::tanh(e);
        CHECK(x.grad().data()[i] == Approx(e * (3 + (1 - t * t))).epsilon(1e-14));
    }
}

TEST_CASE("backward twice without zero_grad doubles leaf gradients", "[engine]") {
    Tensor w = leaf({2, 2}, {1, 2, 3, 4});
    Tensor loss = sum(mul(w, w));
    loss.backward(/*retain_graph=*/true);
    std::vector<real> once(w.grad().data(), w.grad().data() + 4);
    loss.backward();
    for (int i = 0; i < 4; ++i) CHECK(w.grad().data()[i] == 2 * once[i]);
    w.zero_grad();
    for (int i = 0; i < 4; ++i) CHECK(w.grad().data()[i] == 0.0);
}

// Lazy zeroing (what the optimizer's zero_grad does): the buffer is kept and reads as zeros; an op that
// writes its whole gradient (linear) stores into it, any other op (mul, embedding) zeroes it first.
// Every way of reaching the gradient must give the same numbers as zeroing it eagerly.
TEST_CASE("zero_grad_lazily: gradients equal those after an eager zero_grad, and still accumulate",
          "[engine]") {
    Rng rng(3);
    Tensor x = Tensor::randn({5, 4}, rng), W = Tensor::randn({3, 4}, rng).requires_grad_();
    Tensor b = Tensor::randn({3}, rng).requires_grad_(), u = Tensor::randn({3}, rng).requires_grad_();
    Tensor table = Tensor::randn({6, 4}, rng).requires_grad_();
    std::vector<int> ids = {1, 4, 4, 0, 2};
    // W is used twice (a linear layer and an elementwise product), table by an embedding and as the
    // weight of a second linear layer (a tied output layer), u not at all in the second graph.
    auto loss_of = [&](bool use_u) {
        Tensor h = linear(add(embedding(table, ids, {5}), x), W, b);  // (5, 3)
        Tensor y = sum(mul(h, h)) + sum(mul(W, W)) + sum(linear(h, matmul(table, transpose(W))));
        return use_u ? y + sum(mul(u, u)) : y;
    };
    const std::vector<Tensor> params = {W, b, u, table};
    auto grads = [&] {
        std::vector<std::vector<real>> g;
        for (const Tensor& p : params) g.emplace_back(p.grad().data(), p.grad().data() + p.numel());
        return g;
    };
    loss_of(true).backward();  // every buffer now exists
    for (const Tensor& p : params) p.zero_grad();
    loss_of(false).backward();
    auto eager = grads();
    for (const Tensor& p : params) p.zero_grad_lazily();
    loss_of(false).backward();
    CHECK(grads() == eager);  // u, not reached, reads as zeros
    for (real v : eager[2]) CHECK(v == 0.0);
    loss_of(false).backward();  // no zeroing in between: the second adds to the first
    auto twice = grads();
    for (size_t t = 0; t < params.size(); ++t)
        for (size_t i = 0; i < eager[t].size(); ++i) CHECK(twice[t][i] == Approx(2 * eager[t][i]).epsilon(1e-14));
}

TEST_CASE("a freed graph cannot be walked again, with a clear message", "[engine][errors]") {
    Tensor w = leaf({2}, {1, 2});
    Tensor h = exp(w);
    Tensor loss = sum(h);
    loss.backward();
    REQUIRE_THROWS_WITH(loss.backward(), Contains("already freed") && Contains("retain_graph"));
    // an intermediate from the freed graph, used in a new one
    REQUIRE_THROWS_WITH(sum(mul(h, 2.0)).backward(), Contains("already freed"));
}

TEST_CASE("only tensors that require grad get gradients", "[engine]") {
    Tensor w = leaf({2}, {1, 2});
    Tensor x = Tensor::from({2}, {3, 4});  // data
    Tensor y = mul(w, x);
    CHECK(y.requires_grad());
    CHECK_FALSE(mul(x, x).requires_grad());
    sum(y).backward();
    CHECK(w.grad().defined());
    CHECK_FALSE(x.grad().defined());
    CHECK(w.grad().data()[1] == 4.0);
}

TEST_CASE("no-grad guard records nothing and restores on exit", "[engine]") {
    Tensor w = leaf({2}, {1, 2});
    {
        NoGradGuard guard;
        CHECK_FALSE(grad_enabled());
        Tensor y = sum(mul(w, w));
        CHECK_FALSE(y.requires_grad());
        CHECK(y.op_name() == nullptr);
        CHECK(y.item() == 5.0);
        REQUIRE_THROWS_WITH(y.backward(), Contains("does not require grad"));
        {
            NoGradGuard nested;
        }
        CHECK_FALSE(grad_enabled());  // the nested guard restored "off", not "on"
    }
    CHECK(grad_enabled());
    CHECK(sum(mul(w, w)).requires_grad());
}

TEST_CASE("a 10,000-op chain runs backward without recursion", "[engine]") {
    Tensor x = leaf({1}, {0.5});
    Tensor y = x;
    for (int i = 0; i < 10000; ++i) y = add(mul(y, 1.0001), 0.001);  // 20,000 ops
    y = sum(y);
    y.backward();
    CHECK(x.grad().data()[0] == Approx(std::pow(1.0001, 10000)).epsilon(1e-10));
}

TEST_CASE("a very long graph is freed without recursion when its loss goes away", "[engine]") {
    Tensor x = leaf({1}, {0.5});
    std::weak_ptr<TensorImpl> first;
    {
        Tensor y = tanh(x);
        first = y.impl_ptr();
        for (int i = 0; i < 300000; ++i) y = add(y, 1.0);
    }  // the only handle to the chain's end dies here: 300,000 nodes freed
    CHECK(first.expired());
}

TEST_CASE("backward frees the graph and the intermediate gradients as it goes", "[engine]") {
    Tensor w = leaf({3}, {1, 2, 3});
    std::weak_ptr<TensorImpl> hidden;
    Tensor loss;
    {
        Tensor h = exp(w);  // saved by mul's backward
        hidden = h.impl_ptr();
        loss = sum(mul(h, h));
    }
    CHECK_FALSE(hidden.expired());  // kept alive by the graph behind loss
    loss.backward();
    CHECK(hidden.expired());        // released by backward
    CHECK(loss.op_name() == nullptr);
    CHECK_FALSE(loss.grad().defined());  // non-leaf gradients are not kept
    CHECK(w.grad().defined());
}

TEST_CASE("adopt_grad_of, adopt_grad: a gradient buffer is handed on only when nothing else has it", "[engine]") {
    Tensor x = leaf({3}, {1, 2, 3});
    Tensor y = x * 2.0;  // an op's output
    y.grad_buffer()[0] = 5;
    Tensor other = leaf({3}, {0, 0, 0});
    other.grad_buffer();
    CHECK(other.adopt_grad_of(y) == nullptr);  // other has a buffer already: it must add to it
    Tensor held = y.grad();
    CHECK(x.adopt_grad_of(y) == nullptr);  // somebody else holds y's gradient
    held = Tensor();
    CHECK(leaf({2}, {0, 0}).adopt_grad_of(y) == nullptr);  // another size
    CHECK(x.adopt_grad_of(x) == nullptr);
    Tensor w = leaf({3}, {0, 0, 0});
    CHECK(w.adopt_grad_of(other) == nullptr);  // a leaf's gradient is a result: never taken
    real* p = x.adopt_grad_of(y);
    REQUIRE(p != nullptr);
    CHECK(p[0] == 5);  // still dL/dy, for the op to overwrite
    CHECK_FALSE(y.grad().defined());
    CHECK(x.grad().data() == p);
    // adopt_grad: a buffer an op made itself, taken only by a tensor with none, and only of its size
    Tensor z = leaf({3}, {0, 0, 0});
    CHECK_FALSE(z.adopt_grad(std::make_shared<Storage>(2)));
    auto made = std::make_shared<Storage>(3);
    made->data[1] = 7;
    CHECK(z.adopt_grad(made));
    CHECK(z.grad().data()[1] == 7);
    CHECK_FALSE(z.adopt_grad(std::make_shared<Storage>(3)));  // z has one now
}

TEST_CASE("backward(true) keeps the graph, which then goes with its loss", "[engine]") {
    Tensor w = leaf({3}, {1, 2, 3});
    std::weak_ptr<TensorImpl> hidden;
    {
        Tensor h = exp(w);
        hidden = h.impl_ptr();
        Tensor loss = sum(h);
        loss.backward(true);
        CHECK_FALSE(hidden.expired());
    }
    CHECK(hidden.expired());
}

TEST_CASE("reshape is a view that shares values but not gradients", "[engine]") {
    Tensor a = leaf({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor v = reshape(a, {3, 2});
    CHECK(v.data() == a.data());
    sum(mul(v, Tensor::from({2}, {10, 1}))).backward();
    CHECK(a.grad().data()[0] == 10.0);
    CHECK(a.grad().data()[1] == 1.0);
    CHECK(a.grad().data()[2] == 10.0);
}

TEST_CASE("errors name the op and both shapes", "[engine][errors]") {
    Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
    REQUIRE_THROWS_WITH(matmul(a, b), Contains("matmul") && Contains("[2, 3]") && Contains("[4, 5]") &&
                                          Contains("inner dimensions 3 and 4 differ"));
    REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})), Contains("batch dimensions"));
    REQUIRE_THROWS_WITH(add(a, Tensor::zeros({2})), Contains("add") && Contains("[2, 3]") && Contains("[2]"));
    REQUIRE_THROWS_WITH(mul(a, Tensor::zeros({3, 2})), Contains("mul: shapes [2, 3] and [3, 2]"));
    REQUIRE_THROWS_WITH(linear(a, Tensor::zeros({4, 2})), Contains("linear") && Contains("[4, 2]"));
    REQUIRE_THROWS_WITH(reshape(a, {4, -1}), Contains("reshape") && Contains("[2, 3]") && Contains("[4, -1]"));
    REQUIRE_THROWS_WITH(layernorm(a, Tensor::zeros({2}), Tensor()), Contains("layernorm: shapes [2, 3] and [2]"));
    REQUIRE_THROWS_WITH(concat({a, b}, 0), Contains("concat: shapes [2, 3] and [4, 5]"));
    REQUIRE_THROWS_WITH(slice(a, 1, 2, 4), Contains("slice") && Contains("[2, 4)") && Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(permute(a, {0, 0}), Contains("permute") && Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(sum(a, 2), Contains("sum: axis 2 is out of range for shape [2, 3]"));
    REQUIRE_THROWS_WITH(causal_mask(Tensor::zeros({4, 3})), Contains("causal_mask") && Contains("[4, 3]"));
    Rng rng(1);
    REQUIRE_THROWS_WITH(dropout(a, 1.0, rng, true), Contains("dropout: probability 1 must be in [0, 1)"));
}

TEST_CASE("an out-of-range token id names the id and the table size", "[engine][errors]") {
    Tensor table = Tensor::zeros({256, 4});
    REQUIRE_THROWS_WITH(embedding(table, {1, 300, 2}, {3}),
                        Contains("token id 300") && Contains("position 1") && Contains("256 rows"));
    REQUIRE_THROWS_WITH(embedding(table, {-1}, {1}), Contains("token id -1"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({2, 11}), {3, 11}),
                        Contains("target 11") && Contains("11 classes"));
    REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({2, 11}), {3}), Contains("1 targets given for logits [2, 11]"));
}

TEST_CASE("backward starts only from a one-element tensor", "[engine][errors]") {
    Tensor a = leaf({2}, {1, 2});
    REQUIRE_THROWS_WITH(exp(a).backward(), Contains("shape [2]") && Contains("one-element"));
    REQUIRE_THROWS_WITH(exp(a).requires_grad_(), Contains("only a leaf"));
}

TEST_CASE("the caching allocator: a repeated step takes nothing new from the system", "[engine][memory]") {
    Rng rng(9);
    Tensor W = Tensor::randn({16, 8}, rng).requires_grad_(), x = Tensor::randn({4, 8}, rng);
    auto step = [&] {
        Tensor loss = mean(gelu(linear(x, W)));
        loss.backward();
    };
    step();  // the first step fills the cache (and allocates W's gradient)
    MemoryStats before = memory_stats();
    for (int i = 0; i < 3; ++i) step();
    MemoryStats after = memory_stats();
    CHECK(after.from_system == before.from_system);  // every block came from the cache
    CHECK(after.allocations > before.allocations);
    CHECK(after.in_use == before.in_use);            // and all of it went back
    release_cached_memory();
    CHECK(memory_stats().cached == 0);
}
