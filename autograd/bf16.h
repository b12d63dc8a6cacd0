// bf16.h: bfloat16 numbers, and the two ways a float becomes one.
//
// A bf16 is the top 16 bits of a float32: 1 sign bit, the same 8 exponent bits (so the same range,
// up to 3.39e38), and 7 of the 23 mantissa bits (about 2.4 decimal digits). Widening a bf16 to a
// float is exact: its 16 bits, then 16 zero bits. Narrowing a float drops 16 bits, and must round:
//
//   to nearest, ties to even (IEEE's default): the result is the closer of the two bf16 neighbours
//     of x; a tie goes to the one whose last bit is 0. NaN stays a (quiet) NaN, +-Inf stay +-Inf, a
//     finite x past the largest bf16 (plus half a step) becomes Inf, subnormals round like any other
//     number (the bit pattern of a float is monotonic in its value, so integer arithmetic on it works).
//
//   stochastically (Zamirai et al. 2020, "Revisiting BFloat16 Training"): round away from zero with
//     probability (dropped 16 bits) / 65536, towards zero otherwise. The expected result is x itself,
//     so an update smaller than half a bf16 step, which rounding to nearest would cancel every time,
//     still moves the weight on average. The random 16 bits come from a counter-based generator
//     (sr_random below), keyed by what is rounded, not by who rounds it: the same bits on any number
//     of threads.
//
// The engine keeps bf16 values in float (or double) memory: a tensor "in bf16" holds floats that are
// all exactly bf16 numbers. round_bf16 (the op in ops.h) rounds a tensor to that set.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "tensor.h"

namespace ag {

// The precision a model computes in: all fp32, or llm.c's mixed precision (values stored as bf16,
// accumulations, normalisation statistics, softmax, the loss and the optimizer state in fp32).
enum class Dtype { fp32, bf16 };
const char* to_string(Dtype d);          // "fp32", "bf16"
Dtype parse_dtype(const std::string& s); // "fp32" or "bf16"; anything else throws std::invalid_argument

inline uint32_t float_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}
inline float bits_float(uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

// float -> bf16 bits, rounding to nearest, ties to even.
inline uint16_t bf16_bits(float x) {
    uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: keep the sign and top payload bits, set the quiet bit
        return (uint16_t)((u >> 16) | 0x0040u);
    // Adding 0x7fff rounds up exactly when the dropped half is over 0x8000; the last kept bit breaks
    // the tie at 0x8000. A carry into the exponent is the next binade, or Inf past the largest bf16.
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// bf16 bits -> float, exactly.
inline float bf16_float(uint16_t b) { return bits_float((uint32_t)b << 16); }

// x rounded to the nearest bf16, as a float.
inline float round_bf16(float x) { return bf16_float(bf16_bits(x)); }
// The same for a double (the test build): rounded to the nearest bf16 directly, not through float
// (rounding twice could turn a value just above a tie into the tie, and then go the wrong way).
double round_bf16(double x);

// x rounded stochastically by the low 16 bits of `random`: up (away from zero) when they are below
// x's dropped 16 bits. Over all 65,536 values the mean is exactly x. NaN stays NaN, Inf stays Inf.
inline float round_bf16_stochastic(float x, uint32_t random) {
    uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return round_bf16(x);
    uint32_t down = u & 0xffff0000u, dropped = u & 0xffffu;
    return bits_float((random & 0xffffu) < dropped ? down + 0x10000u : down);
}

// The double build's: through float (it trains in fp32 only; the double build exists for the gradient checks).
inline double round_bf16_stochastic(double x, uint32_t random) { return round_bf16_stochastic((float)x, random); }

// Is x exactly a bf16 number?
inline bool is_bf16(float x) { return (float_bits(x) & 0xffffu) == 0 || x != x; }

// The counter-based generator for stochastic rounding: sr_key mixes what names one rounding pass
// (the run's seed, the tensor's index, the optimizer step) into a key, and sr_random(key, i) gives
// element i's 32 random bits: two rounds of a 32-bit integer hash (Wellons' "lowbias32", whose
// output bits each flip with probability close to 1/2 when any input bit flips).
inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}
uint64_t sr_key(uint64_t seed, uint64_t tensor, uint64_t step);
inline uint32_t sr_random(uint64_t key, uint64_t element) {
    uint32_t lo = (uint32_t)key, hi = (uint32_t)(key >> 32);
    return hash32(hash32((uint32_t)element ^ lo) + hi + (uint32_t)(element >> 32) * 0x9E3779B9u);
}

// dst[i] = round_bf16(src[i]) for n values on the calling thread (dst may be src): for the tuned ops
// that round their output, or the gradient they read, a piece at a time (`stored`, ops.h).
inline void round_bf16_span(const float* src, float* dst, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = round_bf16(src[i]);
}
inline void round_bf16_span(const double* src, double* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = round_bf16(src[i]);
}
// x[i] = round_bf16(x[i]) for n values, in place; threaded for a large n.
void round_bf16_inplace(real* x, int64_t n);
// dst[i] = round_bf16(src[i]) (dst may be src).
void round_bf16_into(const real* src, real* dst, int64_t n);

}  // namespace ag
