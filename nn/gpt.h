// gpt.h: the transformer, in dependency order: MLP, CausalSelfAttention, Block, GPT.
//
// Shapes: B batch, T sequence length, C = n_embd, NH = n_head, hs = C / NH (head size), V vocabulary.
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "config.h"
#include "module.h"

namespace nn {

// The feed-forward sublayer: Linear(C, 4C), GELU, Linear(4C, C), dropout. (B, T, C) -> (B, T, C)
class MLP : public Module {
public:
    MLP(const GPTConfig& config, Rng& init, Rng& dropout_rng);
    Tensor forward(const Tensor& x) const;
    Linear c_fc, c_proj;
    Dropout dropout;
};

// Causal multi-head self-attention, with the positional schemes that act inside attention
// (relative, rope, alibi). (B, T, C) -> (B, T, C)
class CausalSelfAttention : public Module {
public:
    CausalSelfAttention(const GPTConfig& config, Rng& init, Rng& dropout_rng);
    Tensor forward(const Tensor& x) const;

    Linear c_attn;  // x -> q, k, v side by side: (B, T, 3C)
    Linear c_proj;  // the heads' outputs, concatenated, back to C
    Dropout attn_dropout, resid_dropout;
    Tensor rel_k, rel_v;  // relative scheme only: A_K and A_V, (2k+1, hs)

    // A diagnostic (Wortsman et al. 2023 watch attention logits grow before small models diverge):
    // while track_logits is on, each forward also computes its pre-softmax logits again, without a
    // graph, and max_logit keeps the largest entry the causal mask lets through. Off, it costs nothing.
    bool track_logits = false;
    mutable double max_logit = -INFINITY;

private:
    void record_max_logit(const Tensor& x) const;               // x (B, T, C)
    Tensor relative_logits(const Tensor& q, int64_t T) const;   // q . aK_ij      (B, NH, T, T)
    Tensor relative_values(const Tensor& att, int64_t T) const; // sum_j p_ij aV_ij (B, NH, T, hs)
    GPTConfig config_;
};

// One transformer layer: attention then MLP, each with a residual connection and LayerNorms placed as
// config.norm says.
class Block : public Module {
public:
    Block(const GPTConfig& config, Rng& init, Rng& dropout_rng);
    Tensor forward(const Tensor& x) const;  // (B, T, C) -> (B, T, C)

    LayerNorm ln_1, ln_2;
    std::unique_ptr<LayerNorm> ln_1_post, ln_2_post;  // sandwich only: the LN after each sublayer
    CausalSelfAttention attn;
    MLP mlp;

private:
    NormPlacement norm_;
};

struct GPTOutput {
    Tensor logits;  // (B, T, Vp): the scores of the V tokens, then Vp - V padding columns (see GPTConfig)
    Tensor loss;    // mean cross-entropy over the B*T targets; undefined when no targets were given
};

// Mixed precision, set_dtype(Dtype::bf16) (module.h), is llm.c's train_gpt2.cu recipe, emulated: values
// stay floats in memory, and the model rounds them to bf16 exactly where llm.c stores a bf16 (the ops
// given dtype() as the precision they store in, and store() after the others):
// the parameters; the embeddings' sum; the output of every LayerNorm, Linear, GELU, dropout and
// attention; every residual sum; the logits. Each rounding rounds the gradient on its way back, so
// the activations' gradients are bf16 too. What llm.c keeps in fp32 stays fp32: the matmuls' sums,
// LayerNorm's mean and 1/std, the softmax inside attention (whose probabilities and their gradient,
// which llm.c stores in bf16, are bf16 where they are multiplied), the loss's log-sum-exp. The parameters'
// gradients are rounded after each micro-batch (optim::round_grads_to_bf16), and the optimizer keeps
// its moments and a master copy of the weights in fp32 (optim::AdamWConfig).
class GPT : public Module {
public:
    // Builds the model with GPT-2's initialisation, deterministic from the seed: normal(0, 0.02) for
    // weights and embeddings, zero biases, unit LayerNorm gains, and the residual projections
    // (attn.c_proj, mlp.c_proj) at 0.02 / sqrt(2 n_layer) (GPT-2 paper, section 2.3).
    explicit GPT(const GPTConfig& config, uint64_t seed = 1337);

    // ids and targets hold B*T token ids, row-major (B, T); targets may be empty (no loss).
    GPTOutput forward(const std::vector<int>& ids, int B, int T, const std::vector<int>& targets = {}) const;

    const GPTConfig& config() const { return config_; }

    // The attention-logit diagnostic of every layer (CausalSelfAttention::track_logits): on or off,
    // and the largest pre-softmax logit over all layers since it was turned on (-inf before a forward).
    void track_attention_logits(bool on);
    double max_attention_logit() const;
    // The generator for dropout masks: saved in checkpoints, reseeded by tests for a fixed mask.
    Rng& dropout_rng() const { return dropout_rng_; }

    std::unique_ptr<Embedding> wte, wpe;  // wpe with learned positions only
    std::vector<std::unique_ptr<Block>> h;
    std::unique_ptr<LayerNorm> ln_f;      // pre and sandwich only
    std::unique_ptr<Linear> lm_head;      // untied only; tied, the output layer is wte.weight

private:
    GPTConfig config_;
    mutable Rng dropout_rng_;
    std::unique_ptr<Dropout> emb_dropout_;
};

// Fixed tables, exposed for tests and for reading.
Tensor sinusoidal_table(int64_t T, int64_t C);            // (T, C)
std::vector<double> alibi_slopes(int n_head);             // m_h for h = 0 .. NH-1
Tensor rope_rotate(const Tensor& x, double base);         // RoPE on (..., T, hs): position t = row index

}  // namespace nn
