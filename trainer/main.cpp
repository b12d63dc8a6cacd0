// trainer/main.cpp: the trainer. It reads top to bottom, as llm.c's train_gpt2.c does:
//
//   1. flags           what the user asked for (options.cpp: the table, which is also the --help text)
//   2. data            a text file, or the built-in grammar corpus whose best possible loss we know
//   3. model           a GPT with every switch of nn/config.h, new or from a checkpoint
//   4. optimizer       AdamW with weight decay (2-D parameters, or all), clipping, a learning-rate schedule
//   5. the loop        forward, backward, spike check, clip, step; print, log, evaluate, sample, checkpoint
//   6. summary
//
// Each step is a function of one Run (run.h), which holds what the steps share. What is not the
// story lives beside it: run.cpp (the steps' many cases), options.cpp (the flags), eval.cpp
// (validation loss, samples), logs.cpp (log.csv, loss.svg), report.cpp (formatting, --profile).
//
// Errors a user can fix are one line, "error: ...", and a non-zero exit. Every file is written to a
// temporary name and renamed, so a crash or Ctrl-C never leaves half a file.
#include <omp.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../autograd/fast/kernels.h"
#include "../autograd/ops.h"
#include "../autograd/profiler.h"
#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "checkpoint.h"
#include "compare.h"
#include "data.h"
#include "error.h"
#include "eval.h"
#include "files.h"
#include "inputs.h"
#include "llmc.h"
#include "options.h"
#include "report.h"
#include "run.h"

using namespace train;

// ---- 1. flags. A saved run (--resume, --eval-only, and --sample-only without --init-from) decides the
// model and the tokenizer, and on --resume and --eval-only the settings. Returns false after --help,
// and after --plot has drawn its chart (compare.h).
static bool parse_flags(Run& r, int argc, char** argv) {
    r.flags.parse(argc, argv);
    if (r.flags.help_requested()) {
        std::cout << r.flags.help("usage: train [flags]\n\n"
                                  "Trains a GPT on your CPU. With no flags: a small model on a built-in corpus, for\n"
                                  "about a minute or two, printing how close it gets to the best possible loss.\n");
        return false;
    }
    check_flags(r.flags);
    if (r.flags.given("plot")) {
        plot_runs(r.flags);
        return false;
    }
    if (r.flags.get_int("threads") > 0) omp_set_num_threads(r.flags.get_int("threads"));
    ag::set_kernels(r.flags.get_string("kernels") == "reference" ? ag::Kernels::reference : ag::Kernels::fast);
    r.out_dir = r.flags.get_string("out");
    r.ckpt_path = join_path(r.out_dir, "model.ckpt");
    r.resume = r.flags.get_switch("resume"), r.sample_only = r.flags.get_switch("sample-only");
    r.eval_only = r.flags.get_switch("eval-only");
    r.init_from = r.flags.get_string("init-from");
    require(!r.eval_only || r.init_from.empty(), "--eval-only evaluates the checkpoint in --out, not --init-from's model");
    if (r.resume || r.eval_only || (r.sample_only && r.init_from.empty())) {
        r.saved = std::make_unique<CheckpointReader>(r.ckpt_path);
        check_no_model_flags(r.flags, r.ckpt_path);
        if (r.resume) check_resume_flags(r.flags, r.saved->info());
    }
    r.seed = (uint64_t)r.setting_int("seed");
    r.B = r.setting_int("batch-size"), r.T = r.setting_int("seq-len");
    return true;
}

// ---- 2. data: a text or llm.c token files, or the built-in grammar, whose exact best loss we know
static void load_data(Run& r) {
    RawData raw = read_raw_data(r);
    r.token_data = raw.is_tokens || (r.sample_only && !r.init_from.empty());
    require(r.init_from.empty() || r.setting("tokenizer") != "bpe",
            "--tokenizer bpe learns a new vocabulary, which the model in '" + r.init_from + "' has never seen");
    require(!r.token_data || !r.flags.given("tokenizer"),
            "--tokenizer " + r.flags.get_string("tokenizer") + " tokenizes a text, but " +
                (r.init_from.empty() ? r.data_name + " is an llm.c token file" : "an llm.c model (--init-from) reads token ids"));
    make_tokenizer(r, raw);
    r.data.train_source = raw.train_source, r.data.val_source = raw.val_source;
    if (raw.is_tokens) {
        r.data.train = std::move(raw.train_tokens), r.data.val = std::move(raw.val_tokens);
    } else if (!r.sample_only) {
        r.data.train = r.tokenizer->encode(raw.train_text), r.data.val = r.tokenizer->encode(raw.val_text);
    }
}

// ---- 3. the model: a saved run's, an llm.c model file's, or new from the flags
static void build_model(Run& r) {
    r.config = model_config(r);
    if (!r.tokenizer) r.tokenizer = std::make_unique<IdTokenizer>(r.config.vocab_size);  // token files
    require(r.tokenizer->vocab_size() <= r.config.vocab_size,
            "the tokenizer has " + std::to_string(r.tokenizer->vocab_size()) +
                " tokens, more than the model's vocabulary of " + std::to_string(r.config.vocab_size));
    if (!r.flags.get_string("export-llmc").empty()) check_llmc_exportable(r.config);  // now, not after the training
    r.model = std::make_unique<nn::GPT>(r.config, r.seed);
    if (r.saved) r.saved->load_model(*r.model);
    if (!r.init_from.empty()) load_llmc_model(r.init_from, *r.model);
    // In bf16 this rounds the parameters to bf16, which changes nothing for the parameters of a bf16
    // run's checkpoint or of a version-5 llm.c file: their bits are kept exactly.
    const ag::Dtype dtype = model_dtype(r);
    r.bf16 = dtype == ag::Dtype::bf16;
    r.model->set_dtype(dtype);
}

// ---- 4. the optimizer and its schedule (on --resume, where it stopped), after the batches (run.cpp)
static void make_optimizer(Run& r) {
    r.steps = r.flags.get_int("steps");
    r.params = r.model->parameters();
    const bool decay_all = r.setting("decay-all") == "true";  // else the 2-D rule (optim::decays)
    std::vector<optim::ParamGroup> groups = optim::param_groups(r.params, r.setting_float("weight-decay"), decay_all);
    r.optimizer = std::make_unique<optim::AdamW>(groups, adamw_config(r));
    r.schedule = lr_schedule(r);
    r.grad_clip = r.setting_float("grad-clip");
    r.spikes = std::make_unique<SpikeDetector>(r.setting_int("spike-window"));
    if (r.resume) {
        r.spikes->from_text(r.saved->info().spike_window, "'" + r.ckpt_path + "'");
        r.saved->load_optimizer(*r.optimizer);
        r.saved->load_loader(*r.loader);
        r.start_step = r.saved->info().step;
    }
}

// ---- 5. the loop

// Ctrl-C: finish the current step, save, and stop. A second Ctrl-C stops at once (by the default
// action, so the shell sees a SIGINT), unless a save is under way: that save finishes, then the run
// stops. Either way the checkpoint on disk is a whole one (files.h: temporary name, then rename).
static volatile std::sig_atomic_t g_interrupted = 0;
static void on_interrupt(int) {
    if (g_interrupted && !g_saving) {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
    g_interrupted = 1;
}

// Forward and backward over `accumulation` micro-batches, gradients adding up in .grad; the mean loss.
static double forward_backward(Run& r, Batch& batch) {
    {
        PhaseTimer timer("zero_grad");
        r.optimizer->zero_grad();
    }
    double loss = 0;
    for (int64_t micro = 0; micro < r.accumulation; ++micro) {
        {
            PhaseTimer timer("data");
            r.loader->next(batch);
        }
        ag::profiler::mark();  // the forward's first op is charged from here
        ag::Tensor l = r.model->forward(batch.inputs, r.B, r.T, batch.targets).loss;
        loss += l.item() / (double)r.accumulation;
        if (r.accumulation > 1) l = l * (ag::real)(1.0 / (double)r.accumulation);  // the mean over micro-batches
        l.backward();
        if (r.bf16 && micro + 1 < r.accumulation) {  // gradients are stored, so summed, in bf16
            PhaseTimer timer("round_grads");
            optim::round_grads_to_bf16(r.params);
        }
    }
    return loss;
}

// The global gradient norm (clipping itself happens inside the optimizer's pass); in bf16 the last
// rounding of the gradients is the norm's own pass.
static double gradient_norm(Run& r) {
    PhaseTimer timer("grad_norm");
    return r.bf16 ? optim::round_grads_to_bf16(r.params) : optim::grad_norm(r.params);
}

// A step whose loss or gradient is not finite would ruin the weights: it is skipped, said so, and
// logged (a diverged run shows as one in log.csv, written before the run gives up).
static bool finite_or_skipped(Run& r, double loss, double lr, double norm) {
    if (std::isfinite(loss) && std::isfinite(norm)) {
        r.bad_in_a_row = 0;
        return true;
    }
    std::printf("step %lld/%lld: loss %g, gradient norm %g: not finite, step skipped\n", (long long)r.step + 1,
                (long long)r.steps, loss, norm);
    LogRow row{r.step + 1, loss, NAN, lr, norm, 0};
    row.event = StepEvent::not_finite;
    r.rows.push_back(row);
    if (++r.bad_in_a_row < 10) return false;
    write_logs(r.out_dir, r.rows, r.plot_title, r.optimum);
    throw Error("10 steps in a row had a non-finite loss or gradient; stopping (try a lower --lr)");
}

static void update(Run& r, double lr, double norm) {
    PhaseTimer timer("adamw");
    r.optimizer->step(lr, optim::clip_factor(norm, r.grad_clip));
}

// Returns false when --stop-after ended the session (saved, to go on with --resume).
static bool training_loop(Run& r) {
    std::signal(SIGINT, on_interrupt);
    const bool profile = r.flags.get_switch("profile");
    const int64_t stop_after = r.flags.get_int("stop-after");
    Batch batch;
    for (r.step = r.start_step; r.step < r.steps && !g_interrupted; ++r.step) {
        Stopwatch watch;
        const double lr = optim::learning_rate(r.schedule, r.step);
        if (profile && r.step == r.start_step + 1) ag::profiler::enable(true);  // the first step only warms up
        const double loss = forward_backward(r, batch);
        const double norm = gradient_norm(r);
        if (!finite_or_skipped(r, loss, lr, norm)) continue;
        const StepEvent event = detect_spike(r, loss, norm);
        if (event != StepEvent::spike_skipped) update(r, lr, norm);
        const bool profiling = ag::profiler::enabled(), last = r.step + 1 == r.steps;
        ag::profiler::enable(false);  // evaluation and sampling are not part of a step
        log_step(r, loss, lr, norm, watch.ms(), event);
        maybe_evaluate(r, last);
        maybe_sample(r, last);
        std::fflush(stdout);
        ag::profiler::enable(profiling);
        if (stop_after && r.step + 1 == stop_after && !last) {
            save(r, r.step + 1);
            std::printf("stopped after step %lld as --stop-after asked; saved %s (continue with --resume)\n",
                        (long long)r.step + 1, r.ckpt_path.c_str());
            return false;
        }
    }
    return true;
}

// ---- 6. summary. Returns the exit status: 130 after Ctrl-C, as a shell reports a SIGINT.
static int summary(Run& r, double seconds) {
    if (g_interrupted) {
        save(r, r.step);
        std::printf("interrupted: stopped after step %lld; saved %s (continue with --resume)\n", (long long)r.step,
                    r.ckpt_path.c_str());
        return 130;
    }
    if (r.rows.empty() || r.rows.back().step != r.step) save(r, r.step);
    export_if_asked(r);
    std::printf("done: %lld steps in %s", (long long)(r.step - r.start_step), duration(seconds).c_str());
    if (r.timed_steps)
        std::printf(", %.0f ms/step, %.0f tokens/s", r.time_in_steps / (double)r.timed_steps,
                    (double)r.tokens_per_step * (double)r.timed_steps / r.time_in_steps * 1000);
    std::printf("\n");
    if (!r.rows.empty()) std::printf("final train loss %.4f\n", r.rows.back().train_loss);
    if (!std::isnan(r.last_val)) std::printf("final %s\n", val_report(r.last_val, r.optimum).c_str());
    std::printf("wrote %s, %s, %s\n", r.ckpt_path.c_str(), join_path(r.out_dir, "log.csv").c_str(),
                join_path(r.out_dir, "loss.svg").c_str());
    if (r.flags.get_switch("profile")) print_profile(r.step - r.start_step - 1);
    return 0;
}

static int run(int argc, char** argv) {
    Run r;
    if (!parse_flags(r, argc, argv)) return 0;  // --help
    load_data(r);
    if (!r.flags.get_string("write-tokens").empty()) {  // the splits as llm.c token files, and no training
        write_tokens(r);
        return 0;
    }
    build_model(r);
    if (r.eval_only) {
        evaluate_saved(r);
        return 0;
    }
    if (r.sample_only) {
        std::cout << sample_text(*r.model, *r.tokenizer, r.flags, r.seed + (r.saved ? (uint64_t)r.saved->info().step : 0))
                  << "\n";
        export_if_asked(r);
        return 0;
    }
    make_batches(r);
    make_optimizer(r);
    open_outputs(r);
    print_config_table(r);
    Stopwatch clock;
    if (!training_loop(r)) return 0;  // --stop-after
    return summary(r, clock.ms() / 1000);
}

// A message as one line of text: control bytes, which a message may quote from a file or an argument,
// would break the line or command the terminal, so they are shown as \xNN.
static std::string printable(const std::string& message) {
    std::string out;
    for (unsigned char c : message) {
        if (c >= 0x20 && c != 0x7f) {
            out += (char)c;
            continue;
        }
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
        out += escaped;
    }
    return out;
}

int main(int argc, char** argv) {
    ag::flush_denormals_to_zero();  // before any OpenMP thread starts: they inherit it (see kernels.h)
    // A file growing past the size limit (ulimit -f) would kill us with SIGXFSZ; ignored, the write
    // fails with EFBIG instead and the run ends in the one-line error, the old files untouched.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);  // what the run printed so far comes before the error
        std::fprintf(stderr, "error: %s\n", printable(e.what()).c_str());
        return 1;
    }
}
