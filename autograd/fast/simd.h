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
