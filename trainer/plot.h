// plot.h: the loss curve as a standalone SVG file, drawn by our own code (no plotting library).
#pragma once

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace train {

// (step, loss) points; a point whose loss is not finite, or beyond +-1e15 (no loss is that large, and
// larger ones would overflow the axes' arithmetic), is skipped, and the line joins its neighbours.
// train is drawn as a thin line, val as a thicker line with a dot at each evaluation. Either series
// may be empty; with no point left at all the axes are drawn around "no data yet". The x axis spans
// the steps, the y axis the losses plus a small margin, both rounded outwards to round-number ticks
// (1, 2 or 5 times a power of ten).
//
// optimum, when finite (and within +-1e15), is drawn as a dashed horizontal line labelled
// "optimum 0.513" (the best achievable loss, known for the built-in grammar) and is kept inside the
// y range.
std::string loss_svg(const std::vector<std::pair<int, double>>& train, const std::vector<std::pair<int, double>>& val,
                     const std::string& title, double optimum = std::numeric_limits<double>::quiet_NaN());

// One run on a chart of several (./train --plot, compare.h).
struct ChartSeries {
    std::string label;                              // its name in the legend
    std::vector<std::pair<double, double>> points;  // (x, y); as loss_svg, a y not plottable is skipped
    std::vector<double> diverged_x;  // where its runs diverged (compare.h says when a run has)
};

struct ChartOptions {
    std::string title, x_label = "step", y_label = "loss";
    bool log_x = false;  // decades on the x axis (points at x <= 0 cannot be drawn there and are skipped)
    bool dots = false;   // a dot at every point (a sweep's few, sorted by x) and the line through the
                         // mean at each x (over a sweep's seeds); else lines through every point only
};

// Every series in its own colour (ten, then they repeat), with a legend of the labels. A series that
// diverged gets a cross at each diverged_x on the plot's top edge, and "(diverged)" after its label.
std::string chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& options);

// Round-number ticks covering [lo, hi]: about `target` of them, spaced 1, 2 or 5 times a power of
// ten, the first <= lo and the last >= hi. Exposed for the tests.
std::vector<double> nice_ticks(double lo, double hi, int target);

}  // namespace train
