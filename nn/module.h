// module.h: the Module base class and the small layers: Linear, Embedding, LayerNorm, Dropout.
//
// A Module owns named parameters and child modules. parameters() walks them in the order they were
// registered and names each by its path, "h.0.attn.c_attn.weight", so that checkpoints, optimiser
// groups and printouts all speak one naming (the same names as GPT-2's checkpoints use).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../autograd/ops.h"

namespace nn {

using ag::Dtype;
using ag::NamedTensors;
using ag::real;
using ag::Rng;
using ag::Shape;
using ag::Tensor;

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;  // children are registered by address: a module must not move
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    // Every parameter of this module and its children, named by path, in registration order.
    NamedTensors parameters() const;
    int64_t num_parameters() const;  // total number of values over parameters()

    // Training mode (dropout active) or evaluation mode, for this module and all its children.
    void train(bool on = true);
    void eval() { train(false); }
    bool training() const { return training_; }

    void zero_grad() const;

    // The precision this module and its children compute in (ag::Dtype). Dtype::bf16 is llm.c's
    // mixed precision: the parameters are rounded to bf16 here, once (the optimizer keeps them so), the
    // matrix products multiply bf16 operands, and every activation a module hands on is rounded to
    // bf16, with its gradient on the way back: by the op that makes it, given dtype() as the precision
    // its output is stored in (`stored`, autograd/ops.h), or by store().
    void set_dtype(Dtype dtype);
    Dtype dtype() const { return dtype_; }

protected:
    // x as this module keeps it: rounded to bf16 in bf16 (ag::round_bf16), x itself in fp32.
    Tensor store(const Tensor& x) const { return dtype_ == Dtype::bf16 ? ag::round_bf16(x) : x; }

    // Registers a parameter (marking it as wanting a gradient) and returns it.
    Tensor add_parameter(const std::string& name, Tensor value);
    void add_module(const std::string& name, Module& child);

private:
    void collect(const std::string& prefix, NamedTensors& out) const;
    struct Entry {
        std::string name;
        Tensor parameter;        // defined for a parameter entry
        Module* child = nullptr; // non-null for a child entry
    };
    std::vector<Entry> entries_;
    bool training_ = true;
    Dtype dtype_ = Dtype::fp32;
};

// y = x W^T + b, W (out, in) initialised normal(0, init_std), b (out) zeros.
class Linear : public Module {
public:
    Linear(int64_t in, int64_t out, bool bias, Rng& init, real init_std = 0.02);
    // (..., in) -> (..., out)
    Tensor forward(const Tensor& x) const { return ag::linear(x, weight, bias, dtype(), dtype()); }
    Tensor weight, bias;
};

// A table of V rows of C values, initialised normal(0, 0.02); forward picks rows by id.
class Embedding : public Module {
public:
    Embedding(int64_t V, int64_t C, Rng& init, real init_std = 0.02);
    Tensor forward(const std::vector<int>& ids, const Shape& ids_shape) const {
        return ag::embedding(weight, ids, ids_shape);  // ids_shape -> ids_shape + (C)
    }
    Tensor weight;
};

// LayerNorm over the last axis with a gain (ones) and, optionally, a bias (zeros); eps = 1e-5 as in GPT-2.
class LayerNorm : public Module {
public:
    explicit LayerNorm(int64_t C, bool bias = true);
    Tensor forward(const Tensor& x) const { return ag::layernorm(x, weight, bias, 1e-5, dtype()); }
    Tensor weight, bias;
};

// Inverted dropout with rate p, active only in training mode. The mask is drawn from an Rng owned by
// the model, so a run is reproducible and a checkpoint can save where the stream is.
class Dropout : public Module {
public:
    Dropout(real p, Rng& rng) : p_(p), rng_(rng) {}
    Tensor forward(const Tensor& x) const {  // x itself when inactive; else scaled by 1 / (1 - p), so stored again
        Tensor y = ag::dropout(x, p_, rng_, training());
        return y.impl() == x.impl() ? y : store(y);
    }
    real p() const { return p_; }
    Rng& rng() const { return rng_; }  // for ops that apply dropout inside themselves (fused attention)
private:
    real p_;
    Rng& rng_;
};

}  // namespace nn
