// profiler.h: where the time of a training step goes, op by op.
//
// When enabled, every recorded op is charged, for its forward, the time since the previous op was
// recorded (ops end by calling record(), so that is the op's own work, plus any plain code between two
// ops), and, for its backward, the time its backward function takes. The trainer adds its own phases
// ("optimizer", "data") with add(), and prints the table that ./train --profile shows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ag {
namespace profiler {

void enable(bool on);  // start or pause collecting (totals are kept)
bool enabled();
void mark();  // start timing from now (call before a forward pass, so that set-up is not charged to its first op)
void add(const char* name, double forward_ms, double backward_ms);  // charge time to a named phase

struct Entry {
    std::string name;
    double forward_ms = 0, backward_ms = 0;  // totals since enable()
    int64_t calls = 0;
};
std::vector<Entry> entries();  // biggest total first

// Internal: called by record() and backward().
void on_record(const char* name);
void on_backward(const char* name, double ms);

}  // namespace profiler
}  // namespace ag
