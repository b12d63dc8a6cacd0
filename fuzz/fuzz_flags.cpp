// fuzz_flags.cpp: ./train's command line: the arguments (the input cut at NUL bytes) parsed against
// the real flag table, then the checks on their values that run before anything is built.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../trainer/flags.h"
#include "../trainer/options.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> args(1);
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) args.emplace_back();
        else args.back() += (char)data[i];
    }
    fuzz::expect_error_or_success([&] {
        train::Flags flags(train::kFlags);
        flags.parse(args);
        if (flags.help_requested()) return;
        train::check_flags(flags);
        train::settings_of(flags);
    });
    return 0;
}
