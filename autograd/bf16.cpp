// bf16.cpp: the parts of bf16.h that are not one-liners.
#include "bf16.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "parallel.h"
#include "rng.h"

namespace ag {

const char* to_string(Dtype d) { return d == Dtype::bf16 ? "bf16" : "fp32"; }

Dtype parse_dtype(const std::string& s) {
    if (s == "fp32") return Dtype::fp32;
    if (s == "bf16") return Dtype::bf16;
    throw std::invalid_argument("unknown dtype '" + s + "' (expected fp32 or bf16)");
}

// Cut x to a float towards zero, and set the float's last bit if anything was cut: that "sticky" bit
// sits 16 places below bf16's last bit, so it decides a tie the way the full double would, and
// rounding the float to bf16 then gives the double's own nearest bf16.
double round_bf16(double x) {
    if (std::isnan(x) || std::fabs(x) > (double)std::numeric_limits<float>::max()) return (double)round_bf16((float)x);
    float f = (float)x;
    if (std::fabs((double)f) > std::fabs(x)) f = std::nextafter(f, 0.0f);
    if ((double)f != x) f = bits_float(float_bits(f) | 1u);
    return (double)round_bf16(f);
}

uint64_t sr_key(uint64_t seed, uint64_t tensor, uint64_t step) {
    Rng mix(seed);  // SplitMix64 steps, each folding in one more field
    mix.state ^= mix.next_u64() ^ tensor;
    mix.state ^= mix.next_u64() ^ step;
    return mix.next_u64();
}

void round_bf16_into(const real* src, real* dst, int64_t n) {
#pragma omp parallel for simd schedule(static) if (worth_threads(n))
    for (int64_t i = 0; i < n; ++i) dst[i] = round_bf16(src[i]);
}

void round_bf16_inplace(real* x, int64_t n) { round_bf16_into(x, x, n); }

}  // namespace ag
