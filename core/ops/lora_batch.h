// What the `lora` ops read from the forward context: the adapter pool's weights per projection and
// this batch's rows grouped by adapter slot.
//
// The LoRA manager (core/lora) fills one LoraBatch per forward that has adapters and the runner
// points SableOpsContext::lora at it; the CPU and CUDA `lora` ops only read it. Shapes: S slots
// (max_loras_per_batch), R the pool's rank stride (max_lora_rank rounded up to kLoraRankAlign), K/N
// a projection's input/output size, T the batch's tokens, G segments.
//
// The CPU op reads the host fields (weights, slot_rank, segments). The CUDA kernels read only the
// step block (lora_step_block.h): the pools' A/B pointers, the slots' ranks and the batch's rows
// grouped into tiles of one slot, in one device buffer at a fixed address that the executor
// refreshes on its stream before each forward or CUDA graph replay. So nothing a kernel launch
// depends on comes from the batch's adapters, and a decode step with adapters can be captured.
// C++17 (the CUDA kernels include it). Thread-safety: read-only during the forward it was
// prepared for.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sable/ops.h"

namespace sable::ops {

// The pool's rank stride is a multiple of this (16-byte rows of B in bf16 and f32).
constexpr int32_t kLoraRankAlign = 8;
// Rows of one tile: the CUDA kernels give each tile (up to this many rows of one slot) a block.
constexpr int32_t kLoraTileRows = 8;
// Most modules one lora_stacked call takes (q|k|v).
constexpr int32_t kLoraMaxStacked = 3;

// One projection's slots in the pool, in the compute dtype on the device:
// A [S, R, K] (rank rows of slot s, the first rank[s] used) and B [S, N, R] (scaling folded in,
// the first rank[s] columns used, the rest zero). a == nullptr: no adapter in the pool targets
// this projection yet.
struct LoraWeights {
  const void* a = nullptr;
  const void* b = nullptr;
  int64_t k = 0;
  int64_t n = 0;
};

// Up to kLoraTileRows rows of the batch that use adapter slot `slot`.
struct LoraTile {
  int32_t slot = -1;
  int32_t rows = 0;
  int32_t row[kLoraTileRows] = {};
};

// Device addresses inside the step block (see LoraStepBlock).
struct LoraDeviceView {
  const void* const* a = nullptr;      // [layers * COUNT] A pool of each projection (null: none)
  const void* const* b = nullptr;      // [layers * COUNT] B pool
  const int32_t* slot_rank = nullptr;  // [S * COUNT]
  const int32_t* num_tiles = nullptr;  // [1]
  const LoraTile* tiles = nullptr;     // [max_tiles]
};

struct LoraBatch {
  int32_t num_layers = 0;
  int32_t num_slots = 0;  // S
  int32_t max_rank = 0;   // R, the pool's rank stride (a multiple of kLoraRankAlign)
  int32_t dtype = SABLE_DTYPE_F32;
  // [num_layers * SABLE_LORA_MODULE_COUNT], indexed layer * COUNT + module. Host memory.
  const LoraWeights* weights = nullptr;
  // [S * SABLE_LORA_MODULE_COUNT] rank of the adapter in slot s for module m (0: not targeted or
  // the slot is empty). Host memory.
  const int32_t* slot_rank = nullptr;
  // Segments over the batch's rows: rows [seg_start[g], seg_start[g + 1]) use slot seg_slot[g]
  // (-1: the base model). Host memory.
  int32_t num_segments = 0;
  const int32_t* seg_start = nullptr;  // [G + 1]
  const int32_t* seg_slot = nullptr;   // [G]
  int32_t num_tokens = 0;  // T: the rows x and out of the op have (a graph's padded batch size)
  // CUDA: the kernels' view, and the step block the executor uploads before the forward:
  // step_bytes of step_host into step_device (null on the CPU).
  LoraDeviceView device;
  const void* step_host = nullptr;
  void* step_device = nullptr;
  size_t step_bytes = 0;
};

}  // namespace sable::ops
