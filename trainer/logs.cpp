// logs.cpp: log.csv (written and read back on --resume) and loss.svg.
#include "logs.h"

#include <cmath>
#include <sstream>
#include <string>
#include <utility>

#include "error.h"
#include "files.h"
#include "flags.h"
#include "plot.h"
#include "report.h"

namespace train {

const char* const kLogHeader =
    "step,train_loss,val_loss,lr,grad_norm,ms,event,decay_norm,no_decay_norm,max_logit,mean_lse,max_attn_logit";

static const char* kEventNames[] = {"", "spike", "spike-skipped", "not-finite"};  // in StepEvent's order

// A measurement of an evaluation: empty where there was none (or it was NaN: a row read from a log
// written before the column existed is NaN too), "inf" where the model has diverged (the printf
// form, which parse_stat reads back).
static std::string stat_text(double v, bool measured) { return measured && !std::isnan(v) ? fmt("%.6g", v) : ""; }

static std::string csv_of(const std::vector<LogRow>& rows) {
    std::string s = std::string(kLogHeader) + "\n";
    for (const LogRow& r : rows) {
        const bool evaluated = !std::isnan(r.val_loss);
        s += std::to_string(r.step) + "," + fmt("%.6f", r.train_loss) + "," + (evaluated ? fmt("%.6f", r.val_loss) : "") +
             "," + fmt("%.6g", r.lr) + "," + fmt("%.6g", r.grad_norm) + "," + fmt("%.2f", r.ms) + "," +
             kEventNames[(int)r.event];
        for (double v : {r.decay_norm, r.no_decay_norm, r.max_logit, r.mean_lse, r.max_attn_logit})
            s += "," + stat_text(v, evaluated);
        s += "\n";
    }
    return s;
}

// The fields of a line of comma-separated values, empty ones included: "1,2,,3" -> {"1", "2", "", "3"}.
static std::vector<std::string> split_commas(const std::string& line) {
    std::vector<std::string> fields = {""};
    for (char c : line) {
        if (c == ',') fields.emplace_back();
        else fields.back() += c;
    }
    return fields;
}

// The val_loss field: empty where there was no evaluation, "inf" where it overflowed, else a number.
static bool parse_val_loss(const std::string& text, double& out) {
    out = text.empty() ? NAN : INFINITY;
    return text.empty() || text == "inf" || parse_float(text, out);
}

// An evaluation's measurement: empty (none: NaN), a number, or inf, -inf or nan (a diverged model's).
static bool parse_stat(const std::string& text, double& out) {
    if (text.empty() || text == "nan" || text == "-nan") return out = NAN, true;
    if (text == "inf" || text == "-inf") return out = text[0] == '-' ? -INFINITY : INFINITY, true;
    return parse_float(text, out);
}

static bool parse_event(const std::string& text, StepEvent& out) {
    for (int e = 0; e < 4; ++e)
        if (text == kEventNames[e]) return out = (StepEvent)e, true;
    return false;
}

// One row of log.csv as csv_of writes it: six numbers, all finite but the val_loss (and the loss and
// norm of a not-finite step); then (in a log written since the columns exist) the step's event and
// the evaluation's measurements.
static bool parse_log_row(const std::string& line, LogRow& r) {
    const std::vector<std::string> f = split_commas(line);
    int step = 0;
    if ((f.size() != 6 && f.size() != 12) || !parse_int(f[0], step)) return false;
    r.step = step;
    if (f.size() == 12 && !parse_event(f[6], r.event)) return false;
    auto loss_or_norm = [&](const std::string& text, double& out) {  // inf or nan only at a not-finite step
        return r.event == StepEvent::not_finite ? parse_stat(text, out) : parse_float(text, out);
    };
    const bool first_six = loss_or_norm(f[1], r.train_loss) && parse_val_loss(f[2], r.val_loss) &&
                           parse_float(f[3], r.lr) && loss_or_norm(f[4], r.grad_norm) && parse_float(f[5], r.ms);
    if (!first_six || f.size() == 6) return first_six;
    return parse_stat(f[7], r.decay_norm) && parse_stat(f[8], r.no_decay_norm) &&
           parse_stat(f[9], r.max_logit) && parse_stat(f[10], r.mean_lse) && parse_stat(f[11], r.max_attn_logit);
}

// A row that is not what csv_of writes is an error naming the line: the file is the run's record.
std::vector<LogRow> read_log(const std::string& path, int64_t last_step, bool missing_ok) {
    std::vector<LogRow> rows;
    std::string text;
    try {
        text = read_file(path, true);
    } catch (const Error&) {
        if (!missing_ok) throw;
        return rows;
    }
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // header
    for (int number = 2; std::getline(lines, line); ++number) {
        LogRow r;
        if (!parse_log_row(line, r))
            throw Error("'" + path + "' line " + std::to_string(number) + " is not a row " + kLogHeader +
                        " (or its first six columns) of numbers (remove the file to resume without the earlier rows)");
        if (r.step <= last_step) rows.push_back(r);
    }
    return rows;
}

void write_logs(const std::string& out_dir, const std::vector<LogRow>& rows, const std::string& title,
                double optimum) {
    std::vector<std::pair<int, double>> train_points, val_points;
    for (const LogRow& r : rows) {
        train_points.push_back({(int)r.step, r.train_loss});
        if (!std::isnan(r.val_loss)) val_points.push_back({(int)r.step, r.val_loss});
    }
    write_file_atomic(join_path(out_dir, "log.csv"), csv_of(rows));
    write_file_atomic(join_path(out_dir, "loss.svg"), loss_svg(train_points, val_points, title, optimum));
}

}  // namespace train
