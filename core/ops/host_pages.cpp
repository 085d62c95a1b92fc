// Populated host allocations (see host_pages.h).
#include "core/ops/host_pages.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace sable::ops {

namespace {
constexpr std::align_val_t kAlign{4096};
}  // namespace

void* allocate_populated(size_t bytes) noexcept {
  if (bytes < kPopulateMin) {
    void* p = ::operator new(bytes == 0 ? 1 : bytes, kAlign, std::nothrow);
    if (p != nullptr) std::memset(p, 0, bytes);
    return p;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                 -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void free_populated(void* ptr, size_t bytes) noexcept {
  if (ptr == nullptr) return;
  if (bytes < kPopulateMin) {
    ::operator delete(ptr, kAlign);
    return;
  }
  munmap(ptr, bytes);
}

}  // namespace sable::ops
