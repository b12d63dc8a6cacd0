// report.cpp: formatting for the trainer's tables and lines, and the --profile table.
#include "report.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "../autograd/profiler.h"
#include "../autograd/tensor.h"

namespace train {

std::string fmt(const char* format, double v) {
    char buf[400];  // "%.6f" of the largest double has 316 characters (a hostile log.csv can hold one)
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::string duration(double seconds) {
    int s = (int)std::lround(seconds);
    if (s >= 3600) return std::to_string(s / 3600) + "h" + fmt("%02.0f", (s / 60) % 60) + "m";
    if (s >= 60) return std::to_string(s / 60) + "m" + fmt("%02.0f", s % 60) + "s";
    return std::to_string(s) + "s";
}

void print_profile(int64_t steps) {
    std::vector<ag::profiler::Entry> entries = ag::profiler::entries();
    double total = 0;
    for (const auto& e : entries) total += e.forward_ms + e.backward_ms;
    if (steps <= 0 || total <= 0) return;
    std::printf("profile over %lld steps (the first left out): %.1f ms per step\n", (long long)steps, total / (double)steps);
    std::printf("  %-22s %12s %12s %10s %8s\n", "op or phase", "forward ms", "backward ms", "% of step", "calls");
    for (const auto& e : entries)
        std::printf("  %-22s %12.2f %12.2f %9.1f%% %8.1f\n", e.name.c_str(), e.forward_ms / (double)steps,
                    e.backward_ms / (double)steps, 100 * (e.forward_ms + e.backward_ms) / total,
                    (double)e.calls / (double)steps);
}

std::string training_state_text(int64_t n_params, const optim::AdamWConfig& adamw) {
    const double n = (double)n_params, mb = 1024.0 * 1024.0;
    const double master = adamw.bf16_params && adamw.master_weights ? 4 : 0;
    const double here = n * (4 * sizeof(ag::real) + master) / mb;
    if (!adamw.bf16_params) return fmt("%.1f MB (parameters, gradients, AdamW m, v)", here);
    return fmt("%.1f MB (bf16 held in floats; ", here) + fmt("%.1f MB as bf16)", n * (2 + 2 + 8 + master) / mb);
}

}  // namespace train
