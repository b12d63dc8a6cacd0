// memory.cpp: a caching allocator. Blocks are rounded up to a multiple of 64 bytes and cached by
// that exact size: a training step asks for the same sizes over and over, so exact sizes are reused
// almost perfectly, and the bookkeeping stays a map from size to a list of free blocks.
#include "memory.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace ag {

namespace {

struct Cache {
    std::mutex mutex;  // ops allocate from one thread, but be safe if a user's threads do too
    std::map<size_t, std::vector<void*>> free_blocks;
    MemoryStats stats;
};

// Never destroyed: tensors held by static objects may be freed after main() returns.
Cache& cache() {
    static Cache* c = new Cache();
    return *c;
}

size_t rounded(size_t bytes) { return bytes == 0 ? 64 : (bytes + 63) / 64 * 64; }

}  // namespace

void* allocate(size_t bytes) {
    bytes = rounded(bytes);
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    ++c.stats.allocations;
    c.stats.in_use += bytes;
    if (c.stats.in_use > c.stats.peak_in_use) c.stats.peak_in_use = c.stats.in_use;
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
        void* block = it->second.back();
        it->second.pop_back();
        c.stats.cached -= bytes;
        return block;
    }
    ++c.stats.from_system;
    void* block = std::aligned_alloc(64, bytes);
    if (!block) {
        // maybe the cache holds what the system would need: give it back and try once more
        for (auto& [size, blocks] : c.free_blocks) {
            for (void* b : blocks) std::free(b);
            c.stats.cached -= size * blocks.size();
            blocks.clear();
        }
        block = std::aligned_alloc(64, bytes);
    }
    if (!block) {
        c.stats.in_use -= bytes;
        throw std::bad_alloc();
    }
    return block;
}

void deallocate(void* block, size_t bytes) {
    if (!block) return;
    bytes = rounded(bytes);
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.in_use -= bytes;
    c.stats.cached += bytes;
    c.free_blocks[bytes].push_back(block);
}

void release_cached_memory() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [size, blocks] : c.free_blocks)
        for (void* b : blocks) std::free(b);
    c.free_blocks.clear();
    c.stats.cached = 0;
}

MemoryStats memory_stats() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.stats;
}

}  // namespace ag
