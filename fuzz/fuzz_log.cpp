// fuzz_log.cpp: an earlier log.csv, read back on --resume and drawn again as log.csv and loss.svg.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../trainer/files.h"
#include "../trainer/logs.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string dir = fuzz::temp_path(".logdir");
    train::make_dirs(dir);
    const std::string path = fuzz::write_temp(data, size, ".logdir/log.csv");
    fuzz::expect_error_or_success([&] {
        const std::vector<train::LogRow> rows = train::read_log(path, 1000000);
        train::write_logs(dir, rows, "fuzz", 0.5);
    });
    return 0;
}
