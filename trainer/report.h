// report.h: what the trainer prints besides its step lines (numbers for a table, durations, the
// --profile table, the memory of the training state), and the timers behind its figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "../autograd/profiler.h"
#include "../optim/optim.h"

namespace train {

// printf of one number: fmt("%.4f", loss).
std::string fmt(const char* format, double v);

// A time as people write it: "42s", "3m07s", "1h05m".
std::string duration(double seconds);

// Milliseconds since it was made.
class Stopwatch {
public:
    double ms() const {
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Charges its own lifetime to a named phase of --profile ("data", "adamw"), so that a phase is timed
// by a scope, not by calls threaded through the loop. Without --profile, add() ignores the time.
class PhaseTimer {
public:
    explicit PhaseTimer(const char* name) : name_(name) {}
    ~PhaseTimer() { ag::profiler::add(name_, watch_.ms(), 0); }
    PhaseTimer(const PhaseTimer&) = delete;
    PhaseTimer& operator=(const PhaseTimer&) = delete;

private:
    const char* name_;
    Stopwatch watch_;
};

// --profile: the time of the average step over `steps` steps, by op (forward and backward) and by
// trainer phase. Prints nothing if nothing was timed.
void print_profile(int64_t steps);

// The memory of what training keeps per parameter (the value, its gradient, AdamW's m and v, and in
// bf16 the master copy), here, where bf16 numbers are held in floats, and in real bf16 storage.
std::string training_state_text(int64_t n_params, const optim::AdamWConfig& adamw);

}  // namespace train
