// Populated host allocations (core/ops/host_pages.h): zeroed, page-aligned, and - from kPopulateMin
// on - every page already mapped when the call returns (mincore says resident before anything
// touched them), so a forward that grows the arena or writes a fresh KV page takes no page fault.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
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

// kB of transparent huge pages backing the mapping that starts at p (/proc/self/smaps), -1 when
// the mapping is not found.
long anon_huge_kb(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      in = lo == reinterpret_cast<uintptr_t>(p);
      continue;
    }
    if (in && line.rfind("AnonHugePages:", 0) == 0)
      return std::strtol(line.c_str() + 14, nullptr, 10);
  }
  return -1;
}

// From 2 MiB on the mapping starts on a 2 MiB boundary and, where transparent huge pages are
// allowed for madvised memory, is backed by them (the single-core decode's TLB and prefetcher).
TEST(HostPages, LargeAllocationsAskForHugePages) {
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(mode_file, mode);
  if (mode.find("[never]") != std::string::npos || mode.empty())
    GTEST_SKIP() << "transparent huge pages are off here";
  const size_t bytes = size_t{8} << 20;
  void* p = allocate_populated(bytes);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (size_t{2} << 20), 0u);
  const long kb = anon_huge_kb(p);
  free_populated(p, bytes);
  EXPECT_GE(kb, 2048) << "THP mode '" << mode << "'";
}

}  // namespace
}  // namespace sable::ops
