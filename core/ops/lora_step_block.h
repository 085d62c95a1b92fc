// The LoRA step block: what the CUDA kernels read of one batch (lora_batch.h), as a host image
// the manager writes per forward and the executor uploads into the block's one device buffer.
//
// Layout (16-byte aligned parts):
//   A pointers [L * COUNT] | B pointers [L * COUNT] | slot_rank [S * COUNT] | num_tiles, pad [4]
//   | tiles [lora_max_tiles(max_rows, S)]
// Tiles group the batch's rows by slot (each slot's rows in batch order, kLoraTileRows a tile),
// so a kernel reads each adapter's weights once per tile instead of once per row.
// Thread-safety: one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/ops/lora_batch.h"

namespace sable::ops {

// Most tiles a forward of `rows` rows over `slots` slots can need (each slot's rows in full tiles
// and at most one partial one); the CUDA kernels' grid covers this many.
int64_t lora_max_tiles(int64_t rows, int32_t slots);

// The host image; fill() writes it for one batch, and its used prefix (everything but the unused
// tiles) is what the executor uploads.
class LoraStepBlock {
 public:
  LoraStepBlock(int32_t layers, int32_t slots, int32_t max_rows);
  size_t capacity_bytes() const { return image_.size(); }
  // The device addresses of the block placed at `device` (capacity_bytes(), 16-byte aligned).
  LoraDeviceView view(void* device) const;
  // weights [L * COUNT], slot_rank [S * COUNT], row_slot [T] (slot of each row, -1: none; at most
  // max_rows). Returns the bytes to upload.
  size_t fill(std::span<const LoraWeights> weights, std::span<const int32_t> slot_rank,
              std::span<const int32_t> row_slot);
  const void* host() const { return image_.data(); }
  // The tiles of the last fill (for tests).
  std::span<const LoraTile> tiles() const;

 private:
  int32_t layers_, slots_;
  int64_t max_tiles_;
  size_t rank_off_, count_off_, tiles_off_;
  std::vector<unsigned char> image_;
  int32_t num_tiles_ = 0;
};

}  // namespace sable::ops
