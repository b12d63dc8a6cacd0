// fuzz_llmc_tokenizer.cpp: an llm.c tokenizer file (--tokenizer-file, a gpt2 checkpoint's tokenizer).
#include <cstddef>
#include <cstdint>
#include <string>

#include "../trainer/llmc.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_temp(data, size, ".tok");
    fuzz::expect_error_or_success([&] {
        const train::LlmcTokenizer tok = train::LlmcTokenizer::load(path);
        train::Tokens ids;
        for (int i = 0; i < tok.vocab_size() && i < 64; ++i) ids.push_back(i);
        tok.decode(ids);
        if (tok.end_of_text() >= 0) tok.decode({tok.end_of_text()});
    });
    return 0;
}
