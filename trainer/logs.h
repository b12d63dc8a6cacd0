// logs.h: the run's log, one row per step, rewritten (atomically) as log.csv and drawn as loss.svg.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace train {

struct LogRow {
    int64_t step;
    double train_loss, val_loss, lr, grad_norm, ms;  // val_loss is NaN where there was no evaluation
};

// Reads back the rows of an earlier log.csv up to `last_step` (for --resume); a missing file is no rows.
std::vector<LogRow> read_log(const std::string& path, int64_t last_step);

// Writes out_dir/log.csv and out_dir/loss.svg. `optimum` (NaN if unknown) is drawn as a dashed line:
// the best loss any model could reach.
void write_logs(const std::string& out_dir, const std::vector<LogRow>& rows, const std::string& title,
                double optimum);

}  // namespace train
