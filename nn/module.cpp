// module.cpp: the Module bookkeeping and the small layers' constructors.
#include "module.h"

namespace nn {

Tensor Module::add_parameter(const std::string& name, Tensor value) {
    value.requires_grad_();
    entries_.push_back({name, value, nullptr});
    return value;
}

void Module::add_module(const std::string& name, Module& child) { entries_.push_back({name, Tensor(), &child}); }

void Module::collect(const std::string& prefix, NamedTensors& out) const {
    for (const Entry& e : entries_) {
        if (e.child) e.child->collect(prefix + e.name + ".", out);
        else out.push_back({prefix + e.name, e.parameter});
    }
}

NamedTensors Module::parameters() const {
    NamedTensors out;
    collect("", out);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (const auto& p : parameters()) n += p.second.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (Entry& e : entries_)
        if (e.child) e.child->train(on);
}

void Module::set_dtype(Dtype dtype) {
    dtype_ = dtype;
    for (Entry& e : entries_) {
        if (e.child) e.child->set_dtype(dtype);
        else if (dtype == Dtype::bf16) ag::round_bf16_inplace(e.parameter.data(), e.parameter.numel());
    }
}

void Module::zero_grad() const {
    for (const auto& p : parameters()) p.second.zero_grad();
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Rng& init, real init_std) {
    weight = add_parameter("weight", Tensor::randn({out, in}, init, init_std));
    if (with_bias) bias = add_parameter("bias", Tensor::zeros({out}));
}

Embedding::Embedding(int64_t V, int64_t C, Rng& init, real init_std) {
    weight = add_parameter("weight", Tensor::randn({V, C}, init, init_std));
}

LayerNorm::LayerNorm(int64_t C, bool with_bias) {
    weight = add_parameter("weight", Tensor::full({C}, 1));
    if (with_bias) bias = add_parameter("bias", Tensor::zeros({C}));
}

}  // namespace nn
