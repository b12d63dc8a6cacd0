// trainer/main.cpp: the trainer. It reads top to bottom, as llm.c's train_gpt2.c does:
//
//   1. flags           what the user asked for (options.cpp: the table, which is also the --help text)
//   2. data            a text file, or the built-in grammar corpus whose best possible loss we know
//   3. model           a GPT with every switch of nn/config.h, new or from a checkpoint
//   4. optimizer       AdamW with 2-D-only weight decay, clipping, a learning-rate schedule
//   5. the loop        forward, backward, clip, step; print, log, evaluate, sample, checkpoint
//   6. summary
//
// Errors a user can fix are one line, "error: ...", and a non-zero exit. Every file is written to a
// temporary name and renamed, so a crash or Ctrl-C never leaves half a file.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "../autograd/kernels.h"
#include "../autograd/profiler.h"
#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "checkpoint.h"
#include "data.h"
#include "error.h"
#include "files.h"
#include "eval.h"
#include "flags.h"
#include "bpe.h"
#include "grammar.h"
#include "inputs.h"
#include "llmc.h"
#include "logs.h"
#include "options.h"
#include "report.h"

using namespace train;

// Ctrl-C: finish the current step, save, and stop. A second Ctrl-C stops at once.
static volatile std::sig_atomic_t g_interrupted = 0;
static void on_interrupt(int) {
    g_interrupted = 1;
    std::signal(SIGINT, SIG_DFL);
}

// --export-llmc FILE: the model as an llm.c model file, in --export-dtype (default: the model's own).
static void export_if_asked(const Flags& f, const nn::GPT& model) {
    const std::string path = f.get_string("export-llmc");
    if (path.empty()) return;
    const ag::Dtype dtype = f.given("export-dtype") ? ag::parse_dtype(f.get_string("export-dtype")) : model.dtype();
    export_llmc_model(path, model, dtype);
    std::printf("wrote %s (llm.c model file, %s: version %d)\n", path.c_str(), ag::to_string(dtype),
                dtype == ag::Dtype::bf16 ? 5 : 3);
}

// --write-tokens PREFIX: the splits as llm.c token files, and a BPE tokenizer beside them.
static void write_token_files_and_tokenizer(const std::string& prefix, const DataSplit& data, const Tokenizer& tok) {
    auto [train_path, val_path] = write_token_files(prefix, data);
    std::printf("wrote %s (%s tokens) and %s (%s tokens)\n", train_path.c_str(),
                with_commas((int64_t)data.train.size()).c_str(), val_path.c_str(),
                with_commas((int64_t)data.val.size()).c_str());
    if (tok.name() == "bpe") {
        static_cast<const BpeTokenizer&>(tok).save(prefix + ".bpe");
        std::printf("wrote %s.bpe, the tokenizer (give it as --tokenizer-file to decode samples)\n", prefix.c_str());
    }
}

static double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// ===================================================================================================

static int run(int argc, char** argv) {
    // ---- 1. flags
    Flags flags(kFlags);
    flags.parse(argc, argv);
    if (flags.help_requested()) {
        std::cout << flags.help("usage: train [flags]\n\n"
                                "Trains a GPT on your CPU. With no flags: a small model on a built-in corpus, for\n"
                                "about a minute or two, printing how close it gets to the best possible loss.\n");
        return 0;
    }
    check_flags(flags);
    if (flags.get_int("threads") > 0) omp_set_num_threads(flags.get_int("threads"));
    const std::string out_dir = flags.get_string("out");
    const std::string ckpt_path = join_path(out_dir, "model.ckpt");
    const bool resume = flags.get_switch("resume"), sample_only = flags.get_switch("sample-only");
    const std::string init_from = flags.get_string("init-from");

    // A saved run (for --resume, and --sample-only without --init-from) decides the model and the
    // tokenizer, and on --resume the settings.
    std::unique_ptr<CheckpointReader> saved;
    if (resume || (sample_only && init_from.empty())) {
        saved = std::make_unique<CheckpointReader>(ckpt_path);
        check_no_model_flags(flags, ckpt_path);
        if (resume) check_resume_flags(flags, saved->info());
    }
    auto setting = [&](const char* name) {  // a training setting: the saved run's on --resume
        return resume && !flags.given(name) && saved->info().settings.count(name) ? saved->info().settings.at(name)
                                                                                  : flags.value_text(name);
    };
    auto setting_int = [&](const char* name) { return std::stoi(setting(name)); };
    auto setting_float = [&](const char* name) { return std::stod(setting(name)); };
    const uint64_t seed = (uint64_t)setting_int("seed");
    const int B = setting_int("batch-size"), T = setting_int("seq-len");

    // ---- 2. data: a text or llm.c token files, or the built-in grammar, whose exact best loss we know
    RawData raw;
    double optimum = NAN;
    std::string input = setting("input"), data_name;
    if (!sample_only) {
        if (!input.empty()) {
            raw = read_data(input, setting("val"));
            data_name = "'" + input + "'";
        } else {
            Corpus train_text = generate_corpus(1, 1 << 20), val_text = generate_corpus(2, 1 << 14);
            raw.train_text = train_text.text, raw.val_text = val_text.text;
            raw.train_source = "the grammar corpus (train)", raw.val_source = "the grammar corpus (validation)";
            optimum = val_text.optimum();
            data_name = "the built-in grammar corpus";
        }
    }
    const bool token_data = raw.is_tokens || (sample_only && !init_from.empty());
    require(init_from.empty() || setting("tokenizer") != "bpe",
            "--tokenizer bpe learns a new vocabulary, which the model in '" + init_from + "' has never seen");
    require(!token_data || !flags.given("tokenizer"),
            "--tokenizer " + flags.get_string("tokenizer") + " tokenizes a text, but " +
                (init_from.empty() ? data_name + " is an llm.c token file" : "an llm.c model (--init-from) reads token ids"));

    // The tokenizer: a saved run's; for a text, bytes or a BPE learned on the training split; for token
    // files, --tokenizer-file if given (it decodes samples), else samples are printed as token ids.
    RunInfo info;
    std::unique_ptr<Tokenizer> tokenizer;
    const bool ids_only = saved ? saved->info().tokenizer == "ids" : token_data;  // token ids, no tokenizer yet
    if (ids_only) {
        info.tokenizer = "ids";
        if (flags.given("tokenizer-file")) {  // a file to decode the ids with (llm.c's, or one of our BPEs)
            info.tokenizer_file = flags.get_string("tokenizer-file");
            tokenizer = read_tokenizer_file(info.tokenizer_file);
            info.tokenizer = tokenizer->name();
        }
    } else if (saved) {
        info.tokenizer = saved->info().tokenizer, info.tokenizer_file = saved->info().tokenizer_file;
        if (!info.tokenizer_file.empty() && flags.given("tokenizer-file"))  // the file has moved
            info.tokenizer_file = flags.get_string("tokenizer-file");
        // a BPE learned by the run itself lives beside its checkpoint (no file named): found wherever --out is
        const std::string file = info.tokenizer_file.empty() ? join_path(out_dir, "tokenizer.bpe") : info.tokenizer_file;
        tokenizer = open_tokenizer(info.tokenizer, file, saved->info().config.vocab_size);
    } else if (setting("tokenizer") == "bpe") {
        int n = setting_int("vocab-size") ? setting_int("vocab-size") : 512;
        auto t0 = std::chrono::steady_clock::now();
        tokenizer = std::make_unique<BpeTokenizer>(BpeTokenizer::train(raw.train_text, n));
        std::printf("learned a BPE tokenizer of %d tokens on %s in %.2f s\n", tokenizer->vocab_size(),
                    raw.train_source.c_str(), ms_since(t0) / 1000);
        info.tokenizer = "bpe";  // no tokenizer_file: the one beside the checkpoint
    } else {
        tokenizer = std::make_unique<ByteTokenizer>();
    }
    DataSplit data;
    data.train_source = raw.train_source, data.val_source = raw.val_source;
    if (raw.is_tokens) {
        data.train = std::move(raw.train_tokens), data.val = std::move(raw.val_tokens);
    } else if (!sample_only) {
        data.train = tokenizer->encode(raw.train_text), data.val = tokenizer->encode(raw.val_text);
        raw.train_text.clear(), raw.val_text.clear();
    }

    // --write-tokens: the splits as llm.c token files, for llm.c (or a later run here) to train on
    if (!flags.get_string("write-tokens").empty()) {
        require(!sample_only, "--write-tokens needs data to write, not --sample-only");
        write_token_files_and_tokenizer(flags.get_string("write-tokens"), data, *tokenizer);
        return 0;
    }

    // ---- 3. the model: a saved run's, an llm.c model file's, or new from the flags
    nn::GPTConfig config;
    if (saved) {
        config = saved->info().config;
    } else if (!init_from.empty()) {
        config = llmc_config(read_llmc_model_header(init_from));
        check_agrees_with_file(flags, config, init_from);
        set_dropout(flags, config);  // dropout has no parameters: a fine-tuning run may set it
    } else if (token_data) {  // GPT-2's vocabulary unless told otherwise, padded as llm.c pads it
        int vocab = setting_int("vocab-size") ? setting_int("vocab-size") : tokenizer ? tokenizer->vocab_size() : 50257;
        config = config_from_flags(flags, vocab, (vocab + 127) / 128 * 128);
    } else {
        config = config_from_flags(flags, tokenizer->vocab_size(), 0);
    }
    if (!tokenizer) tokenizer = std::make_unique<IdTokenizer>(config.vocab_size);
    require(tokenizer->vocab_size() <= config.vocab_size,
            "the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                " tokens, more than the model's vocabulary of " + std::to_string(config.vocab_size));
    if (!flags.get_string("export-llmc").empty()) check_llmc_exportable(config);  // now, not after the training
    nn::GPT model(config, seed);
    if (saved) saved->load_model(model);
    if (!init_from.empty()) load_llmc_model(init_from, model);
    // The precision: the saved run's (on --resume; for --sample-only unless --dtype says otherwise).
    // In bf16 this rounds the parameters to bf16, which changes nothing for the parameters of a bf16
    // run's checkpoint or of a version-5 llm.c file: their bits are kept exactly.
    std::string dtype_name = setting("dtype");
    if (sample_only && saved && !flags.given("dtype") && saved->info().settings.count("dtype"))
        dtype_name = saved->info().settings.at("dtype");
    const ag::Dtype dtype = ag::parse_dtype(dtype_name);
    const bool bf16 = dtype == ag::Dtype::bf16;
    model.set_dtype(dtype);

    if (sample_only) {
        std::cout << sample_text(model, *tokenizer, flags, seed + (saved ? (uint64_t)saved->info().step : 0)) << "\n";
        export_if_asked(flags, model);
        return 0;
    }
    require(T <= config.max_seq_len || config.pos != nn::PosScheme::learned,
            "--seq-len " + std::to_string(T) + " exceeds the model's max " + std::to_string(config.max_seq_len));
    check_token_ids(data.train, config.vocab_size, data.train_source);
    check_token_ids(data.val, config.vocab_size, data.val_source);
    BatchLoader loader(data.train, B, T, parse_loader_kind(setting("loader")), seed, data.train_source);
    EvalWindows val_windows(data.val, B, T, data.val_source);

    // ---- 4. optimizer and schedule
    const int64_t steps = flags.get_int("steps");
    int64_t tokens_per_step = setting_int("total-batch-tokens") ? setting_int("total-batch-tokens") : (int64_t)B * T;
    require(tokens_per_step % ((int64_t)B * T) == 0,
            "--total-batch-tokens " + std::to_string(tokens_per_step) + " is not a multiple of the batch's " +
                std::to_string(B) + " x " + std::to_string(T) + " = " + std::to_string(B * T) + " tokens");
    const int64_t accumulation = tokens_per_step / ((int64_t)B * T);
    ag::NamedTensors params = model.parameters();
    std::vector<optim::ParamGroup> groups = optim::param_groups(params, setting_float("weight-decay"));
    optim::AdamWConfig adamw{setting_float("beta1"), setting_float("beta2"), setting_float("eps")};
    adamw.bf16_params = bf16;
    adamw.master_weights = setting("master-weights") == "true";
    adamw.stochastic_rounding = setting("rounding") == "stochastic";
    adamw.rounding_seed = seed;
    optim::AdamW optimizer(groups, adamw);
    optim::Schedule schedule;
    schedule.kind = optim::schedule_kind(setting("schedule"));
    schedule.peak = setting_float("lr");
    schedule.warmup = setting_int("warmup");
    // "constant" means the same rate at every step, as llm.c's train_gpt2.c and nanoGPT without decay
    // use it: no warmup unless one is asked for. (A resumed run keeps the warmup it saved.)
    if (!resume && schedule.kind == optim::ScheduleKind::constant && !flags.given("warmup")) schedule.warmup = 0;
    schedule.total = std::max<int64_t>(steps, 1);
    double min_lr = setting_float("min-lr");
    schedule.floor = min_lr < 0 ? 0.1 : min_lr / schedule.peak;
    const double grad_clip = setting_float("grad-clip");

    int64_t start_step = 0;
    if (resume) {
        saved->load_optimizer(optimizer);
        saved->load_loader(loader);
        start_step = saved->info().step;
    }

    make_dirs(out_dir);
    if (info.tokenizer == "bpe" && info.tokenizer_file.empty() && !resume)  // the checkpoint needs it: save it first
        static_cast<const BpeTokenizer&>(*tokenizer).save(join_path(out_dir, "tokenizer.bpe"));
    info.config = config;
    info.settings = settings_of(flags);
    info.settings["warmup"] = std::to_string(schedule.warmup);  // the warmup used, given or not
    if (resume) info.settings = saved->info().settings, info.settings["steps"] = flags.value_text("steps");
    std::vector<LogRow> rows = resume ? read_log(join_path(out_dir, "log.csv"), start_step) : std::vector<LogRow>{};
    const std::string plot_title = "loss on " + (input.empty() ? std::string("the grammar corpus") : input);
    write_logs(out_dir, rows, plot_title, optimum);  // fails now, not in an hour, if the folder is not writable

    // FLOPs of one optimisation step: 6 per parameter per token (forward 2, backward 4), plus attention's
    // 12 * layers * C * T per token (Kaplan et al. 2020; PaLM appendix B).
    const int64_t n_params = model.num_parameters();
    const double flops_per_step =
        (6.0 * (double)n_params + 12.0 * config.n_layer * config.n_embd * (double)T) * (double)tokens_per_step;

    // ---- the config table
    std::printf("+----------------------+------------------------------------------------------+\n");
    auto row = [](const std::string& k, const std::string& v) { std::printf("| %-20s | %-52s |\n", k.c_str(), v.c_str()); };
    row("data", data_name);
    row("tokens", "train " + with_commas((int64_t)data.train.size()) + ", val " + with_commas((int64_t)data.val.size()) +
                      " (" + tokenizer->name() + ", vocab " + std::to_string(tokenizer->vocab_size()) + ")");
    row("loader", std::string(loader_kind_name(loader.kind())));
    row("model", std::to_string(config.n_layer) + " layers, " + std::to_string(config.n_head) + " heads, " +
                     std::to_string(config.n_embd) + " wide, max " + std::to_string(config.max_seq_len) + " positions");
    row("switches", std::string("pos ") + nn::to_string(config.pos) + ", norm " + nn::to_string(config.norm) +
                        ", " + (config.tie_weights ? "tied" : "untied") + " output" +
                        (config.bias ? "" : ", no biases"));
    row("dropout", "emb " + fmt("%g", config.emb_dropout) + ", attn " + fmt("%g", config.attn_dropout) + ", resid " +
                       fmt("%g", config.resid_dropout) + ", mlp " + fmt("%g", config.mlp_dropout));
    row("parameters", with_commas(n_params));
    for (const optim::ParamGroup& g : optimizer.groups())
        row("  " + g.name, with_commas(optim::num_params(g)) + " in " + std::to_string(g.params.size()) +
                               " tensors, weight decay " + fmt("%g", g.weight_decay));
    row("batch", std::to_string(B) + " x " + std::to_string(T) + (accumulation > 1 ? " x " + std::to_string(accumulation) + " accumulated" : "") +
                     " = " + with_commas(tokens_per_step) + " tokens/step");
    row("steps", std::to_string(steps) + (resume ? " (resuming after step " + std::to_string(start_step) + ")" : ""));
    const bool decays = schedule.kind != optim::ScheduleKind::constant;
    row("learning rate", fmt("%g", schedule.peak) + ", " + optim::schedule_name(schedule.kind) +
                             (decays ? " to " + fmt("%g", schedule.peak * schedule.floor) : "") + ", warmup " +
                             std::to_string(schedule.warmup));
    row("AdamW", "betas " + setting("beta1") + ", " + setting("beta2") + ", eps " + setting("eps") + ", clip " + setting("grad-clip"));
    const char* update = adamw.master_weights        ? "fp32 master weights"
                         : adamw.stochastic_rounding ? "no master, stochastic rounding"
                                                     : "no master, nearest rounding";
    row("precision", bf16 ? std::string("bf16 mixed, ") + update : std::string("fp32"));
    row("matmul", bf16 ? ag::gemm_bf16_kernel_name() : ag::gemm_kernel_name());
    row("training state", training_state_text(n_params, adamw));
    row("threads", std::to_string(omp_get_max_threads()));
    row("output", out_dir + "/ (model.ckpt, log.csv, loss.svg)");
    std::printf("+----------------------+------------------------------------------------------+\n");
    std::fflush(stdout);

    auto save = [&](int64_t completed) {
        info.step = completed;
        save_checkpoint(ckpt_path, info, model, &optimizer, &loader);
        write_logs(out_dir, rows, plot_title, optimum);
    };

    // ---- 5. the loop
    std::signal(SIGINT, on_interrupt);
    const int eval_every = flags.get_int("eval-every"), sample_every = flags.get_int("sample-every");
    const int eval_batches = flags.get_int("eval-batches");
    const int64_t stop_after = flags.get_int("stop-after");
    const bool profile = flags.get_switch("profile");
    int bad_in_a_row = 0;
    double last_val = NAN, time_in_steps = 0;
    int64_t timed_steps = 0, step = start_step;
    Batch batch;
    auto run_start = std::chrono::steady_clock::now();
    for (; step < steps && !g_interrupted; ++step) {
        auto t0 = std::chrono::steady_clock::now();
        double lr = optim::learning_rate(schedule, step);

        if (profile && step == start_step + 1) ag::profiler::enable(true);  // the first step only warms up
        // forward and backward over `accumulation` micro-batches; gradients add up in .grad
        auto phase = std::chrono::steady_clock::now();
        optimizer.zero_grad();
        ag::profiler::add("zero_grad", ms_since(phase), 0);
        double loss = 0;
        for (int64_t micro = 0; micro < accumulation; ++micro) {
            phase = std::chrono::steady_clock::now();
            loader.next(batch);
            ag::profiler::add("data", ms_since(phase), 0);
            ag::profiler::mark();
            ag::Tensor l = model.forward(batch.inputs, B, T, batch.targets).loss;
            loss += l.item() / (double)accumulation;
            if (accumulation > 1) l = l * (ag::real)(1.0 / (double)accumulation);  // the mean over micro-batches
            l.backward();
            if (bf16 && micro + 1 < accumulation) {  // gradients are stored, so summed, in bf16
                phase = std::chrono::steady_clock::now();
                optim::round_grads_to_bf16(params);
                ag::profiler::add("round_grads", ms_since(phase), 0);
            }
        }
        // The norm (clipping itself happens inside the optimizer's pass); in bf16 the last rounding of
        // the gradients is the norm's own pass.
        phase = std::chrono::steady_clock::now();
        double norm = bf16 ? optim::round_grads_to_bf16(params) : optim::grad_norm(params);
        ag::profiler::add("grad_norm", ms_since(phase), 0);

        // a step whose loss or gradient is not finite would ruin the weights: skip it and say so
        if (!std::isfinite(loss) || !std::isfinite(norm)) {
            std::printf("step %lld/%lld: loss %g, gradient norm %g: not finite, step skipped\n", (long long)step + 1,
                        (long long)steps, loss, norm);
            require(++bad_in_a_row < 10, "10 steps in a row had a non-finite loss or gradient; stopping (try a lower --lr)");
            continue;
        }
        bad_in_a_row = 0;
        phase = std::chrono::steady_clock::now();
        optimizer.step(lr, optim::clip_factor(norm, grad_clip));
        ag::profiler::add("adamw", ms_since(phase), 0);
        bool profiling = ag::profiler::enabled();
        ag::profiler::enable(false);  // evaluation and sampling are not part of a step

        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (step > start_step) time_in_steps += ms, ++timed_steps;  // the first step warms caches up
        double avg_ms = timed_steps ? time_in_steps / (double)timed_steps : ms;
        std::printf("step %*lld/%lld | loss %.4f | lr %.2e | norm %6.3f | %6.0f ms | %7.0f tok/s | %5.1f GFLOP/s | eta %s\n",
                    (int)std::to_string(steps).size(), (long long)step + 1, (long long)steps, loss, lr, norm, ms,
                    (double)tokens_per_step / ms * 1000, flops_per_step / ms / 1e6,
                    duration(avg_ms / 1000 * (double)(steps - step - 1)).c_str());
        rows.push_back({step + 1, loss, NAN, lr, norm, ms});

        bool last = step + 1 == steps;
        if ((eval_every && (step + 1) % eval_every == 0) || last) {
            last_val = evaluate(model, val_windows, eval_batches);
            rows.back().val_loss = last_val;
            std::printf("step %lld: %s\n", (long long)step + 1, val_report(last_val, optimum).c_str());
            save(step + 1);
        }
        if ((sample_every && (step + 1) % sample_every == 0) || last) {
            std::printf("---- sample at step %lld ----\n%s\n----\n", (long long)step + 1,
                        sample_text(model, *tokenizer, flags, seed + (uint64_t)step).c_str());
        }
        std::fflush(stdout);
        ag::profiler::enable(profiling);
        if (stop_after && step + 1 == stop_after && !last) {
            ++step;
            save(step);
            std::printf("stopped after step %lld as --stop-after asked; saved %s (continue with --resume)\n",
                        (long long)step, ckpt_path.c_str());
            return 0;
        }
    }

    // ---- 6. summary
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    if (g_interrupted) {
        save(step);
        std::printf("interrupted: stopped after step %lld; saved %s (continue with --resume)\n", (long long)step,
                    ckpt_path.c_str());
        return 130;
    }
    if (rows.empty() || rows.back().step != step) save(step);
    export_if_asked(flags, model);
    std::printf("done: %lld steps in %s", (long long)(step - start_step), duration(seconds).c_str());
    if (timed_steps) std::printf(", %.0f ms/step, %.0f tokens/s", time_in_steps / (double)timed_steps,
                                 (double)tokens_per_step * (double)timed_steps / time_in_steps * 1000);
    std::printf("\n");
    if (!rows.empty()) std::printf("final train loss %.4f\n", rows.back().train_loss);
    if (!std::isnan(last_val)) std::printf("final %s\n", val_report(last_val, optimum).c_str());
    std::printf("wrote %s, %s, %s\n", ckpt_path.c_str(), join_path(out_dir, "log.csv").c_str(),
                join_path(out_dir, "loss.svg").c_str());
    if (profile) print_profile(step - start_step - 1);
    return 0;
}

int main(int argc, char** argv) {
    ag::flush_denormals_to_zero();  // before any OpenMP thread starts: they inherit it (see kernels.h)
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);  // what the run printed so far comes before the error
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
