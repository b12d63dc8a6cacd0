// The loss plot: well-formed SVG, both curves, everything inside the picture, odd inputs survive.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "../../trainer/plot.h"

using namespace train;
using Series = std::vector<std::pair<int, double>>;

namespace {

// Every opened tag is closed in order, the document's root is <svg>. Returns "" or what is wrong.
std::string check_balanced(const std::string& svg) {
    std::vector<std::string> open;
    size_t pos = 0;
    bool saw_root = false;
    while ((pos = svg.find('<', pos)) != std::string::npos) {
        size_t end = svg.find('>', pos);
        if (end == std::string::npos) return "unterminated tag";
        std::string tag = svg.substr(pos + 1, end - pos - 1);
        pos = end + 1;
        if (tag[0] == '?') continue;  // the <?xml ... ?> declaration
        if (tag[0] == '/') {
            std::string name = tag.substr(1);
            if (open.empty() || open.back() != name) return "unexpected </" + name + ">";
            open.pop_back();
            continue;
        }
        std::string name = tag.substr(0, tag.find_first_of(" \n/"));
        if (!saw_root && name != "svg") return "root is <" + name + ">";
        saw_root = true;
        if (tag.back() != '/') open.push_back(name);
    }
    return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) n++;
    return n;
}

// The values of every attribute `name`="..." in svg (matched with the blank before it, so that "x"
// does not match "cx"). Plain string search: std::regex recurses per character and overflows the
// stack on a long points list under AddressSanitizer.
std::vector<std::string> attribute_values(const std::string& svg, const std::string& name) {
    std::vector<std::string> values;
    const std::string key = " " + name + "=\"";
    for (size_t pos = svg.find(key); pos != std::string::npos; pos = svg.find(key, pos + 1)) {
        size_t start = pos + key.size(), end = svg.find('"', start);
        if (end == std::string::npos) break;
        values.push_back(svg.substr(start, end - start));
    }
    return values;
}

// A whole number as written in the SVG, or NaN if it is not one (so that the range checks fail).
double number(const std::string& text) {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    return !text.empty() && *end == '\0' ? v : std::nan("");
}

// Every coordinate attribute and polyline point lies inside the 800 x 480 viewBox.
void check_inside(const std::string& svg) {
    for (const char* name : {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy"}) {
        const bool is_x = name[0] == 'x' || name[1] == 'x';
        for (const std::string& text : attribute_values(svg, name)) {
            INFO(name << "=\"" << text << "\"");
            double v = number(text);
            CHECK(v >= 0);
            CHECK(v <= (is_x ? 800 : 480));
        }
    }
    for (const std::string& list : attribute_values(svg, "points")) {
        std::istringstream pairs(list);
        for (std::string pair; pairs >> pair;) {  // "x,y" pairs, separated by blanks
            INFO(pair);
            size_t comma = pair.find(',');
            REQUIRE(comma != std::string::npos);
            double x = number(pair.substr(0, comma)), y = number(pair.substr(comma + 1));
            CHECK(x >= 0);
            CHECK(x <= 800);
            CHECK(y >= 0);
            CHECK(y <= 480);
        }
    }
}

}  // namespace

TEST_CASE("plot: a typical run gives a well-formed SVG with both curves inside the picture", "[train][plot]") {
    Series train, val;
    for (int step = 0; step <= 500; ++step) train.push_back({step, 1.2 + 4.3 * std::exp(-step / 60.0) + 0.05 * std::sin(step)});
    for (int step = 0; step <= 500; step += 50) val.push_back({step, 1.25 + 4.2 * std::exp(-step / 60.0)});
    std::string svg = loss_svg(train, val, "baby GPT on the built-in grammar <test> & co");
    CHECK(check_balanced(svg) == "");
    CHECK(count(svg, "<polyline") == 2);
    CHECK(count(svg, "<circle") == val.size() + 1);  // a dot per evaluation, and one in the legend
    CHECK(svg.find("&lt;test&gt; &amp; co") != std::string::npos);
    CHECK(svg.find(">train</text>") != std::string::npos);
    CHECK(svg.find(">val</text>") != std::string::npos);
    CHECK(svg.find(">step</text>") != std::string::npos);
    CHECK(svg.find(">500</text>") != std::string::npos);  // round tick labels
    check_inside(svg);
}

TEST_CASE("plot: empty val, a single point, non-finite values, no data", "[train][plot]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();

    std::string only_train = loss_svg({{0, 5.0}, {1, 4.0}, {2, 3.5}}, {}, "t");
    CHECK(check_balanced(only_train) == "");
    CHECK(count(only_train, "<polyline") == 1);
    CHECK(only_train.find(">val</text>") == std::string::npos);
    check_inside(only_train);

    std::string single = loss_svg({{7, 2.5}}, {{7, 2.6}}, "one step");
    CHECK(check_balanced(single) == "");
    CHECK(count(single, "<circle") == 3);  // the train point, the val point, the legend's dot
    check_inside(single);

    std::string gaps = loss_svg({{0, 3.0}, {1, nan}, {2, inf}, {3, 2.0}}, {{0, nan}}, "gaps");
    CHECK(check_balanced(gaps) == "");
    CHECK(gaps.find("nan") == std::string::npos);
    CHECK(gaps.find("inf") == std::string::npos);
    CHECK(count(gaps, "<polyline") == 1);
    check_inside(gaps);

    std::string none = loss_svg({}, {}, "nothing");
    CHECK(check_balanced(none) == "");
    CHECK(none.find("no data yet") != std::string::npos);
    check_inside(none);

    std::string flat = loss_svg({{0, 1.0}, {100, 1.0}}, {}, "flat");
    CHECK(check_balanced(flat) == "");
    check_inside(flat);
}

TEST_CASE("plot: the optimum is a dashed, labelled line inside the range", "[train][plot]") {
    std::string svg = loss_svg({{0, 5.5}, {100, 1.0}}, {{100, 1.1}}, "t", 0.513);
    CHECK(check_balanced(svg) == "");
    CHECK(svg.find("stroke-dasharray") != std::string::npos);
    CHECK(svg.find(">optimum 0.513</text>") != std::string::npos);
    CHECK(svg.find(">0</text>") != std::string::npos);  // the y axis reaches down to include 0.513
    check_inside(svg);
    CHECK(loss_svg({{0, 5.5}, {100, 1.0}}, {}, "t").find("optimum") == std::string::npos);
    CHECK(loss_svg({{0, 1.0}}, {}, "t").find(">-") == std::string::npos);  // no negative step ticks
}

TEST_CASE("plot: ticks are round numbers that cover the range", "[train][plot]") {
    CHECK(nice_ticks(0, 2000, 6) == std::vector<double>{0, 500, 1000, 1500, 2000});
    std::vector<double> t = nice_ticks(1.13, 5.61, 6);
    CHECK(t.front() <= 1.13);
    CHECK(t.back() >= 5.61);
    CHECK(t[1] - t[0] == Approx(1.0));
    std::vector<double> small = nice_ticks(0.512, 0.571, 6);
    CHECK(small.front() == Approx(0.51));
    CHECK(small[1] == Approx(0.52));
    CHECK(small.back() >= 0.571);
    CHECK(small.size() <= 8);
}

TEST_CASE("chart: one line per run, a legend, a log x axis, crosses for diverged runs", "[train][plot]") {
    std::vector<ChartSeries> series(3);
    series[0].label = "pre-LN";
    series[1].label = "post-LN";
    series[2].label = "sandwich";
    for (double lr : {1e-4, 3e-4, 1e-3, 3e-3}) {
        series[0].points.push_back({lr, 2.0 - lr * 100});
        series[1].points.push_back({lr, 2.1 - lr * 50});
    }
    series[2].points = {{1e-4, 1.9}};
    series[2].diverged_x = {3e-3, 1e-2};
    ChartOptions o;
    o.log_x = true, o.dots = true, o.x_label = "lr", o.title = "final loss against lr";
    const std::string svg = chart_svg(series, o);
    CHECK(check_balanced(svg).empty());
    check_inside(svg);
    CHECK(count(svg, "<polyline") == 2);                 // the single-point series is a dot only
    CHECK(count(svg, "<circle") == 9);                   // every point is a dot
    CHECK(count(svg, ">pre-LN</text>") == 1);            // the legend
    CHECK(count(svg, ">post-LN</text>") == 1);
    CHECK(count(svg, ">sandwich (diverged)</text>") == 1);
    CHECK(count(svg, "<line") >= 2 * 3);                 // two crosses on the plot, one in the legend
    for (const char* tick : {">0.0001</text>", ">0.001</text>", ">0.01</text>"}) CHECK(count(svg, tick) == 1);
    CHECK(count(svg, ">lr</text>") == 1);

    // seeds at one x: the line goes through their mean, a dot for each
    std::vector<ChartSeries> seeds(1);
    seeds[0].label = "3 seeds";
    seeds[0].points = {{1, 2.0}, {1, 2.2}, {2, 1.0}, {2, 1.4}};
    ChartOptions sweep;
    sweep.dots = true;
    const std::string s = chart_svg(seeds, sweep);
    const std::vector<std::string> lines = attribute_values(s, "points");
    REQUIRE(lines.size() == 1);
    CHECK(std::count(lines[0].begin(), lines[0].end(), ',') == 2);  // two points, not four
    CHECK(count(s, "<circle") == 4);

    // against the step: lines only; empty input still gives a picture
    ChartOptions steps;
    CHECK(count(chart_svg(series, steps), "<circle") == 1);  // only the single point is a dot
    CHECK(check_balanced(chart_svg({}, steps)).empty());
}
