// optim.h: what turns gradients into parameter updates.
//
//   parameter groups   which tensors get weight decay (the rule: 2-D and up), ties counted once
//   Optimizer          AdamW (the one training uses) and SGD with momentum, behind one interface
//   clip_grad_norm     global L2-norm gradient clipping
//   learning_rate      warmup + cosine / linear decay, a pure function of the step
//
// A training step, as the trainer does it:
//
//   auto groups = optim::param_groups(model.named_parameters());   // decay 0.1 on 2-D, 0 on 1-D
//   optim::AdamW opt(groups);                                      // betas (0.9, 0.95), eps 1e-8
//   ...
//   opt.zero_grad();
//   loss.backward();
//   double norm = optim::clip_grad_norm(model.named_parameters(), 1.0);
//   if (std::isfinite(norm)) opt.step(optim::learning_rate(schedule, step));
//
// Nothing here prints or reads files: the trainer does (describe() gives it the text to print).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "../autograd/parallel.h"
#include "../autograd/tensor.h"

namespace optim {

using ag::real;

// ---- parameter groups

// THE weight-decay rule: a parameter with 2 or more dimensions (matmul weights, the token and position
// embedding tables) is decayed; a 1-D one (biases, LayerNorm gains and biases) never is. Why: see
// optim/groups.cpp.
bool decays(const ag::Tensor& p);

// A set of unique parameters that share a weight decay and a learning-rate multiplier.
struct ParamGroup {
    std::string name;           // "decay", "no_decay": for printouts
    ag::NamedTensors params;    // each tensor once (a tied weight under its first name)
    double weight_decay = 0;    // decoupled: p -= lr * wd * p each step
    double lr_scale = 1;        // this group's learning rate is lr * lr_scale
};

// Splits `params` by decays(): {"decay" with `weight_decay`, "no_decay" with 0}, in that order, each
// in the order the tensors first appear; with decay_all, every tensor goes to "decay" (and "no_decay"
// is empty), for experiments that test the 2-D rule. A tensor listed under two names (a tied weight: the same
// impl()) is kept once, under its first name. Undefined tensors are an error (std::invalid_argument).
std::vector<ParamGroup> param_groups(const ag::NamedTensors& params, double weight_decay = 0.1,
                                     bool decay_all = false);

int64_t num_params(const ParamGroup& group);  // the number of scalars (sum of numel)

// One line per group, for the trainer to print at start:
//   "decay       50 tensors    123,532,032 parameters  weight decay 0.1"
//   "no_decay    98 tensors        121,344 parameters  weight decay 0"
std::string describe(const std::vector<ParamGroup>& groups);

// ---- optimizers

// The interface every optimizer offers. The parameters are fixed at construction; no tensor may be
// in two groups (std::invalid_argument). A parameter whose gradient is undefined (backward never
// reached it) is skipped by step() entirely: no moment update, no weight decay, as PyTorch does for
// grad None. Note zero_grad() keeps the buffers (they read as zeros), so after the first backward
// every parameter has a gradient, and a parameter with a zero gradient IS decayed.
class Optimizer {
public:
    virtual ~Optimizer() = default;

    // One update with base learning rate lr (each group uses lr * its lr_scale), from the gradients
    // times grad_scale: gradient clipping's factor (clip_factor below), applied on the fly, which saves
    // clipping a pass that rewrites every gradient. Increments the step count first, so the first call
    // is step 1. No heap allocation.
    virtual void step(double lr, real grad_scale = 1) = 0;
    void zero_grad();  // zero every parameter's gradient buffer, lazily (Tensor::zero_grad_lazily)

    // The state (step count and every per-parameter buffer), binary and exact: saving, loading and
    // stepping on gives bit-for-bit the parameters that never stopping gives. Hyperparameters (lr,
    // betas, decay) are not saved: they come from the run's configuration. load_state checks every
    // field against this optimizer and throws std::runtime_error naming the first that differs
    // ("optimizer state: truncated", "optimizer state: parameter 'w' has 6 values in the checkpoint
    // but 4 in the model"); on error the optimizer is left unchanged.
    void save_state(std::ostream& out) const;
    void load_state(std::istream& in);

    int64_t step_count() const { return step_; }
    const std::vector<ParamGroup>& groups() const { return groups_; }
    // A group's options may change between steps (its tensors may not: the state is laid out by them).
    void set_lr_scale(size_t group, double scale) { groups_.at(group).lr_scale = scale; }
    void set_weight_decay(size_t group, double wd) { groups_.at(group).weight_decay = wd; }

protected:
    // `kind` names the algorithm in the saved state ("adamw"); each parameter gets `buffers` state
    // vectors of its numel, zero-initialised here, so that step() never allocates.
    Optimizer(std::vector<ParamGroup> groups, const char* kind, int buffers);

    // state_[g][i][b] is buffer b of parameter i of group g (AdamW: b=0 is m, b=1 is v).
    std::vector<ag::real>& state(size_t g, size_t i, int b) { return state_[g][i][(size_t)b]; }

    std::vector<ParamGroup> groups_;
    int64_t step_ = 0;

private:
    const char* kind_;
    std::vector<std::vector<std::vector<std::vector<ag::real>>>> state_;
};

// AdamW: Adam (Kingma & Ba 2015) with decoupled weight decay (Loshchilov & Hutter 2019). At step t:
//   m = b1*m + (1-b1)*g            v = b2*v + (1-b2)*g^2
//   m_hat = m / (1-b1^t)           v_hat = v / (1-b2^t)
//   p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)
// Defaults as GPT-3 (Brown et al. 2020) and nanoGPT train: betas (0.9, 0.95), eps 1e-8; the weight
// decay (0.1) is the group's, see param_groups.
//
// bf16 parameters (llm.c's mixed precision, with bf16_params): the update is computed in fp32 as above,
// and the parameter, a bf16 number, receives it rounded. With master_weights (the default, as in
// llm.c) an fp32 copy of every parameter is kept in the optimizer's state and updated instead, and
// the parameter is that copy rounded to nearest: the small updates pile up in the copy. Without it,
// the update lands on the bf16 value itself, rounded stochastically (bf16.h) by random bits keyed by
// (rounding_seed, the parameter's index, the step, the element), the same on any number of threads;
// or to nearest with stochastic_rounding = false, which cancels every update smaller than half a bf16
// step (at a weight of 0.02, about 6e-5).
struct AdamWConfig {
    double beta1 = 0.9;
    double beta2 = 0.95;
    double eps = 1e-8;
    bool bf16_params = false;
    bool master_weights = true;
    bool stochastic_rounding = true;
    uint64_t rounding_seed = 0;
};

class AdamW : public Optimizer {
public:
    explicit AdamW(std::vector<ParamGroup> groups, AdamWConfig config = {});
    void step(double lr, real grad_scale = 1) override;
    const AdamWConfig& config() const { return config_; }

private:
    AdamWConfig config_;
};

// SGD with (heavy-ball) momentum, PyTorch's convention, and the same decoupled decay as AdamW:
//   buf = mu*buf + g               p -= lr * (buf + wd * p)
struct SGDConfig {
    double momentum = 0.9;
};

class SGD : public Optimizer {
public:
    explicit SGD(std::vector<ParamGroup> groups, SGDConfig config = {});
    void step(double lr, real grad_scale = 1) override;
    const SGDConfig& config() const { return config_; }

private:
    SGDConfig config_;
};

// ---- gradient clipping

// Global gradient clipping (Pascanu et al. 2013):
//   norm = sqrt(sum of g^2 over all gradients concatenated)   (each unique tensor once, summed in double)
//   if norm > max_norm: every gradient *= max_norm / norm        (so the new norm is max_norm)
// Returns the PRE-clip norm, for the log. If the norm is not finite (an Inf or NaN gradient), nothing
// is changed and the norm is returned: the caller should skip the step. max_norm <= 0 only measures.
// Parameters without a gradient are left out.
double clip_grad_norm(const ag::NamedTensors& params, double max_norm = 1.0);

// The same in two halves, as the trainer uses it: the norm (each unique gradient once, in double, the
// same whatever the number of threads), and the factor max_norm / norm that clipping multiplies every
// gradient by (1 when norm <= max_norm or max_norm <= 0), to hand to Optimizer::step as grad_scale.
// step(lr, clip_factor(n, c)) after grad_norm gives exactly the bits of clip_grad_norm(c) + step(lr).
double grad_norm(const ag::NamedTensors& params);
real clip_factor(double norm, double max_norm);

// ---- bf16 gradients

// Rounds every parameter's gradient to the nearest bf16, in place (each tensor once): in mixed
// precision the gradients are stored in bf16, so the trainer calls it after each micro-batch's
// backward, and the sum over micro-batches is then accumulated in bf16, as llm.c accumulates it.
// Returns the global norm of the rounded gradients, grad_norm's result after it, from the same pass.
double round_grads_to_bf16(const ag::NamedTensors& params);

// ---- learning-rate schedules

enum class ScheduleKind { constant, cosine, linear };

struct Schedule {
    ScheduleKind kind = ScheduleKind::cosine;
    double peak = 6e-4;       // the learning rate at the end of warmup
    int64_t warmup = 0;       // steps of linear warmup (all kinds, constant included)
    int64_t total = 1;        // steps in the run (0 .. total-1); the floor is reached at step total-1
    double floor = 0.1;       // the final learning rate, as a fraction of peak
};

// The learning rate at `step` (0-based). A pure function; the formula is in optim/schedule.cpp.
double learning_rate(const Schedule& schedule, int64_t step);

// "constant", "cosine", "linear" -> the kind; anything else throws std::invalid_argument.
ScheduleKind schedule_kind(const std::string& name);
const char* schedule_name(ScheduleKind kind);

}  // namespace optim
