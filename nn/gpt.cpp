// gpt.cpp: the transformer's forward passes. Every backward comes from the autograd ops they call.
#include "gpt.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace nn {

using namespace ag;

// ---------------------------------------------------------------------------------------------------
// Fixed positional tables

// PE[t][d] = sin(t / 10000^(d/C)) for even d, cos(t / 10000^((d-1)/C)) for odd d.   (T, C)
Tensor sinusoidal_table(int64_t T, int64_t C) {
    Tensor pe = Tensor::empty({T, C});
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < C; ++d) {
            double angle = (double)t / std::pow(10000.0, (double)(d - d % 2) / (double)C);
            pe.data()[t * C + d] = (real)(d % 2 == 0 ? std::sin(angle) : std::cos(angle));
        }
    return pe;
}

// ALiBi's slopes (Press et al. 2022, section 3): for NH a power of two, m_h = 2^(-8 (h+1) / NH).
// Otherwise the slopes for the power of two n just below NH, followed by every other slope of 2n.
std::vector<double> alibi_slopes(int n_head) {
    auto powers = [](int n) {
        std::vector<double> m;
        for (int h = 0; h < n; ++h) m.push_back(std::pow(2.0, -8.0 * (h + 1) / n));
        return m;
    };
    int n = 1;
    while (n * 2 <= n_head) n *= 2;
    std::vector<double> slopes = powers(n);
    std::vector<double> finer = powers(2 * n);
    for (int i = 0; (int)slopes.size() < n_head; i += 2) slopes.push_back(finer[i]);
    return slopes;
}

// bias[h][i][j] = -m_h (i - j): a query looks less at keys the further back they are.   (NH, T, T)
// (Keys in the future get masked anyway; their bias is left at 0.)
static Tensor alibi_bias(int n_head, int64_t T) {
    std::vector<double> m = alibi_slopes(n_head);
    Tensor bias = Tensor::zeros({n_head, T, T});
    for (int h = 0; h < n_head; ++h)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j <= i; ++j) bias.data()[(h * T + i) * T + j] = (real)(-m[h] * (double)(i - j));
    return bias;
}

// RoPE, in the "two halves" arrangement (as in GPT-NeoX): dimension d < hs/2 is paired with d + hs/2
// and the pair is rotated by the angle t * base^(-2d/hs). (This equals RoFormer's rotation of
// neighbouring pairs up to a fixed reordering of the head's dimensions, which the weights absorb.)
//   x (B, NH, T, hs) -> (x1 cos - x2 sin, x1 sin + x2 cos)
Tensor rope_rotate(const Tensor& x, double base) {
    int64_t T = x.size(-2), half = x.size(-1) / 2;
    Tensor cos = Tensor::empty({T, half}), sin = Tensor::empty({T, half});
    for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < half; ++d) {
            double angle = (double)t * std::pow(base, -2.0 * (double)d / (double)(2 * half));
            cos.data()[t * half + d] = (real)std::cos(angle);
            sin.data()[t * half + d] = (real)std::sin(angle);
        }
    std::vector<Tensor> x12 = split(x, {half, half}, -1);
    return concat({x12[0] * cos - x12[1] * sin, x12[0] * sin + x12[1] * cos}, -1);
}

// ---------------------------------------------------------------------------------------------------
// MLP

static real residual_std(const GPTConfig& c) { return (real)(0.02 / std::sqrt(2.0 * c.n_layer)); }

MLP::MLP(const GPTConfig& c, Rng& init, Rng& dropout_rng)
    : c_fc(c.n_embd, 4 * c.n_embd, c.bias, init),
      c_proj(4 * c.n_embd, c.n_embd, c.bias, init, residual_std(c)),
      dropout((real)c.mlp_dropout, dropout_rng) {
    add_module("c_fc", c_fc);
    add_module("c_proj", c_proj);
    add_module("dropout", dropout);
}

Tensor MLP::forward(const Tensor& x) const { return dropout.forward(c_proj.forward(gelu(c_fc.forward(x), dtype()))); }

// ---------------------------------------------------------------------------------------------------
// Attention

CausalSelfAttention::CausalSelfAttention(const GPTConfig& c, Rng& init, Rng& dropout_rng)
    : c_attn(c.n_embd, 3 * c.n_embd, c.bias, init),
      c_proj(c.n_embd, c.n_embd, c.bias, init, residual_std(c)),
      attn_dropout((real)c.attn_dropout, dropout_rng),
      resid_dropout((real)c.resid_dropout, dropout_rng),
      config_(c) {
    add_module("c_attn", c_attn);
    add_module("c_proj", c_proj);
    add_module("attn_dropout", attn_dropout);
    add_module("resid_dropout", resid_dropout);
    if (c.pos == PosScheme::relative) {
        int64_t rows = 2 * (int64_t)c.rel_clip + 1, hs = c.n_embd / c.n_head;  // (validate() keeps it within int)
        rel_k = add_parameter("rel_k", Tensor::randn({rows, hs}, init, 0.02));
        rel_v = add_parameter("rel_v", Tensor::randn({rows, hs}, init, 0.02));
    }
}

// Row of the relative tables for query i and key j: the offset j - i clipped to [-k, k], shifted by k.
static std::vector<int> relative_ids(int64_t T, int k) {
    std::vector<int> ids(T * T);
    for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j) ids[i * T + j] = (int)std::clamp<int64_t>(j - i, -k, k) + k;
    return ids;
}

// rel[b,h,i,j] = q[b,h,i,:] . aK[i,j,:]. Batched over i: q as (T, B*NH, hs) times aK^T as (T, hs, T).
Tensor CausalSelfAttention::relative_logits(const Tensor& q, int64_t T) const {
    int64_t B = q.size(0), NH = q.size(1), hs = q.size(3);
    Tensor aK = embedding(rel_k, relative_ids(T, config_.rel_clip), {T, T});  // (T, T, hs)
    Tensor q_by_i = permute(reshape(q, {B * NH, T, hs}), {1, 0, 2});           // (T, B*NH, hs)
    Tensor rel = matmul(q_by_i, transpose(aK), dtype());                         // (T, B*NH, T)
    return reshape(permute(rel, {1, 0, 2}), {B, NH, T, T});
}

// out[b,h,i,:] = sum_j att[b,h,i,j] aV[i,j,:]. Batched over i: att as (T, B*NH, T) times aV (T, T, hs).
Tensor CausalSelfAttention::relative_values(const Tensor& att, int64_t T) const {
    int64_t B = att.size(0), NH = att.size(1), hs = rel_v.size(1);
    Tensor aV = embedding(rel_v, relative_ids(T, config_.rel_clip), {T, T});  // (T, T, hs)
    Tensor att_by_i = permute(reshape(att, {B * NH, T, T}), {1, 0, 2});      // (T, B*NH, T)
    Tensor out = matmul(att_by_i, aV, dtype());                                // (T, B*NH, hs)
    return reshape(permute(out, {1, 0, 2}), {B, NH, T, hs});
}

// The logits of forward below, computed the plain way for every scheme: (q k^T (+ q . aK)) * scale
// (+ ALiBi's bias), (B, NH, T, T); the largest entry on or below the diagonal is kept.
void CausalSelfAttention::record_max_logit(const Tensor& x) const {
    NoGradGuard no_grad;
    int64_t B = x.size(0), T = x.size(1), C = x.size(2), NH = config_.n_head, hs = C / NH;
    std::vector<Tensor> qkv = split(c_attn.forward(x), {C, C, C}, -1);  // 3 x (B, T, C)
    auto heads = [&](const Tensor& t) { return permute(reshape(t, {B, T, NH, hs}), {0, 2, 1, 3}); };
    Tensor q = heads(qkv[0]), k = heads(qkv[1]);  // (B, NH, T, hs)
    if (config_.pos == PosScheme::rope) q = rope_rotate(q, config_.rope_base), k = rope_rotate(k, config_.rope_base);
    Tensor logits = matmul(q, transpose(k), dtype());
    if (config_.pos == PosScheme::relative) logits = logits + relative_logits(q, T);
    logits = logits * (real)(1.0 / std::sqrt((double)hs));
    if (config_.pos == PosScheme::alibi) logits = logits + alibi_bias((int)NH, T);  // broadcast over B
    const real* l = logits.data();
    for (int64_t bh = 0; bh < B * NH; ++bh)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j <= i; ++j) max_logit = std::max(max_logit, (double)l[(bh * T + i) * T + j]);
}

Tensor CausalSelfAttention::forward(const Tensor& x) const {
    int64_t B = x.size(0), T = x.size(1), C = x.size(2), NH = config_.n_head, hs = C / NH;
    const real scale = (real)(1.0 / std::sqrt((double)hs));
    if (track_logits) record_max_logit(x);
    // The fused op, dropout(softmax(mask(q k^T * scale + bias))) v, in one pass that keeps no (T, T)
    // matrix, straight from the projection (B, T, 3C) to the heads side by side (B, T, C). RoPE rotates
    // q and k first, and the relative scheme adds A_K and A_V terms inside: they take the path below.
    if (config_.pos != PosScheme::relative && config_.pos != PosScheme::rope) {
        Tensor bias = config_.pos == PosScheme::alibi ? alibi_bias((int)NH, T) : Tensor();  // (NH, T, T)
        Tensor y = causal_attention_qkv(c_attn.forward(x), NH, scale, bias, attn_dropout.p(), &attn_dropout.rng(),
                                        attn_dropout.training(), dtype());
        return resid_dropout.forward(c_proj.forward(store(y)));
    }
    std::vector<Tensor> qkv = split(c_attn.forward(x), {C, C, C}, -1);  // 3 x (B, T, C)
    auto heads = [&](const Tensor& t) { return permute(reshape(t, {B, T, NH, hs}), {0, 2, 1, 3}); };
    Tensor q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);      // (B, NH, T, hs)
    if (config_.pos == PosScheme::rope) {
        q = store(rope_rotate(q, config_.rope_base));
        k = store(rope_rotate(k, config_.rope_base));
    }

    Tensor y;  // (B, NH, T, hs)
    if (config_.pos == PosScheme::rope) {
        y = causal_attention(q, k, v, scale, Tensor(), attn_dropout.p(), &attn_dropout.rng(), attn_dropout.training(),
                             dtype());
    } else {  // relative: the composite, with Shaw et al.'s terms in the logits and the values
        // logits and att: (B, NH, T, T)
        Tensor logits = store((matmul(q, transpose(k), dtype()) + relative_logits(q, T)) * scale);
        Tensor att = attn_dropout.forward(store(softmax(causal_mask(logits))));
        y = matmul(att, v, dtype()) + relative_values(att, T);
    }
    y = store(reshape(permute(y, {0, 2, 1, 3}), {B, T, C}));              // heads side by side again
    return resid_dropout.forward(c_proj.forward(y));
}

// ---------------------------------------------------------------------------------------------------
// Block

Block::Block(const GPTConfig& c, Rng& init, Rng& dropout_rng)
    : ln_1(c.n_embd, c.bias), ln_2(c.n_embd, c.bias), attn(c, init, dropout_rng), mlp(c, init, dropout_rng), norm_(c.norm) {
    add_module("ln_1", ln_1);
    add_module("attn", attn);
    if (norm_ == NormPlacement::sandwich) {
        ln_1_post = std::make_unique<LayerNorm>(c.n_embd, c.bias);
        add_module("ln_1_post", *ln_1_post);
    }
    add_module("ln_2", ln_2);
    add_module("mlp", mlp);
    if (norm_ == NormPlacement::sandwich) {
        ln_2_post = std::make_unique<LayerNorm>(c.n_embd, c.bias);
        add_module("ln_2_post", *ln_2_post);
    }
}

// The residual sums, add(x, f(x), dtype()), are stored in the model's precision.
Tensor Block::forward(const Tensor& x_in) const {
    Tensor x = x_in;
    switch (norm_) {
    case NormPlacement::post:  // x = LN(x + f(x))
        x = ln_1.forward(add(x, attn.forward(x), dtype()));
        x = ln_2.forward(add(x, mlp.forward(x), dtype()));
        break;
    case NormPlacement::pre:  // x = x + f(LN(x))
        x = add(x, attn.forward(ln_1.forward(x)), dtype());
        x = add(x, mlp.forward(ln_2.forward(x)), dtype());
        break;
    case NormPlacement::sandwich:  // x = x + LN_post(f(LN_pre(x)))
        x = add(x, ln_1_post->forward(attn.forward(ln_1.forward(x))), dtype());
        x = add(x, ln_2_post->forward(mlp.forward(ln_2.forward(x))), dtype());
        break;
    }
    return x;
}

// ---------------------------------------------------------------------------------------------------
// GPT

// Rows V .. Vp-1 of a (Vp, C) output matrix belong to padded tokens that never occur: they start at
// zero, and since the loss leaves them out of the softmax, they get no gradient and stay there.
static void zero_padded_rows(Tensor& w, int64_t V) {
    int64_t C = w.size(1);
    std::fill(w.data() + V * C, w.data() + w.size(0) * C, real(0));
}

GPT::GPT(const GPTConfig& c, uint64_t seed) : config_(c), dropout_rng_(seed ^ 0xD50F0D50F0ull) {
    c.validate();
    Rng init(seed);
    wte = std::make_unique<Embedding>(c.padded_vocab(), c.n_embd, init);
    add_module("wte", *wte);
    zero_padded_rows(wte->weight, c.vocab_size);
    if (c.pos == PosScheme::learned) {
        wpe = std::make_unique<Embedding>(c.max_seq_len, c.n_embd, init);
        add_module("wpe", *wpe);
    }
    emb_dropout_ = std::make_unique<Dropout>((real)c.emb_dropout, dropout_rng_);
    add_module("drop", *emb_dropout_);
    for (int l = 0; l < c.n_layer; ++l) {
        h.push_back(std::make_unique<Block>(c, init, dropout_rng_));
        add_module("h." + std::to_string(l), *h.back());
    }
    if (c.norm != NormPlacement::post) {
        ln_f = std::make_unique<LayerNorm>(c.n_embd, c.bias);
        add_module("ln_f", *ln_f);
    }
    if (!c.tie_weights) {
        lm_head = std::make_unique<Linear>(c.n_embd, c.padded_vocab(), false, init);
        add_module("lm_head", *lm_head);
        zero_padded_rows(lm_head->weight, c.vocab_size);
    }
}

void GPT::track_attention_logits(bool on) {
    for (auto& block : h) block->attn.track_logits = on, block->attn.max_logit = -INFINITY;
}

double GPT::max_attention_logit() const {
    double m = -INFINITY;
    for (const auto& block : h) m = std::max(m, block->attn.max_logit);
    return m;
}

GPTOutput GPT::forward(const std::vector<int>& ids, int B, int T, const std::vector<int>& targets) const {
    if (B < 1 || T < 1 || (int64_t)ids.size() != (int64_t)B * T)
        throw std::invalid_argument("GPT.forward: " + std::to_string(ids.size()) + " token ids given for B=" +
                                    std::to_string(B) + " x T=" + std::to_string(T));
    if (!targets.empty() && targets.size() != ids.size())
        throw std::invalid_argument("GPT.forward: " + std::to_string(targets.size()) + " targets given for " +
                                    std::to_string(ids.size()) + " token ids");
    if (T > config_.max_seq_len && config_.pos == PosScheme::learned)
        throw std::invalid_argument("GPT.forward: sequence length " + std::to_string(T) +
                                    " exceeds the model's max_seq_len " + std::to_string(config_.max_seq_len) +
                                    " (the learned position table has no rows beyond it)");

    Tensor x = wte->forward(ids, {B, T});  // (B, T, C)
    if (config_.pos == PosScheme::learned) {
        std::vector<int> positions(T);
        for (int t = 0; t < T; ++t) positions[t] = t;
        x = add(x, wpe->forward(positions, {T}), dtype());  // (T, C) broadcast over B
    } else if (config_.pos == PosScheme::sinusoidal) {
        x = add(x, sinusoidal_table(T, config_.n_embd), dtype());
    }
    x = emb_dropout_->forward(x);

    for (const auto& block : h) x = block->forward(x);
    if (ln_f) x = ln_f->forward(x);

    GPTOutput out;
    out.logits = lm_head ? lm_head->forward(x) : linear(x, wte->weight, Tensor(), dtype(), dtype());  // (B, T, Vp)
    if (!targets.empty()) out.loss = cross_entropy(out.logits, targets, -1, config_.vocab_size);
    return out;
}

}  // namespace nn
