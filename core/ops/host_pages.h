// Large host allocations whose pages are in place when the call returns: anonymous memory mapped
// with MAP_POPULATE (zeroed by the kernel), for the forward arena's chunks, the weights and the KV
// pool on the CPU.
//
// Why: memory from malloc/new is mapped lazily, so the first touch of every 4 KiB page traps into
// the kernel (a minor fault). A forward that grows the arena, or a first decode that writes a fresh
// KV page, pays one trap a page inside the timed step; on a sandboxed host (gVisor-like, the
// device machines) each trap costs tens of microseconds. One populating mmap maps them all in one
// system call instead. Small requests (under kPopulateMin) stay with the C++ runtime.
// From 2 MiB on, the mapping starts on a 2 MiB boundary and is advised MADV_HUGEPAGE before it is
// populated (MADV_POPULATE_WRITE), so that where transparent huge pages are on "madvise" the
// weights' x16 copies, the KV pool and the arena sit on 2 MiB pages: a single-core decode streams
// ~0.5 GB a token, and with 4 KiB pages that is a TLB miss (and a stop of the hardware
// prefetcher, which does not cross pages) every 4 KiB. SABLE_HUGEPAGES=0 turns it off (A/B).
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <cstddef>

namespace sable::ops {

constexpr size_t kPopulateMin = size_t{1} << 20;  // 1 MiB

// `bytes` of zeroed memory aligned to 4096, every page mapped; nullptr when none can be had.
// Requests under kPopulateMin come from operator new (zeroed here as well).
void* allocate_populated(size_t bytes) noexcept;
// Frees memory from allocate_populated; `bytes` must be the size asked for.
void free_populated(void* ptr, size_t bytes) noexcept;

}  // namespace sable::ops
