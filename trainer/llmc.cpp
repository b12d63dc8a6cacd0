// llmc.cpp: llm.c's token, model and tokenizer files. The formats are in llmc.h; the order of the model's
// parameters is kLlmcOrder below.
#include "llmc.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <tuple>

#include "error.h"
#include "files.h"

namespace train {

namespace {

const size_t kHeaderBytes = 1024;  // 256 int32
using Header = std::array<int32_t, 256>;

const int32_t kTokenMagic = 20240520;
const int32_t kModelMagic = 20240326;
const int32_t kTokenizerMagic = 20240328;

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// ---------------------------------------------------------------------------------------------------
// The header, shared by all three kinds

// When a file has one of the other llm.c magics, say which kind it is: the likely mix-up.
std::string which_kind(int32_t magic) {
    if (magic == kTokenMagic) return "; it is an llm.c token file";
    if (magic == kModelMagic) return "; it is an llm.c model file";
    if (magic == kTokenizerMagic) return "; it is an llm.c tokenizer file";
    return "";
}

// The header at the start of bytes, after checking the magic and that all 1024 bytes are there.
// `kind` is "token", "model" or "tokenizer".
Header parse_header(const std::string& bytes, int32_t magic, const char* kind, const std::string& source) {
    const std::string what = std::string("an llm.c ") + kind + " file";
    if (bytes.size() < 4)
        throw Error(source + " is not " + what + " (only " + std::to_string(bytes.size()) + " bytes)");
    int32_t found;
    std::memcpy(&found, bytes.data(), 4);
    if (found != magic)
        throw Error(source + " is not " + what + " (magic " + std::to_string(found) + ", expected " +
                    std::to_string(magic) + which_kind(found) + ")");
    if (bytes.size() < kHeaderBytes)
        throw Error(source + " is truncated: its header needs 1,024 bytes, the file has " +
                    std::to_string(bytes.size()));
    Header h;
    std::memcpy(h.data(), bytes.data(), kHeaderBytes);
    return h;
}

std::string header_bytes(const Header& h) { return std::string((const char*)h.data(), kHeaderBytes); }

// The body after the header must hold exactly `count` items of `item_bytes` each; `items` names them.
void check_body_size(uint64_t body_bytes, uint64_t count, uint64_t item_bytes, const char* items,
                     const std::string& source) {
    const uint64_t expected = count * item_bytes;
    if (body_bytes < expected)
        throw Error(source + " is truncated: the header promises " + with_commas(count) + " " + items + " (" +
                    with_commas(expected) + " bytes) but " + with_commas(body_bytes) + " follow");
    if (body_bytes > expected)
        throw Error(source + " has " + with_commas(body_bytes - expected) + " unexpected bytes after its " +
                    with_commas(count) + " " + items);
}

// ---------------------------------------------------------------------------------------------------
// Reading a large file in pieces: a model file can be as large as the model, and there is no need to
// hold it twice in memory.

class FileReader {
public:
    explicit FileReader(const std::string& path) : path_(path) {
        const int fd = open_regular_file(path, size_);  // a directory, device or FIFO is refused here
        file_ = ::fdopen(fd, "rb");
        if (!file_) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            fail();
        }
    }
    ~FileReader() {
        if (file_) std::fclose(file_);
    }
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;

    uint64_t size() const { return size_; }

    // The next n bytes, or fewer at the end of the file.
    std::string read_up_to(size_t n) {
        std::string bytes(n, '\0');
        size_t got = std::fread(&bytes[0], 1, n, file_);
        if (got < n && std::ferror(file_)) fail();
        bytes.resize(got);
        return bytes;
    }

    // Exactly n bytes. The size was checked against the header, so a short read means the file changed.
    void read(void* out, size_t n) {
        if (std::fread(out, 1, n, file_) == n) return;
        if (std::ferror(file_)) fail();
        throw Error(quoted(path_) + " became shorter while it was being read");
    }

private:
    [[noreturn]] void fail() {
        std::string reason = std::strerror(errno);
        if (file_) std::fclose(file_);
        file_ = nullptr;
        throw Error("cannot read " + quoted(path_) + ": " + reason);
    }
    std::string path_;
    std::FILE* file_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace

// ===================================================================================================
// Token files: header, then N uint16 token ids

bool is_llmc_token_file(const std::string& bytes) {
    int32_t magic;
    if (bytes.size() < 4) return false;
    std::memcpy(&magic, bytes.data(), 4);
    return magic == kTokenMagic;
}

Tokens parse_llmc_tokens(const std::string& bytes, const std::string& source) {
    Header h = parse_header(bytes, kTokenMagic, "token", source);
    if (h[1] != 1) throw Error(source + " has version " + std::to_string(h[1]) + " (expected 1)");
    if (h[2] < 0) throw Error(source + " has a bad header: a negative token count " + std::to_string(h[2]));
    const size_t n = (size_t)h[2];
    check_body_size(bytes.size() - kHeaderBytes, n, 2, "tokens", source);

    Tokens tokens(n);
    const char* body = bytes.data() + kHeaderBytes;
    for (size_t i = 0; i < n; ++i) {
        uint16_t id;
        std::memcpy(&id, body + 2 * i, 2);
        tokens[i] = id;
    }
    return tokens;
}

Tokens read_llmc_tokens(const std::string& path) { return parse_llmc_tokens(read_file(path), quoted(path)); }

void write_llmc_tokens(const std::string& path, const Tokens& tokens) {
    if (tokens.size() > (size_t)INT32_MAX)
        throw Error("cannot write " + quoted(path) + ": " + with_commas(tokens.size()) +
                    " tokens do not fit one llm.c token file (at most 2,147,483,647)");
    Header h{};  // zeros, as the unused header fields are
    h[0] = kTokenMagic;
    h[1] = 1;
    h[2] = (int32_t)tokens.size();

    std::string bytes = header_bytes(h);
    bytes.resize(kHeaderBytes + 2 * tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] > 65535)
            throw Error("cannot write " + quoted(path) + ": the token at position " + with_commas(i) + " is " +
                        std::to_string(tokens[i]) + ", outside the range 0..65535 of llm.c's uint16 tokens");
        uint16_t id = (uint16_t)tokens[i];
        std::memcpy(&bytes[kHeaderBytes + 2 * i], &id, 2);
    }
    write_file_atomic(path, bytes);
}

// ===================================================================================================
// Model files: header, then GPT-2's parameters in llm.c's order

namespace {

// The 16 arrays of an llm.c model file, in file order, each named as in our GPT. A per-layer array
// holds that tensor of every layer, layer 0 first: (L, ...) below. Weights are (out, in), as nn.Linear.
struct LlmcArray {
    const char* name;  // per layer: the name after "h.{l}."
    bool per_layer;
};
const LlmcArray kLlmcOrder[] = {
    {"wte.weight", false},          // (Vp, C)  the token embedding, and the output layer (tied)
    {"wpe.weight", false},          // (maxT, C)
    {"ln_1.weight", true},          // (L, C)
    {"ln_1.bias", true},            // (L, C)
    {"attn.c_attn.weight", true},   // (L, 3C, C)  q, k, v side by side
    {"attn.c_attn.bias", true},     // (L, 3C)
    {"attn.c_proj.weight", true},   // (L, C, C)
    {"attn.c_proj.bias", true},     // (L, C)
    {"ln_2.weight", true},          // (L, C)
    {"ln_2.bias", true},            // (L, C)
    {"mlp.c_fc.weight", true},      // (L, 4C, C)
    {"mlp.c_fc.bias", true},        // (L, 4C)
    {"mlp.c_proj.weight", true},    // (L, C, 4C)
    {"mlp.c_proj.bias", true},      // (L, C)
    {"ln_f.weight", false},         // (C)
    {"ln_f.bias", false},           // (C)
};

// The model's parameters in file order. The model must have GPT-2's switches (not_gpt2 says "").
std::vector<ag::Tensor> tensors_in_llmc_order(const nn::GPT& model) {
    std::map<std::string, ag::Tensor> by_name;
    for (const auto& [name, t] : model.parameters()) by_name[name] = t;
    std::vector<ag::Tensor> out;
    auto take = [&](const std::string& name) {
        auto it = by_name.find(name);
        if (it == by_name.end()) throw std::logic_error("llm.c order: the model has no parameter " + name);
        out.push_back(it->second);
        by_name.erase(it);
    };
    for (const LlmcArray& a : kLlmcOrder) {
        if (!a.per_layer) take(a.name);
        for (int l = 0; a.per_layer && l < model.config().n_layer; ++l) take("h." + std::to_string(l) + "." + a.name);
    }
    if (!by_name.empty())
        throw std::logic_error("llm.c order: the model has an extra parameter " + by_name.begin()->first);
    return out;
}

// Parameters in a file with these sizes: V_p C + maxT C + L (12 C^2 + 13 C) + 2 C.
uint64_t llmc_parameter_count(const LlmcModelHeader& h) {
    const uint64_t C = (uint64_t)h.n_embd, L = (uint64_t)h.n_layer;
    // c_attn 3C^2 + 3C, attn.c_proj C^2 + C, c_fc 4C^2 + 4C, mlp.c_proj 4C^2 + C, two LayerNorms 4C
    const uint64_t per_layer = 12 * C * C + 13 * C;
    return (uint64_t)h.padded_vocab_size * C + (uint64_t)h.max_seq_len * C + L * per_layer + 2 * C;
}

// "" if config is GPT-2's architecture, else what is missing: "learned positions (this model has rope)".
std::string not_gpt2(const nn::GPTConfig& c) {
    if (c.pos != nn::PosScheme::learned)
        return std::string("learned positions (this model has ") + nn::to_string(c.pos) + ")";
    if (c.norm != nn::NormPlacement::pre)
        return std::string("pre-LN (this model has ") + nn::to_string(c.norm) + ")";
    if (!c.tie_weights) return "a tied output layer (this model has an untied one)";
    if (!c.bias) return "biases (this model has none)";
    return "";
}

// The header's fields, checked for sense (not yet against the file's size).
LlmcModelHeader model_header_from(const Header& raw, const std::string& source) {
    if (raw[1] != 3 && raw[1] != 5)
        throw Error(source + " has version " + std::to_string(raw[1]) + " (expected 3 = fp32 or 5 = bf16)");
    LlmcModelHeader h{raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]};
    const std::pair<const char*, int> sizes[] = {
        {"max_seq_len", h.max_seq_len}, {"vocab_size", h.vocab_size}, {"n_layer", h.n_layer},
        {"n_head", h.n_head},           {"n_embd", h.n_embd},         {"padded_vocab_size", h.padded_vocab_size}};
    for (const auto& [name, value] : sizes)
        if (value < 1)
            throw Error(source + " has a bad header: " + name + " is " + std::to_string(value) +
                        " (expected at least 1)");
    if (h.n_embd % h.n_head != 0)
        throw Error(source + " has a bad header: n_embd " + std::to_string(h.n_embd) + " is not a multiple of n_head " +
                    std::to_string(h.n_head));
    if (h.padded_vocab_size < h.vocab_size)
        throw Error(source + " has a bad header: padded_vocab_size " + std::to_string(h.padded_vocab_size) +
                    " is smaller than vocab_size " + std::to_string(h.vocab_size));
    // Absurd sizes would overflow the exact count (llmc_parameter_count); estimate it in floating point first.
    const double C = h.n_embd, approx = ((double)h.padded_vocab_size + h.max_seq_len + 2) * C +
                                        (double)h.n_layer * (12 * C * C + 13 * C);
    if (approx > 1e18) {
        char text[32];
        std::snprintf(text, sizeof text, "%.3g", approx);
        throw Error(source + " has a bad header: its sizes imply " + text + " parameters");
    }
    return h;
}

// Reads and checks the header of an open model file, including that the file is exactly as long as
// the header says.
LlmcModelHeader read_model_header(FileReader& file, const std::string& source) {
    Header raw = parse_header(file.read_up_to(kHeaderBytes), kModelMagic, "model", source);
    LlmcModelHeader h = model_header_from(raw, source);
    check_body_size(file.size() - kHeaderBytes, llmc_parameter_count(h), h.version == 3 ? 4 : 2, "parameters", source);
    return h;
}

// The model must be the one the file describes.
void check_model_fits(const LlmcModelHeader& h, const nn::GPTConfig& c, const std::string& source) {
    const std::string missing = not_gpt2(c);
    if (!missing.empty()) throw Error("cannot load " + source + " into this model: llm.c's GPT-2 needs " + missing);
    const std::tuple<const char*, int, int> fields[] = {
        {"max_seq_len", h.max_seq_len, c.max_seq_len}, {"vocab_size", h.vocab_size, c.vocab_size},
        {"n_layer", h.n_layer, c.n_layer},             {"n_head", h.n_head, c.n_head},
        {"n_embd", h.n_embd, c.n_embd},                {"padded_vocab_size", h.padded_vocab_size, c.padded_vocab()}};
    for (const auto& [name, in_file, in_model] : fields)
        if (in_file != in_model)
            throw Error("cannot load " + source + " into this model: its " + name + " is " + std::to_string(in_file) +
                        ", the model's is " + std::to_string(in_model));
}

}  // namespace

LlmcModelHeader read_llmc_model_header(const std::string& path) {
    FileReader file(path);
    return read_model_header(file, quoted(path));
}

nn::GPTConfig llmc_config(const LlmcModelHeader& h) {
    nn::GPTConfig c;  // the defaults are GPT-2's switches: learned, pre, tied, biases, no dropout
    c.pos = nn::PosScheme::learned;
    c.norm = nn::NormPlacement::pre;
    c.tie_weights = true;
    c.bias = true;
    c.vocab_size = h.vocab_size;
    c.padded_vocab_size = h.padded_vocab_size;
    c.max_seq_len = h.max_seq_len;
    c.n_layer = h.n_layer;
    c.n_head = h.n_head;
    c.n_embd = h.n_embd;
    return c;
}

void load_llmc_model(const std::string& path, nn::GPT& model) {
    const std::string source = quoted(path);
    FileReader file(path);
    const LlmcModelHeader h = read_model_header(file, source);
    check_model_fits(h, model.config(), source);

    // The file holds the tensors one after another, so read them one at a time.
    const size_t value_bytes = h.version == 3 ? 4 : 2;
    std::vector<char> buffer;
    for (const ag::Tensor& t : tensors_in_llmc_order(model)) {
        const size_t n = (size_t)t.numel();
        buffer.resize(n * value_bytes);
        file.read(buffer.data(), buffer.size());
        ag::real* out = t.data();
        for (size_t i = 0; i < n; ++i) {
            if (h.version == 3) {
                float f;
                std::memcpy(&f, &buffer[4 * i], 4);
                out[i] = (ag::real)f;
            } else {
                uint16_t b;
                std::memcpy(&b, &buffer[2 * i], 2);
                out[i] = (ag::real)ag::bf16_float(b);  // exact: bf16 is the top half of a float
            }
        }
    }
}

void check_llmc_exportable(const nn::GPTConfig& config) {
    const std::string missing = not_gpt2(config);
    if (!missing.empty()) throw Error("--export-llmc needs " + missing);
}

void export_llmc_model(const std::string& path, const nn::GPT& model, ag::Dtype dtype) {
    const nn::GPTConfig& c = model.config();
    check_llmc_exportable(c);
    const bool bf16 = dtype == ag::Dtype::bf16;

    Header h{};
    h[0] = kModelMagic;
    h[1] = bf16 ? 5 : 3;
    h[2] = c.max_seq_len;
    h[3] = c.vocab_size;
    h[4] = c.n_layer;
    h[5] = c.n_head;
    h[6] = c.n_embd;
    h[7] = c.padded_vocab();

    // Written tensor by tensor (GPT-2 small: 0.5 GB), never gathered into one string first.
    AtomicFile file(path);
    file.write(header_bytes(h));
    for (const ag::Tensor& t : tensors_in_llmc_order(model)) {
        if (bf16) {  // rounded to nearest: exact for a bf16 model, whose values are bf16 numbers already
            std::vector<uint16_t> values((size_t)t.numel());
            for (size_t i = 0; i < values.size(); ++i) values[i] = ag::bf16_bits((float)t.data()[i]);
            file.write(values.data(), 2 * values.size());
        } else if (sizeof(ag::real) == sizeof(float)) {
            file.write(t.data(), 4 * (size_t)t.numel());
        } else {
            std::vector<float> values(t.data(), t.data() + t.numel());  // the double build: rounded to float
            file.write(values.data(), 4 * values.size());
        }
    }
    file.commit();
}

// ===================================================================================================
// Tokenizer files: header, then per token a uint8 length and that many bytes

LlmcTokenizer LlmcTokenizer::load(const std::string& path) {
    LlmcTokenizer tok;
    tok.source_ = quoted(path);
    const std::string& source = tok.source_;
    const std::string bytes = read_file(path);
    Header h = parse_header(bytes, kTokenizerMagic, "tokenizer", source);
    const int version = h[1], V = h[2];
    if (version != 1 && version != 2)
        throw Error(source + " has version " + std::to_string(version) + " (expected 1 or 2)");
    if (V < 1)
        throw Error(source + " has a bad header: vocabulary size " + std::to_string(V) + " (expected at least 1)");
    // Version 1 has no end-of-text field; GPT-2's is its last token, 50256.
    tok.end_of_text_ = version == 2 ? h[3] : (V > 50256 ? 50256 : -1);
    if (version == 2 && (h[3] < 0 || h[3] >= V))
        throw Error(source + " has a bad header: the end-of-text id " + std::to_string(h[3]) +
                    " is outside its vocabulary of " + std::to_string(V) + " tokens");

    // Each token takes at least 2 bytes (its length and one byte): a count the file cannot hold is
    // refused before anything is allocated for it.
    const size_t body = bytes.size() - kHeaderBytes;
    if ((size_t)V > body / 2)
        throw Error(source + " is truncated: its header promises " + with_commas((uint64_t)V) +
                    " tokens, which need at least " + with_commas(2 * (uint64_t)V) + " bytes, but " +
                    with_commas(body) + " follow");
    size_t at = kHeaderBytes;
    tok.tokens_.reserve((size_t)V);
    for (int id = 0; id < V; ++id) {
        size_t length = at < bytes.size() ? (unsigned char)bytes[at] : 0;
        if (at >= bytes.size() || at + 1 + length > bytes.size())
            throw Error(source + " is truncated: it ends inside token " + std::to_string(id) + " of the " +
                        std::to_string(V) + " its header promises");
        if (length == 0)
            throw Error(source + " has an empty token (id " + std::to_string(id) +
                        "); each token needs at least one byte");
        tok.tokens_.push_back(bytes.substr(at + 1, length));
        at += 1 + length;
    }
    if (at != bytes.size())
        throw Error(source + " has " + with_commas(bytes.size() - at) + " unexpected bytes after its " +
                    std::to_string(V) + " tokens");
    return tok;
}

Tokens LlmcTokenizer::encode(const std::string&) const {
    throw Error("llm.c's tokenizer file only decodes (it holds no merges); --prompt needs --tokenizer bytes or bpe");
}

std::string LlmcTokenizer::decode(const Tokens& tokens) const {
    std::string text;
    for (int id : tokens) {
        if (id < 0 || id >= vocab_size())
            throw Error("token " + std::to_string(id) + " is outside the vocabulary of " + source_ + " (ids 0.." +
                        std::to_string(vocab_size() - 1) + ")");
        text += tokens_[(size_t)id];
    }
    return text;
}

}  // namespace train
