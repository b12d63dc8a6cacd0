// fuzz_llmc_model.cpp: an llm.c model file (--init-from): its header, the model it describes, the weights.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../nn/gpt.h"
#include "../trainer/llmc.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_temp(data, size, ".bin");
    fuzz::expect_error_or_success([&] {
        const train::LlmcModelHeader header = train::read_llmc_model_header(path);
        nn::GPT model(train::llmc_config(header), 1);
        train::load_llmc_model(path, model);
    });
    return 0;
}
