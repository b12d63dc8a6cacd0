// fuzz_bpe.cpp: our BPE tokenizer file (tokenizer.bpe beside a checkpoint, --tokenizer-file), loaded,
// then used: encode must give ids that decode to the text again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../trainer/bpe.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_temp(data, size, ".bpe");
    fuzz::expect_error_or_success([&] {
        const train::BpeTokenizer bpe = train::BpeTokenizer::load(path);
        const std::string text = "Hello, world!\n\n  42 aaaa abab \x01\xff the end";
        if (bpe.decode(bpe.encode(text)) != text) std::abort();  // byte-level BPE round-trips every text
    });
    return 0;
}
