// inputs.h: what a run reads, and the tokenizer that goes with it.
//
// An input is a text or an llm.c token file (told apart by the token file's magic number):
//
//   text          tokenized here, as bytes (vocab 256) or by a BPE tokenizer trained on the training
//                 split (--tokenizer bpe --vocab-size N) and saved beside the checkpoint;
//   token file    already token ids (GPT-2's, from llm.c's dataset scripts, or from --write-tokens);
//                 samples are decoded by --tokenizer-file (llm.c's tokenizer file or one of our BPE
//                 files), or printed as ids without one.
//
// The validation split is --val if given (of the same kind as --input), else the last 10% of the
// input: of its bytes for a text (so a BPE tokenizer never sees the validation text), of its tokens
// for a token file.
#pragma once

#include <memory>
#include <string>

#include "data.h"

namespace train {

// Prints token ids as numbers, " 464 3290 318": samples of a model trained on token files when no
// tokenizer file is given. It cannot encode.
class IdTokenizer : public Tokenizer {
public:
    explicit IdTokenizer(int vocab_size) : vocab_size_(vocab_size) {}
    std::string name() const override { return "ids"; }
    int vocab_size() const override { return vocab_size_; }
    Tokens encode(const std::string& text) const override;  // throws: there is nothing to encode with
    std::string decode(const Tokens& tokens) const override;
    bool can_encode() const override { return false; }
    // GPT-2's <|endoftext|> (50256) when the vocabulary is GPT-2's or larger, else none.
    int end_of_text() const override { return vocab_size_ >= 50257 ? 50256 : -1; }

private:
    int vocab_size_;
};

// The text or tokens of the training and validation splits, before any tokenizer runs.
struct RawData {
    bool is_tokens = false;           // llm.c token files
    std::string train_text, val_text; // texts
    Tokens train_tokens, val_tokens;  // token files
    std::string train_source, val_source;  // for messages: "'x.txt' (first 90%)"
};

// Reads --input and --val (val_path may be empty). Throws train::Error for a missing, unreadable or
// empty file, a broken token file, or a text and a token file given together.
RawData read_data(const std::string& input_path, const std::string& val_path);

// The tokenizer a checkpoint names, from the file it needs:
//   "bytes"   ByteTokenizer (no file)
//   "bpe"     our BPE tokenizer file
//   "gpt2"    llm.c's tokenizer file (decodes only)
//   "ids"     IdTokenizer(vocab_size) (no file)
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& name, const std::string& path, int vocab_size);

// A tokenizer file of either kind, told apart by its first bytes: llm.c's (its magic number) or ours.
std::unique_ptr<Tokenizer> read_tokenizer_file(const std::string& path);

// Throws train::Error naming the source, the position and the id if a token is not in 0 .. vocab-1:
// "'train.bin' has token 50300 at position 17, beyond the model's vocabulary of 50257".
void check_token_ids(const Tokens& tokens, int vocab_size, const std::string& source);

// --write-tokens PREFIX: PREFIX_train.bin and PREFIX_val.bin as llm.c token files (the names its
// dataset scripts use). Returns the two paths.
std::pair<std::string, std::string> write_token_files(const std::string& prefix, const DataSplit& data);

}  // namespace train
