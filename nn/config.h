// config.h: GPTConfig, every switch of the model in one place.
#pragma once

#include <cstdint>
#include <string>

namespace nn {

// How the model knows where a token is.
enum class PosScheme {
    learned,     // GPT-2: a learned table wpe (max_seq_len x C), row t added to the token embedding at t
    sinusoidal,  // Vaswani et al. 2017: a fixed table, PE[t][2i] = sin(t / 10000^(2i/C)),
                 // PE[t][2i+1] = cos(t / 10000^(2i/C)), added to the token embeddings; no parameters
    relative,    // Shaw et al. 2018: per layer, learned tables A_K and A_V ((2k+1) x head_size) indexed by
                 // the key-query offset j - i clipped to [-k, k]; added to the keys inside the logits and
                 // to the values inside the weighted sum:
                 //   z_i = sum_j softmax_j(q_i . (k_j + aK_ij) / sqrt(d)) (v_j + aV_ij)
    rope,        // Su et al. 2021 (RoFormer): q and k rotated pairwise by angles t * base^(-2i/d), so
                 // q_i . k_j depends on positions only through i - j; no parameters
    alibi,       // Press et al. 2022: no embeddings; a fixed bias -m_h (i - j) on head h's logits, with
                 // per-head slopes m_h a geometric sequence; no parameters
    none,        // no positional information at all (a causal model can still infer some)
};

// Where the LayerNorms sit around each sublayer f (attention, then MLP).
enum class NormPlacement {
    post,      // Vaswani et al. 2017: x = LN(x + f(x)); no final LN
    pre,       // GPT-2: x = x + f(LN(x)), and a final LN before the output layer
    sandwich,  // Gemma 2/3: x = x + LN_post(f(LN_pre(x))), and a final LN
};

struct GPTConfig {
    // sizes
    int vocab_size = 256;   // V
    int padded_vocab_size = 0;  // Vp >= V rows in the token embedding and logits (0: V). llm.c pads GPT-2's
                                // 50257 to 50304, a multiple of 128, for faster matmuls; the padded rows
                                // take no part in the softmax, get zero gradient and start at zero.
    int max_seq_len = 256;  // T_max: the longest sequence (the learned position table's rows)
    int n_layer = 4;
    int n_head = 4;         // NH
    int n_embd = 128;       // C; the head size is C / NH

    // switches
    PosScheme pos = PosScheme::learned;
    NormPlacement norm = NormPlacement::pre;
    bool tie_weights = true;   // output layer = token embedding matrix (Press & Wolf 2017): one parameter
    bool bias = true;          // biases in every Linear and LayerNorm, as GPT-2; nanoGPT's default is
                               // without ("a bit better and faster"), the output layer never has one
    int rel_clip = 16;         // k of the relative scheme: offsets beyond +-k share the edge rows
    double rope_base = 10000;  // RoPE's base

    // dropout probability at each site (only active in training mode)
    double emb_dropout = 0;    // after token + position embeddings
    double attn_dropout = 0;   // on the attention probabilities
    double resid_dropout = 0;  // after the attention output projection
    double mlp_dropout = 0;    // after the MLP output projection

    int padded_vocab() const { return padded_vocab_size ? padded_vocab_size : vocab_size; }

    // GPT-2 small (124M): V=50257, T_max=1024, 12 layers, 12 heads, C=768, learned positions, pre-LN, tied.
    static GPTConfig gpt2();

    // Throws std::invalid_argument with a one-line message if the sizes or switches don't fit together,
    // or are so large that a size derived from them (4C, 2k+1) would not fit an int.
    void validate() const;

    // The number of parameters GPT(config) has, worked out without building it, so that a file's
    // claim can be checked against the bytes it holds before anything is allocated. In double: a
    // corrupt config's sizes would overflow an integer (it is exact below 2^53).
    double parameter_count() const;
};

const char* to_string(PosScheme s);
const char* to_string(NormPlacement n);
// "learned" -> PosScheme::learned, ...; an unknown name throws, listing the known ones.
PosScheme parse_pos_scheme(const std::string& name);
NormPlacement parse_norm_placement(const std::string& name);

}  // namespace nn
