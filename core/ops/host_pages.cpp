// Populated host allocations (see host_pages.h).
#include "core/ops/host_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace sable::ops {

namespace {
constexpr std::align_val_t kAlign{4096};
constexpr size_t kHuge = size_t{2} << 20;

bool huge_pages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SABLE_HUGEPAGES");
    return v == nullptr || v[0] == '\0' || std::strcmp(v, "0") != 0;
  }();
  return on;
}

// A mapping of `bytes` starting on a 2 MiB boundary, asked to be backed by transparent huge pages
// and populated with one madvise. nullptr where the kernel lacks MADV_POPULATE_WRITE (the caller
// then maps with MAP_POPULATE): touching the pages one by one would trap once per 4 KiB page.
void* map_huge(size_t bytes) {
  const size_t span = bytes + kHuge;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHuge - 1) & ~(kHuge - 1);
  const size_t head = start - base;
  const size_t kept = (bytes + 4095) & ~size_t{4095};
  if (head > 0) munmap(raw, head);
  if (span - head > kept) munmap(reinterpret_cast<void*>(start + kept), span - head - kept);
  auto* p = reinterpret_cast<void*>(start);
  madvise(p, kept, MADV_HUGEPAGE);  // advisory: without THP the pages stay 4 KiB
  if (madvise(p, kept, MADV_POPULATE_WRITE) != 0) {
    munmap(p, kept);
    return nullptr;
  }
  return p;
}
}  // namespace

void* allocate_populated(size_t bytes) noexcept {
  if (bytes < kPopulateMin) {
    void* p = ::operator new(bytes == 0 ? 1 : bytes, kAlign, std::nothrow);
    if (p != nullptr) std::memset(p, 0, bytes);
    return p;
  }
  if (bytes >= kHuge && huge_pages_enabled()) {
    if (void* p = map_huge(bytes)) return p;
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
