// inputs.cpp: texts and token files in, the tokenizer that goes with them.
#include "inputs.h"

#include <cstring>

#include "bpe.h"
#include "error.h"
#include "files.h"
#include "llmc.h"

namespace train {

Tokens IdTokenizer::encode(const std::string&) const {
    throw Error("this model was trained on token files without a tokenizer: give --tokenizer-file to use --prompt");
}

std::string IdTokenizer::decode(const Tokens& tokens) const {
    std::string text;
    for (int t : tokens) {
        if (t < 0 || t >= vocab_size_)
            throw Error("token " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(vocab_size_));
        text += " " + std::to_string(t);
    }
    return text;
}

// ---- reading the splits

RawData read_data(const std::string& input_path, const std::string& val_path) {
    RawData raw;
    std::string input = read_file(input_path);
    raw.is_tokens = is_llmc_token_file(input);
    const std::string name = "'" + input_path + "'";
    if (val_path.empty()) {
        raw.train_source = name + " (first 90%)";
        raw.val_source = name + " (last 10%)";
        if (raw.is_tokens)
            split_last_tenth(parse_llmc_tokens(input, name), raw.train_tokens, raw.val_tokens);
        else
            split_last_tenth(input, raw.train_text, raw.val_text);
        return raw;
    }
    std::string val = read_file(val_path);
    if (is_llmc_token_file(val) != raw.is_tokens)
        throw Error("--input " + name + " is " + (raw.is_tokens ? "an llm.c token file" : "a text") + " but --val '" +
                    val_path + "' is " + (raw.is_tokens ? "a text" : "an llm.c token file") +
                    " (give two of the same kind)");
    raw.train_source = name;
    raw.val_source = "'" + val_path + "'";
    if (raw.is_tokens) {
        raw.train_tokens = parse_llmc_tokens(input, raw.train_source);
        raw.val_tokens = parse_llmc_tokens(val, raw.val_source);
    } else {
        raw.train_text = std::move(input);
        raw.val_text = std::move(val);
    }
    return raw;
}

// ---- tokenizers

std::unique_ptr<Tokenizer> read_tokenizer_file(const std::string& path) {
    std::string head = read_file(path).substr(0, 4);
    int32_t magic = 0;
    if (head.size() == 4) std::memcpy(&magic, head.data(), 4);
    if (magic == 20240328) return std::make_unique<LlmcTokenizer>(LlmcTokenizer::load(path));
    return std::make_unique<BpeTokenizer>(BpeTokenizer::load(path));
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& name, const std::string& path, int vocab_size) {
    if (name == "bytes") return std::make_unique<ByteTokenizer>();
    if (name == "ids") return std::make_unique<IdTokenizer>(vocab_size);
    if (name == "bpe" || name == "gpt2") return read_tokenizer_file(path);
    throw Error("unknown tokenizer '" + name + "' (expected bytes, bpe, gpt2 or ids)");
}

void check_token_ids(const Tokens& tokens, int vocab_size, const std::string& source) {
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            throw Error(source + " has token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                        ", beyond the model's vocabulary of " + std::to_string(vocab_size));
}

std::pair<std::string, std::string> write_token_files(const std::string& prefix, const DataSplit& data) {
    std::pair<std::string, std::string> paths = {prefix + "_train.bin", prefix + "_val.bin"};
    write_llmc_tokens(paths.first, data.train);
    write_llmc_tokens(paths.second, data.val);
    return paths;
}

}  // namespace train
