// data.cpp: byte tokenizer, the train/validation split, the two batch loaders, evaluation windows.

#include "data.h"

#include <algorithm>
#include <stdexcept>

#include "error.h"
#include "files.h"

namespace train {

// ---- tokenizers

Tokens ByteTokenizer::encode(const std::string& text) const {
    Tokens tokens(text.size());
    for (size_t i = 0; i < text.size(); ++i) tokens[i] = (unsigned char)text[i];  // bytes 128..255 stay positive
    return tokens;
}

std::string ByteTokenizer::decode(const Tokens& tokens) const {
    std::string text(tokens.size(), '\0');
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] > 255)
            throw Error("token " + std::to_string(tokens[i]) + " is not a byte (the byte tokenizer has ids 0..255)");
        text[i] = (char)(unsigned char)tokens[i];
    }
    return text;
}

// ---- train / validation split

DataSplit split_train_val(const Tokens& all, const std::string& source) {
    DataSplit split;
    split_last_tenth(all, split.train, split.val);
    split.train_source = source + " (first 90%)";
    split.val_source = source + " (last 10%)";
    return split;
}

DataSplit load_text_data(const std::string& input_path, const std::string& val_path, const Tokenizer& tokenizer) {
    Tokens all = tokenizer.encode(read_file(input_path));
    if (val_path.empty()) return split_train_val(all, "'" + input_path + "'");

    DataSplit split;
    split.train = std::move(all);
    split.val = tokenizer.encode(read_file(val_path));
    split.train_source = "'" + input_path + "'";
    split.val_source = "'" + val_path + "'";
    return split;
}

// ---- batch loaders

LoaderKind parse_loader_kind(const std::string& name) {
    if (name == "random") return LoaderKind::Random;
    if (name == "sequential") return LoaderKind::Sequential;
    throw Error("unknown loader '" + name + "' (expected random or sequential)");
}

const char* loader_kind_name(LoaderKind kind) { return kind == LoaderKind::Random ? "random" : "sequential"; }

BatchLoader::BatchLoader(const Tokens& tokens, int B, int T, LoaderKind kind, uint64_t seed, const std::string& source)
    : tokens_(tokens), B_(B), T_(T), kind_(kind), source_(source) {
    if (B < 1 || T < 1)
        throw Error("a batch of " + std::to_string(B) + " x " + std::to_string(T) + " is empty; B and T must be at least 1");
    // One whole batch, B*T+1 tokens, for both kinds: the random kind could make do with T+1, but then
    // its B rows would overlap almost entirely, which is not training on the text but on one snippet.
    size_t needed = (size_t)B * (size_t)T + 1;
    if (tokens.size() < needed)
        throw Error(source + " has " + std::to_string(tokens.size()) + " tokens; a batch of " + std::to_string(B) +
                    " x " + std::to_string(T) + " needs at least " + std::to_string(needed));
    state_.rng = ag::Rng(seed);
}

// Row `row` of the batch is the window tokens[start .. start+T] (T+1 tokens): inputs its first T,
// targets its last T.
void BatchLoader::fill_row(Batch& batch, int row, size_t start) const {
    int* inputs = batch.inputs.data() + (size_t)row * T_;
    int* targets = batch.targets.data() + (size_t)row * T_;
    for (int t = 0; t < T_; ++t) {
        inputs[t] = tokens_[start + t];
        targets[t] = tokens_[start + t + 1];
    }
}

void BatchLoader::next(Batch& batch) {
    batch.B = B_;
    batch.T = T_;
    batch.inputs.resize(batch.count());
    batch.targets.resize(batch.count());

    if (kind_ == LoaderKind::Random) {
        // nanoGPT: ix = torch.randint(len(data) - block_size, (batch_size,))
        uint64_t n_starts = tokens_.size() - (size_t)T_;  // starts 0 .. n-T-1 leave room for T+1 tokens
        for (int b = 0; b < B_; ++b) fill_row(batch, b, (size_t)state_.rng.below(n_starts));
        return;
    }

    // llm.c: the rows are consecutive pieces of one stretch of B*T+1 tokens.
    size_t batch_tokens = (size_t)B_ * (size_t)T_;
    for (int b = 0; b < B_; ++b) fill_row(batch, b, state_.position + (size_t)b * T_);
    state_.position += batch_tokens;
    if (state_.position + batch_tokens + 1 > tokens_.size()) state_.position = 0;  // the next would run past the end
}

Batch BatchLoader::next() {
    Batch batch;
    next(batch);
    return batch;
}

void BatchLoader::restore(const LoaderState& state) {
    // The last start that leaves room for a batch (the constructor checked there is one). Compared
    // without adding to the position: a corrupt position near 2^64 would wrap the sum past the check.
    const size_t last_start = tokens_.size() - (size_t)B_ * (size_t)T_ - 1;
    if (state.position > last_start)
        throw Error("the saved data position " + std::to_string(state.position) + " is past the end of " + source_ +
                    " (" + std::to_string(tokens_.size()) + " tokens): was the checkpoint made with other data?");
    state_ = state;
}

void BatchLoader::save(ByteWriter& out) const {
    out.u32((uint32_t)kind_);
    out.u32((uint32_t)B_);
    out.u32((uint32_t)T_);
    out.u64(state_.position);
    out.u64(state_.rng.state);
    out.u32(state_.rng.has_spare ? 1 : 0);
    out.f64(state_.rng.spare);
}

void BatchLoader::load(ByteReader& in) {
    uint32_t kind = in.u32("loader kind");
    uint32_t B = in.u32("loader batch size");
    uint32_t T = in.u32("loader sequence length");
    LoaderState state;
    state.position = in.u64("loader position");
    state.rng.state = in.u64("loader rng state");
    state.rng.has_spare = in.u32("loader rng spare flag") != 0;
    state.rng.spare = in.f64("loader rng spare");

    if (kind != (uint32_t)kind_ || B != (uint32_t)B_ || T != (uint32_t)T_) {
        const char* saved_kind = kind == (uint32_t)LoaderKind::Random ? "random" : "sequential";
        throw Error(std::string("the saved loader is ") + saved_kind + " " + std::to_string(B) + " x " +
                    std::to_string(T) + ", this run's is " + loader_kind_name(kind_) + " " + std::to_string(B_) +
                    " x " + std::to_string(T_));
    }
    restore(state);
}

// ---- evaluation windows

EvalWindows::EvalWindows(const Tokens& tokens, int B, int T, const std::string& source)
    : tokens_(tokens), B_(B), T_(T) {
    if (B < 1 || T < 1)
        throw Error("an evaluation batch of " + std::to_string(B) + " x " + std::to_string(T) +
                    " is empty; B and T must be at least 1");
    if (tokens.size() < 2)
        throw Error(source + " has " + std::to_string(tokens.size()) + " tokens; evaluation needs at least 2");
    full_windows_ = num_targets() / (size_t)T;
    remainder_ = num_targets() % (size_t)T;
}

size_t EvalWindows::num_batches() const {
    size_t full_batches = (full_windows_ + (size_t)B_ - 1) / (size_t)B_;  // the last may have fewer rows
    return full_batches + (remainder_ > 0 ? 1 : 0);
}

Batch EvalWindows::batch(size_t i) const {
    if (i >= num_batches())
        throw std::logic_error("EvalWindows::batch(" + std::to_string(i) + "): there are " + std::to_string(num_batches()));
    size_t full_batches = (full_windows_ + (size_t)B_ - 1) / (size_t)B_;
    size_t first_window = i * (size_t)B_;
    Batch batch;
    if (i < full_batches) {
        batch.B = (int)std::min((size_t)B_, full_windows_ - first_window);
        batch.T = T_;
    } else {
        // the short last window: the r targets that no full window covers
        batch.B = 1;
        batch.T = (int)remainder_;
        first_window = full_windows_;
    }
    batch.inputs.resize(batch.count());
    batch.targets.resize(batch.count());
    for (int b = 0; b < batch.B; ++b) {
        size_t start = (first_window + (size_t)b) * (size_t)T_;
        for (int t = 0; t < batch.T; ++t) {
            batch.inputs[(size_t)b * batch.T + t] = tokens_[start + t];
            batch.targets[(size_t)b * batch.T + t] = tokens_[start + t + 1];
        }
    }
    return batch;
}

}  // namespace train
