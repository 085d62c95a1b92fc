// The paged KV cache memory of one model: per layer, K and V of shape [pages, page_size, Hk, D].
//
// The pool only owns memory and exposes it as the SableKvLayer array an attention backend reads;
// which page belongs to which sequence is the caller's business (the engine's page allocator and
// radix cache). Memory comes from DeviceMemory, so it lives on the model's device, zeroed.
// Thread-safety: immutable after construction (the attention backend writes the pages).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/runner/device_memory.h"
#include "sable/attention.h"

namespace sable::runner {

struct KvGeometry {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t page_size = 1;
  int64_t num_pages = 0;
  int32_t dtype = SABLE_DTYPE_F32;
};

class KvPool {
 public:
  // Allocates 2 x num_layers x num_pages x page_size x Hk x D elements from `memory`, which must
  // outlive the pool. Throws std::invalid_argument naming a non-positive field.
  KvPool(const KvGeometry& geometry, DeviceMemory& memory);

  const KvGeometry& geometry() const { return geometry_; }
  std::span<const SableKvLayer> layers() const { return layers_; }
  // Bytes held by one token slot across all layers (K and V).
  int64_t bytes_per_token() const;
  // Bytes needed for `pages` pages of this geometry (to size a pool from a memory budget).
  static int64_t bytes_for(const KvGeometry& geometry);

 private:
  KvGeometry geometry_;
  std::vector<SableKvLayer> layers_;
};

}  // namespace sable::runner
