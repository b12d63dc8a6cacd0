// tensor.cpp: storage, tensor factories, recording, and backward().
#include "tensor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

#include <omp.h>

#include "fast/kernels.h"
#include "memory.h"
#include "parallel.h"
#include "profiler.h"
#include "rng.h"

namespace ag {

int64_t numel_of(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string shape_str(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// ---------------------------------------------------------------------------------------------------
// Storage: 64-byte aligned so that SIMD kernels may use aligned loads on whole buffers; the memory
// comes from the caching allocator (memory.h), which reuses freed blocks of the same size.

Storage::Storage(size_t n) : data(static_cast<real*>(allocate(n * sizeof(real)))), size(n) {}

Storage::~Storage() { deallocate(data, size * sizeof(real)); }

// ---------------------------------------------------------------------------------------------------
// Freeing a graph. A chain of 10,000 ops is a chain of 10,000 shared pointers; letting them unwind
// naturally would recurse 10,000 levels deep. Instead, when a tensor dies, we detach the nodes that
// only it kept alive and free them from a work list, one at a time.

TensorImpl::~TensorImpl() {
    std::vector<std::shared_ptr<Node>> pending;
    if (node) pending.push_back(std::move(node));
    while (!pending.empty()) {
        std::shared_ptr<Node> n = std::move(pending.back());
        pending.pop_back();
        if (n.use_count() != 1) continue;  // still used by another tensor
        n->backward = nullptr;             // drop the closure's captures; `inputs` keeps them alive
        for (auto& in : n->inputs)
            if (in.use_count() == 1 && in->node) pending.push_back(std::move(in->node));
        // n goes out of scope here: its inputs die without nodes, so nothing recurses.
    }
}

// ---------------------------------------------------------------------------------------------------
// Factories

static std::shared_ptr<TensorImpl> new_impl(const Shape& shape) {
    for (int64_t d : shape)
        if (d < 0) throw std::invalid_argument("tensor: negative dimension in shape " + shape_str(shape));
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = shape;
    impl->storage = std::make_shared<Storage>((size_t)numel_of(shape));
    return impl;
}

Tensor Tensor::empty(const Shape& shape) { return Tensor(new_impl(shape)); }

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0); }

Tensor Tensor::full(const Shape& shape, real value) {
    Tensor t = empty(shape);
    std::fill(t.data(), t.data() + t.numel(), value);
    return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<real>& values) {
    if ((int64_t)values.size() != numel_of(shape))
        throw std::invalid_argument("Tensor::from: " + std::to_string(values.size()) +
                                    " values given for shape " + ag::shape_str(shape) + " (" +
                                    std::to_string(numel_of(shape)) + " expected)");
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, real stddev) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = (real)(stddev * rng.normal());
    return t;
}

Tensor Tensor::uniform(const Shape& shape, Rng& rng, real lo, real hi) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = (real)(lo + (hi - lo) * rng.uniform());
    return t;
}

int64_t Tensor::size(int d) const {
    int n = dim();
    if (d < -n || d >= n)
        throw std::out_of_range("size: dimension " + std::to_string(d) + " is out of range for shape " +
                                shape_str());
    return impl_->shape[d < 0 ? d + n : d];
}

real Tensor::item() const {
    if (numel() != 1)
        throw std::invalid_argument("item: tensor of shape " + shape_str() + " has " +
                                    std::to_string(numel()) + " elements, not one");
    return data()[0];
}

Tensor& Tensor::requires_grad_(bool on) {
    if (impl_->node)
        throw std::logic_error("requires_grad_: only a leaf can be marked; this tensor is the output of " +
                               std::string(impl_->node->name));
    impl_->requires_grad = on;
    return *this;
}

Tensor Tensor::grad() const {
    if (!impl_->grad) return Tensor();
    if (impl_->grad_stale) grad_buffer();  // zeroed lazily: make the zeros real before anyone reads them
    auto g = std::make_shared<TensorImpl>();
    g->shape = impl_->shape;
    g->storage = impl_->grad;
    return Tensor(g);
}

real* Tensor::grad_buffer() const {
    if (!impl_->grad) impl_->grad = std::make_shared<Storage>((size_t)numel());
    else if (!impl_->grad_stale) return impl_->grad->data;
    fill_zeros(impl_->grad->data, numel());  // new, or stale: zeros now
    impl_->grad_stale = false;
    return impl_->grad->data;
}

void Tensor::zero_grad() const {
    if (impl_->grad) fill_zeros(impl_->grad->data, numel());
    impl_->grad_stale = false;
}

void Tensor::zero_grad_lazily() const {
    if (impl_->grad) impl_->grad_stale = true;
}

real* Tensor::grad_to_write(bool& accumulate) const {
    accumulate = impl_->grad && !impl_->grad_stale;
    if (!impl_->grad) impl_->grad = std::make_shared<Storage>((size_t)numel());
    impl_->grad_stale = false;  // the caller writes every element
    return impl_->grad->data;
}

real* Tensor::adopt_grad_of(const Tensor& out) const {
    std::shared_ptr<Storage>& from = out.impl_->grad;
    if (impl_->grad || !out.impl_->node || out.impl_ == impl_ || !from || from.use_count() != 1 ||
        out.impl_->grad_stale || out.numel() != numel())
        return nullptr;
    adopt_grad(std::move(from));  // (leaves out's pointer empty)
    return impl_->grad->data;
}

bool Tensor::adopt_grad(std::shared_ptr<Storage> buffer) const {
    if (impl_->grad || !buffer || buffer->size != (size_t)numel()) return false;
    impl_->grad = std::move(buffer);
    impl_->grad_stale = false;
    return true;
}

Tensor Tensor::detach() const {
    auto d = std::make_shared<TensorImpl>();
    d->shape = impl_->shape;
    d->storage = impl_->storage;
    return Tensor(d);
}

Tensor Tensor::clone() const {
    Tensor c = empty(shape());
    std::copy(data(), data() + numel(), c.data());
    return c;
}

// ---------------------------------------------------------------------------------------------------
// Recording

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward) {
    if (profiler::enabled()) profiler::on_record(name);
    if (!g_grad_enabled) return out;
    auto node = std::make_shared<Node>();
    node->name = name;
    for (const Tensor& in : inputs)
        if (in.defined() && in.requires_grad()) node->inputs.push_back(in.impl_ptr());
    if (node->inputs.empty()) return out;  // nothing upstream wants a gradient
    node->backward = std::move(backward);
    out.impl()->node = std::move(node);
    out.impl()->requires_grad = true;
    return out;
}

// ---------------------------------------------------------------------------------------------------
// backward()
//
// 1. Order: a depth-first search from the loss, written with an explicit stack (so a 10,000-op chain
//    cannot overflow the call stack), lists every tensor after all the tensors it was computed from.
//    Reversed, that list starts at the loss and reaches each tensor only after every op that used it.
// 2. Seed d(loss)/d(loss) = 1, then walk the reversed list calling each node's backward once. By the
//    time a tensor's node runs, all of its consumers have added into its grad, so that grad is complete.
// 3. A non-leaf's grad is freed as soon as its node has used it, and (unless retain_graph) so is the
//    node, with everything its closure saved for backward: the graph's memory goes as it is walked.

static std::vector<std::shared_ptr<TensorImpl>> topological_order(const std::shared_ptr<TensorImpl>& root) {
    std::vector<std::shared_ptr<TensorImpl>> order;
    std::unordered_set<TensorImpl*> visited{root.get()};
    std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{root, 0}};  // (tensor, next input)
    while (!stack.empty()) {
        std::shared_ptr<TensorImpl> t = stack.back().first;
        size_t& next = stack.back().second;
        if (t->node && next < t->node->inputs.size()) {
            std::shared_ptr<TensorImpl> in = t->node->inputs[next++];
            if (!in->node && in->graph_freed)
                throw std::logic_error(
                    "backward: part of this graph was already freed by an earlier backward(); "
                    "call backward(true) (retain_graph) the first time to go through it twice");
            if (visited.insert(in.get()).second) stack.push_back({in, 0});
        } else {
            order.push_back(t);
            stack.pop_back();
        }
    }
    std::reverse(order.begin(), order.end());
    return order;
}

void Tensor::backward(bool retain_graph) const {
    if (numel() != 1)
        throw std::invalid_argument("backward: called on a tensor of shape " + shape_str() +
                                    "; backward starts from a one-element loss");
    if (!impl_->node && impl_->graph_freed)
        throw std::logic_error("backward: the graph of this tensor was already freed by an earlier backward(); "
                               "call backward(true) (retain_graph) the first time to go through it twice");
    if (!requires_grad())
        throw std::logic_error("backward: this tensor does not require grad (no input of it requires grad, "
                               "or it was computed inside a NoGradGuard)");

    std::vector<std::shared_ptr<TensorImpl>> order = topological_order(impl_);
    grad_buffer()[0] += 1;  // d(loss)/d(loss)
    for (const std::shared_ptr<TensorImpl>& t : order) {
        if (!t->node) continue;  // a leaf: its grad is the result
        Tensor out(t);
        if (profiler::enabled()) {
            auto start = std::chrono::steady_clock::now();
            t->node->backward(out);
            std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
            profiler::on_backward(t->node->name, ms.count());
        } else {
            t->node->backward(out);
        }
        t->grad.reset();  // a non-leaf's gradient has been passed on; it is not kept (as in PyTorch)
        if (!retain_graph) {
            t->node.reset();
            t->graph_freed = true;
        }
    }
}

}  // namespace ag
