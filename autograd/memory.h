// memory.h: where tensors' memory comes from.
//
// A training step allocates the same tensors, of the same sizes, every step, and frees them again when
// the graph goes. Asking the operating system each time costs page faults and zeroing (we measured
// about 6% of a small model's step). So freed blocks are kept, by size, and handed out again: a
// caching allocator, the idea PyTorch's CUDA and CPU allocators use. After the first step, a step
// allocates nothing new.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ag {

// A block of at least `bytes` bytes, 64-byte aligned (for SIMD loads), uninitialised.
void* allocate(size_t bytes);
// Gives a block back to the cache (not to the system).
void deallocate(void* block, size_t bytes);
// Returns every cached block to the system.
void release_cached_memory();

struct MemoryStats {
    size_t in_use = 0;         // bytes held by live tensors
    size_t cached = 0;         // bytes in freed blocks kept for reuse
    size_t peak_in_use = 0;    // the most in_use has been
    int64_t allocations = 0;   // calls to allocate()
    int64_t from_system = 0;   // of those, how many the cache could not serve
};
MemoryStats memory_stats();

}  // namespace ag
