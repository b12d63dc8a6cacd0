// sample.h: generating text from a model.
#pragma once

#include <vector>

#include "../nn/gpt.h"

namespace train {

struct SampleSettings {
    int length = 200;          // tokens to generate
    double temperature = 0.8;  // logits are divided by it; 0 picks the most likely token every time
    int top_k = 0;             // keep only the k most likely tokens (0: all)
};

// Appends `settings.length` tokens to `prompt` and returns only the new ones. Each new token is drawn
// from softmax(logits / temperature) at the last position, the model seeing the last max_seq_len
// tokens. The model runs in eval mode (no dropout) without recording a graph; its mode is restored.
std::vector<int> sample_tokens(nn::GPT& model, std::vector<int> prompt, const SampleSettings& settings, ag::Rng& rng);

}  // namespace train
