// Free-list page allocator (see page_allocator.h).
#include "core/scheduler/page_allocator.h"

#include <stdexcept>
#include <string>

namespace sable::scheduler {

PageAllocator::PageAllocator(int32_t num_pages, int32_t page_size)
    : num_pages_(num_pages), page_size_(page_size) {
  if (num_pages <= 0) throw std::invalid_argument("KV pool: number of pages must be positive");
  if (page_size <= 0) throw std::invalid_argument("KV pool: page_size must be positive");
  reset();
}

void PageAllocator::reset() {
  free_list_.clear();
  free_list_.reserve(num_pages_);
  // Lowest indices on top of the stack, so a fresh pool hands out 0, 1, 2, ...
  for (int32_t p = num_pages_ - 1; p >= 0; --p) free_list_.push_back(p);
  in_use_.assign(num_pages_, 0);
}

std::optional<std::vector<int32_t>> PageAllocator::allocate(int32_t n) {
  if (n < 0) throw std::invalid_argument("PageAllocator::allocate: negative count");
  if (n > num_free()) return std::nullopt;
  std::vector<int32_t> pages(free_list_.end() - n, free_list_.end());
  free_list_.resize(free_list_.size() - n);
  // Hand them out in ascending order of the stack top (nicer to read in tests and logs).
  std::vector<int32_t> out(pages.rbegin(), pages.rend());
  for (int32_t p : out) in_use_[p] = 1;
  return out;
}

void PageAllocator::free(std::span<const int32_t> pages) {
  for (int32_t p : pages) {
    if (p < 0 || p >= num_pages_) {
      throw std::logic_error("PageAllocator::free: page " + std::to_string(p) + " out of range");
    }
    if (!in_use_[p]) {
      throw std::logic_error("PageAllocator::free: page " + std::to_string(p) + " is already free");
    }
    in_use_[p] = 0;
    free_list_.push_back(p);
  }
}

}  // namespace sable::scheduler
