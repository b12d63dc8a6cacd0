// spikes.h: a loss-spike detector. The idea is llm.c's (train_gpt2.cu scores each step's loss and
// gradient norm against a window of recent steps); this is our own code. A step is a spike when its
// loss or its gradient norm lies more than Z standard deviations above the mean of the last `window`
// steps: z = (x - mean) / std. The trainer marks it, and with --skip-spikes does not apply its update.
//
// The window is part of a run's state: the checkpoint saves it (to_text, exactly), so a resumed run
// scores every step as the run that never stopped would.
#pragma once

#include <cmath>
#include <deque>
#include <string>

namespace train {

struct SpikeScores {
    double loss_z = NAN, norm_z = NAN;  // NaN until the window is full
    // Whether either z-score exceeds z (NaN never does).
    bool above(double z) const { return loss_z > z || norm_z > z; }
};

class SpikeDetector {
public:
    explicit SpikeDetector(int window);

    // The step's z-scores against the window as it is (the step itself not in it).
    SpikeScores score(double loss, double norm) const;
    // Adds the step to the window, dropping the oldest beyond `window` steps. Every finite step goes in,
    // spikes too (as in llm.c): a run whose loss settles at a new level stops being flagged.
    void push(double loss, double norm);

    // The window as text for a checkpoint, "loss norm loss norm ...", oldest first, each number in
    // C's exact hexadecimal form (%a); from_text reads it back, throwing train::Error naming `source`
    // if it is not such a list of at most `window` pairs.
    std::string to_text() const;
    void from_text(const std::string& text, const std::string& source);

private:
    int window_;
    std::deque<double> losses_, norms_;
};

}  // namespace train
