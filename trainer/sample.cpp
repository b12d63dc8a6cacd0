// sample.cpp: autoregressive sampling with temperature and top-k.
//
// There is no key/value cache: each new token runs the whole window through the model again. That is
// T times more work than necessary, and still quick for the small models trained here.
#include "sample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace train {

// Picks an index from logits (V) scaled by 1/temperature, restricted to the top_k largest.
static int pick(const ag::real* logits, int V, const SampleSettings& s, ag::Rng& rng) {
    std::vector<int> order(V);
    for (int v = 0; v < V; ++v) order[v] = v;
    if (s.temperature <= 0) return (int)(std::max_element(logits, logits + V) - logits);
    int k = (s.top_k > 0 && s.top_k < V) ? s.top_k : V;
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    // softmax over the k kept logits, computed stably from the largest
    std::vector<double> p(k);
    double total = 0;
    for (int i = 0; i < k; ++i) total += p[i] = std::exp((logits[order[i]] - logits[order[0]]) / s.temperature);
    double u = rng.uniform() * total;
    for (int i = 0; i < k; ++i) {
        u -= p[i];
        if (u < 0) return order[i];
    }
    return order[k - 1];
}

std::vector<int> sample_tokens(nn::GPT& model, std::vector<int> tokens, const SampleSettings& settings, ag::Rng& rng) {
    if (tokens.empty()) throw std::invalid_argument("sample: the prompt must have at least one token");
    bool was_training = model.training();
    model.eval();
    ag::NoGradGuard no_grad;
    // logits rows have Vp entries; only the first V are tokens (the rest is padding, see GPTConfig)
    const int V = model.config().vocab_size, Vp = model.config().padded_vocab(), T_max = model.config().max_seq_len;
    std::vector<int> generated;
    for (int n = 0; n < settings.length; ++n) {
        int T = std::min<int>((int)tokens.size(), T_max);
        std::vector<int> window(tokens.end() - T, tokens.end());
        ag::Tensor logits = model.forward(window, 1, T).logits;  // (1, T, Vp)
        int next = pick(logits.data() + (int64_t)(T - 1) * Vp, V, settings, rng);
        tokens.push_back(next);
        generated.push_back(next);
    }
    model.train(was_training);
    return generated;
}

}  // namespace train
