// checkpoint.cpp: the checkpoint file, written atomically and read back with every field checked.
#include "checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "error.h"
#include "files.h"

namespace train {

static const char kMagic[8] = {'G', 'P', 'T', 'C', 'K', 'P', 'T', '\0'};
static const uint32_t kVersion = 1;

// The values of a tensor, in whichever precision the engine was built with.
[[maybe_unused]] static void get_values(ByteReader& r, float* p, size_t n, const char* what) { r.floats(p, n, what); }
[[maybe_unused]] static void get_values(ByteReader& r, double* p, size_t n, const char* what) { r.doubles(p, n, what); }

// ---------------------------------------------------------------------------------------------------
// The config as text

std::string config_to_text(const nn::GPTConfig& c) {
    std::ostringstream s;
    s.precision(17);
    s << "config.vocab_size=" << c.vocab_size << "\n"
      << "config.padded_vocab_size=" << c.padded_vocab_size << "\n"
      << "config.max_seq_len=" << c.max_seq_len << "\n"
      << "config.n_layer=" << c.n_layer << "\n"
      << "config.n_head=" << c.n_head << "\n"
      << "config.n_embd=" << c.n_embd << "\n"
      << "config.pos=" << nn::to_string(c.pos) << "\n"
      << "config.norm=" << nn::to_string(c.norm) << "\n"
      << "config.tie_weights=" << (c.tie_weights ? 1 : 0) << "\n"
      << "config.bias=" << (c.bias ? 1 : 0) << "\n"
      << "config.rel_clip=" << c.rel_clip << "\n"
      << "config.rope_base=" << c.rope_base << "\n"
      << "config.emb_dropout=" << c.emb_dropout << "\n"
      << "config.attn_dropout=" << c.attn_dropout << "\n"
      << "config.resid_dropout=" << c.resid_dropout << "\n"
      << "config.mlp_dropout=" << c.mlp_dropout << "\n";
    return s.str();
}

nn::GPTConfig config_from_text(const std::map<std::string, std::string>& kv, const std::string& source) {
    auto get = [&](const std::string& key) -> const std::string& {
        auto it = kv.find("config." + key);
        if (it == kv.end()) throw Error(source + " has no model setting '" + key + "'");
        return it->second;
    };
    // a whole value, converted by `to` (std::stoi or std::stod), or an error naming the key
    auto parse = [&](const std::string& key, auto to) {
        const std::string& text = get(key);
        try {
            size_t used = 0;
            auto v = to(text, &used);
            if (used == text.size()) return v;
        } catch (const std::logic_error&) {
        }
        throw Error(source + " has a bad value for model setting '" + key + "': '" + text + "'");
    };
    auto integer = [&](const std::string& key) {
        return parse(key, [](const std::string& s, size_t* used) { return std::stoi(s, used); });
    };
    auto number = [&](const std::string& key) {
        return parse(key, [](const std::string& s, size_t* used) { return std::stod(s, used); });
    };
    nn::GPTConfig c;
    c.vocab_size = integer("vocab_size");
    c.padded_vocab_size = kv.count("config.padded_vocab_size") ? integer("padded_vocab_size") : 0;  // older files: none
    c.max_seq_len = integer("max_seq_len");
    c.n_layer = integer("n_layer");
    c.n_head = integer("n_head");
    c.n_embd = integer("n_embd");
    try {
        c.pos = nn::parse_pos_scheme(get("pos"));
        c.norm = nn::parse_norm_placement(get("norm"));
    } catch (const std::invalid_argument& e) {
        throw Error(source + ": " + e.what());
    }
    c.tie_weights = integer("tie_weights") != 0;
    c.bias = integer("bias") != 0;
    c.rel_clip = integer("rel_clip");
    c.rope_base = number("rope_base");
    c.emb_dropout = number("emb_dropout");
    c.attn_dropout = number("attn_dropout");
    c.resid_dropout = number("resid_dropout");
    c.mlp_dropout = number("mlp_dropout");
    try {
        c.validate();
    } catch (const std::invalid_argument& e) {
        throw Error(source + " holds an invalid model: " + e.what());
    }
    return c;
}

// ---------------------------------------------------------------------------------------------------
// Saving

// A section: its length (u64), then its bytes, as ByteWriter::str writes a string.
static void write_section(AtomicFile& file, const std::string& bytes) {
    uint64_t n = bytes.size();
    file.write(&n, sizeof n);
    file.write(bytes);
}

// The parameters section: count, then per parameter its name, ndim, dims and values (from the
// tensor's memory). The length comes first, so it is added up before anything is written.
static void write_params_section(AtomicFile& file, const ag::NamedTensors& named) {
    std::vector<std::string> heads;  // each parameter's name and shape, serialized
    uint64_t length = sizeof(uint64_t);
    for (const auto& [name, t] : named) {
        ByteWriter h;
        h.str(name);
        h.u32((uint32_t)t.dim());
        for (int64_t d : t.shape()) h.i64(d);
        heads.push_back(h.bytes());
        length += heads.back().size() + (uint64_t)t.numel() * sizeof(ag::real);
    }
    file.write(&length, sizeof length);
    uint64_t count = named.size();
    file.write(&count, sizeof count);
    for (size_t i = 0; i < named.size(); ++i) {
        file.write(heads[i]);
        file.write(named[i].second.data(), (size_t)named[i].second.numel() * sizeof(ag::real));
    }
}

// The optimizer writes its state to a std::ostream; sent straight to the file, after a first pass
// that only counts the bytes (the section's length comes first).
static void write_optimizer_section(AtomicFile& file, const optim::Optimizer* optimizer) {
    struct Counter : std::streambuf {
        uint64_t n = 0;
        std::streamsize xsputn(const char*, std::streamsize k) override { return n += (uint64_t)k, k; }
        int_type overflow(int_type c) override { return ++n, c; }
    };
    struct ToFile : std::streambuf {
        AtomicFile* file;
        std::streamsize xsputn(const char* p, std::streamsize k) override { return file->write(p, (size_t)k), k; }
        int_type overflow(int_type c) override {
            char b = (char)c;
            file->write(&b, 1);
            return c;
        }
    };
    Counter counter;
    std::ostream counting(&counter);
    if (optimizer) optimizer->save_state(counting);
    file.write(&counter.n, sizeof counter.n);
    ToFile to_file;
    to_file.file = &file;
    std::ostream out(&to_file);
    out.exceptions(std::ios::badbit);  // a failed write's own error (naming the file) comes through
    if (optimizer) optimizer->save_state(out);
}

void save_checkpoint(const std::string& path, const RunInfo& info, const nn::GPT& model,
                     const optim::Optimizer* optimizer, const BatchLoader* loader) {
    std::ostringstream text;
    text << config_to_text(info.config) << "tokenizer=" << info.tokenizer << "\n"
         << "tokenizer_file=" << info.tokenizer_file << "\n"
         << "step=" << info.step << "\n"
         << "spike_window=" << info.spike_window << "\n";
    for (const auto& [key, value] : info.settings) text << "setting." << key << "=" << value << "\n";

    ByteWriter rng;
    const ag::Rng& r = model.dropout_rng();
    rng.u64(r.state);
    rng.u32(r.has_spare ? 1 : 0);
    rng.f64(r.spare);

    ByteWriter load;
    if (loader) loader->save(load);

    // Written piece by piece: the parameters and the optimizer's moments (for GPT-2 small, 0.5 and
    // 1 GB) go from their own memory to the file, never copied into one big string first.
    AtomicFile file(path);
    ByteWriter head;
    head.raw(kMagic, sizeof kMagic);
    head.u32(kVersion);
    head.u32(sizeof(ag::real));
    head.str(text.str());
    file.write(head.bytes());
    write_params_section(file, model.parameters());
    write_section(file, rng.bytes());
    write_optimizer_section(file, optimizer);
    write_section(file, load.bytes());
    file.commit();
}

// ---------------------------------------------------------------------------------------------------
// Reading

// "1,572,864", or "1.5e+20" for a size too large to be a count (a corrupt config's).
static std::string byte_count(double n) {
    if (n < 1e18) return with_commas((uint64_t)n);
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", n);
    return text;
}

CheckpointReader::CheckpointReader(const std::string& path) : path_(path) {
    const std::string source = "'" + path + "'";
    const std::string bytes = read_file(path);  // freed at the end: the sections below are copied out
    ByteReader r(bytes, path);  // (it quotes the path itself)
    char magic[sizeof kMagic];
    if (bytes.size() < sizeof kMagic) throw Error(source + " is not a checkpoint (too short)");
    r.raw(magic, sizeof magic, "magic");
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) throw Error(source + " is not a checkpoint (wrong magic)");
    uint32_t version = r.u32("version");
    if (version != kVersion)
        throw Error(source + " is a checkpoint of version " + std::to_string(version) + "; this program reads version " +
                    std::to_string(kVersion));
    uint32_t real_size = r.u32("float size");
    if (real_size != sizeof(ag::real))
        throw Error(source + " holds " + std::to_string(8 * real_size) + "-bit values; this build uses " +
                    std::to_string(8 * sizeof(ag::real)) + "-bit");
    std::string text = r.str("info");
    params_ = r.str("parameters");
    rng_ = r.str("dropout generator");
    optimizer_ = r.str("optimizer state");
    loader_ = r.str("loader state");
    r.expect_end();

    std::map<std::string, std::string> kv;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        size_t eq = line.find('=');
        if (eq == std::string::npos) throw Error(source + " has a corrupt info line: '" + line + "'");
        kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    info_.config = config_from_text(kv, source);
    // Before any model is built from the config: its parameters must be in the file. (A few bytes of
    // text could otherwise ask for terabytes: config.n_embd=1048576.)
    const double claimed = info_.config.parameter_count() * sizeof(ag::real);
    if (claimed > (double)params_.size())
        throw Error(source + " does not fit its own model: the config needs " + byte_count(claimed) +
                    " bytes of parameters, the file holds " + with_commas(params_.size()));
    if (!kv.count("tokenizer") || !kv.count("step")) throw Error(source + " has no tokenizer or step");
    info_.tokenizer = kv["tokenizer"];
    info_.tokenizer_file = kv.count("tokenizer_file") ? kv["tokenizer_file"] : "";
    const std::string& step = kv["step"];
    char* end = nullptr;
    errno = 0;
    info_.step = std::strtoll(step.c_str(), &end, 10);
    if (step.empty() || *end != '\0' || errno == ERANGE || info_.step < 0)
        throw Error(source + " has a bad step: '" + step + "' (expected a count of steps, 0 or more)");
    if (kv.count("spike_window")) info_.spike_window = kv["spike_window"];
    for (const auto& [key, value] : kv)
        if (key.rfind("setting.", 0) == 0) info_.settings[key.substr(8)] = value;
}

void CheckpointReader::load_model(nn::GPT& model) {
    const std::string source = "'" + path_ + "'";
    ByteReader r(params_, path_);
    ag::NamedTensors named = model.parameters();
    uint64_t count = r.u64("parameter count");
    if (count != named.size())
        throw Error(source + " does not fit the model: it has " + std::to_string(count) + " parameter tensors, the model " +
                    std::to_string(named.size()));
    for (const auto& [name, t] : named) {
        std::string saved = r.str("parameter name");
        if (saved != name)
            throw Error(source + " does not fit the model: found parameter '" + saved + "' where '" + name + "' belongs");
        uint32_t ndim = r.u32("dimensions");
        ag::Shape shape;
        for (uint32_t d = 0; d < ndim && d < 16; ++d) shape.push_back(r.i64("shape"));
        if (shape != t.shape())
            throw Error(source + " does not fit the model: parameter '" + name + "' has shape " + ag::shape_str(shape) +
                        " in the checkpoint, " + t.shape_str() + " in the model");
        get_values(r, t.data(), (size_t)t.numel(), name.c_str());
    }
    r.expect_end();
    std::string().swap(params_);  // loaded: give the memory back (GPT-2 small: 0.5 GB)

    ByteReader g(rng_, path_);
    ag::Rng& rng = model.dropout_rng();
    rng.state = g.u64("dropout generator");
    rng.has_spare = g.u32("dropout generator") != 0;
    rng.spare = g.f64("dropout generator");
    g.expect_end();
}

void CheckpointReader::load_optimizer(optim::Optimizer& optimizer) {
    if (optimizer_.empty()) throw Error("'" + path_ + "' holds no optimizer state");
    struct Memory : std::streambuf {  // reads the section where it is (an istringstream would copy it)
        explicit Memory(std::string& s) { setg(s.data(), s.data(), s.data() + s.size()); }
    } memory(optimizer_);
    std::istream in(&memory);
    try {
        optimizer.load_state(in);
    } catch (const std::runtime_error& e) {
        throw Error("'" + path_ + "': " + e.what());
    }
    std::string().swap(optimizer_);  // loaded: give the memory back (GPT-2 small: 1 GB)
}

void CheckpointReader::load_loader(BatchLoader& loader) const {
    if (loader_.empty()) throw Error("'" + path_ + "' holds no data-loader state");
    ByteReader r(loader_, path_);
    loader.load(r);
    r.expect_end();
}

}  // namespace train
