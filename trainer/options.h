// options.h: ./train's flags (the table that is also the --help text) and what they mean: the checks
// on their values, the model they describe, and which of them a saved run decides.
//
// flags.h is the generic parser and knows nothing of GPTs; this file is the trainer's side of it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../nn/config.h"
#include "checkpoint.h"
#include "flags.h"

namespace train {

// Every flag of ./train. Names follow nanoGPT's and llm.c's settings, so that their recipes translate.
extern const std::vector<FlagSpec> kFlags;

// Checks the numbers and names a user gave before anything is built, naming the flag.
void check_flags(const Flags& f);

// A saved run (--resume, --sample-only) decides its model: no model flag may be given with it.
void check_no_model_flags(const Flags& f, const std::string& ckpt_path);

// On --resume: a flag given now must agree with the saved run, unless it is one that may change.
void check_resume_flags(const Flags& f, const RunInfo& saved);

// The dropout rates: --dropout at every site, unless a site's own flag says otherwise.
void set_dropout(const Flags& f, nn::GPTConfig& c);

// The model the flags describe (for a new run), with a vocabulary of vocab_size tokens (padded_vocab
// rows in the embedding and logits; 0: no padding).
nn::GPTConfig config_from_flags(const Flags& f, int vocab_size, int padded_vocab);

// --init-from FILE decides the model; a size or switch given as well must agree with the file.
void check_agrees_with_file(const Flags& f, const nn::GPTConfig& file, const std::string& path);

// The training settings as saved in a checkpoint: every flag's value as text ("lr" -> "0.004").
std::map<std::string, std::string> settings_of(const Flags& f);

}  // namespace train
