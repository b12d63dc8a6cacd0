// parallel.h: the two size rules every tuned loop goes by, written once.
#pragma once

#include <cstdint>

namespace ag {

// Whether a pass over `values` values is worth sharing between OpenMP's threads: waking them costs a
// few microseconds, more than a pass over fewer values takes on one thread. (The gemm decides by its
// FLOPs instead, fast/gemm_loops.h; attention by its heads, one per thread.)
constexpr int64_t kThreadsMin = 1 << 15;
inline bool worth_threads(int64_t values) { return values >= kThreadsMin; }

// Whether `bytes` of data are past the caches a core keeps them in (several times a core's L2): the
// passes that prefetch ahead of their reads, or stream their stores past the caches, do so only then,
// since a tensor that small is usually still cached when it is next read.
constexpr int64_t kFarBytes = 8 << 20;
inline bool past_caches(int64_t bytes) { return bytes > kFarBytes; }

}  // namespace ag
