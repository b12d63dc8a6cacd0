// eval.h: what the training loop does besides training: the validation loss, and samples of text.
#pragma once

#include <cstdint>
#include <string>

#include "../nn/gpt.h"
#include "data.h"
#include "flags.h"

namespace train {

// The mean loss over every target of the validation split (or of its first `max_batches`; 0: all),
// in eval mode (no dropout) and without recording a graph.
double evaluate(nn::GPT& model, const EvalWindows& windows, int max_batches);

// "val loss 0.5312", and when the best possible loss is known (not NaN), "(optimum 0.5130, gap 0.0182)".
std::string val_report(double val, double optimum);

// A sample as text: --prompt (or a newline, or <|endoftext|>) and --sample-len tokens drawn with
// --temperature and --top-k from a generator of its own, seeded by `seed`.
std::string sample_text(nn::GPT& model, const Tokenizer& tok, const Flags& f, uint64_t seed);

}  // namespace train
