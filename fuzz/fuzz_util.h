// fuzz_util.h: what the fuzz targets share (built only by `make fuzz`, with clang's libFuzzer).
//
// A target feeds the fuzzer's bytes to one reader of untrusted input. The right answer to a bad input
// is a train::Error (the one-line message ./train prints), so that is caught; anything else escaping
// (std::bad_alloc, std::invalid_argument from a stray std::stoi, a logic_error) reaches libFuzzer as
// an uncaught exception, which it reports as a crash, as it does the sanitizers' reports. Allocations
// out of proportion to the input hit -rss_limit_mb / -malloc_limit_mb, hangs hit -timeout.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../trainer/error.h"

namespace fuzz {

// Readers that take a path get the bytes through a file of this process's own (the fuzzer runs one
// process per target, so the name cannot clash), rewritten for every input.
inline std::string temp_path(const char* suffix) {
    return "/tmp/gpt_fuzz_" + std::to_string((long long)getpid()) + suffix;
}

inline std::string write_temp(const uint8_t* data, size_t size, const char* suffix) {
    const std::string path = temp_path(suffix);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();  // the fuzzing machine's /tmp is broken: not a finding in the product
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    if (std::fclose(f) != 0) std::abort();
    return path;
}

// Runs f; a train::Error is the expected way to refuse a bad input.
template <typename F>
void expect_error_or_success(F f) {
    try {
        f();
    } catch (const train::Error&) {
    }
}

}  // namespace fuzz
