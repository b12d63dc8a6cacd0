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

static std::string csv_of(const std::vector<LogRow>& rows) {
    std::string s = "step,train_loss,val_loss,lr,grad_norm,ms\n";
    for (const LogRow& r : rows) {
        s += std::to_string(r.step) + "," + fmt("%.6f", r.train_loss) + "," +
             (std::isnan(r.val_loss) ? "" : fmt("%.6f", r.val_loss)) + "," + fmt("%.6g", r.lr) + "," +
             fmt("%.6g", r.grad_norm) + "," + fmt("%.2f", r.ms) + "\n";
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

// One row of log.csv as csv_of writes it: six numbers, all finite but the val_loss.
static bool parse_log_row(const std::string& line, LogRow& r) {
    const std::vector<std::string> f = split_commas(line);
    int step = 0;
    if (f.size() != 6 || !parse_int(f[0], step)) return false;
    r.step = step;
    return parse_float(f[1], r.train_loss) && parse_val_loss(f[2], r.val_loss) && parse_float(f[3], r.lr) &&
           parse_float(f[4], r.grad_norm) && parse_float(f[5], r.ms);
}

// A row that is not what csv_of writes is an error naming the line: the file is the run's record.
std::vector<LogRow> read_log(const std::string& path, int64_t last_step) {
    std::vector<LogRow> rows;
    std::string text;
    try {
        text = read_file(path, true);
    } catch (const Error&) {
        return rows;
    }
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // header
    for (int number = 2; std::getline(lines, line); ++number) {
        LogRow r;
        if (!parse_log_row(line, r))
            throw Error("'" + path + "' line " + std::to_string(number) +
                        " is not a row step,train_loss,val_loss,lr,grad_norm,ms of numbers (remove the file to "
                        "resume without the earlier rows)");
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
