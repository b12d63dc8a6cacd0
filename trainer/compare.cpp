// compare.cpp: ./train --plot, several runs on one chart.
#include "compare.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "error.h"
#include "files.h"
#include "logs.h"
#include "plot.h"

namespace train {

// "a,b,c" -> {"a", "b", "c"}; an empty item is an error naming the flag.
static std::vector<std::string> comma_list(const std::string& text, const char* flag) {
    std::vector<std::string> items = {""};
    for (char c : text) {
        if (c == ',') items.emplace_back();
        else items.back() += c;
    }
    for (const std::string& item : items)
        require(!item.empty(), std::string("--") + flag + " '" + text + "' has an empty item (expected A,B,...)");
    return items;
}

// "runs/lr_0.01/" -> "lr_0.01"
static std::string folder_name(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A run's loss at a row: the train loss, or the val loss (NaN where it was not evaluated).
static double loss_of(const LogRow& row, bool val) { return val ? row.val_loss : row.train_loss; }

// The first step where the run's loss (train or val) was not finite: NaN if it never was.
static double diverged_at(const std::vector<LogRow>& rows) {
    for (const LogRow& row : rows)
        if (row.event == StepEvent::not_finite || !std::isfinite(row.train_loss) || std::isinf(row.val_loss))
            return (double)row.step;
    return NAN;
}

// The run's setting `name` from its checkpoint, as a number.
static double setting_of(const std::string& dir, const std::string& name) {
    const std::string path = join_path(dir, "model.ckpt");
    const RunInfo info = CheckpointReader(path).info();
    auto it = info.settings.find(name);
    require(it != info.settings.end(), "'" + path + "' has no setting '" + name + "' (--plot-x names a flag, e.g. lr)");
    double v = 0;
    require(parse_float(it->second, v), "'" + path + "' has setting " + name + " = '" + it->second + "', not a number");
    return v;
}

void plot_runs(const Flags& f) {
    const std::vector<std::string> dirs = comma_list(f.get_string("plot"), "plot");
    std::vector<std::string> labels;
    if (f.given("labels")) labels = comma_list(f.get_string("labels"), "labels");
    require(labels.empty() || labels.size() == dirs.size(), "--labels names " + std::to_string(labels.size()) +
                                                                " runs, --plot gives " + std::to_string(dirs.size()));
    require(f.given("out"), "--plot needs --out FILE.svg, the chart to write");
    const bool val = f.get_string("plot-loss") == "val";
    const std::string against = f.get_string("plot-x");

    ChartOptions options;
    options.log_x = f.get_switch("log-x");
    options.y_label = std::string(val ? "val" : "train") + " loss";
    options.title = options.y_label + (against.empty() ? "" : " at the end, against " + against);
    if (!against.empty()) options.x_label = against, options.dots = true;
    std::vector<ChartSeries> series;
    for (size_t i = 0; i < dirs.size(); ++i) {
        const std::vector<LogRow> rows = read_log(join_path(dirs[i], "log.csv"), INT64_MAX, false);
        ChartSeries s;
        s.label = labels.empty() ? folder_name(dirs[i]) : labels[i];
        const double diverged = diverged_at(rows);
        if (against.empty()) {
            for (const LogRow& row : rows)
                if (!std::isnan(loss_of(row, val))) s.points.push_back({(double)row.step, loss_of(row, val)});
            s.diverged_x = diverged;
        } else {
            const double x = setting_of(dirs[i], against);
            double last = NAN;
            for (const LogRow& row : rows)
                if (!std::isnan(loss_of(row, val))) last = loss_of(row, val);
            if (std::isnan(diverged) && std::isfinite(last)) s.points.push_back({x, last});
            else s.diverged_x = x;
        }
        series.push_back(s);
    }
    const std::string out = f.get_string("out");
    write_file_atomic(out, chart_svg(series, options));
    std::printf("wrote %s (%zu runs)\n", out.c_str(), series.size());
}

}  // namespace train
