// simd.h: the x86 vector intrinsics (AVX-512, AVX2, SSE2), for the files that write them by hand.
//
// GCC 12's own AVX-512 header trips its -Wuninitialized and -Wmaybe-uninitialized (GCC bug 105593):
// the warnings are about the header, not about our code, so they are silenced for it alone.
#pragma once

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#if defined(__GNUC__) && !defined(__clang__)  // clang knows no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#endif

#if defined(__AVX512F__)
// bf16.h's float -> bf16 rounding on 16 floats at once, in integer arithmetic: to nearest, ties to
// even, a NaN made quiet (its sign and top payload bits kept). Each lane's bf16 is in its top 16 bits;
// the bottom 16 are left over, for the caller to clear or to ignore.
inline __m512i bf16_in_top_halves(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i nearest = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(nearest, nan, u, _mm512_set1_epi32(0x400000));
}
#endif
