// groups.cpp: which parameters get weight decay, and the groups the optimizers work on.
#include <cstdio>
#include <stdexcept>
#include <unordered_set>

#include "optim.h"

namespace optim {

// Any parameter that is 2-D (or more) is weight decayed; 1-D ones are not. The same rule as GPT-2/3
// recipes and nanoGPT's configure_optimizers.
//  - 2-D: the matmul weights and the embedding tables. Decay p -= lr*wd*p pulls them toward 0, which
//    keeps their norms, and so the size of the activations they produce, in check: a regulariser.
//  - 1-D: biases and LayerNorm gains/biases. They are a tiny share of the parameters, shift and scale
//    rather than mix features, and have a natural value that is not 0 (a LayerNorm gain starts at 1 and
//    should stay near it): decaying them does not regularise, it only fights the model.
// The tied token embedding / output projection is 2-D, so it decays (once: see param_groups).
bool decays(const ag::Tensor& p) { return p.dim() >= 2; }

std::vector<ParamGroup> param_groups(const ag::NamedTensors& params, double weight_decay, bool decay_all) {
    ParamGroup decay{"decay", {}, weight_decay, 1};
    ParamGroup no_decay{"no_decay", {}, 0, 1};
    // A tied weight is one tensor under two names: keep its first name only, so that it is decayed
    // once, updated once and has one m and one v.
    std::unordered_set<const ag::TensorImpl*> seen;
    for (const auto& [name, p] : params) {
        if (!p.defined()) throw std::invalid_argument("param_groups: parameter '" + name + "' is undefined");
        if (!seen.insert(p.impl()).second) continue;
        (decay_all || decays(p) ? decay : no_decay).params.push_back({name, p});
    }
    return {decay, no_decay};
}

int64_t num_params(const ParamGroup& group) {
    int64_t n = 0;
    for (const auto& np : group.params) n += np.second.numel();
    return n;
}

// 123532032 -> "123,532,032"
static std::string with_commas(int64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
        out += digits[i];
    }
    return out;
}

std::string describe(const std::vector<ParamGroup>& groups) {
    std::string out;
    for (const ParamGroup& g : groups) {
        char line[160];
        std::snprintf(line, sizeof line, "%-9s %4zu tensors %14s parameters  weight decay %g", g.name.c_str(),
                      g.params.size(), with_commas(num_params(g)).c_str(), g.weight_decay);
        out += line;
        if (g.lr_scale != 1) {
            std::snprintf(line, sizeof line, "  lr x %g", g.lr_scale);
            out += line;
        }
        out += '\n';
    }
    return out;
}

}  // namespace optim
