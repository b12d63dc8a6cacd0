// data.h: text to tokens, the train/validation split, and the batches the trainer learns from.
//
// Shapes: a batch is B rows of T tokens, stored row-major as B*T ints; targets are the inputs shifted
// by one, so targets[b*T + t] is the token that follows inputs[b*T + t] in the text.
//
// Two training loaders, as in nanoGPT and llm.c:
//   random      each row is a window starting at a position drawn uniformly from [0, n - T - 1]
//               (nanoGPT's get_batch), with the loader's own ag::Rng;
//   sequential  the batch is the next B*T+1 tokens of the text in order, cut into B rows; the position
//               advances by B*T and wraps to 0 when the next batch would run past the end (llm.c's
//               DataLoader without shuffling).
// And one evaluation order, EvalWindows: the whole validation text in non-overlapping windows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../autograd/rng.h"

namespace train {

class ByteWriter;
class ByteReader;

using Tokens = std::vector<int>;

// ---- tokenizers
//
// Today text is tokenized as bytes (vocab 256: every file is valid input, nothing to train or ship).
// The interface is the seam for later tokenizers (GPT-2's BPE, llm.c's token files).
class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    virtual std::string name() const = 0;  // for the config table: "bytes"
    virtual int vocab_size() const = 0;
    virtual Tokens encode(const std::string& text) const = 0;
    virtual std::string decode(const Tokens& tokens) const = 0;
    // A tokenizer that only decodes (llm.c's GPT-2 tokenizer file holds the tokens' bytes, not the
    // merges) says false here; its encode() throws. Samples then start from end_of_text().
    virtual bool can_encode() const { return true; }
    virtual int end_of_text() const { return -1; }  // the <|endoftext|> id, or -1 if there is none
};

class ByteTokenizer : public Tokenizer {
public:
    std::string name() const override { return "bytes"; }
    int vocab_size() const override { return 256; }
    Tokens encode(const std::string& text) const override;      // byte value -> token id 0..255
    std::string decode(const Tokens& tokens) const override;    // token id -> byte; ids outside 0..255 throw
};

// ---- train / validation split

// The tokens to train on and to validate on, with names for error messages ("'x.txt' (first 90%)").
struct DataSplit {
    Tokens train, val;
    std::string train_source, val_source;
};

// The last 10% (rounded down) of a sequence (tokens, or a text's bytes) for validation, the rest for
// training.
template <typename Seq>
void split_last_tenth(const Seq& all, Seq& train, Seq& val) {
    size_t n_train = all.size() - all.size() / 10;
    train.assign(all.begin(), all.begin() + (ptrdiff_t)n_train);
    val.assign(all.begin() + (ptrdiff_t)n_train, all.end());
}

// The same for tokens, with names for messages. `source` names where they came from, quoted or
// described by the caller: "'data/x.txt'".
DataSplit split_train_val(const Tokens& all, const std::string& source);

// Reads and tokenizes input_path; validation is val_path if given (not empty), else the last 10%
// of the input. Throws train::Error for a missing, unreadable or empty file.
DataSplit load_text_data(const std::string& input_path, const std::string& val_path, const Tokenizer& tokenizer);

// ---- batches

struct Batch {
    int B = 0, T = 0;
    std::vector<int> inputs;   // (B, T)
    std::vector<int> targets;  // (B, T): targets[i] follows inputs[i] in the text
    size_t count() const { return (size_t)B * (size_t)T; }
};

enum class LoaderKind { Random, Sequential };

// "random" or "sequential"; anything else throws "unknown loader 'x' (expected random or sequential)".
LoaderKind parse_loader_kind(const std::string& name);
const char* loader_kind_name(LoaderKind kind);

// Everything a checkpoint needs to continue the batch sequence exactly.
struct LoaderState {
    uint64_t position = 0;  // sequential: where the next batch starts
    ag::Rng rng;            // random: the generator that draws the window starts
};

class BatchLoader {
public:
    // tokens must outlive the loader (it keeps a reference, not a copy). Both kinds need at least
    // B*T+1 tokens (one whole batch), else train::Error: "<source> has 100 tokens; a batch of 4 x 64
    // needs at least 257". The seed only matters for the random kind.
    BatchLoader(const Tokens& tokens, int B, int T, LoaderKind kind, uint64_t seed, const std::string& source);
    BatchLoader(Tokens&& tokens, int B, int T, LoaderKind kind, uint64_t seed, const std::string& source) = delete;

    Batch next();                 // the next batch, advancing the state
    void next(Batch& batch);      // the same, reusing batch's buffers

    LoaderState state() const { return state_; }
    void restore(const LoaderState& state);  // throws if the position does not fit this text

    // The state plus kind, B and T, for a checkpoint; load() throws if they differ from this loader's.
    void save(ByteWriter& out) const;
    void load(ByteReader& in);

    LoaderKind kind() const { return kind_; }
    size_t size() const { return tokens_.size(); }

private:
    void fill_row(Batch& batch, int row, size_t start) const;

    const Tokens& tokens_;
    int B_, T_;
    LoaderKind kind_;
    std::string source_;
    LoaderState state_;
};

// The whole validation text, cut into non-overlapping windows of T targets: window k has inputs
// tokens[kT .. kT+T) and targets tokens[kT+1 .. kT+T]. Windows are grouped B to a batch. Every token
// after the first is a target exactly once: when n-1 is not a multiple of T, the remaining r < T
// targets form one last batch of a single, shorter row (B=1, T=r). So the validation loss is
//     sum over batches (mean loss of the batch * batch.count()) / num_targets()
// which is the mean over every target of the split, whatever B and T are.
class EvalWindows {
public:
    // Needs at least 2 tokens (one target); tokens must outlive this object.
    EvalWindows(const Tokens& tokens, int B, int T, const std::string& source);
    EvalWindows(Tokens&& tokens, int B, int T, const std::string& source) = delete;

    size_t num_batches() const;
    size_t num_targets() const { return tokens_.size() - 1; }
    Batch batch(size_t i) const;  // i in [0, num_batches())

private:
    const Tokens& tokens_;
    int B_, T_;
    size_t full_windows_;  // windows of T targets
    size_t remainder_;     // targets left over for the short last window (0 if none)
};

}  // namespace train
