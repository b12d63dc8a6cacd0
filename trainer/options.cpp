// options.cpp: the flag table of ./train and the checks and translations of its flags.
#include "options.h"

#include <stdexcept>

#include "../optim/optim.h"
#include "data.h"
#include "error.h"

namespace train {

const std::vector<FlagSpec> kFlags = {
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
    {"optimisation", "decay-all", 0, FlagKind::Switch, "false", "decay every parameter, the 1-D ones (biases, LayerNorm) too, not only the 2-D ones"},
    {"optimisation", "beta1", 0, FlagKind::Float, "0.9", "AdamW's first-moment decay"},
    {"optimisation", "beta2", 0, FlagKind::Float, "0.95", "AdamW's second-moment decay"},
    {"optimisation", "eps", 0, FlagKind::Float, "1e-8", "AdamW's epsilon"},
    {"optimisation", "grad-clip", 0, FlagKind::Float, "1", "clip the global gradient norm to this (0: off)"},
    {"optimisation", "spike-window", 0, FlagKind::Int, "128", "steps whose loss and gradient norm the spike detector scores each step against (llm.c's idea)"},
    {"optimisation", "spike-z", 0, FlagKind::Float, "5", "mark a step as a spike (in its line and log.csv) when its loss or gradient norm is this many standard deviations above the window's mean"},
    {"optimisation", "skip-spikes", 0, FlagKind::Float, "0", "do not apply the update of a step whose z-score exceeds this (0: apply every update)", "Z"},
    {"optimisation", "seed", 0, FlagKind::Int, "1337", "seed of the initialisation, dropout and batches"},
    {"optimisation", "threads", 0, FlagKind::Int, "0", "OpenMP threads (0: all cores)"},
    {"optimisation", "kernels", 0, FlagKind::String, "fast", "which tier of the ops runs: fast (tuned), or reference (autograd/ops_*.cpp, plain loops: slow, the same losses to float rounding)", "TIER"},
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
    {"evaluation", "eval-only", 0, FlagKind::Switch, "false", "evaluate the checkpoint in --out on the validation split, without training"},
    {"evaluation", "eval-seq-len", 0, FlagKind::Int, "0", "--eval-only: windows of this many tokens (0: the run's --seq-len); past the trained length, all but learned positions"},
    {"evaluation", "position-loss", 0, FlagKind::String, "", "--eval-only: write the validation loss at each position of a window to this CSV (position,loss)", "FILE"},
    {"evaluation", "sample-only", 0, FlagKind::Switch, "false", "generate from the checkpoint in --out, without training"},
    {"output", "out", 'o', FlagKind::String, "out", "folder for model.ckpt, log.csv and loss.svg (with --plot: the SVG file to write)", "DIR"},
    {"output", "resume", 0, FlagKind::Switch, "false", "continue the run saved in --out exactly where it stopped"},
    {"output", "export-llmc", 0, FlagKind::String, "", "at the end, also write the model as an llm.c model file (GPT-2's switches only)", "FILE"},
    {"output", "export-dtype", 0, FlagKind::String, "", "the values in --export-llmc: fp32 (version 3) or bf16 (version 5, what llm.c's GPU trainer reads); default: --dtype", "TYPE"},
    {"output", "profile", 0, FlagKind::Switch, "false", "at the end, print where a step's time went, op by op (forward and backward)"},
    {"output", "stop-after", 0, FlagKind::Int, "0", "end this session after that step, saving a checkpoint to --resume from (0: run to --steps)"},
    {"plot", "plot", 0, FlagKind::String, "", "draw the log.csv of these run folders (comma-separated) on one chart, written to --out, and exit; an item FILE.csv is a table x,y (e.g. --position-loss's) drawn as a line", "DIRS"},
    {"plot", "labels", 0, FlagKind::String, "", "--plot: the runs' names in the legend, comma-separated (default: the folders' names); with --plot-x, runs of one name are one line (a sweep's seeds)", "NAMES"},
    {"plot", "plot-loss", 0, FlagKind::String, "train", "--plot: which loss to draw against the step: train or val", "WHICH"},
    {"plot", "plot-x", 0, FlagKind::String, "", "--plot: instead, each run's final loss against this setting of its checkpoint (e.g. lr)", "SETTING"},
    {"plot", "x-values", 0, FlagKind::String, "", "--plot-x: the runs' x values, comma-separated, instead of their checkpoints' settings", "XS"},
    {"plot", "log-x", 0, FlagKind::Switch, "false", "--plot: a logarithmic x axis (for swept rates)"},
};

// Flags that may differ when a run is resumed; every other training flag must match the checkpoint.
static const char* kChangeableOnResume[] = {"steps", "threads", "eval-every", "eval-batches", "sample-every",
                                            "sample-len", "prompt", "temperature", "top-k", "out", "resume",
                                            "stop-after", "profile", "export-llmc", "export-dtype", "tokenizer-file",
                                            "kernels", "spike-z", "skip-spikes", "eval-only", "eval-seq-len",
                                            "position-loss"};
// Flags that describe the model: a checkpoint decides them on --resume and --sample-only, and an llm.c
// file (--init-from) decides the sizes and switches (the first ten).
static const char* kModelFlags[] = {"vocab-size", "preset", "n-layer", "n-head", "n-embd", "max-seq-len", "pos", "norm", "tie", "bias",
                                    "init-from", "dropout", "emb-dropout", "attn-dropout", "resid-dropout", "mlp-dropout"};

// Checks the numbers a user gave before anything is built, naming the flag.
void check_flags(const Flags& f) {
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
    require(f.get_int("spike-window") >= 1, "--spike-window must be at least 1, got " + f.value_text("spike-window"));
    require(f.get_float("spike-z") > 0, "--spike-z must be greater than 0, got " + f.value_text("spike-z"));
    require(f.get_float("skip-spikes") >= 0, "--skip-spikes must be 0 (off) or more, got " + f.value_text("skip-spikes"));
    require(f.get_int("eval-seq-len") >= 0, "--eval-seq-len must be 0 or more, got " + f.value_text("eval-seq-len"));
    for (const char* n : {"eval-seq-len", "position-loss"})
        require(!f.given(n) || f.get_switch("eval-only"), std::string("--") + n + " needs --eval-only");
    require(!(f.get_switch("eval-only") && f.get_switch("sample-only")), "--eval-only and --sample-only exclude each other");
    for (const char* n : {"labels", "plot-loss", "plot-x", "x-values", "log-x"})
        require(!f.given(n) || f.given("plot"), std::string("--") + n + " needs --plot DIRS");
    const std::string plot_loss = f.get_string("plot-loss");
    require(plot_loss == "train" || plot_loss == "val", "unknown --plot-loss '" + plot_loss + "' (expected train or val)");
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
    const std::string kernels = f.get_string("kernels");
    require(kernels == "fast" || kernels == "reference", "unknown --kernels '" + kernels + "' (expected fast or reference)");
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
void set_dropout(const Flags& f, nn::GPTConfig& c) {
    double all = f.get_float("dropout");
    auto site = [&](const char* name) { return f.given(name) ? f.get_float(name) : all; };
    c.emb_dropout = site("emb-dropout");
    c.attn_dropout = site("attn-dropout");
    c.resid_dropout = site("resid-dropout");
    c.mlp_dropout = site("mlp-dropout");
}

// The model the flags describe (for a new run), with a vocabulary of vocab_size tokens (padded_vocab
// rows in the embedding and logits; 0: no padding).
nn::GPTConfig config_from_flags(const Flags& f, int vocab_size, int padded_vocab) {
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
void check_agrees_with_file(const Flags& f, const nn::GPTConfig& file, const std::string& path) {
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

void check_no_model_flags(const Flags& f, const std::string& ckpt_path) {
    for (const char* m : kModelFlags)
        require(!f.given(m), std::string("--") + m + " cannot change the model of a saved run ('" + ckpt_path +
                                 "' decides it)");
}

// The model's flags are saved too, though the saved config is what decides a loaded model.
std::map<std::string, std::string> settings_of(const Flags& f) {
    std::map<std::string, std::string> s;
    for (const FlagSpec& spec : f.specs()) s[spec.name] = f.value_text(spec.name);
    return s;
}

// On --resume: a flag given now must agree with the saved run, unless it is one that may change.
void check_resume_flags(const Flags& f, const RunInfo& saved) {
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

}  // namespace train
