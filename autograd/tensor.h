// tensor.h: the Tensor, the graph it records, and backward().
//
// A Tensor is a handle (a shared pointer) to a block of numbers with a shape. Copying a Tensor copies
// the handle, not the numbers, exactly like a Python variable pointing at a torch.Tensor.
//
// When an op runs on tensors that require gradients, it records a Node on its output: the inputs it
// read and a backward function. backward() on a scalar walks those nodes from the loss back to the
// leaves (reverse topological order) and each node adds its share into its inputs' .grad.
//
//   Tensor w = Tensor::randn({3, 4}, rng).requires_grad_();   // a leaf: a parameter
//   Tensor x = Tensor::randn({2, 3}, rng);                     // data: no gradient wanted
//   Tensor loss = sum(tanh(matmul(x, w)));                     // records matmul, tanh, sum
//   loss.backward();                                           // w.grad() now holds dloss/dw
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ag {

// The scalar type of every tensor. The tests build the engine a second time with -DAUTOGRAD_DOUBLE so
// that finite differences are accurate to ~1e-10 and gradient checks can use tight tolerances.
#ifdef AUTOGRAD_DOUBLE
using real = double;
#else
using real = float;
#endif

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 5, 8]"

// A flat, 64-byte aligned buffer of `real`s. Several tensors may share one (reshape returns a view).
struct Storage {
    explicit Storage(size_t n);  // uninitialised
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    real* data;
    size_t size;
};

struct TensorImpl;
class Tensor;

// The backward function of one recorded op. It is called once, with the op's output `out` whose
// gradient is complete, and adds the op's share into the gradients of the inputs it captured.
// It must not capture `out` itself (that would make a reference cycle); it receives it instead.
using BackwardFn = std::function<void(const Tensor& out)>;

struct Node {
    const char* name;                                  // the op, for errors and profiles: "matmul"
    std::vector<std::shared_ptr<TensorImpl>> inputs;   // the inputs that require grad (graph edges)
    BackwardFn backward;
};

struct TensorImpl {
    Shape shape;
    std::shared_ptr<Storage> storage;  // the values
    std::shared_ptr<Storage> grad;     // d(loss)/d(values), allocated on first use
    bool grad_stale = false;           // the buffer holds old values that count as zeros (see zero_grad_lazily)
    bool requires_grad = false;
    bool graph_freed = false;          // an op's output whose node was freed by backward()
    std::shared_ptr<Node> node;        // the op that produced it; null for leaves
    ~TensorImpl();                     // frees a long chain of nodes without deep recursion
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor ("no bias", "no gradient")
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- making tensors
    static Tensor empty(const Shape& shape);  // values uninitialised
    static Tensor zeros(const Shape& shape);
    static Tensor full(const Shape& shape, real value);
    static Tensor from(const Shape& shape, const std::vector<real>& values);
    static Tensor randn(const Shape& shape, class Rng& rng, real stddev = 1);
    static Tensor uniform(const Shape& shape, class Rng& rng, real lo, real hi);

    // ---- what it is
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl_->shape; }
    int dim() const { return (int)impl_->shape.size(); }
    int64_t size(int d) const;  // d may be negative: size(-1) is the last dimension
    int64_t numel() const { return (int64_t)impl_->storage->size; }  // storage always holds exactly numel values
    std::string shape_str() const { return ag::shape_str(impl_->shape); }
    real* data() const { return impl_->storage->data; }
    real item() const;  // the value of a one-element tensor

    // ---- gradients
    bool requires_grad() const { return impl_->requires_grad; }
    Tensor& requires_grad_(bool on = true);   // mark a leaf (a parameter) as wanting a gradient
    Tensor grad() const;        // a tensor sharing the gradient buffer; undefined if none yet
    real* grad_buffer() const;  // the gradient buffer, allocated as zeros on first use (for ops)
    void zero_grad() const;     // set the gradient to zero (keeps the buffer)

    // Zeroing without a pass over memory: the buffer is marked stale, and reads as zeros. The first
    // grad_buffer() call zeroes it then; an op that writes every element of the gradient asks
    // grad_to_write() instead, and gets accumulate = false for a stale or new buffer, so it can
    // store its result where it would have added it to zeros (the optimizer's zero_grad uses this:
    // a linear layer's weight gradient then costs no separate zeroing pass).
    void zero_grad_lazily() const;
    real* grad_to_write(bool& accumulate) const;

    // For an op whose backward can compute this input's gradient in place over its output's (dx_i needs
    // only dy_i and values the op saved, as in GELU, layernorm's rows, or an add where dx = dy): if this
    // tensor has no gradient buffer yet, and `out` (the op's output) is not a leaf and its buffer, of
    // the same size, is held by nothing else, that buffer becomes this tensor's and is returned, still
    // holding dL/d(out); the op then overwrites it with dL/d(this). Otherwise null, and the op writes a
    // buffer of its own. Nothing is lost: backward() frees an op's output gradient once the op has run.
    // It saves a buffer, and a pass that writes fresh memory becomes one that rewrites what it read.
    real* adopt_grad_of(const Tensor& out) const;
    // The same for a buffer an op made itself (cross-entropy makes its gradient in forward): if this
    // tensor has no gradient buffer yet, `buffer` (numel() values) becomes it, and true is returned.
    bool adopt_grad(std::shared_ptr<Storage> buffer) const;

    const char* op_name() const { return impl_->node ? impl_->node->name : nullptr; }

    // Back-propagate from this one-element tensor: every leaf that requires grad gets
    // d(this)/d(leaf) ADDED to its grad. The graph is freed as it is walked unless retain_graph
    // is true, so a second backward through the same graph needs retain_graph the first time
    // (as in PyTorch).
    void backward(bool retain_graph = false) const;

    Tensor detach() const;  // same values (shared), no graph, no gradient
    Tensor clone() const;   // a copy of the values, no graph, no gradient

    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
};

// A list of tensors with names ("wte.weight", "h.0.attn.c_attn.bias"): how modules hand their
// parameters to optimisers, checkpoints and printouts, in a stable order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ---- recording ops

// Is the graph being recorded? False inside a NoGradGuard.
bool grad_enabled();

// Turns recording off for its lifetime (evaluation, sampling): ops compute values only.
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;
private:
    bool previous_;
};

// Every op ends with this: if recording is on and any input requires grad, attach a Node to `out`
// (so `out` requires grad too). Returns `out`.
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward);

}  // namespace ag
