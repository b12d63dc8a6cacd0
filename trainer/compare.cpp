// compare.cpp: ./train --plot, several runs on one chart.
#include "compare.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
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

// Where a run diverged, or NaN if it did not: the first step whose loss (train or val) was not
// finite; else, for a run whose last train loss is above its first (it learned nothing, or blew up
// and stayed finite), its last step.
static double diverged_at(const std::vector<LogRow>& rows) {
    for (const LogRow& row : rows)
        if (row.event == StepEvent::not_finite || !std::isfinite(row.train_loss) || std::isinf(row.val_loss))
            return (double)row.step;
    if (rows.size() > 1 && rows.back().train_loss > rows.front().train_loss) return (double)rows.back().step;
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

// The runs' x values for --plot-x: --x-values, or each run's setting from its checkpoint (a run that
// diverged on its first steps has none: its weights were never saved).
static std::vector<double> x_values(const Flags& f, const std::vector<std::string>& dirs, const std::string& against) {
    std::vector<double> xs;
    if (!f.given("x-values")) {
        for (const std::string& dir : dirs) xs.push_back(setting_of(dir, against));
        return xs;
    }
    for (const std::string& item : comma_list(f.get_string("x-values"), "x-values")) {
        double v = 0;
        require(parse_float(item, v), "--x-values item '" + item + "' is not a number");
        xs.push_back(v);
    }
    require(xs.size() == dirs.size(), "--x-values gives " + std::to_string(xs.size()) + " values, --plot gives " +
                                          std::to_string(dirs.size()) + " runs");
    return xs;
}

// A table of two columns, "x,y" under a header naming them (e.g. --position-loss's position,loss), as
// points; the axes get the header's names. A line that is not two numbers is an error.
static std::vector<std::pair<double, double>> read_table(const std::string& path, ChartOptions& axes) {
    std::istringstream lines(read_file(path));
    std::string line;
    std::getline(lines, line);
    const size_t names = line.find(',');
    require(names != std::string::npos, "'" + path + "' has no header x,y naming its two columns");
    axes.x_label = line.substr(0, names), axes.y_label = axes.title = line.substr(names + 1);
    std::vector<std::pair<double, double>> points;
    for (int number = 2; std::getline(lines, line); ++number) {
        const size_t comma = line.find(',');
        double x = 0, y = 0;
        require(comma != std::string::npos && parse_float(line.substr(0, comma), x) &&
                    parse_float(line.substr(comma + 1), y),
                "'" + path + "' line " + std::to_string(number) + " is not two numbers x,y");
        points.push_back({x, y});
    }
    return points;
}

static bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The series of the label, added (in the order labels first appear) if it is new.
static ChartSeries& series_named(std::vector<ChartSeries>& series, const std::string& label) {
    for (ChartSeries& s : series)
        if (s.label == label) return s;
    series.push_back(ChartSeries{label, {}, {}});
    return series.back();
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
    require(!f.given("x-values") || !against.empty(), "--x-values needs --plot-x NAME (the x axis's name)");

    ChartOptions options;
    options.log_x = f.get_switch("log-x");
    options.y_label = std::string(val ? "val" : "train") + " loss";
    options.title = options.y_label + (against.empty() ? "" : " at the end, against " + against);
    if (!against.empty()) options.x_label = against, options.dots = true;
    const std::vector<double> xs = against.empty() ? std::vector<double>{} : x_values(f, dirs, against);
    std::vector<ChartSeries> series;
    for (size_t i = 0; i < dirs.size(); ++i) {
        if (ends_with(dirs[i], ".csv")) {  // a table, drawn as it is
            require(against.empty(), "--plot-x takes run folders, not the table '" + dirs[i] + "'");
            std::string name = folder_name(dirs[i]);
            series.push_back(ChartSeries{labels.empty() ? name.substr(0, name.size() - 4) : labels[i], {}, {}});
            series.back().points = read_table(dirs[i], options);
            continue;
        }
        const std::vector<LogRow> rows = read_log(join_path(dirs[i], "log.csv"), INT64_MAX, false);
        // Against the step, a line per run; in a sweep, runs of one label are one line (their seeds).
        const std::string label = labels.empty() ? folder_name(dirs[i]) : labels[i];
        if (against.empty()) series.push_back(ChartSeries{label, {}, {}});
        ChartSeries& s = against.empty() ? series.back() : series_named(series, label);
        const double diverged = diverged_at(rows);
        if (against.empty()) {
            for (const LogRow& row : rows)
                if (!std::isnan(loss_of(row, val))) s.points.push_back({(double)row.step, loss_of(row, val)});
            if (!std::isnan(diverged)) s.diverged_x.push_back(diverged);
        } else {
            double last = NAN;
            for (const LogRow& row : rows)
                if (!std::isnan(loss_of(row, val))) last = loss_of(row, val);
            if (std::isnan(diverged) && std::isfinite(last)) s.points.push_back({xs[i], last});
            else s.diverged_x.push_back(xs[i]);
        }
    }
    if (!against.empty())  // a sweep's line joins its points from left to right
        for (ChartSeries& s : series) std::sort(s.points.begin(), s.points.end());
    const std::string out = f.get_string("out");
    write_file_atomic(out, chart_svg(series, options));
    std::printf("wrote %s (%zu runs, %zu lines)\n", out.c_str(), dirs.size(), series.size());
}

}  // namespace train
