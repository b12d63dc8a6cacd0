// optimizer.cpp: what every optimizer shares: the parameters, zero_grad, and saving/loading the state.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <unordered_set>

#include "optim.h"

namespace optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups, const char* kind, int buffers)
    : groups_(std::move(groups)), kind_(kind) {
    // A tensor in two groups would be updated twice per step: refuse (param_groups never does this).
    std::unordered_set<const ag::TensorImpl*> seen;
    for (const ParamGroup& g : groups_)
        for (const auto& [name, p] : g.params) {
            if (!p.defined())
                throw std::invalid_argument(std::string(kind) + ": parameter '" + name + "' is undefined");
            if (!seen.insert(p.impl()).second)
                throw std::invalid_argument(std::string(kind) + ": parameter '" + name +
                                            "' is listed twice (a tied weight must be one parameter)");
        }
    // All the state, allocated (as zeros) once, here: step() then never allocates.
    state_.resize(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g)
        for (const auto& np : groups_[g].params)
            state_[g].emplace_back((size_t)buffers, std::vector<real>((size_t)np.second.numel(), real(0)));
}

// As Tensor::zero_grad_lazily on each parameter: a gradient buffer is marked to read as zeros, kept,
// never created. No pass over memory: the next backward writes the big gradients (the linear layers'
// weights) instead of adding to zeros, and zeroes the others when it first reaches them.
void Optimizer::zero_grad() {
    for (const ParamGroup& g : groups_)
        for (const auto& np : g.params) np.second.zero_grad_lazily();
}

// ---- the state on disk
//
// Binary, in the machine's byte order (checkpoints move between machines of the same kind):
//   magic    8 bytes "AGOPTIM\0"
//   version  u32 (1)
//   real     u32 sizeof(real): 4 (float build) or 8 (double build)
//   kind     u32 length, then the bytes: "adamw", "sgd"
//   step     i64
//   count    u64 number of parameters, then for each, in group order:
//     name   u32 length, then the bytes
//     numel  i64
//     buffers  numel reals each (AdamW: m then v; SGD: the momentum buffer)
// The values are written as they are in memory, so a restore is exact.

static const char kMagic[8] = {'A', 'G', 'O', 'P', 'T', 'I', 'M', '\0'};
static const uint32_t kVersion = 1;
static const uint32_t kMaxName = 1 << 16;  // longer is a corrupt file, not a parameter name

[[noreturn]] static void fail(const std::string& what) { throw std::runtime_error("optimizer state: " + what); }

template <class T>
static void put(std::ostream& out, const T& x) { out.write(reinterpret_cast<const char*>(&x), sizeof x); }

static void put_string(std::ostream& out, const std::string& s) {
    put(out, (uint32_t)s.size());
    out.write(s.data(), (std::streamsize)s.size());
}

static void read_bytes(std::istream& in, void* dst, size_t n) {
    if (!in.read(static_cast<char*>(dst), (std::streamsize)n) || (size_t)in.gcount() != n) fail("truncated");
}

template <class T>
static T get(std::istream& in) {
    T x;
    read_bytes(in, &x, sizeof x);
    return x;
}

static std::string get_string(std::istream& in) {
    uint32_t n = get<uint32_t>(in);
    if (n > kMaxName) fail("corrupt (a name of " + std::to_string(n) + " bytes)");
    std::string s(n, '\0');
    read_bytes(in, s.data(), n);
    return s;
}

void Optimizer::save_state(std::ostream& out) const {
    out.write(kMagic, sizeof kMagic);
    put(out, kVersion);
    put(out, (uint32_t)sizeof(real));
    put_string(out, kind_);
    put(out, step_);
    uint64_t count = 0;
    for (const ParamGroup& g : groups_) count += g.params.size();
    put(out, count);
    for (size_t g = 0; g < groups_.size(); ++g)
        for (size_t i = 0; i < groups_[g].params.size(); ++i) {
            put_string(out, groups_[g].params[i].first);
            put(out, (int64_t)groups_[g].params[i].second.numel());
            for (const std::vector<real>& buf : state_[g][i])
                out.write(reinterpret_cast<const char*>(buf.data()), (std::streamsize)(buf.size() * sizeof(real)));
        }
    if (!out) fail("write failed");
}

void Optimizer::load_state(std::istream& in) {
    char magic[sizeof kMagic];
    read_bytes(in, magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) fail("bad magic (not an optimizer state)");
    uint32_t version = get<uint32_t>(in);
    if (version != kVersion)
        fail("version " + std::to_string(version) + " in the checkpoint but this build reads " +
             std::to_string(kVersion));
    uint32_t real_size = get<uint32_t>(in);
    if (real_size != sizeof(real))
        fail(std::to_string(real_size) + "-byte values in the checkpoint but this build uses " +
             std::to_string(sizeof(real)) + "-byte ones");
    std::string kind = get_string(in);
    if (kind != kind_) fail("written by '" + kind + "' but this optimizer is '" + kind_ + "'");
    int64_t step = get<int64_t>(in);
    // The next step() adds one: a count that cannot take it is as corrupt as a negative one.
    if (step < 0 || step == INT64_MAX) fail("corrupt (step " + std::to_string(step) + ")");

    uint64_t count = get<uint64_t>(in), expected = 0;
    for (const ParamGroup& g : groups_) expected += g.params.size();
    if (count != expected)
        fail(std::to_string(count) + " parameters in the checkpoint but " + std::to_string(expected) + " in the model");

    // Read into a copy and commit at the end, so that a bad file leaves this optimizer as it was.
    auto loaded = state_;
    for (size_t g = 0; g < groups_.size(); ++g)
        for (size_t i = 0; i < groups_[g].params.size(); ++i) {
            const std::string& name = groups_[g].params[i].first;
            std::string saved_name = get_string(in);
            if (saved_name != name)
                fail("parameter '" + saved_name + "' in the checkpoint where the model has '" + name + "'");
            int64_t numel = get<int64_t>(in);
            if (numel != groups_[g].params[i].second.numel())
                fail("parameter '" + name + "' has " + std::to_string(numel) + " values in the checkpoint but " +
                     std::to_string(groups_[g].params[i].second.numel()) + " in the model");
            for (std::vector<real>& buf : loaded[g][i]) read_bytes(in, buf.data(), buf.size() * sizeof(real));
        }
    state_.swap(loaded);
    step_ = step;
}

}  // namespace optim
