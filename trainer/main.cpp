// trainer/main.cpp: the trainer. It reads top to bottom, as llm.c's train_gpt2.c does:
//
//   1. flags           what the user asked for (the table below is also the --help text)
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
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../autograd/kernels.h"
#include "../autograd/profiler.h"
#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "checkpoint.h"
#include "data.h"
#include "error.h"
#include "files.h"
#include "flags.h"
#include "bpe.h"
#include "grammar.h"
#include "inputs.h"
#include "llmc.h"
#include "plot.h"
#include "sample.h"

using namespace train;

// ===================================================================================================
// 1. Flags. Names follow nanoGPT's and llm.c's settings, so that their recipes translate directly.

static const std::vector<FlagSpec> kFlags = {
    {"data", "input", 'i', FlagKind::String, "", "a text, or an llm.c token file, to train on; without it, the built-in grammar corpus", "FILE"},
    {"data", "val", 0, FlagKind::String, "", "a separate validation file of the same kind; without it, the last 10% of --input", "FILE"},
    {"data", "loader", 0, FlagKind::String, "random", "batches of random windows (nanoGPT), or 'sequential' windows in file order (llm.c)", "KIND"},
    {"data", "tokenizer", 0, FlagKind::String, "bytes", "how a text becomes tokens: 'bytes' (vocab 256) or 'bpe' (learned on the training split, saved as tokenizer.bpe in --out)", "KIND"},
    {"data", "vocab-size", 0, FlagKind::Int, "0", "bpe: the vocabulary to learn (0: 512); token files: the model's (0: the --tokenizer-file's, else GPT-2's 50257)"},
    {"data", "tokenizer-file", 0, FlagKind::String, "", "decodes samples of token-file data: llm.c's gpt2_tokenizer.bin or a tokenizer.bpe (without it, ids are printed)", "FILE"},
    {"data", "write-tokens", 0, FlagKind::String, "", "write the tokenized splits as llm.c token files PREFIX_train.bin and PREFIX_val.bin, then exit", "PREFIX"},
    {"model", "init-from", 0, FlagKind::String, "", "start from an llm.c model file (e.g. gpt2_124M.bin): its sizes and weights", "FILE"},
    {"model", "preset", 0, FlagKind::String, "", "'gpt2': GPT-2 small's shape (12 layers, 12 heads, 768 wide, max 1024 positions); vocabulary from the tokenizer", "NAME"},
    {"model", "n-layer", 0, FlagKind::Int, "4", "transformer blocks"},
    {"model", "n-head", 0, FlagKind::Int, "4", "attention heads per block"},
    {"model", "n-embd", 0, FlagKind::Int, "128", "width C of the residual stream (a multiple of --n-head)"},
    {"model", "max-seq-len", 0, FlagKind::Int, "0", "the model's longest sequence (0: --seq-len)"},
    {"model", "pos", 0, FlagKind::String, "learned", "positions: learned, sinusoidal, relative, rope, alibi or none", "SCHEME"},
    {"model", "norm", 0, FlagKind::String, "pre", "LayerNorm placement: post, pre or sandwich", "PLACE"},
    {"model", "tie", 0, FlagKind::Switch, "true", "tie the output layer to the token embedding (--no-tie: separate)"},
    {"model", "bias", 0, FlagKind::Switch, "true", "biases in the Linear and LayerNorm layers, as GPT-2 (--no-bias: none, as nanoGPT)"},
    {"model", "dropout", 0, FlagKind::Float, "0", "dropout at every site (the four flags below override it)"},
    {"model", "emb-dropout", 0, FlagKind::Float, "0", "dropout after the embeddings"},
    {"model", "attn-dropout", 0, FlagKind::Float, "0", "dropout on the attention probabilities"},
    {"model", "resid-dropout", 0, FlagKind::Float, "0", "dropout after the attention output projection"},
    {"model", "mlp-dropout", 0, FlagKind::Float, "0", "dropout after the MLP"},
    {"optimisation", "steps", 's', FlagKind::Int, "1500", "optimisation steps"},
    {"optimisation", "batch-size", 'b', FlagKind::Int, "16", "sequences per micro-batch (B)"},
    {"optimisation", "seq-len", 't', FlagKind::Int, "64", "tokens per sequence (T)"},
    {"optimisation", "total-batch-tokens", 0, FlagKind::Int, "0", "tokens per optimisation step, by gradient accumulation (0: B x T)"},
    {"optimisation", "lr", 0, FlagKind::Float, "4e-3", "peak learning rate"},
    {"optimisation", "min-lr", 0, FlagKind::Float, "-1", "final learning rate of the decay (-1: lr / 10)"},
    {"optimisation", "warmup", 0, FlagKind::Int, "50", "steps of linear warmup (none with --schedule constant, unless given)"},
    {"optimisation", "schedule", 0, FlagKind::String, "cosine", "after warmup: constant, cosine or linear decay to --min-lr", "KIND"},
    {"optimisation", "weight-decay", 0, FlagKind::Float, "0.1", "AdamW decay of the 2-D parameters (matmul weights, embeddings)"},
    {"optimisation", "beta1", 0, FlagKind::Float, "0.9", "AdamW's first-moment decay"},
    {"optimisation", "beta2", 0, FlagKind::Float, "0.95", "AdamW's second-moment decay"},
    {"optimisation", "eps", 0, FlagKind::Float, "1e-8", "AdamW's epsilon"},
    {"optimisation", "grad-clip", 0, FlagKind::Float, "1", "clip the global gradient norm to this (0: off)"},
    {"optimisation", "seed", 0, FlagKind::Int, "1337", "seed of the initialisation, dropout and batches"},
    {"optimisation", "threads", 0, FlagKind::Int, "0", "OpenMP threads (0: all cores)"},
    {"precision", "dtype", 0, FlagKind::String, "fp32", "fp32, or bf16: llm.c's mixed precision (bf16 weights, activations and gradients; fp32 sums, softmax, loss, AdamW state)", "TYPE"},
    {"precision", "master-weights", 0, FlagKind::Switch, "true", "bf16: AdamW updates an fp32 master copy of the weights (--no-master-weights: the bf16 weights themselves)"},
    {"precision", "rounding", 0, FlagKind::String, "stochastic", "bf16 without master weights: updates round to bf16 'stochastic'ally or to 'nearest' (which cancels updates under half a bf16 step)", "KIND"},
    {"evaluation", "eval-every", 0, FlagKind::Int, "250", "steps between validation losses (0: only at the end)"},
    {"evaluation", "eval-batches", 0, FlagKind::Int, "0", "validation batches per evaluation (0: the whole split)"},
    {"evaluation", "sample-every", 0, FlagKind::Int, "500", "steps between samples (0: only at the end)"},
    {"evaluation", "sample-len", 0, FlagKind::Int, "200", "tokens per sample"},
    {"evaluation", "prompt", 0, FlagKind::String, "", "text the samples start from; without it, a newline", "TEXT"},
    {"evaluation", "temperature", 0, FlagKind::Float, "0.8", "sampling temperature (0: always the most likely token)"},
    {"evaluation", "top-k", 0, FlagKind::Int, "0", "sample among the k most likely tokens only (0: all)"},
    {"evaluation", "sample-only", 0, FlagKind::Switch, "false", "generate from the checkpoint in --out, without training"},
    {"output", "out", 'o', FlagKind::String, "out", "folder for model.ckpt, log.csv and loss.svg", "DIR"},
    {"output", "resume", 0, FlagKind::Switch, "false", "continue the run saved in --out exactly where it stopped"},
    {"output", "export-llmc", 0, FlagKind::String, "", "at the end, also write the model as an llm.c model file (GPT-2's switches only)", "FILE"},
    {"output", "export-dtype", 0, FlagKind::String, "", "the values in --export-llmc: fp32 (version 3) or bf16 (version 5, what llm.c's GPU trainer reads); default: --dtype", "TYPE"},
    {"output", "profile", 0, FlagKind::Switch, "false", "at the end, print where a step's time went, op by op (forward and backward)"},
    {"output", "stop-after", 0, FlagKind::Int, "0", "end this session after that step, saving a checkpoint to --resume from (0: run to --steps)"},
};

// Flags that may differ when a run is resumed; every other training flag must match the checkpoint.
static const char* kChangeableOnResume[] = {"steps", "threads", "eval-every", "eval-batches", "sample-every",
                                            "sample-len", "prompt", "temperature", "top-k", "out", "resume",
                                            "stop-after", "profile", "export-llmc", "export-dtype", "tokenizer-file"};
// Flags that describe the model: a checkpoint decides them on --resume and --sample-only, and an llm.c
// file (--init-from) decides the sizes and switches (the first ten).
static const char* kModelFlags[] = {"vocab-size", "preset", "n-layer", "n-head", "n-embd", "max-seq-len", "pos", "norm", "tie", "bias",
                                    "init-from", "dropout", "emb-dropout", "attn-dropout", "resid-dropout", "mlp-dropout"};

// Ctrl-C: finish the current step, save, and stop. A second Ctrl-C stops at once.
static volatile std::sig_atomic_t g_interrupted = 0;
static void on_interrupt(int) {
    g_interrupted = 1;
    std::signal(SIGINT, SIG_DFL);
}

static void require(bool ok, const std::string& message) {
    if (!ok) throw Error(message);
}

static std::string fmt(const char* format, double v) {
    char buf[400];  // "%.6f" of the largest double has 316 characters (a hostile log.csv can hold one)
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

static std::string duration(double seconds) {
    int s = (int)std::lround(seconds);
    if (s >= 3600) return std::to_string(s / 3600) + "h" + fmt("%02.0f", (s / 60) % 60) + "m";
    if (s >= 60) return std::to_string(s / 60) + "m" + fmt("%02.0f", s % 60) + "s";
    return std::to_string(s) + "s";
}

// Checks the numbers a user gave before anything is built, naming the flag.
static void check_flags(const Flags& f) {
    require(f.get_int("steps") >= 0, "--steps must be 0 or more, got " + f.value_text("steps"));
    require(f.get_int("batch-size") >= 1, "--batch-size must be at least 1, got " + f.value_text("batch-size"));
    require(f.get_int("seq-len") >= 1, "--seq-len must be at least 1, got " + f.value_text("seq-len"));
    require(f.get_int("n-layer") >= 1, "--n-layer must be at least 1, got " + f.value_text("n-layer"));
    require(f.get_int("n-head") >= 1, "--n-head must be at least 1, got " + f.value_text("n-head"));
    require(f.get_int("n-embd") >= 1, "--n-embd must be at least 1, got " + f.value_text("n-embd"));
    require(f.get_int("n-embd") % f.get_int("n-head") == 0,
            "--n-embd " + f.value_text("n-embd") + " is not a multiple of --n-head " + f.value_text("n-head"));
    require(f.get_int("max-seq-len") >= 0, "--max-seq-len must be 0 or more, got " + f.value_text("max-seq-len"));
    for (const char* d : {"dropout", "emb-dropout", "attn-dropout", "resid-dropout", "mlp-dropout"})
        require(f.get_float(d) >= 0 && f.get_float(d) < 1,
                std::string("--") + d + " " + f.value_text(d) + " must be in [0, 1)");
    require(f.get_float("lr") > 0, "--lr must be greater than 0, got " + f.value_text("lr"));
    require(f.get_float("min-lr") == -1 || (f.get_float("min-lr") >= 0 && f.get_float("min-lr") <= f.get_float("lr")),
            "--min-lr " + f.value_text("min-lr") + " must be between 0 and --lr " + f.value_text("lr"));
    require(f.get_int("warmup") >= 0, "--warmup must be 0 or more, got " + f.value_text("warmup"));
    require(f.get_float("weight-decay") >= 0, "--weight-decay must be 0 or more, got " + f.value_text("weight-decay"));
    for (const char* b : {"beta1", "beta2"})
        require(f.get_float(b) >= 0 && f.get_float(b) < 1, std::string("--") + b + " " + f.value_text(b) + " must be in [0, 1)");
    require(f.get_float("eps") > 0, "--eps must be greater than 0, got " + f.value_text("eps"));
    require(f.get_float("grad-clip") >= 0, "--grad-clip must be 0 (off) or more, got " + f.value_text("grad-clip"));
    require(f.get_int("total-batch-tokens") >= 0, "--total-batch-tokens must be 0 or more");
    require(f.get_int("threads") >= 0, "--threads must be 0 (all cores) or more, got " + f.value_text("threads"));
    for (const char* n : {"eval-every", "eval-batches", "sample-every", "sample-len", "top-k", "stop-after"})
        require(f.get_int(n) >= 0, std::string("--") + n + " must be 0 or more, got " + f.value_text(n));
    require(f.get_float("temperature") >= 0, "--temperature must be 0 or more, got " + f.value_text("temperature"));
    std::string tok = f.get_string("tokenizer");
    require(tok == "bytes" || tok == "bpe", "unknown --tokenizer '" + tok + "' (expected bytes or bpe)");
    require(f.get_int("vocab-size") >= 0, "--vocab-size must be 0 (the default) or more, got " + f.value_text("vocab-size"));
    require(f.get_int("vocab-size") <= 65536, "--vocab-size " + f.value_text("vocab-size") +
                                                  " is more than 65536 (token ids are 16-bit, in token files and BPE alike)");
    if (tok == "bpe" && f.get_int("vocab-size"))
        require(f.get_int("vocab-size") >= 256 && f.get_int("vocab-size") <= 65536,
                "--vocab-size " + f.value_text("vocab-size") + " is outside 256 .. 65536 (a BPE vocabulary is the 256 bytes plus its merges)");
    std::string preset = f.get_string("preset");
    require(preset.empty() || preset == "gpt2", "unknown --preset '" + preset + "' (expected gpt2)");
    const std::string dtype = f.get_string("dtype"), rounding = f.get_string("rounding");
    const std::string export_dtype = f.get_string("export-dtype");
    require(dtype == "fp32" || dtype == "bf16", "unknown --dtype '" + dtype + "' (expected fp32 or bf16)");
    require(rounding == "stochastic" || rounding == "nearest",
            "unknown --rounding '" + rounding + "' (expected stochastic or nearest)");
    require(export_dtype.empty() || export_dtype == "fp32" || export_dtype == "bf16",
            "unknown --export-dtype '" + export_dtype + "' (expected fp32 or bf16)");
    const bool resume = f.get_switch("resume");  // (a resumed run's precision is the checkpoint's)
    require(resume || !f.given("master-weights") || dtype == "bf16",
            "--[no-]master-weights needs --dtype bf16 (fp32 weights are their own master)");
    require(resume || !f.given("rounding") || (dtype == "bf16" && !f.get_switch("master-weights")),
            "--rounding needs --dtype bf16 --no-master-weights (with master weights the update rounds to nearest)");
    require(!f.given("export-dtype") || f.given("export-llmc"), "--export-dtype needs --export-llmc FILE");
    (void)parse_loader_kind(f.get_string("loader"));
    try {
        (void)nn::parse_pos_scheme(f.get_string("pos"));
        (void)nn::parse_norm_placement(f.get_string("norm"));
        (void)optim::schedule_kind(f.get_string("schedule"));
    } catch (const std::invalid_argument& e) {
        throw Error(e.what());
    }
}

// The dropout rates: --dropout at every site, unless a site's own flag says otherwise.
static void set_dropout(const Flags& f, nn::GPTConfig& c) {
    double all = f.get_float("dropout");
    auto site = [&](const char* name) { return f.given(name) ? f.get_float(name) : all; };
    c.emb_dropout = site("emb-dropout");
    c.attn_dropout = site("attn-dropout");
    c.resid_dropout = site("resid-dropout");
    c.mlp_dropout = site("mlp-dropout");
}

// llm.c pads GPT-2's vocabulary to a multiple of 128 (50257 -> 50304) for faster matmuls. In int64:
// a vocabulary near INT_MAX (a tokenizer file's) would overflow the sum.
static int padded_to_128(int vocab) {
    const int64_t padded = ((int64_t)vocab + 127) / 128 * 128;
    require(padded <= INT_MAX, "a vocabulary of " + std::to_string(vocab) + " tokens is too large");
    return (int)padded;
}

// The model the flags describe (for a new run), with a vocabulary of vocab_size tokens (padded_vocab
// rows in the embedding and logits; 0: no padding).
static nn::GPTConfig config_from_flags(const Flags& f, int vocab_size, int padded_vocab) {
    nn::GPTConfig c;
    c.vocab_size = vocab_size;
    c.padded_vocab_size = padded_vocab;
    c.n_layer = f.get_int("n-layer");
    c.n_head = f.get_int("n-head");
    c.n_embd = f.get_int("n-embd");
    c.max_seq_len = f.get_int("max-seq-len") ? f.get_int("max-seq-len") : f.get_int("seq-len");
    if (f.get_string("preset") == "gpt2") {
        nn::GPTConfig g = nn::GPTConfig::gpt2();
        c.n_layer = g.n_layer, c.n_head = g.n_head, c.n_embd = g.n_embd, c.max_seq_len = g.max_seq_len;
    }
    c.pos = nn::parse_pos_scheme(f.get_string("pos"));
    c.norm = nn::parse_norm_placement(f.get_string("norm"));
    c.tie_weights = f.get_switch("tie");
    c.bias = f.get_switch("bias");
    set_dropout(f, c);
    return c;
}

// --init-from FILE decides the model; a size or switch given as well must agree with the file.
static void check_agrees_with_file(const Flags& f, const nn::GPTConfig& file, const std::string& path) {
    nn::GPTConfig asked = config_from_flags(f, file.vocab_size, file.padded_vocab_size);
    auto agree = [&](const char* flag, bool same, const std::string& theirs) {
        require(!f.given(flag) || same, std::string("--") + flag + " " + f.value_text(flag) + " disagrees with '" +
                                            path + "', whose model has " + theirs);
    };
    agree("vocab-size", f.get_int("vocab-size") == file.vocab_size, "a vocabulary of " + std::to_string(file.vocab_size));
    agree("n-layer", asked.n_layer == file.n_layer, std::to_string(file.n_layer) + " layers");
    agree("n-head", asked.n_head == file.n_head, std::to_string(file.n_head) + " heads");
    agree("n-embd", asked.n_embd == file.n_embd, "n_embd " + std::to_string(file.n_embd));
    agree("max-seq-len", asked.max_seq_len == file.max_seq_len, "max " + std::to_string(file.max_seq_len) + " positions");
    agree("preset", asked.n_layer == file.n_layer && asked.n_head == file.n_head && asked.n_embd == file.n_embd &&
                        asked.max_seq_len == file.max_seq_len,
          "another shape (" + std::to_string(file.n_layer) + " layers, " + std::to_string(file.n_head) + " heads, " +
              std::to_string(file.n_embd) + " wide)");
    agree("pos", asked.pos == file.pos, "learned positions");
    agree("norm", asked.norm == file.norm, "pre-LN");
    agree("tie", asked.tie_weights == file.tie_weights, "a tied output layer");
    agree("bias", asked.bias == file.bias, "biases");
}

// The memory of what training keeps per parameter (the value, its gradient, AdamW's m and v, and in
// bf16 the master copy), here, where bf16 numbers are held in floats, and in real bf16 storage.
static std::string training_state_text(int64_t n_params, const optim::AdamWConfig& adamw) {
    const double n = (double)n_params, mb = 1024.0 * 1024.0;
    const double master = adamw.bf16_params && adamw.master_weights ? 4 : 0;
    const double here = n * (4 * sizeof(ag::real) + master) / mb;
    if (!adamw.bf16_params) return fmt("%.1f MB (parameters, gradients, AdamW m, v)", here);
    return fmt("%.1f MB (bf16 held in floats; ", here) + fmt("%.1f MB as bf16)", n * (2 + 2 + 8 + master) / mb);
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

// The training settings as saved in a checkpoint: every flag except the model's, which the config holds.
static std::map<std::string, std::string> settings_of(const Flags& f) {
    std::map<std::string, std::string> s;
    for (const FlagSpec& spec : f.specs()) s[spec.name] = f.value_text(spec.name);
    return s;
}

// On --resume: a flag given now must agree with the saved run, unless it is one that may change.
static void check_resume_flags(const Flags& f, const RunInfo& saved) {
    for (const FlagSpec& spec : f.specs()) {
        if (!f.given(spec.name)) continue;
        bool changeable = false;
        for (const char* n : kChangeableOnResume) changeable = changeable || spec.name == n;
        auto it = saved.settings.find(spec.name);
        if (changeable || it == saved.settings.end()) continue;
        require(it->second == f.value_text(spec.name),
                "--" + spec.name + " " + f.value_text(spec.name) + " differs from the resumed run's " + it->second +
                    " (a resumed run keeps its settings; only --steps and the evaluation and output flags may change)");
    }
}

// ===================================================================================================
// Evaluation: the mean loss over every target of the validation split (or its first `max_batches`).

static double evaluate(nn::GPT& model, const EvalWindows& windows, int max_batches) {
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

static std::string sample_text(nn::GPT& model, const Tokenizer& tok, const Flags& f, uint64_t seed) {
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
    require(!start.empty(), "the --prompt gave no tokens");
    ag::Rng rng(seed);  // its own generator: sampling never disturbs the training run's randomness
    std::vector<int> out = sample_tokens(model, start, s, rng);
    return prompt + tok.decode(out);
}

// ===================================================================================================
// --profile: the time of the average step, by op (forward and backward) and by trainer phase.

static double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

static void print_profile(int64_t steps) {
    std::vector<ag::profiler::Entry> entries = ag::profiler::entries();
    double total = 0;
    for (const auto& e : entries) total += e.forward_ms + e.backward_ms;
    if (steps <= 0 || total <= 0) return;
    std::printf("profile over %lld steps (the first left out): %.1f ms per step\n", (long long)steps, total / (double)steps);
    std::printf("  %-22s %12s %12s %10s %8s\n", "op or phase", "forward ms", "backward ms", "% of step", "calls");
    for (const auto& e : entries)
        std::printf("  %-22s %12.2f %12.2f %9.1f%% %8.1f\n", e.name.c_str(), e.forward_ms / (double)steps,
                    e.backward_ms / (double)steps, 100 * (e.forward_ms + e.backward_ms) / total,
                    (double)e.calls / (double)steps);
}

// ===================================================================================================
// The log: one row per step, rewritten (atomically) as log.csv and drawn as loss.svg.

struct LogRow {
    int64_t step;
    double train_loss, val_loss, lr, grad_norm, ms;  // val_loss is NaN where there was no evaluation
};

static std::string csv_of(const std::vector<LogRow>& rows) {
    std::string s = "step,train_loss,val_loss,lr,grad_norm,ms\n";
    for (const LogRow& r : rows) {
        s += std::to_string(r.step) + "," + fmt("%.6f", r.train_loss) + "," +
             (std::isnan(r.val_loss) ? "" : fmt("%.6f", r.val_loss)) + "," + fmt("%.6g", r.lr) + "," +
             fmt("%.6g", r.grad_norm) + "," + fmt("%.2f", r.ms) + "\n";
    }
    return s;
}

// The fields of a line of comma-separated values, empty ones included: "1,2,,3" -> {"1", "2", "", "3"}.
static std::vector<std::string> split_commas(const std::string& line) {
    std::vector<std::string> fields = {""};
    for (char c : line) {
        if (c == ',') fields.emplace_back();
        else fields.back() += c;
    }
    return fields;
}

// The val_loss field: empty where there was no evaluation, "inf" where it overflowed, else a number.
static bool parse_val_loss(const std::string& text, double& out) {
    out = text.empty() ? NAN : INFINITY;
    return text.empty() || text == "inf" || parse_float(text, out);
}

// One row of log.csv as csv_of writes it: six numbers, all finite but the val_loss.
static bool parse_log_row(const std::string& line, LogRow& r) {
    const std::vector<std::string> f = split_commas(line);
    int step = 0;
    if (f.size() != 6 || !parse_int(f[0], step)) return false;
    r.step = step;
    return parse_float(f[1], r.train_loss) && parse_val_loss(f[2], r.val_loss) && parse_float(f[3], r.lr) &&
           parse_float(f[4], r.grad_norm) && parse_float(f[5], r.ms);
}

// Reads back the rows of an earlier log.csv up to `last_step` (for --resume); a missing file is no rows.
// A row that is not what csv_of writes is an error naming the line: the file is the run's record.
static std::vector<LogRow> read_log(const std::string& path, int64_t last_step) {
    std::vector<LogRow> rows;
    std::string text;
    try {
        text = read_file(path, true);
    } catch (const Error&) {
        return rows;
    }
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // header
    for (int number = 2; std::getline(lines, line); ++number) {
        LogRow r;
        if (!parse_log_row(line, r))
            throw Error("'" + path + "' line " + std::to_string(number) +
                        " is not a row step,train_loss,val_loss,lr,grad_norm,ms of numbers (remove the file to "
                        "resume without the earlier rows)");
        if (r.step <= last_step) rows.push_back(r);
    }
    return rows;
}

// `optimum` (NaN if unknown) is drawn as a dashed line: the best loss any model could reach.
static void write_logs(const std::string& out_dir, const std::vector<LogRow>& rows, const std::string& title,
                       double optimum) {
    std::vector<std::pair<int, double>> train_points, val_points;
    for (const LogRow& r : rows) {
        train_points.push_back({(int)r.step, r.train_loss});
        if (!std::isnan(r.val_loss)) val_points.push_back({(int)r.step, r.val_loss});
    }
    write_file_atomic(join_path(out_dir, "log.csv"), csv_of(rows));
    write_file_atomic(join_path(out_dir, "loss.svg"), loss_svg(train_points, val_points, title, optimum));
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
        for (const char* m : kModelFlags)
            require(!flags.given(m), std::string("--") + m + " cannot change the model of a saved run ('" +
                                         ckpt_path + "' decides it)");
        if (resume) check_resume_flags(flags, saved->info());
    }
    auto setting = [&](const char* name) {  // a training setting: the saved run's on --resume
        return resume && !flags.given(name) && saved->info().settings.count(name) ? saved->info().settings.at(name)
                                                                                  : flags.value_text(name);
    };
    // As numbers. Flags were checked when they were given, so a setting that does not parse is the
    // checkpoint's, and the message names it.
    auto bad_setting = [&](const char* name, const char* expected) {
        return Error("'" + ckpt_path + "' has a bad value for setting '" + name + "': '" + setting(name) +
                     "' (expected " + expected + ")");
    };
    auto setting_int = [&](const char* name) {
        int v = 0;
        if (!parse_int(setting(name), v)) throw bad_setting(name, "an integer");
        return v;
    };
    auto setting_float = [&](const char* name) {
        double v = 0;
        if (!parse_float(setting(name), v)) throw bad_setting(name, "a finite number");
        return v;
    };
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
        config = config_from_flags(flags, vocab, padded_to_128(vocab));
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
                std::to_string(B) + " x " + std::to_string(T) + " = " + std::to_string((int64_t)B * T) + " tokens");
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

    auto val_report = [&](double val) {
        std::string s = "val loss " + fmt("%.4f", val);
        if (!std::isnan(optimum)) s += " (optimum " + fmt("%.4f", optimum) + ", gap " + fmt("%.4f", val - optimum) + ")";
        return s;
    };
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
            std::printf("step %lld: %s\n", (long long)step + 1, val_report(last_val).c_str());
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
    if (!std::isnan(last_val)) std::printf("final %s\n", val_report(last_val).c_str());
    std::printf("wrote %s, %s, %s\n", ckpt_path.c_str(), join_path(out_dir, "log.csv").c_str(),
                join_path(out_dir, "loss.svg").c_str());
    if (profile) print_profile(step - start_step - 1);
    return 0;
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
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fflush(stdout);  // what the run printed so far comes before the error
        std::fprintf(stderr, "error: %s\n", printable(e.what()).c_str());
        return 1;
    }
}
