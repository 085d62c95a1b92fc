// Page accounting for the paged KV pool. The runner owns the KV memory ([pages, page_size, ...] per
// layer); this class only hands out page indices in [0, num_pages) and takes them back, so the
// scheduler and the radix cache can reason about capacity without touching device memory.
// Thread-safety: none; it is used by the scheduler thread only (the Engine reads stats through the
// scheduler's own lock).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sable::scheduler {

class PageAllocator {
 public:
  // num_pages pages of page_size tokens each. Throws std::invalid_argument on non-positive sizes.
  PageAllocator(int32_t num_pages, int32_t page_size);

  // n free pages (distinct indices), or nullopt (nothing taken) when fewer than n are free.
  std::optional<std::vector<int32_t>> allocate(int32_t n);
  // Returns pages to the pool. A page that is out of range or already free is a broken invariant
  // and throws std::logic_error (a double free would corrupt another request's KV).
  void free(std::span<const int32_t> pages);

  int32_t num_pages() const { return num_pages_; }
  int32_t page_size() const { return page_size_; }
  int32_t num_free() const { return static_cast<int32_t>(free_list_.size()); }
  int32_t num_used() const { return num_pages_ - num_free(); }
  // Pages needed to hold `tokens` tokens.
  int32_t pages_for(int64_t tokens) const {
    return static_cast<int32_t>((tokens + page_size_ - 1) / page_size_);
  }
  // Forgets every allocation (all pages free again).
  void reset();

 private:
  int32_t num_pages_;
  int32_t page_size_;
  std::vector<int32_t> free_list_;  // a stack: recently freed pages are reused first
  std::vector<uint8_t> in_use_;     // [num_pages] 1 = allocated
};

}  // namespace sable::scheduler
