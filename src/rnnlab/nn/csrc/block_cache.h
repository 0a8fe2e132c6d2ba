// The large buffers of the time loops (gates, states and their gradients: megabytes a call),
// kept between calls instead of being returned to the system.
//
// Why: torch's CPU allocator is malloc, and glibc hands blocks this large back to the system
// when they are freed, so the next call's buffer is fresh memory that faults in page by page.
// On the project's 2-core virtual machine a 33 MB tensor took 8,193 page faults and 21 ms to
// fill, against 3.8 ms for a buffer used before; the faults cost more than the system time they
// show, since the host maps each page too. A training loop asks for the same sizes every step,
// so a cache of freed blocks by size serves nearly every buffer from memory already mapped.
// (torch caches this way on CUDA; on the CPU it leaves it to malloc.)
//
// Blocks of 1 MiB and more are cached, their sizes rounded up to an eighth of the next power of
// two so that batches of nearby shapes share blocks; those of 2 MiB and more are 2 MiB-aligned
// and advised for huge pages. At most RNNLAB_NATIVE_CACHE_MB (default 1024) MiB of free blocks
// are kept; past that, freed blocks go back to the system. 0 turns the cache off.

#pragma once

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace rnnlab {

class BlockCache final : public c10::Allocator {
 public:
  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache();  // never destroyed: tensors may outlive exit
    return *cache;
  }

  c10::DataPtr allocate(size_t bytes) override {
    if (bytes < kMinBytes || limit_ == 0) return c10::GetDefaultCPUAllocator()->allocate(bytes);
    const size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto found = free_.find(size);
      if (found != free_.end()) {
        Block* block = found->second;
        free_.erase(found);
        free_bytes_ -= size;
        return {block->data, block, &release, c10::Device(c10::kCPU)};
      }
    }
    const size_t alignment = size >= kHugePage ? kHugePage : 64;
    void* data = nullptr;
    TORCH_CHECK(posix_memalign(&data, alignment, size) == 0, "rnnlab: out of memory (",
                size, " bytes for a recurrent layer's buffer)");
#ifdef MADV_HUGEPAGE
    if (alignment == kHugePage) madvise(data, size, MADV_HUGEPAGE);  // a hint; may be refused
#endif
    return {data, new Block{data, size}, &release, c10::Device(c10::kCPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Returns every free block to the system; blocks in use return when their tensors die.
  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, block] : free_) destroy(block);
    free_.clear();
    free_bytes_ = 0;
  }

  size_t free_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return free_bytes_;
  }

 private:
  struct Block {
    void* data;
    size_t size;
  };
  static constexpr size_t kMinBytes = size_t(1) << 20, kHugePage = size_t(2) << 20;

  BlockCache() {
    const char* megabytes = std::getenv("RNNLAB_NATIVE_CACHE_MB");
    if (megabytes == nullptr) {
      limit_ = size_t(1024) << 20;
      return;
    }
    char* end = nullptr;
    const unsigned long long value = std::strtoull(megabytes, &end, 10);
    TORCH_CHECK(end != megabytes && *end == '\0', "RNNLAB_NATIVE_CACHE_MB must be a whole number "
                "of MiB (0 turns the cache off), got '", megabytes, "'");
    limit_ = static_cast<size_t>(value) << 20;
  }

  static size_t rounded(size_t bytes) {
    size_t power = kMinBytes;
    while (power < bytes) power <<= 1;
    const size_t step = power / 8;
    return (bytes + step - 1) / step * step;
  }

  static void destroy(Block* block) {
    std::free(block->data);
    delete block;
  }

  static void release(void* context) { instance().give_back(static_cast<Block*>(context)); }

  void give_back(Block* block) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (free_bytes_ + block->size <= limit_) {
        free_.emplace(block->size, block);
        free_bytes_ += block->size;
        return;
      }
    }
    destroy(block);
  }

  std::mutex mutex_;
  std::multimap<size_t, Block*> free_;
  size_t free_bytes_ = 0, limit_ = 0;
};

// An uninitialised contiguous CPU tensor whose memory comes from the cache.
inline at::Tensor cached_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return at::detail::empty_generic(sizes, &BlockCache::instance(),
                                   c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   options.dtype().toScalarType(), std::nullopt);
}

}  // namespace rnnlab
