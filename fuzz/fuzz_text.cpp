// fuzz_text.cpp: a text given as --input: read as read_data reads it (a token file if it starts with
// the magic, else text), split, tokenized as bytes, and a small BPE trained on it round-trips it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../trainer/bpe.h"
#include "../trainer/inputs.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_temp(data, size, ".txt");
    fuzz::expect_error_or_success([&] {
        const train::RawData raw = train::read_data(path, "");
        if (raw.is_tokens) return;  // the token-file target covers these
        const train::ByteTokenizer bytes;
        if (bytes.decode(bytes.encode(raw.train_text)) != raw.train_text) std::abort();
        const train::BpeTokenizer bpe = train::BpeTokenizer::train(raw.train_text, 300);
        if (bpe.decode(bpe.encode(raw.val_text)) != raw.val_text) std::abort();
    });
    return 0;
}
