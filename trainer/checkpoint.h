// checkpoint.h: saving a run and continuing it exactly.
//
// A checkpoint holds everything a run needs to go on as if it had never stopped: the model's
// configuration (every switch), its parameters, the optimizer's state (step count, moments), the
// dropout generator, the data loader's position and generator, the step, and the training settings
// (so that --resume can refuse flags that contradict them). It is written to a temporary file and
// renamed into place, so a crash never leaves half a checkpoint.
//
// Layout (all numbers in the machine's byte order; strings are a u64 length then bytes):
//   magic "GPTCKPT\0" (8 bytes), version u32, sizeof(real) u32,
//   then five sections, each a length-prefixed blob:
//     info       text, one "key=value" per line: the model config, tokenizer, step, settings
//     params     u64 count; per parameter: name, u32 ndim, i64 dims..., the values
//     rng        the dropout generator: u64 state, u32 has_spare, f64 spare
//     optimizer  the optimizer's own state (optim::Optimizer::save_state), empty if none
//     loader     the batch loader's state (BatchLoader::save), empty if none
#pragma once

#include <map>
#include <string>

#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "data.h"

namespace train {

// What a run is, apart from the tensors.
struct RunInfo {
    nn::GPTConfig config;
    std::string tokenizer = "bytes";             // bytes, bpe, gpt2 or ids (inputs.h: open_tokenizer)
    std::string tokenizer_file;                  // the file a bpe or gpt2 tokenizer is read from; empty
                                                 // for a bpe: tokenizer.bpe beside the checkpoint
    int64_t step = 0;                            // steps completed
    std::map<std::string, std::string> settings; // training flags, as given: "lr" -> "0.001"
    std::string spike_window;                    // the spike detector's window (SpikeDetector::to_text);
                                                 // empty in a checkpoint written before it existed
};

void save_checkpoint(const std::string& path, const RunInfo& info, const nn::GPT& model,
                     const optim::Optimizer* optimizer, const BatchLoader* loader);

// Reads and checks a whole checkpoint at construction (magic, version, float size, every section's
// length, the info text); then the load_* calls put its contents into objects built to match.
// Every problem is a train::Error naming the file: "'out/model.ckpt' is not a checkpoint (wrong
// magic)", "'out/model.ckpt' is truncated: ...", "'out/model.ckpt' does not fit the model: ...".
class CheckpointReader {
public:
    explicit CheckpointReader(const std::string& path);
    const RunInfo& info() const { return info_; }
    bool has_optimizer() const { return !optimizer_.empty(); }  // (before load_optimizer)
    bool has_loader() const { return !loader_.empty(); }

    // Each of these may be called once: a section's memory is given back once it is loaded.
    void load_model(nn::GPT& model);  // parameters and the dropout generator
    void load_optimizer(optim::Optimizer& optimizer);
    void load_loader(BatchLoader& loader) const;

private:
    std::string path_;
    RunInfo info_;
    std::string params_, rng_, optimizer_, loader_;
};

// The config as "key=value" lines and back; from_text throws naming a missing or bad key.
std::string config_to_text(const nn::GPTConfig& config);
nn::GPTConfig config_from_text(const std::map<std::string, std::string>& kv, const std::string& source);

}  // namespace train
