// run.h: what the steps of ./train (main.cpp) share, and the parts of those steps that would break
// main.cpp's story with their cases: which data and tokenizer, which model, the optimizer's settings,
// the start-of-run table (run.cpp).
#pragma once

#include <cmath>
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/bf16.h"
#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "checkpoint.h"
#include "data.h"
#include "flags.h"
#include "inputs.h"
#include "logs.h"
#include "options.h"
#include "spikes.h"

namespace train {

// One run, filled in by the steps in their order.
struct Run {
    // 1. flags, and the saved run that decides the model (--resume; --sample-only without --init-from)
    Flags flags{kFlags};
    std::string out_dir, ckpt_path, init_from;
    bool resume = false, sample_only = false, eval_only = false;
    std::unique_ptr<CheckpointReader> saved;
    uint64_t seed = 0;
    int B = 0, T = 0;

    // 2. data and tokenizer
    std::string input, data_name;  // --input, and how the table names the data
    bool token_data = false;       // token ids (llm.c token files, or an llm.c model to sample from)
    double optimum = NAN;          // the best possible validation loss: known for the grammar corpus only
    DataSplit data;
    std::unique_ptr<Tokenizer> tokenizer;
    RunInfo info;  // what the checkpoint says about the run besides its tensors

    // 3. model
    nn::GPTConfig config;
    std::unique_ptr<nn::GPT> model;
    bool bf16 = false;

    // 4. batches and optimizer
    std::unique_ptr<BatchLoader> loader;  // reads `data`, declared above it: destroyed before it
    std::unique_ptr<EvalWindows> val_windows;
    int64_t steps = 0, tokens_per_step = 0, accumulation = 1;  // micro-batches of B x T per step
    ag::NamedTensors params;
    std::unique_ptr<optim::AdamW> optimizer;
    optim::Schedule schedule;
    double grad_clip = 0;
    std::unique_ptr<SpikeDetector> spikes;  // on --resume, with the saved run's window

    // 5. the loop
    int64_t start_step = 0, step = 0;  // step: the one under way, then the steps completed
    std::vector<LogRow> rows;
    std::string plot_title;
    double flops_per_step = 0;
    double last_val = NAN;
    double time_in_steps = 0;  // ms, over the timed steps: all but the first, which warms caches up
    int64_t timed_steps = 0;
    int bad_in_a_row = 0;  // steps skipped in a row for a loss or gradient that was not finite
    SpikeScores spike_scores;  // the step's, for its line

    // A training setting: on --resume and --eval-only the saved run's, unless given again.
    std::string setting(const char* name) const {
        return (resume || eval_only) && !flags.given(name) && saved->info().settings.count(name) ? saved->info().settings.at(name)
                                                                                  : flags.value_text(name);
    }
    // As numbers. Flags were checked when they were given, so a setting that does not parse is the
    // checkpoint's, and the error names it (run.cpp).
    int setting_int(const char* name) const;
    double setting_float(const char* name) const;
};

// 2. The texts or token files of --input and --val, or the built-in grammar corpus (nothing for
// --sample-only); sets input, data_name and optimum.
RawData read_raw_data(Run& r);

// The tokenizer, and info's tokenizer fields: a saved run's; for a text, bytes or a BPE learned on the
// training split; for token files, --tokenizer-file if given (it decodes samples), else none yet.
void make_tokenizer(Run& r, const RawData& raw);

// --write-tokens PREFIX: the splits as llm.c token files, and a BPE tokenizer beside them.
void write_tokens(const Run& r);

// 3. The model's config: a saved run's, an llm.c model file's, or new from the flags.
nn::GPTConfig model_config(const Run& r);

// The precision: the saved run's on --resume, and for --sample-only unless --dtype says otherwise.
ag::Dtype model_dtype(const Run& r);

// --export-llmc FILE: the model as an llm.c model file, in --export-dtype (default: the model's own).
void export_if_asked(const Run& r);

// 4. The batch loader and the validation windows, and the micro-batches per step.
void make_batches(Run& r);

// AdamW's settings, and the learning-rate schedule over `steps` steps.
optim::AdamWConfig adamw_config(const Run& r);
optim::Schedule lr_schedule(const Run& r);

// The output folder, the checkpoint's description of the run (info), the log (on --resume, read back
// up to where it stopped) and the FLOPs of a step.
void open_outputs(Run& r);

// The table printed before the first step: data, model, batch, optimizer, precision, output.
void print_config_table(const Run& r);

// --eval-only: the saved model's validation loss at --eval-seq-len, what eval.h measures of its logits,
// and --position-loss's CSV.
void evaluate_saved(Run& r);

// 5. The checkpoint after `completed` steps, and the log up to it.
void save(Run& r, int64_t completed);

// The spike detector's verdict on a finite step (scored, then added to the window): none, spike, or
// spike_skipped when --skip-spikes says its update is not to be applied.
StepEvent detect_spike(Run& r, double loss, double norm);

// True while save() writes the checkpoint and the log: main's Ctrl-C handler lets a second Ctrl-C
// stop the run at once, except then, so that two quick Ctrl-Cs still end with the newest checkpoint.
extern volatile std::sig_atomic_t g_saving;

// The step's line and its row of the log.
void log_step(Run& r, double loss, double lr, double norm, double ms, StepEvent event);

// Every --eval-every steps, and after the last: the validation loss and the model's measurements (log.h),
// and a checkpoint.
void maybe_evaluate(Run& r, bool last);

// Every --sample-every steps, and after the last: a sample of text.
void maybe_sample(Run& r, bool last);

}  // namespace train
