// fuzz_flags.cpp: ./train's command line: the arguments (the input cut at NUL bytes) parsed against
// the real flag table, then the checks on their values that run before anything is built.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../nn/config.h"
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
        // The model the flags describe: nn/ checks its own config and throws std::invalid_argument
        // with a message of its own, which ./train prints as its one-line error. A bare "stoi" or
        // "stod" from the standard library would not be such a message.
        try {
            train::config_from_flags(flags, 256, 256).validate();
        } catch (const std::invalid_argument& e) {
            if (std::strncmp(e.what(), "sto", 3) == 0 && std::strlen(e.what()) <= 5) std::abort();
        }
    });
    return 0;
}
