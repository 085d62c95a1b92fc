// Scratch memory for one forward pass: a bump allocator that is reset between forwards.
//
// Ops allocate activations from the arena of the forward context (SableOps::alloc) and never free
// them one by one; the runner calls reset() after the forward. Memory comes from a Backing (host
// memory here; a CUDA backing with cudaMalloc'd device memory plugs in the same way), in chunks:
// when a forward needs more than the current chunk, a new chunk is added, so pointers handed out
// stay valid until reset(). reset() merges grown chunks into one of the total size, so from the
// second identical forward on the arena neither allocates nor moves: identical call sequences get
// identical addresses (CUDA graph replay relies on that). With growth disabled (e.g. while a CUDA
// graph is captured) an allocation that does not fit returns nullptr instead.
//
// mark()/release() roll the bump pointer back, for scratch that an op needs only while it runs.
// Thread-safety: one arena belongs to one forward on one thread; no internal locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sable::ops {

// Where an arena's chunks come from. Implementations: HostBacking (aligned host memory); a CUDA
// backing lives with the CUDA ops.
class Backing {
 public:
  virtual ~Backing() = default;
  // Returns `bytes` of memory aligned to at least 256 bytes, or nullptr when none is left.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) noexcept = 0;
  virtual int32_t device_type() const = 0;  // SableDeviceType of the memory
};

// Page-aligned host memory from the C++ runtime.
class HostBacking final : public Backing {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) noexcept override;
  int32_t device_type() const override;
};

class Arena {
 public:
  // A position of the bump pointer, for release().
  struct Mark {
    size_t chunk = 0;
    size_t offset = 0;
  };

  // `initial_bytes` are reserved up front (0: the first allocation decides).
  explicit Arena(std::unique_ptr<Backing> backing, size_t initial_bytes = 0);
  // A host arena.
  explicit Arena(size_t initial_bytes = 0);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // `bytes` (0 is fine) aligned to `align` (a power of two, at most 4096). Valid until reset() or
  // a release() to a mark taken before it. nullptr when the backing is exhausted, growth is
  // disabled and the request does not fit, or `align` is invalid.
  void* allocate(size_t bytes, size_t align = 64);

  // Forgets every allocation. If the arena grew beyond one chunk, the chunks are replaced by one
  // chunk of their total size (the only time reset allocates).
  void reset();

  // Rolls back to an earlier mark: allocations made after it become invalid.
  Mark mark() const { return {current_, offset_}; }
  void release(Mark m);

  // With growth off, allocate() never asks the backing for memory.
  void set_growth(bool allowed) { growth_allowed_ = allowed; }

  int32_t device_type() const { return backing_->device_type(); }
  size_t capacity() const;        // bytes held in all chunks
  size_t used() const;            // bytes handed out since reset (including alignment padding)
  size_t high_water() const { return high_water_; }  // most bytes used by any forward so far
  size_t chunk_count() const { return chunks_.size(); }
  size_t backing_allocations() const { return backing_allocations_; }  // chunks ever requested

 private:
  struct Chunk {
    char* data = nullptr;
    size_t size = 0;
  };
  bool add_chunk(size_t min_bytes);
  void free_chunks() noexcept;

  std::unique_ptr<Backing> backing_;
  std::vector<Chunk> chunks_;
  size_t current_ = 0;  // index of the chunk being bumped
  size_t offset_ = 0;   // bytes used in chunks_[current_]
  size_t high_water_ = 0;
  size_t backing_allocations_ = 0;
  bool growth_allowed_ = true;
};

}  // namespace sable::ops
