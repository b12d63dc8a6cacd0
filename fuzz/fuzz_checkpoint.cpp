// fuzz_checkpoint.cpp: a checkpoint (--resume, --sample-only), read as ./train reads it: the reader's
// checks, then the model, the optimizer and the data loader built from what it says and loaded.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../nn/gpt.h"
#include "../optim/optim.h"
#include "../trainer/checkpoint.h"
#include "../trainer/data.h"
#include "../trainer/flags.h"
#include "fuzz_util.h"

// A setting of the checkpoint as a small positive int, else `fallback` (the target builds the loader
// from these; ./train refuses bad ones in check_resume_flags, which the command-line target covers).
static int small_setting(const train::RunInfo& info, const char* key, int fallback) {
    auto it = info.settings.find(key);
    int v = 0;
    if (it == info.settings.end() || !train::parse_int(it->second, v) || v < 1 || v > 64) return fallback;
    return v;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_temp(data, size, ".ckpt");
    fuzz::expect_error_or_success([&] {
        train::CheckpointReader reader(path);
        nn::GPT model(reader.info().config, 1);
        reader.load_model(model);
        if (reader.has_optimizer()) {
            optim::AdamW adamw(optim::param_groups(model.parameters()));
            reader.load_optimizer(adamw);
        }
        if (reader.has_loader()) {
            const int B = small_setting(reader.info(), "batch-size", 2), T = small_setting(reader.info(), "seq-len", 8);
            auto kind = reader.info().settings.count("loader") ? reader.info().settings.at("loader") : "random";
            const train::Tokens tokens(4096, 1);
            train::BatchLoader loader(tokens, B, T, train::parse_loader_kind(kind), 1, "'tokens'");
            reader.load_loader(loader);
            for (int i = 0; i < 3; ++i) loader.next();
        }
    });
    return 0;
}
