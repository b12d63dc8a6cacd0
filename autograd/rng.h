// rng.h: a small, explicit, deterministic random number generator.
//
// Everything random in the project (initialisation, dropout masks, data batches, sampling) draws from
// an Rng that is passed in, never from a hidden global, so a run is reproducible from its seed and
// the generator's state can be saved in a checkpoint (it is one 64-bit word plus the Box-Muller spare).
#pragma once

#include <cmath>
#include <cstdint>

namespace ag {

class Rng {
public:
    explicit Rng(uint64_t seed = 1337) : state(seed) {}

    // SplitMix64 (Steele, Lea & Flood 2014): add a constant, then scramble the bits.
    uint64_t next_u64() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    // Uniform in [0, 1), with 53 random bits.
    double uniform() { return (double)(next_u64() >> 11) * 0x1.0p-53; }

    // Uniform integer in [0, n), for n > 0.
    uint64_t below(uint64_t n) { return next_u64() % n; }

    // Standard normal by the Box-Muller transform; the second value of each pair is kept for the next call.
    double normal() {
        if (has_spare) {
            has_spare = false;
            return spare;
        }
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;  // log(0) guard
        double r = std::sqrt(-2.0 * std::log(u1));
        double angle = 2.0 * M_PI * u2;
        spare = r * std::sin(angle);
        has_spare = true;
        return r * std::cos(angle);
    }

    // The whole state, public so that a checkpoint can save and restore it exactly.
    uint64_t state;
    bool has_spare = false;
    double spare = 0;
};

}  // namespace ag
