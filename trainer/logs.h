// logs.h: the run's log, one row per step, rewritten (atomically) as log.csv and drawn as loss.svg.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace train {

// What happened to a step's update, as log.csv's `event` column says it: "" (applied), "spike" (a
// spike, spikes.h, applied), "spike-skipped" (a spike, not applied: --skip-spikes), "not-finite" (the
// loss or gradient norm was inf or NaN: not applied).
enum class StepEvent { none, spike, spike_skipped, not_finite };

struct LogRow {
    int64_t step;
    // val_loss is NaN where there was no evaluation; train_loss and grad_norm are finite but at a
    // not-finite event
    double train_loss, val_loss, lr, grad_norm, ms;
    StepEvent event = StepEvent::none;
    // At an evaluation (NaN elsewhere, and in a log.csv written before these columns): the L2 norms of
    // the decayed and the not-decayed parameters, and eval.h's EvalStats of the logits.
    double decay_norm = NAN, no_decay_norm = NAN, max_logit = NAN, mean_lse = NAN, max_attn_logit = NAN;
};

// The columns of log.csv, as its header line says them (without the newline).
extern const char* const kLogHeader;

// Reads back the rows of an earlier log.csv up to `last_step` (for --resume, and --plot); a missing
// file is no rows, or an error if !missing_ok.
// A log.csv of the first six columns only (older runs') is read too, the later ones left empty.
std::vector<LogRow> read_log(const std::string& path, int64_t last_step, bool missing_ok = true);

// Writes out_dir/log.csv and out_dir/loss.svg. `optimum` (NaN if unknown) is drawn as a dashed line:
// the best loss any model could reach.
void write_logs(const std::string& out_dir, const std::vector<LogRow>& rows, const std::string& title,
                double optimum);

}  // namespace train
