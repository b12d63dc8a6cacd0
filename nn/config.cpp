// config.cpp: presets, validation, and the names of the switches.
#include "config.h"

#include <climits>
#include <cstdio>
#include <stdexcept>

namespace nn {

GPTConfig GPTConfig::gpt2() {
    GPTConfig c;
    c.vocab_size = 50257;
    c.max_seq_len = 1024;
    c.n_layer = 12;
    c.n_head = 12;
    c.n_embd = 768;
    c.pos = PosScheme::learned;
    c.norm = NormPlacement::pre;
    c.tie_weights = true;
    return c;
}

static void need(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

static std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

void GPTConfig::validate() const {
    need(vocab_size >= 1, "vocab_size must be at least 1, got " + std::to_string(vocab_size));
    need(padded_vocab_size == 0 || padded_vocab_size >= vocab_size,
         "padded_vocab_size " + std::to_string(padded_vocab_size) + " is smaller than vocab_size " +
             std::to_string(vocab_size));
    need(max_seq_len >= 1, "max_seq_len must be at least 1, got " + std::to_string(max_seq_len));
    need(n_layer >= 1, "n_layer must be at least 1, got " + std::to_string(n_layer));
    need(n_head >= 1, "n_head must be at least 1, got " + std::to_string(n_head));
    need(n_embd >= 1, "n_embd must be at least 1, got " + std::to_string(n_embd));
    need(n_embd % n_head == 0, "n_embd " + std::to_string(n_embd) + " is not divisible by n_head " +
                                   std::to_string(n_head));
    need(n_embd <= INT_MAX / 4, "n_embd " + std::to_string(n_embd) + " is too large (the MLP's 4C must fit an int)");
    need(pos != PosScheme::rope || (n_embd / n_head) % 2 == 0,
         "rope needs an even head size, but n_embd / n_head = " + std::to_string(n_embd / n_head));
    need(pos != PosScheme::relative || (rel_clip >= 1 && rel_clip <= (INT_MAX - 1) / 2),
         "the relative scheme needs a clip distance k from 1 to " + std::to_string((INT_MAX - 1) / 2) +
             " (its tables' 2k+1 rows are indexed by int), got " + std::to_string(rel_clip));
    need(rope_base > 1, "rope_base must be greater than 1, got " + num(rope_base));
    const std::pair<const char*, double> rates[] = {{"emb_dropout", emb_dropout},
                                                    {"attn_dropout", attn_dropout},
                                                    {"resid_dropout", resid_dropout},
                                                    {"mlp_dropout", mlp_dropout}};
    for (const auto& [name, p] : rates)
        need(p >= 0 && p < 1, std::string(name) + " " + num(p) + " must be in [0, 1)");
}

// Term by term as GPT's constructor builds it (gpt.cpp); a test checks that the two agree.
double GPTConfig::parameter_count() const {
    const double C = n_embd, Vp = padded_vocab(), biases = bias ? 1 : 0;
    const double layer_norm = C + biases * C;
    const double attention = 3 * C * C + C * C + biases * (3 * C + C);  // c_attn, c_proj
    const double mlp = 4 * C * C + 4 * C * C + biases * (4 * C + C);    // c_fc, c_proj
    const double relative = pos == PosScheme::relative ? 2 * (2.0 * rel_clip + 1) * (C / n_head) : 0;  // rel_k, rel_v
    const double norms = (norm == NormPlacement::sandwich ? 4 : 2) * layer_norm;
    double n = Vp * C + n_layer * (attention + mlp + relative + norms);  // wte, the blocks
    if (pos == PosScheme::learned) n += (double)max_seq_len * C;        // wpe
    if (norm != NormPlacement::post) n += layer_norm;                    // ln_f
    if (!tie_weights) n += Vp * C;                                       // lm_head (never a bias)
    return n;
}

const char* to_string(PosScheme s) {
    switch (s) {
    case PosScheme::learned: return "learned";
    case PosScheme::sinusoidal: return "sinusoidal";
    case PosScheme::relative: return "relative";
    case PosScheme::rope: return "rope";
    case PosScheme::alibi: return "alibi";
    case PosScheme::none: return "none";
    }
    return "?";
}

const char* to_string(NormPlacement n) {
    switch (n) {
    case NormPlacement::post: return "post";
    case NormPlacement::pre: return "pre";
    case NormPlacement::sandwich: return "sandwich";
    }
    return "?";
}

PosScheme parse_pos_scheme(const std::string& name) {
    for (PosScheme s : {PosScheme::learned, PosScheme::sinusoidal, PosScheme::relative, PosScheme::rope,
                        PosScheme::alibi, PosScheme::none})
        if (name == to_string(s)) return s;
    throw std::invalid_argument("unknown positional scheme '" + name +
                                "' (expected learned, sinusoidal, relative, rope, alibi or none)");
}

NormPlacement parse_norm_placement(const std::string& name) {
    for (NormPlacement n : {NormPlacement::post, NormPlacement::pre, NormPlacement::sandwich})
        if (name == to_string(n)) return n;
    throw std::invalid_argument("unknown norm placement '" + name + "' (expected post, pre or sandwich)");
}

}  // namespace nn
