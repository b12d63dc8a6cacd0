// error.h: the one exception type the trainer's pieces throw for problems a user can fix.
//
// what() is a single line that names what was wrong and what was expected, without an "error: "
// prefix: main() catches train::Error, prints "error: " + what(), and exits non-zero. Programming
// mistakes (asking the flag table for a flag it does not have) throw std::logic_error instead.
#pragma once

#include <stdexcept>
#include <string>

namespace train {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace train
