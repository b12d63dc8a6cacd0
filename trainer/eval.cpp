// eval.cpp: the validation loss, and samples of text for the training loop.
#include "eval.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../autograd/rng.h"
#include "../autograd/tensor.h"
#include "error.h"
#include "report.h"
#include "sample.h"

namespace train {

double evaluate(nn::GPT& model, const EvalWindows& windows, int max_batches) {
    ag::NoGradGuard no_grad;
    model.eval();
    size_t batches = windows.num_batches();
    if (max_batches > 0) batches = std::min(batches, (size_t)max_batches);
    double total = 0;
    size_t count = 0;
    for (size_t i = 0; i < batches; ++i) {
        Batch b = windows.batch(i);
        total += model.forward(b.inputs, b.B, b.T, b.targets).loss.item() * (double)b.count();
        count += b.count();
    }
    model.train();
    return total / (double)count;
}

std::string val_report(double val, double optimum) {
    std::string s = "val loss " + fmt("%.4f", val);
    if (!std::isnan(optimum)) s += " (optimum " + fmt("%.4f", optimum) + ", gap " + fmt("%.4f", val - optimum) + ")";
    return s;
}

std::string sample_text(nn::GPT& model, const Tokenizer& tok, const Flags& f, uint64_t seed) {
    SampleSettings s;
    s.length = f.get_int("sample-len");
    s.temperature = f.get_float("temperature");
    s.top_k = f.get_int("top-k");
    const std::string prompt = f.get_string("prompt");
    // Without a prompt, a sample starts after a newline, or after <|endoftext|> (as llm.c's do) for a
    // tokenizer that has one or cannot encode.
    std::vector<int> start;
    if (!prompt.empty()) start = tok.encode(prompt);
    else if (tok.end_of_text() >= 0 || !tok.can_encode()) start = {std::max(tok.end_of_text(), 0)};
    else start = tok.encode("\n");
    if (start.empty()) throw Error("the --prompt gave no tokens");
    ag::Rng rng(seed);  // its own generator: sampling never disturbs the training run's randomness
    std::vector<int> out = sample_tokens(model, start, s, rng);
    return prompt + tok.decode(out);
}

}  // namespace train
