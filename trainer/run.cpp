// run.cpp: the parts of ./train's steps that have many cases (see run.h).
#include "run.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "../autograd/fast/kernels.h"
#include "../autograd/ops.h"
#include "bpe.h"
#include "error.h"
#include "eval.h"
#include "files.h"
#include "grammar.h"
#include "llmc.h"
#include "report.h"

namespace train {

static Error bad_setting(const Run& r, const char* name, const char* expected) {
    return Error("'" + r.ckpt_path + "' has a bad value for setting '" + name + "': '" + r.setting(name) +
                 "' (expected " + expected + ")");
}

int Run::setting_int(const char* name) const {
    int v = 0;
    if (!parse_int(setting(name), v)) throw bad_setting(*this, name, "an integer");
    return v;
}

double Run::setting_float(const char* name) const {
    double v = 0;
    if (!parse_float(setting(name), v)) throw bad_setting(*this, name, "a finite number");
    return v;
}

// ---- 2. data

RawData read_raw_data(Run& r) {
    RawData raw;
    r.input = r.setting("input");
    if (r.sample_only) return raw;
    if (!r.input.empty()) {
        raw = read_data(r.input, r.setting("val"));
        r.data_name = "'" + r.input + "'";
    } else {
        Corpus train_text = generate_corpus(1, 1 << 20), val_text = generate_corpus(2, 1 << 14);
        raw.train_text = train_text.text, raw.val_text = val_text.text;
        raw.train_source = "the grammar corpus (train)", raw.val_source = "the grammar corpus (validation)";
        r.optimum = val_text.optimum();
        r.data_name = "the built-in grammar corpus";
    }
    return raw;
}

void make_tokenizer(Run& r, const RawData& raw) {
    RunInfo& info = r.info;
    const bool ids_only = r.saved ? r.saved->info().tokenizer == "ids" : r.token_data;
    if (ids_only) {
        info.tokenizer = "ids";
        if (r.flags.given("tokenizer-file")) {  // a file to decode the ids with (llm.c's, or one of our BPEs)
            info.tokenizer_file = r.flags.get_string("tokenizer-file");
            r.tokenizer = read_tokenizer_file(info.tokenizer_file);
            info.tokenizer = r.tokenizer->name();
        }
    } else if (r.saved) {
        info.tokenizer = r.saved->info().tokenizer, info.tokenizer_file = r.saved->info().tokenizer_file;
        if (!info.tokenizer_file.empty() && r.flags.given("tokenizer-file"))  // the file has moved
            info.tokenizer_file = r.flags.get_string("tokenizer-file");
        // a BPE learned by the run itself lives beside its checkpoint (no file named): found wherever --out is
        const std::string file = info.tokenizer_file.empty() ? join_path(r.out_dir, "tokenizer.bpe") : info.tokenizer_file;
        r.tokenizer = open_tokenizer(info.tokenizer, file, r.saved->info().config.vocab_size);
    } else if (r.setting("tokenizer") == "bpe") {
        int n = r.setting_int("vocab-size") ? r.setting_int("vocab-size") : 512;
        Stopwatch watch;
        r.tokenizer = std::make_unique<BpeTokenizer>(BpeTokenizer::train(raw.train_text, n));
        std::printf("learned a BPE tokenizer of %d tokens on %s in %.2f s\n", r.tokenizer->vocab_size(),
                    raw.train_source.c_str(), watch.ms() / 1000);
        info.tokenizer = "bpe";  // no tokenizer_file: the one beside the checkpoint
    } else {
        r.tokenizer = std::make_unique<ByteTokenizer>();
    }
}

void write_tokens(const Run& r) {
    require(!r.sample_only, "--write-tokens needs data to write, not --sample-only");
    const std::string prefix = r.flags.get_string("write-tokens");
    auto [train_path, val_path] = write_token_files(prefix, r.data);
    std::printf("wrote %s (%s tokens) and %s (%s tokens)\n", train_path.c_str(),
                with_commas((int64_t)r.data.train.size()).c_str(), val_path.c_str(),
                with_commas((int64_t)r.data.val.size()).c_str());
    if (r.tokenizer && r.tokenizer->name() == "bpe") {  // token files in: no tokenizer unless --tokenizer-file
        static_cast<const BpeTokenizer&>(*r.tokenizer).save(prefix + ".bpe");
        std::printf("wrote %s.bpe, the tokenizer (give it as --tokenizer-file to decode samples)\n", prefix.c_str());
    }
}

// ---- 3. model

// llm.c pads GPT-2's vocabulary to a multiple of 128 (50257 -> 50304) for faster matmuls. In int64:
// a vocabulary near INT_MAX (a tokenizer file's) would overflow the sum.
static int padded_to_128(int vocab) {
    const int64_t padded = ((int64_t)vocab + 127) / 128 * 128;
    require(padded <= INT_MAX, "a vocabulary of " + std::to_string(vocab) + " tokens is too large");
    return (int)padded;
}

nn::GPTConfig model_config(const Run& r) {
    if (r.saved) return r.saved->info().config;
    if (!r.init_from.empty()) {
        nn::GPTConfig config = llmc_config(read_llmc_model_header(r.init_from));
        check_agrees_with_file(r.flags, config, r.init_from);
        set_dropout(r.flags, config);  // dropout has no parameters: a fine-tuning run may set it
        return config;
    }
    if (r.token_data) {  // GPT-2's vocabulary unless told otherwise, padded as llm.c pads it
        int vocab = r.setting_int("vocab-size") ? r.setting_int("vocab-size") : r.tokenizer ? r.tokenizer->vocab_size() : 50257;
        return config_from_flags(r.flags, vocab, padded_to_128(vocab));
    }
    return config_from_flags(r.flags, r.tokenizer->vocab_size(), 0);
}

ag::Dtype model_dtype(const Run& r) {
    std::string name = r.setting("dtype");
    if (r.sample_only && r.saved && !r.flags.given("dtype") && r.saved->info().settings.count("dtype"))
        name = r.saved->info().settings.at("dtype");
    return ag::parse_dtype(name);
}

void export_if_asked(const Run& r) {
    const std::string path = r.flags.get_string("export-llmc");
    if (path.empty()) return;
    const ag::Dtype dtype = r.flags.given("export-dtype") ? ag::parse_dtype(r.flags.get_string("export-dtype"))
                                                          : r.model->dtype();
    export_llmc_model(path, *r.model, dtype);
    std::printf("wrote %s (llm.c model file, %s: version %d)\n", path.c_str(), ag::to_string(dtype),
                dtype == ag::Dtype::bf16 ? 5 : 3);
}

// ---- 4. batches and optimizer

void make_batches(Run& r) {
    require(r.T <= r.config.max_seq_len || r.config.pos != nn::PosScheme::learned,
            "--seq-len " + std::to_string(r.T) + " exceeds the model's max " + std::to_string(r.config.max_seq_len));
    check_token_ids(r.data.train, r.config.vocab_size, r.data.train_source);
    check_token_ids(r.data.val, r.config.vocab_size, r.data.val_source);
    const LoaderKind kind = parse_loader_kind(r.setting("loader"));
    r.loader = std::make_unique<BatchLoader>(r.data.train, r.B, r.T, kind, r.seed, r.data.train_source);
    r.val_windows = std::make_unique<EvalWindows>(r.data.val, r.B, r.T, r.data.val_source);
    const int64_t batch_tokens = (int64_t)r.B * r.T;
    r.tokens_per_step = r.setting_int("total-batch-tokens") ? r.setting_int("total-batch-tokens") : batch_tokens;
    require(r.tokens_per_step % batch_tokens == 0,
            "--total-batch-tokens " + std::to_string(r.tokens_per_step) + " is not a multiple of the batch's " +
                std::to_string(r.B) + " x " + std::to_string(r.T) + " = " + std::to_string(batch_tokens) + " tokens");
    r.accumulation = r.tokens_per_step / batch_tokens;
}

optim::AdamWConfig adamw_config(const Run& r) {
    optim::AdamWConfig adamw{r.setting_float("beta1"), r.setting_float("beta2"), r.setting_float("eps")};
    adamw.bf16_params = r.bf16;
    adamw.master_weights = r.setting("master-weights") == "true";
    adamw.stochastic_rounding = r.setting("rounding") == "stochastic";
    adamw.rounding_seed = r.seed;
    return adamw;
}

optim::Schedule lr_schedule(const Run& r) {
    optim::Schedule schedule;
    schedule.kind = optim::schedule_kind(r.setting("schedule"));
    schedule.peak = r.setting_float("lr");
    schedule.warmup = r.setting_int("warmup");
    // "constant" means the same rate at every step, as llm.c's train_gpt2.c and nanoGPT without decay
    // use it: no warmup unless one is asked for. (A resumed run keeps the warmup it saved.)
    if (!r.resume && schedule.kind == optim::ScheduleKind::constant && !r.flags.given("warmup")) schedule.warmup = 0;
    schedule.total = std::max<int64_t>(r.steps, 1);
    double min_lr = r.setting_float("min-lr");
    schedule.floor = min_lr < 0 ? 0.1 : min_lr / schedule.peak;
    return schedule;
}

void open_outputs(Run& r) {
    make_dirs(r.out_dir);
    if (r.info.tokenizer == "bpe" && r.info.tokenizer_file.empty() && !r.resume)  // the checkpoint needs it: save it first
        static_cast<const BpeTokenizer&>(*r.tokenizer).save(join_path(r.out_dir, "tokenizer.bpe"));
    r.info.config = r.config;
    r.info.settings = settings_of(r.flags);
    r.info.settings["warmup"] = std::to_string(r.schedule.warmup);  // the warmup used, given or not
    if (r.resume) r.info.settings = r.saved->info().settings, r.info.settings["steps"] = r.flags.value_text("steps");
    if (r.resume) r.rows = read_log(join_path(r.out_dir, "log.csv"), r.start_step);
    r.plot_title = "loss on " + (r.input.empty() ? std::string("the grammar corpus") : r.input);
    write_logs(r.out_dir, r.rows, r.plot_title, r.optimum);  // fails now, not in an hour, if the folder is not writable
    // FLOPs of one optimisation step: 6 per parameter per token (forward 2, backward 4), plus attention's
    // 12 * layers * C * T per token (Kaplan et al. 2020; PaLM appendix B).
    r.flops_per_step = (6.0 * (double)r.model->num_parameters() + 12.0 * r.config.n_layer * r.config.n_embd * (double)r.T) *
                       (double)r.tokens_per_step;
}

// ---- the start-of-run table

void print_config_table(const Run& r) {
    const nn::GPTConfig& c = r.config;
    const optim::AdamWConfig& adamw = r.optimizer->config();
    std::printf("+----------------------+------------------------------------------------------+\n");
    auto row = [](const std::string& k, const std::string& v) { std::printf("| %-20s | %-52s |\n", k.c_str(), v.c_str()); };
    row("data", r.data_name);
    row("tokens", "train " + with_commas((int64_t)r.data.train.size()) + ", val " + with_commas((int64_t)r.data.val.size()) +
                      " (" + r.tokenizer->name() + ", vocab " + std::to_string(r.tokenizer->vocab_size()) + ")");
    row("loader", std::string(loader_kind_name(r.loader->kind())));
    row("model", std::to_string(c.n_layer) + " layers, " + std::to_string(c.n_head) + " heads, " +
                     std::to_string(c.n_embd) + " wide, max " + std::to_string(c.max_seq_len) + " positions");
    row("switches", std::string("pos ") + nn::to_string(c.pos) + ", norm " + nn::to_string(c.norm) + ", " +
                        (c.tie_weights ? "tied" : "untied") + " output" + (c.bias ? "" : ", no biases"));
    row("dropout", "emb " + fmt("%g", c.emb_dropout) + ", attn " + fmt("%g", c.attn_dropout) + ", resid " +
                       fmt("%g", c.resid_dropout) + ", mlp " + fmt("%g", c.mlp_dropout));
    const int64_t n_params = r.model->num_parameters();
    row("parameters", with_commas(n_params));
    for (const optim::ParamGroup& g : r.optimizer->groups())
        row("  " + g.name, with_commas(optim::num_params(g)) + " in " + std::to_string(g.params.size()) +
                               " tensors, weight decay " + fmt("%g", g.weight_decay));
    row("batch", std::to_string(r.B) + " x " + std::to_string(r.T) +
                     (r.accumulation > 1 ? " x " + std::to_string(r.accumulation) + " accumulated" : "") + " = " +
                     with_commas(r.tokens_per_step) + " tokens/step");
    row("steps", std::to_string(r.steps) + (r.resume ? " (resuming after step " + std::to_string(r.start_step) + ")" : ""));
    const optim::Schedule& s = r.schedule;
    const bool decays = s.kind != optim::ScheduleKind::constant;
    row("learning rate", fmt("%g", s.peak) + ", " + optim::schedule_name(s.kind) +
                             (decays ? " to " + fmt("%g", s.peak * s.floor) : "") + ", warmup " + std::to_string(s.warmup));
    row("AdamW", "betas " + r.setting("beta1") + ", " + r.setting("beta2") + ", eps " + r.setting("eps") + ", clip " +
                     r.setting("grad-clip"));
    const char* update = adamw.master_weights        ? "fp32 master weights"
                         : adamw.stochastic_rounding ? "no master, stochastic rounding"
                                                     : "no master, nearest rounding";
    row("precision", r.bf16 ? std::string("bf16 mixed, ") + update : std::string("fp32"));
    if (ag::kernels() == ag::Kernels::reference)
        row("kernels", "reference (autograd/ops_*.cpp: plain loops, slow)");
    else
        row("matmul", r.bf16 ? ag::gemm_bf16_kernel_name() : ag::gemm_kernel_name());
    row("training state", training_state_text(n_params, adamw));
    row("threads", std::to_string(omp_get_max_threads()));
    row("output", r.out_dir + "/ (model.ckpt, log.csv, loss.svg)");
    std::printf("+----------------------+------------------------------------------------------+\n");
    std::fflush(stdout);
}

// ---- --eval-only

void evaluate_saved(Run& r) {
    const int T = r.flags.get_int("eval-seq-len") ? r.flags.get_int("eval-seq-len") : r.T;
    require(T <= r.config.max_seq_len || r.config.pos != nn::PosScheme::learned,
            "--eval-seq-len " + std::to_string(T) + " is past the model's " + std::to_string(r.config.max_seq_len) +
                " positions: a learned position table has no rows beyond them (sinusoidal, relative, rope, alibi "
                "and none have no such limit)");
    check_token_ids(r.data.val, r.config.vocab_size, r.data.val_source);
    // A window longer than the split would silently be evaluated as the split's length.
    require(r.data.val.size() > (size_t)T, "--eval-seq-len " + std::to_string(T) + " needs more than " +
                                                std::to_string(T) + " tokens of validation data; " + r.data.val_source +
                                                " has " + std::to_string(r.data.val.size()));
    EvalWindows windows(r.data.val, r.B, T, r.data.val_source);
    const EvalStats s = evaluate(*r.model, windows, r.flags.get_int("eval-batches"));
    std::printf("%s after step %lld, at sequence length %d (trained at %s) on %s:\n", r.ckpt_path.c_str(),
                (long long)r.saved->info().step, T, r.setting("seq-len").c_str(), r.data.val_source.c_str());
    std::printf("%s\nmax |logit| %.4g, mean log-sum-exp %.4g, max attention logit %.4g\n",
                val_report(s.loss, r.optimum).c_str(), s.max_abs_logit, s.mean_lse, s.max_attn_logit);
    const std::string path = r.flags.get_string("position-loss");
    if (path.empty()) return;
    std::string csv = "position,loss\n";
    for (size_t t = 0; t < s.position_loss.size(); ++t) csv += std::to_string(t) + "," + fmt("%.6f", s.position_loss[t]) + "\n";
    write_file_atomic(path, csv);
    std::printf("wrote %s (the loss at each of %zu positions)\n", path.c_str(), s.position_loss.size());
}

// ---- 5. the loop's checkpoints, log and reports

volatile std::sig_atomic_t g_saving = 0;

void save(Run& r, int64_t completed) {
    r.info.step = completed;
    r.info.spike_window = r.spikes->to_text();
    g_saving = 1;
    try {
        save_checkpoint(r.ckpt_path, r.info, *r.model, r.optimizer.get(), r.loader.get());
        write_logs(r.out_dir, r.rows, r.plot_title, r.optimum);
    } catch (...) {
        g_saving = 0;
        throw;
    }
    g_saving = 0;
}

StepEvent detect_spike(Run& r, double loss, double norm) {
    r.spike_scores = r.spikes->score(loss, norm);
    r.spikes->push(loss, norm);
    const double skip = r.setting_float("skip-spikes");
    if (skip > 0 && r.spike_scores.above(skip)) return StepEvent::spike_skipped;
    return r.spike_scores.above(r.setting_float("spike-z")) ? StepEvent::spike : StepEvent::none;
}

void log_step(Run& r, double loss, double lr, double norm, double ms, StepEvent event) {
    if (r.step > r.start_step) r.time_in_steps += ms, ++r.timed_steps;  // the first step warms caches up
    const double avg_ms = r.timed_steps ? r.time_in_steps / (double)r.timed_steps : ms;
    std::printf("step %*lld/%lld | loss %.4f | lr %.2e | norm %6.3f | %6.0f ms | %7.0f tok/s | %5.1f GFLOP/s | eta %s",
                (int)std::to_string(r.steps).size(), (long long)r.step + 1, (long long)r.steps, loss, lr, norm, ms,
                (double)r.tokens_per_step / ms * 1000, r.flops_per_step / ms / 1e6,
                duration(avg_ms / 1000 * (double)(r.steps - r.step - 1)).c_str());
    if (event != StepEvent::none)
        std::printf(" | spike: z loss %.1f, norm %.1f%s", r.spike_scores.loss_z, r.spike_scores.norm_z,
                    event == StepEvent::spike_skipped ? ", update skipped" : "");
    std::printf("\n");
    LogRow row{r.step + 1, loss, NAN, lr, norm, ms};
    row.event = event;
    r.rows.push_back(row);
}

// The L2 norm of a group's parameters, all of them as one vector (0 for an empty group).
static double group_norm(const optim::ParamGroup& group) {
    double sum = 0;
    for (const auto& np : group.params) {
        const ag::real* p = np.second.data();
        for (int64_t i = 0; i < np.second.numel(); ++i) sum += (double)p[i] * (double)p[i];
    }
    return std::sqrt(sum);
}

void maybe_evaluate(Run& r, bool last) {
    const int every = r.flags.get_int("eval-every");
    if (!((every && (r.step + 1) % every == 0) || last)) return;
    const EvalStats stats = evaluate(*r.model, *r.val_windows, r.flags.get_int("eval-batches"));
    r.last_val = stats.loss;
    LogRow& row = r.rows.back();
    row.val_loss = stats.loss;
    row.decay_norm = group_norm(r.optimizer->groups()[0]), row.no_decay_norm = group_norm(r.optimizer->groups()[1]);
    row.max_logit = stats.max_abs_logit, row.mean_lse = stats.mean_lse, row.max_attn_logit = stats.max_attn_logit;
    std::printf("step %lld: %s\n", (long long)r.step + 1, val_report(r.last_val, r.optimum).c_str());
    save(r, r.step + 1);
}

void maybe_sample(Run& r, bool last) {
    const int every = r.flags.get_int("sample-every");
    if (!((every && (r.step + 1) % every == 0) || last)) return;
    std::printf("---- sample at step %lld ----\n%s\n----\n", (long long)r.step + 1,
                sample_text(*r.model, *r.tokenizer, r.flags, r.seed + (uint64_t)r.step).c_str());
}

}  // namespace train
