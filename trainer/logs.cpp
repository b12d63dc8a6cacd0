// logs.cpp: log.csv (written and read back on --resume) and loss.svg.
#include "logs.h"

#include <cmath>
#include <sstream>
#include <string>
#include <utility>

#include "error.h"
#include "files.h"
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
    while (std::getline(lines, line)) {
        LogRow r;
        std::string val;
        std::istringstream fields(line);
        char comma;
        if (!(fields >> r.step >> comma >> r.train_loss >> comma)) continue;
        std::getline(fields, val, ',');
        r.val_loss = val.empty() ? NAN : std::stod(val);
        fields >> r.lr >> comma >> r.grad_norm >> comma >> r.ms;
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
