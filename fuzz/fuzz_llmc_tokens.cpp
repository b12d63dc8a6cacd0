// fuzz_llmc_tokens.cpp: an llm.c token file (--input, --val), from bytes as read_data passes them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../trainer/inputs.h"
#include "../trainer/llmc.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes((const char*)data, size);
    fuzz::expect_error_or_success([&] {
        const train::Tokens tokens = train::parse_llmc_tokens(bytes, "'fuzz.bin'");
        train::check_token_ids(tokens, 50257, "'fuzz.bin'");
    });
    return 0;
}
