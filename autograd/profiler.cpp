// profiler.cpp: totals per op name, kept in a small map; only touched when profiling is on.
#include "profiler.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace ag {
namespace profiler {

namespace {
using Clock = std::chrono::steady_clock;
bool g_on = false;
Clock::time_point g_last;
std::map<std::string, Entry> g_entries;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

void enable(bool on) {
    g_on = on;
    g_last = Clock::now();
}


bool enabled() { return g_on; }

void mark() { g_last = Clock::now(); }

void add(const char* name, double forward_ms, double backward_ms) {
    if (!g_on) return;
    Entry& e = g_entries[name];
    e.name = name;
    e.forward_ms += forward_ms;
    e.backward_ms += backward_ms;
    ++e.calls;
}

void on_record(const char* name) {
    if (!g_on) return;
    Entry& e = g_entries[name];
    e.name = name;
    e.forward_ms += ms_since(g_last);
    ++e.calls;
    g_last = Clock::now();
}

void on_backward(const char* name, double ms) {
    if (!g_on) return;
    Entry& e = g_entries[name];
    e.name = name;
    e.backward_ms += ms;
}

std::vector<Entry> entries() {
    std::vector<Entry> out;
    for (const auto& [name, e] : g_entries) out.push_back(e);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
        return a.forward_ms + a.backward_ms > b.forward_ms + b.backward_ms;
    });
    return out;
}

}  // namespace profiler
}  // namespace ag
