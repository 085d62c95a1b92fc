// Chunked bump allocator behind the forward context's scratch tensors (see arena.h).
#include "core/ops/arena.h"

#include <algorithm>
#include <new>

#include "core/ops/host_pages.h"
#include "sable/tensor.h"

namespace sable::ops {

namespace {
constexpr size_t kChunkAlign = 4096;
constexpr size_t kMinChunk = size_t{1} << 20;  // 1 MiB: small forwards still get one chunk

size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }
}  // namespace

// Chunks arrive with their pages mapped (host_pages.h): growing the arena inside a forward costs
// one system call, not a page fault per 4 KiB touched.
void* HostBacking::allocate(size_t bytes) { return allocate_populated(bytes); }

void HostBacking::deallocate(void* ptr, size_t bytes) noexcept { free_populated(ptr, bytes); }

int32_t HostBacking::device_type() const { return SABLE_DEVICE_CPU; }

Arena::Arena(std::unique_ptr<Backing> backing, size_t initial_bytes)
    : backing_(std::move(backing)) {
  if (initial_bytes > 0) add_chunk(initial_bytes);
}

Arena::Arena(size_t initial_bytes) : Arena(std::make_unique<HostBacking>(), initial_bytes) {}

Arena::~Arena() { free_chunks(); }

void Arena::free_chunks() noexcept {
  for (Chunk& c : chunks_) backing_->deallocate(c.data, c.size);
  chunks_.clear();
  current_ = 0;
  offset_ = 0;
}

bool Arena::add_chunk(size_t min_bytes) {
  // Grow geometrically so a forward that keeps asking needs few chunks.
  size_t size = std::max({align_up(min_bytes, kChunkAlign), kMinChunk, capacity()});
  void* p = backing_->allocate(size);
  if (p == nullptr) return false;
  ++backing_allocations_;
  chunks_.push_back({static_cast<char*>(p), size});
  return true;
}

void* Arena::allocate(size_t bytes, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0 || align > kChunkAlign) return nullptr;
  // First try the current chunk, then any later (already held) chunk, then grow.
  for (size_t i = current_; i < chunks_.size(); ++i) {
    const size_t start = align_up(i == current_ ? offset_ : 0, align);
    if (start + bytes <= chunks_[i].size) {
      current_ = i;
      offset_ = start + bytes;
      high_water_ = std::max(high_water_, used());
      return chunks_[i].data + start;
    }
  }
  if (!growth_allowed_ || !add_chunk(bytes)) return nullptr;
  current_ = chunks_.size() - 1;
  offset_ = bytes;
  high_water_ = std::max(high_water_, used());
  return chunks_[current_].data;
}

void Arena::release(Mark m) {
  if (m.chunk > current_ || (m.chunk == current_ && m.offset > offset_)) return;  // not earlier
  current_ = m.chunk;
  offset_ = m.offset;
}

void Arena::reset() {
  if (chunks_.size() > 1) {
    // Merge: one chunk big enough for everything the last forwards needed.
    const size_t total = std::max(capacity(), high_water_);
    free_chunks();
    add_chunk(total);  // on failure the arena starts empty and regrows on demand
  }
  current_ = 0;
  offset_ = 0;
}

size_t Arena::capacity() const {
  size_t total = 0;
  for (const Chunk& c : chunks_) total += c.size;
  return total;
}

size_t Arena::used() const {
  size_t total = offset_;
  for (size_t i = 0; i < current_ && i < chunks_.size(); ++i) total += chunks_[i].size;
  return total;
}

}  // namespace sable::ops
