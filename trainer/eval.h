// eval.h: what the training loop does besides training: the validation loss, and samples of text.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../nn/gpt.h"
#include "data.h"
#include "flags.h"

namespace train {

// What an evaluation measures: the loss, and what it tells about the logits, over the same targets.
struct EvalStats {
    double loss = NAN;            // the mean loss over the targets
    double max_abs_logit = NAN;   // the largest |logit| over the vocabulary's columns (not the padding)
    double mean_lse = NAN;        // the mean over positions of log sum_v exp(logit_v): 0 for a calibrated
                                  // softmax whose logits are log-probabilities (z-loss's target)
    double max_attn_logit = NAN;  // the largest pre-softmax attention logit, over all layers
    // The mean loss at each position t of a window (T entries; a short last window counts in the
    // first positions), computed in double from the logits: its mean agrees with `loss` to rounding.
    std::vector<double> position_loss;
};

// Over every target of the validation split (or of its first `max_batches`; 0: all), in eval mode (no
// dropout) and without recording a graph.
EvalStats evaluate(nn::GPT& model, const EvalWindows& windows, int max_batches);

// "val loss 0.5312", and when the best possible loss is known (not NaN), "(optimum 0.5130, gap 0.0182)".
std::string val_report(double val, double optimum);

// A sample as text: --prompt (or a newline, or <|endoftext|>) and --sample-len tokens drawn with
// --temperature and --top-k from a generator of its own, seeded by `seed`.
std::string sample_text(nn::GPT& model, const Tokenizer& tok, const Flags& f, uint64_t seed);

}  // namespace train
