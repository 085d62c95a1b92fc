// What the `lora` op reads from the forward context: the adapter pool's weights per projection and
// this batch's rows grouped into segments that share an adapter slot.
//
// The LoRA manager (core/lora) fills one LoraBatch per forward that has adapters and the runner
// points SableOpsContext::lora at it; the CPU and CUDA `lora` ops only read it. Shapes: S slots
// (max_loras_per_batch), R the pool's rank (max_lora_rank), K/N a projection's input/output size,
// T the batch's tokens, G segments.
// Thread-safety: read-only during the forward it was prepared for.
#pragma once

#include <cstdint>

#include "sable/ops.h"

namespace sable::ops {

// One projection's slots in the pool, in the compute dtype on the device:
// A [S, R, K] (rank rows of slot s, the first rank[s] used) and B [S, N, R] (scaling folded in,
// the first rank[s] columns used). a == nullptr: no adapter in the pool targets this projection.
struct LoraWeights {
  const void* a = nullptr;
  const void* b = nullptr;
  int64_t k = 0;
  int64_t n = 0;
};

struct LoraBatch {
  int32_t num_layers = 0;
  int32_t num_slots = 0;  // S
  int32_t max_rank = 0;   // R
  int32_t dtype = SABLE_DTYPE_F32;
  // [num_layers * SABLE_LORA_MODULE_COUNT], indexed layer * COUNT + module.
  const LoraWeights* weights = nullptr;
  // [S * SABLE_LORA_MODULE_COUNT] rank of the adapter in slot s for module m (0: not targeted or
  // the slot is empty). Host memory, and a device copy for kernels (equal to it on the CPU).
  const int32_t* slot_rank = nullptr;
  const int32_t* slot_rank_device = nullptr;
  // Segments over the batch's rows: rows [seg_start[g], seg_start[g + 1]) use slot seg_slot[g]
  // (-1: the base model). Host memory.
  int32_t num_segments = 0;
  const int32_t* seg_start = nullptr;  // [G + 1]
  const int32_t* seg_slot = nullptr;   // [G]
  // The slot of every row [T] (-1: none), on the device (the CUDA kernels map rows to slots).
  int32_t num_tokens = 0;
  const int32_t* row_slot_device = nullptr;
};

}  // namespace sable::ops
