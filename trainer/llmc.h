// llmc.h: llm.c's three binary file formats, read and written, so that its data, its GPT-2 weights and
// its tokenizer work here, and our models run in llm.c.
//
// Every file starts with a header of 256 int32 (1024 bytes), little-endian, header[0] a magic number
// that says which kind of file it is and header[1] a version:
//
//   token file      20240520, v1   [2] = N tokens; then N uint16 token ids
//   model file      20240326, v3/5 [2..7] = maxT, V, L, NH, C, Vp; then every parameter, fp32 (v3) or
//                                  bf16 (v5), in the fixed order of kLlmcOrder (llmc.cpp)
//   tokenizer file  20240328, v1/2 [2] = vocab size, v2: [3] = the <|endoftext|> id; then per token one
//                                  uint8 length and that many bytes
//
// Like files.h, this assumes a little-endian machine (x86-64, ARM64). A file that does not fit its
// header (wrong magic or version, too short, bytes left over) throws train::Error with one line naming
// the file and what was wrong.
#pragma once

#include <string>
#include <vector>

#include "../nn/gpt.h"
#include "data.h"

namespace train {

// ---- token files (llm.c's data/*.bin: the output of its dataset scripts)

// True if bytes start with the token file's magic: how --input tells a token file from a text.
bool is_llmc_token_file(const std::string& bytes);

// The tokens of a token file. Checks the magic, the version and that the file holds exactly the
// tokens its header promises.
Tokens read_llmc_tokens(const std::string& path);
// The same from bytes already read; source names them, quoted by the caller: "'data/train.bin'".
Tokens parse_llmc_tokens(const std::string& bytes, const std::string& source);

// Writes tokens as a token file (atomically). A token outside 0..65535 does not fit a uint16: Error
// naming its position and value, and nothing is written.
void write_llmc_tokens(const std::string& path, const Tokens& tokens);

// ---- model files (llm.c's gpt2_124M.bin and the checkpoints train_gpt2 writes)

struct LlmcModelHeader {
    int version;            // 3: fp32 values, 5: bf16 values
    int max_seq_len;        // maxT
    int vocab_size;         // V
    int n_layer;            // L
    int n_head;             // NH
    int n_embd;             // C
    int padded_vocab_size;  // Vp >= V: the rows of wte
};

// Reads only the header (and the file's size): checks the magic, the version, that the sizes make
// sense (positive, C a multiple of NH, Vp >= V) and that the file is exactly as long as they imply.
LlmcModelHeader read_llmc_model_header(const std::string& path);

// The model a header describes: GPT-2's switches (learned positions, pre-LN, tied, biases, no dropout)
// with its sizes.
nn::GPTConfig llmc_config(const LlmcModelHeader& header);

// Fills every parameter of model from the file (bf16 values widened exactly). The model must be the
// one the header describes: a size that differs, or a switch that is not GPT-2's, is an Error naming it.
void load_llmc_model(const std::string& path, nn::GPT& model);

// Writes model as a model file, atomically: fp32 values (version 3, what llm.c's CPU trainer
// train_gpt2.c reads) or bf16 (version 5, what its GPU trainer train_gpt2cu insists on in its default
// bf16 build), each value rounded to nearest (exact for a bf16 model). Only GPT-2's architecture has a
// place in the format: a model with other positions, norm placement, an untied output layer or no
// biases is an Error naming the switch. Dropout does not matter (it has no parameters).
void export_llmc_model(const std::string& path, const nn::GPT& model, ag::Dtype dtype = ag::Dtype::fp32);
// The same check alone, to refuse --export-llmc before training rather than after it.
void check_llmc_exportable(const nn::GPTConfig& config);

// ---- tokenizer files (llm.c's gpt2_tokenizer.bin)

// GPT-2's vocabulary as llm.c ships it: each token's bytes, but not the merges that produce them, so
// it decodes (to print samples) and cannot encode.
class LlmcTokenizer : public Tokenizer {
public:
    // Checks the magic, the version, that no token is empty and that the file holds exactly its tokens.
    static LlmcTokenizer load(const std::string& path);

    std::string name() const override { return "gpt2"; }
    int vocab_size() const override { return (int)tokens_.size(); }
    Tokens encode(const std::string& text) const override;     // always throws: there are no merges
    std::string decode(const Tokens& tokens) const override;   // an id outside the vocabulary: Error
    bool can_encode() const override { return false; }
    // header[3] in version 2; in version 1, GPT-2's 50256 if the vocabulary is that large, else -1.
    int end_of_text() const override { return end_of_text_; }

private:
    std::vector<std::string> tokens_;  // token id -> its bytes
    int end_of_text_ = -1;
    std::string source_;               // "'gpt2_tokenizer.bin'", for errors
};

}  // namespace train
