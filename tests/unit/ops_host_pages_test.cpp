// Populated host allocations (core/ops/host_pages.h): zeroed, page-aligned, and - from kPopulateMin
// on - every page already mapped when the call returns (mincore says resident before anything
// touched them), so a forward that grows the arena or writes a fresh KV page takes no page fault.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "core/ops/host_pages.h"

namespace sable::ops {
namespace {

// Pages of [p, p + bytes) that are mapped (resident) now, without touching them.
size_t resident_pages(void* p, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((bytes + page - 1) / page);
  if (mincore(p, bytes, in.data()) != 0) return 0;
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

TEST(HostPages, ZeroedAlignedAndFreed) {
  for (size_t bytes : {size_t{0}, size_t{100}, size_t{5000}, kPopulateMin - 64, kPopulateMin,
                       size_t{3} << 20}) {
    auto* p = static_cast<unsigned char*>(allocate_populated(bytes));
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u) << bytes;
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(p[i], 0) << bytes << " at " << i;
    if (bytes > 0) p[bytes - 1] = 7;  // writable to the last byte
    free_populated(p, bytes);
  }
  free_populated(nullptr, 123);  // a no-op
}

TEST(HostPages, LargeAllocationsArriveMapped) {
  for (size_t bytes : {kPopulateMin, size_t{8} << 20}) {
    void* p = allocate_populated(bytes);
    ASSERT_NE(p, nullptr);
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    EXPECT_EQ(resident_pages(p, bytes), (bytes + page - 1) / page) << bytes << " bytes";
    free_populated(p, bytes);
  }
}

}  // namespace
}  // namespace sable::ops
