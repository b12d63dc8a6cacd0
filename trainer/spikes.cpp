// spikes.cpp: z-scores of the loss and the gradient norm over a window of steps.
#include "spikes.h"

#include <cstdio>
#include <sstream>
#include <vector>

#include "error.h"
#include "flags.h"

namespace train {

SpikeDetector::SpikeDetector(int window) : window_(window) {}

// (x - mean) / std over the values, the population standard deviation. Summed afresh, oldest first,
// every time: the same values in the same order give the same bits, before and after a resume.
static double z_score(const std::deque<double>& values, double x) {
    double mean = 0, var = 0;
    for (double v : values) mean += v;
    mean /= (double)values.size();
    for (double v : values) var += (v - mean) * (v - mean);
    const double std = std::sqrt(var / (double)values.size());
    if (std == 0) return x == mean ? 0 : x > mean ? INFINITY : -INFINITY;  // a flat window
    return (x - mean) / std;
}

SpikeScores SpikeDetector::score(double loss, double norm) const {
    SpikeScores s;
    if ((int)losses_.size() < window_) return s;
    s.loss_z = z_score(losses_, loss);
    s.norm_z = z_score(norms_, norm);
    return s;
}

void SpikeDetector::push(double loss, double norm) {
    losses_.push_back(loss);
    norms_.push_back(norm);
    if ((int)losses_.size() > window_) losses_.pop_front(), norms_.pop_front();
}

std::string SpikeDetector::to_text() const {
    std::string out;
    char number[64];  // one double in %a form is at most 24 characters
    for (size_t i = 0; i < losses_.size(); ++i)
        for (double v : {losses_[i], norms_[i]}) {
            std::snprintf(number, sizeof number, "%a", v);
            out += (out.empty() ? "" : " ") + std::string(number);
        }
    return out;
}

void SpikeDetector::from_text(const std::string& text, const std::string& source) {
    std::istringstream in(text);
    std::vector<double> values;
    for (std::string word; in >> word;) {
        double v = 0;
        if (!parse_float(word, v))
            throw Error(source + " has a bad spike window: '" + word + "' is not a finite number");
        values.push_back(v);
        if (values.size() > 2 * (size_t)window_)
            throw Error(source + " has a spike window of more than its " + std::to_string(window_) + " steps");
    }
    if (values.size() % 2) throw Error(source + " has a spike window with a loss but no gradient norm at its end");
    losses_.clear(), norms_.clear();
    for (size_t i = 0; i < values.size(); i += 2) push(values[i], values[i + 1]);
}

}  // namespace train
