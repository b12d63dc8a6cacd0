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

namespace {

// Adds one batch's logits (B*T rows of Vp, the first V real) to the sums of EvalStats.
struct LogitSums {
    double max_abs = 0, lse = 0;
    std::vector<double> position_loss, position_count;

    void add(const ag::Tensor& logits, const Batch& b, int V) {
        const int64_t Vp = logits.size(-1);
        if (position_loss.size() < (size_t)b.T) position_loss.resize(b.T), position_count.resize(b.T);
        for (size_t row = 0; row < b.count(); ++row) {
            const ag::real* l = logits.data() + (int64_t)row * Vp;
            double top = l[0];
            for (int v = 0; v < V; ++v) {
                top = std::max(top, (double)l[v]);
                max_abs = std::isnan(l[v]) ? NAN : std::max(max_abs, std::fabs((double)l[v]));  // NaN stays
            }
            double sum = 0;  // log sum exp, shifted by the largest logit so that exp cannot overflow
            for (int v = 0; v < V; ++v) sum += std::exp((double)l[v] - top);
            const double row_lse = top + std::log(sum);
            lse += row_lse;
            const size_t t = row % (size_t)b.T;
            position_loss[t] += row_lse - (double)l[b.targets[row]];
            position_count[t] += 1;
        }
    }
};

}  // namespace

EvalStats evaluate(nn::GPT& model, const EvalWindows& windows, int max_batches) {
    ag::NoGradGuard no_grad;
    model.eval();
    model.track_attention_logits(true);
    size_t batches = windows.num_batches();
    if (max_batches > 0) batches = std::min(batches, (size_t)max_batches);
    double total = 0;
    size_t count = 0;
    LogitSums sums;
    for (size_t i = 0; i < batches; ++i) {
        Batch b = windows.batch(i);
        nn::GPTOutput out = model.forward(b.inputs, b.B, b.T, b.targets);
        total += out.loss.item() * (double)b.count();
        count += b.count();
        sums.add(out.logits, b, model.config().vocab_size);
    }
    EvalStats stats;
    stats.loss = total / (double)count;
    stats.max_abs_logit = sums.max_abs;
    stats.mean_lse = sums.lse / (double)count;
    stats.max_attn_logit = model.max_attention_logit();
    for (size_t t = 0; t < sums.position_loss.size(); ++t)
        stats.position_loss.push_back(sums.position_loss[t] / sums.position_count[t]);
    model.track_attention_logits(false);
    model.train();
    return stats;
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
