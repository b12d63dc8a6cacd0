// report.h: what the trainer prints besides its step lines: numbers for a table, durations, the
// --profile table, the memory of the training state.
#pragma once

#include <cstdint>
#include <string>

#include "../optim/optim.h"

namespace train {

// printf of one number: fmt("%.4f", loss).
std::string fmt(const char* format, double v);

// A time as people write it: "42s", "3m07s", "1h05m".
std::string duration(double seconds);

// --profile: the time of the average step over `steps` steps, by op (forward and backward) and by
// trainer phase. Prints nothing if nothing was timed.
void print_profile(int64_t steps);

// The memory of what training keeps per parameter (the value, its gradient, AdamW's m and v, and in
// bf16 the master copy), here, where bf16 numbers are held in floats, and in real bf16 storage.
std::string training_state_text(int64_t n_params, const optim::AdamWConfig& adamw);

}  // namespace train
