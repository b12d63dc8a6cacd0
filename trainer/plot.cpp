// plot.cpp: an SVG line chart of train and validation loss against steps.
//
// The picture is 800 x 480 user units. The plot area is the rectangle inside the margins; data
// coordinates map into it linearly, y growing upwards (SVG's y grows downwards, hence the flip in
// to_y). Everything is written as plain SVG 1.1 elements: line, polyline, circle, text, rect.

#include "plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace train {

namespace {

const double kWidth = 800, kHeight = 480;
const double kLeft = 70, kRight = 20, kTop = 44, kBottom = 52;  // margins around the plot area
const char* kTrainColor = "#1f77b4";
const char* kValColor = "#d62728";

using Points = std::vector<std::pair<double, double>>;

// Beyond this no value is a loss (a hostile log.csv can hold 1e308), and the axis arithmetic would
// overflow: the span of -1e308 .. 1e308 is inf, and its ticks and pixels NaN.
const double kLargestPlotted = 1e15;

bool plottable(double v) { return std::isfinite(v) && std::fabs(v) <= kLargestPlotted; }

Points plottable_points(const std::vector<std::pair<int, double>>& series) {
    Points out;
    for (const auto& p : series)
        if (plottable(p.second)) out.push_back({(double)p.first, p.second});
    return out;
}

// A number with n decimals: fmt(3.14159, 2) == "3.14".
std::string fmt(double v, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
    return buffer;
}

// Text for the inside of an SVG element: &, < and > would otherwise be read as markup.
std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

// Decimals needed to tell ticks `spacing` apart: 0.05 -> 2, 0.5 -> 1, 20 -> 0.
int decimals_for(double spacing) { return std::max(0, (int)std::ceil(-std::log10(spacing) - 1e-9)); }

// The data range [lo, hi] of the plot and the map from data to picture coordinates.
struct Axis {
    double lo, hi;               // data values at the two ends
    double pixel_lo, pixel_hi;   // where they land in the picture
    std::vector<double> ticks;
    bool log = false;            // lo, hi and ticks are values; pixels follow their log10
    double to_pixel(double v) const {
        if (log) return pixel_lo + std::log10(v / lo) / std::log10(hi / lo) * (pixel_hi - pixel_lo);
        return pixel_lo + (v - lo) / (hi - lo) * (pixel_hi - pixel_lo);
    }
};

// A logarithmic axis over [lo, hi] (both > 0): from the power of ten at or below lo to the one at or
// above hi, with ticks at every power, and at 2 and 5 times each when the span is under two decades.
Axis make_log_axis(double lo, double hi, double pixel_lo, double pixel_hi) {
    double first = std::floor(std::log10(lo) + 1e-9), last = std::ceil(std::log10(hi) - 1e-9);
    if (last <= first) last = first + 1;
    Axis axis;
    axis.log = true;
    for (double e = first; e <= last; ++e)
        for (double m : {1.0, 2.0, 5.0})
            if (m == 1 || (last - first < 2 && e < last)) axis.ticks.push_back(m * std::pow(10.0, e));
    axis.lo = axis.ticks.front(), axis.hi = axis.ticks.back();
    axis.pixel_lo = pixel_lo, axis.pixel_hi = pixel_hi;
    return axis;
}

// An axis over the values in [lo, hi], widened by `margin` (a fraction of the span) on both sides
// and then out to the nearest ticks.
Axis make_axis(double lo, double hi, double margin, double pixel_lo, double pixel_hi) {
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {  // one value: give it some room
        double pad = std::max(1e-3, std::fabs(hi) * 0.1);
        lo -= pad;
        hi += pad;
    }
    double span = hi - lo;
    Axis axis;
    axis.ticks = nice_ticks(lo - margin * span, hi + margin * span, 6);
    axis.lo = axis.ticks.front();
    axis.hi = axis.ticks.back();
    axis.pixel_lo = pixel_lo;
    axis.pixel_hi = pixel_hi;
    return axis;
}

std::string polyline(const Points& points, const Axis& x, const Axis& y, const char* color, double width) {
    std::string out = "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"" + fmt(width, 1) +
                      "\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < points.size(); ++i) {
        if (i > 0) out += ' ';
        out += fmt(x.to_pixel(points[i].first), 1) + "," + fmt(y.to_pixel(points[i].second), 1);
    }
    return out + "\"/>\n";
}

std::string dots(const Points& points, const Axis& x, const Axis& y, const char* color, double radius) {
    std::string out;
    for (const auto& p : points)
        out += "<circle cx=\"" + fmt(x.to_pixel(p.first), 1) + "\" cy=\"" + fmt(y.to_pixel(p.second), 1) + "\" r=\"" +
               fmt(radius, 1) + "\" fill=\"" + color + "\"/>\n";
    return out;
}

std::string text(double x, double y, const std::string& s, const char* anchor, int size, const char* extra = "") {
    return "<text x=\"" + fmt(x, 1) + "\" y=\"" + fmt(y, 1) + "\" text-anchor=\"" + anchor + "\" font-size=\"" +
           std::to_string(size) + "\"" + extra + ">" + xml_escape(s) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* color, double width) {
    return "<line x1=\"" + fmt(x1, 1) + "\" y1=\"" + fmt(y1, 1) + "\" x2=\"" + fmt(x2, 1) + "\" y2=\"" + fmt(y2, 1) +
           "\" stroke=\"" + color + "\" stroke-width=\"" + fmt(width, 1) + "\"/>\n";
}

// A tick's label: as many decimals as the spacing needs, or on a log axis the shortest form (0.001).
std::string tick_label(const Axis& axis, double t) {
    if (!axis.log) return fmt(t, decimals_for(axis.ticks.size() > 1 ? axis.ticks[1] - axis.ticks[0] : 1));
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%g", t);
    return buffer;
}

// Grid lines, tick labels and axis names.
std::string draw_axes(const Axis& x, const Axis& y, const std::string& x_label = "step",
                      const std::string& y_label = "loss") {
    std::string out;
    const double left = x.pixel_lo, right = x.pixel_hi, bottom = y.pixel_lo, top = y.pixel_hi;
    int y_decimals = decimals_for(y.ticks.size() > 1 ? y.ticks[1] - y.ticks[0] : 1);
    for (double t : x.ticks) {
        double px = x.to_pixel(t);
        out += line(px, top, px, bottom, "#e4e4e4", 1);
        out += text(px, bottom + 18, tick_label(x, t), "middle", 12);
    }
    for (double t : y.ticks) {
        double py = y.to_pixel(t);
        out += line(left, py, right, py, "#e4e4e4", 1);
        out += text(left - 8, py + 4, fmt(t, y_decimals), "end", 12);
    }
    out += "<rect x=\"" + fmt(left, 1) + "\" y=\"" + fmt(top, 1) + "\" width=\"" + fmt(right - left, 1) + "\" height=\"" +
           fmt(bottom - top, 1) + "\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
    out += text((left + right) / 2, kHeight - 12, x_label, "middle", 13);
    out += text(18, (top + bottom) / 2, y_label, "middle", 13,
                (" transform=\"rotate(-90 18 " + fmt((top + bottom) / 2, 1) + ")\"").c_str());
    return out;
}

// A small key in the top right corner of the plot area: a line sample and a name per series.
std::string draw_legend(bool has_train, bool has_val, double right, double top) {
    std::string out;
    double x = right - 110, y = top + 20;
    int rows = (has_train ? 1 : 0) + (has_val ? 1 : 0);
    if (rows == 0) return out;
    // a white card under the key, so a curve passing behind it does not scribble over the words
    out += "<rect x=\"" + fmt(x - 10, 1) + "\" y=\"" + fmt(y - 12, 1) + "\" width=\"100\" height=\"" +
           fmt(20.0 * rows + 4, 1) + "\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#cccccc\" stroke-width=\"1\"/>\n";
    if (has_train) {
        out += line(x, y, x + 28, y, kTrainColor, 1.5);
        out += text(x + 36, y + 4, "train", "start", 13);
        y += 20;
    }
    if (has_val) {
        out += line(x, y, x + 28, y, kValColor, 2.5);
        out += "<circle cx=\"" + fmt(x + 14, 1) + "\" cy=\"" + fmt(y, 1) + "\" r=\"3.5\" fill=\"" + kValColor + "\"/>\n";
        out += text(x + 36, y + 4, "val", "start", 13);
    }
    return out;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
    // Spacing: the raw step (hi-lo)/target rounded up to 1, 2 or 5 times a power of ten.
    double raw = (hi - lo) / std::max(1, target);
    if (!(raw > 0) || !std::isfinite(raw)) return {lo, hi};
    double power = std::pow(10.0, std::floor(std::log10(raw)));
    double spacing = 10 * power;
    for (double m : {1.0, 2.0, 5.0})
        if (m * power >= raw * (1 - 1e-9)) {
            spacing = m * power;
            break;
        }
    std::vector<double> ticks;
    double first = std::floor(lo / spacing + 1e-9) * spacing;
    for (double t = first; t < hi + spacing * (1 - 1e-9); t += spacing) {
        double rounded = std::round(t / spacing) * spacing;  // no 0.30000000000000004
        ticks.push_back(rounded);
    }
    if (ticks.size() < 2) ticks.push_back(ticks.back() + spacing);
    return ticks;
}

namespace {

// Ten distinguishable colours (matplotlib's "tab10").
const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string svg_head(const std::string& title) {
    std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + fmt(kWidth, 0) + "\" height=\"" +
           fmt(kHeight, 0) + "\" viewBox=\"0 0 " + fmt(kWidth, 0) + " " + fmt(kHeight, 0) +
           "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    svg += "<rect x=\"0\" y=\"0\" width=\"" + fmt(kWidth, 0) + "\" height=\"" + fmt(kHeight, 0) + "\" fill=\"white\"/>\n";
    return svg + text(kWidth / 2, 26, title, "middle", 16, " font-weight=\"bold\"");
}

// A cross of two strokes centred on (x, y).
std::string cross(double x, double y, const char* color) {
    return line(x - 5, y - 5, x + 5, y + 5, color, 2) + line(x - 5, y + 5, x + 5, y - 5, color, 2);
}

// The legend of chart_svg: a line sample (and a cross for a diverged run) and the label, per series.
std::string chart_legend(const std::vector<ChartSeries>& series, double right, double top) {
    size_t longest = 0;
    std::vector<std::string> names;
    for (const ChartSeries& s : series) {
        names.push_back(s.label + (s.diverged_x.empty() ? "" : " (diverged)"));
        longest = std::max(longest, names.back().size());
    }
    const double width = std::min(40.0 + 7.5 * (double)longest, right - kLeft - 20), x = right - width - 6;
    double y = top + 20;
    std::string out = "<rect x=\"" + fmt(x - 4, 1) + "\" y=\"" + fmt(y - 12, 1) + "\" width=\"" + fmt(width, 1) +
                      "\" height=\"" + fmt(18.0 * (double)series.size() + 4, 1) +
                      "\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#cccccc\" stroke-width=\"1\"/>\n";
    for (size_t i = 0; i < series.size() && y < kHeight - kBottom; ++i, y += 18) {
        const char* color = kPalette[i % 10];
        out += line(x + 2, y, x + 26, y, color, 2);
        if (!series[i].diverged_x.empty()) out += cross(x + 14, y, color);
        out += text(x + 32, y + 4, names[i], "start", 12);
    }
    return out;
}

// The mean y of each run of equal x in sorted points: a sweep's line through its seeds' means.
Points mean_by_x(const Points& points) {
    Points means;
    for (size_t i = 0; i < points.size();) {
        size_t j = i;
        double sum = 0;
        for (; j < points.size() && points[j].first == points[i].first; ++j) sum += points[j].second;
        means.push_back({points[i].first, sum / (double)(j - i)});
        i = j;
    }
    return means;
}

}  // namespace

std::string chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& o) {
    std::vector<Points> drawn;  // each series' points that can be drawn on these axes
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    auto widen_x = [&](double x) { x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x); };
    for (const ChartSeries& s : series) {
        drawn.emplace_back();
        for (const auto& p : s.points)
            if (plottable(p.first) && plottable(p.second) && (!o.log_x || p.first > 0)) drawn.back().push_back(p);
        for (const auto& p : drawn.back()) widen_x(p.first), y_lo = std::min(y_lo, p.second), y_hi = std::max(y_hi, p.second);
        for (double dx : s.diverged_x)
            if (plottable(dx) && (!o.log_x || dx > 0)) widen_x(dx);
    }
    if (x_lo > x_hi) x_lo = o.log_x ? 1 : 0, x_hi = o.log_x ? 10 : 4;  // nothing to draw: empty axes
    if (y_lo > y_hi) y_lo = 0, y_hi = 1;
    Axis x = o.log_x ? make_log_axis(x_lo, x_hi, kLeft, kWidth - kRight) : make_axis(x_lo, x_hi, 0.0, kLeft, kWidth - kRight);
    Axis y = make_axis(y_lo, y_hi, 0.05, kHeight - kBottom, kTop);

    std::string svg = svg_head(o.title) + draw_axes(x, y, o.x_label, o.y_label);
    for (size_t i = 0; i < series.size(); ++i) {
        const char* color = kPalette[i % 10];
        const Points path = o.dots ? mean_by_x(drawn[i]) : drawn[i];
        if (path.size() > 1) svg += polyline(path, x, y, color, 1.8);
        if (o.dots || drawn[i].size() == 1) svg += dots(drawn[i], x, y, color, 3.5);
        for (double dx : series[i].diverged_x)
            if (plottable(dx) && (!o.log_x || dx > 0)) svg += cross(x.to_pixel(dx), y.pixel_hi + 6, color);
    }
    if (!series.empty()) svg += chart_legend(series, x.pixel_hi, y.pixel_hi);
    return svg + "</svg>\n";
}

std::string loss_svg(const std::vector<std::pair<int, double>>& train, const std::vector<std::pair<int, double>>& val,
                     const std::string& title, double optimum) {
    Points t = plottable_points(train), v = plottable_points(val);
    Points all = t;
    all.insert(all.end(), v.begin(), v.end());

    // Data ranges; with no data, a unit square so that the empty axes still look like axes.
    double x_lo = 0, x_hi = 4, y_lo = 0, y_hi = 1;
    if (!all.empty()) {
        x_lo = x_hi = all[0].first;
        y_lo = y_hi = all[0].second;
        for (const auto& p : all) {
            x_lo = std::min(x_lo, p.first);
            x_hi = std::max(x_hi, p.first);
            y_lo = std::min(y_lo, p.second);
            y_hi = std::max(y_hi, p.second);
        }
    }
    // Steps are whole numbers: keep at least 4 steps in view, so ticks never fall between steps.
    if (x_hi - x_lo < 4) {
        double mid = std::round((x_lo + x_hi) / 2);
        x_lo = x_lo >= 0 ? std::max(0.0, mid - 2) : mid - 2;  // no negative steps unless the data has them
        x_hi = x_lo + 4;
    }
    Axis x = make_axis(x_lo, x_hi, 0.0, kLeft, kWidth - kRight);
    bool has_optimum = plottable(optimum);
    if (has_optimum && !all.empty()) {
        y_lo = std::min(y_lo, optimum);
        y_hi = std::max(y_hi, optimum);
    }
    Axis y = make_axis(y_lo, y_hi, 0.05, kHeight - kBottom, kTop);

    std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + fmt(kWidth, 0) + "\" height=\"" +
           fmt(kHeight, 0) + "\" viewBox=\"0 0 " + fmt(kWidth, 0) + " " + fmt(kHeight, 0) +
           "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    svg += "<rect x=\"0\" y=\"0\" width=\"" + fmt(kWidth, 0) + "\" height=\"" + fmt(kHeight, 0) + "\" fill=\"white\"/>\n";
    svg += text(kWidth / 2, 26, title, "middle", 16, " font-weight=\"bold\"");
    svg += draw_axes(x, y);

    if (all.empty()) svg += text((x.pixel_lo + x.pixel_hi) / 2, (y.pixel_lo + y.pixel_hi) / 2, "no data yet", "middle", 14);
    if (has_optimum && !all.empty()) {
        double py = y.to_pixel(optimum);
        svg += "<line x1=\"" + fmt(x.pixel_lo, 1) + "\" y1=\"" + fmt(py, 1) + "\" x2=\"" + fmt(x.pixel_hi, 1) + "\" y2=\"" +
               fmt(py, 1) + "\" stroke=\"#555555\" stroke-width=\"1\" stroke-dasharray=\"6 4\"/>\n";
        // the label goes under the line, where the loss curves (which stay above the optimum) are not
        double label_y = py + 16 < y.pixel_lo - 4 ? py + 16 : py - 6;
        svg += text(x.pixel_hi - 6, label_y, "optimum " + fmt(optimum, 3), "end", 12, " fill=\"#555555\"");
    }
    if (t.size() > 1) svg += polyline(t, x, y, kTrainColor, 1.2);
    if (t.size() == 1) svg += dots(t, x, y, kTrainColor, 2.5);  // a line needs two points
    if (!v.empty()) {
        if (v.size() > 1) svg += polyline(v, x, y, kValColor, 2.5);
        svg += dots(v, x, y, kValColor, 3.5);
    }
    svg += draw_legend(!t.empty(), !v.empty(), x.pixel_hi, y.pixel_hi);
    svg += "</svg>\n";
    return svg;
}

}  // namespace train
