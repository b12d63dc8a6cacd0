// error.h: the one exception type the trainer's pieces throw for problems a user can fix, and a
// number format for its messages.
//
// what() is a single line that names what was wrong and what was expected, without an "error: "
// prefix: main() catches train::Error, prints "error: " + what(), and exits non-zero. Programming
// mistakes (asking the flag table for a flag it does not have) throw std::logic_error instead.
#pragma once

#include <stdexcept>
#include <cstdint>
#include <string>

namespace train {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws Error(message) unless ok: the form of every check on what a user gave.
inline void require(bool ok, const std::string& message) {
    if (!ok) throw Error(message);
}

// 124475904 -> "124,475,904": big counts, readable in messages and in the trainer's tables.
inline std::string with_commas(uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

}  // namespace train
