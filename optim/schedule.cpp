// schedule.cpp: the learning rate as a pure function of the step.
//
// Warmup: at step 0 Adam's v is an estimate from one gradient and the weights are random, so full-size
// steps are erratic; the rate is ramped up linearly over the first steps (GPT-3: 375M tokens; nanoGPT:
// 2000 iterations). Decay: late in training smaller steps average out the gradient noise; GPT-3 decays
// with a cosine to 10% of the peak (Loshchilov & Hutter 2017, SGDR, for the cosine), nanoGPT the same.
#include <cmath>
#include <stdexcept>

#include "optim.h"

namespace optim {

// With t = step + 1 (this update's number, 1-based), W = warmup, N = total, lo = floor * peak:
//
//   t <= W        lr = peak * t / W                            warmup: step 0 gets peak/W, not 0 (a
//                                                               step with lr 0 is wasted); step W-1 is
//                                                               the first at peak
//   W < t <= N    r  = (t - W) / (N - W)                       decay progress, in (0, 1]
//                 cosine:   lr = lo + (peak - lo) * (1 + cos(pi * r)) / 2
//                 linear:   lr = lo + (peak - lo) * (1 - r)
//                 constant: lr = peak
//   t > N         lr = lo (constant: peak)                     past the last step: stay at the floor
//
// So the last step (step N-1, r = 1) is exactly at the floor, and the rate never rises after warmup.
double learning_rate(const Schedule& s, int64_t step) {
    if (step < 0 || s.warmup < 0 || s.total < 1 || s.floor < 0 || s.floor > 1)
        throw std::invalid_argument("learning_rate: need step >= 0, warmup >= 0, total >= 1, 0 <= floor <= 1");
    const double t = (double)step + 1, W = (double)s.warmup, N = (double)s.total;
    const double lo = s.floor * s.peak;
    if (t <= W) return s.peak * t / W;
    if (s.kind == ScheduleKind::constant) return s.peak;
    if (t > N) return lo;
    const double r = (t - W) / (N - W);
    if (s.kind == ScheduleKind::linear) return lo + (s.peak - lo) * (1 - r);
    const double pi = 3.14159265358979323846;
    return lo + (s.peak - lo) * (1 + std::cos(pi * r)) / 2;
}

ScheduleKind schedule_kind(const std::string& name) {
    if (name == "constant") return ScheduleKind::constant;
    if (name == "cosine") return ScheduleKind::cosine;
    if (name == "linear") return ScheduleKind::linear;
    throw std::invalid_argument("unknown learning-rate schedule '" + name + "' (constant, cosine, linear)");
}

const char* schedule_name(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::constant: return "constant";
        case ScheduleKind::cosine: return "cosine";
        case ScheduleKind::linear: return "linear";
    }
    return "?";
}

}  // namespace optim
