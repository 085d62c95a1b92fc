// The definition behind the SDK's opaque SableOpsContext: what one forward pass runs with.
//
// The runner fills one context per forward (device, stream, scratch arena, the attention backend
// planned for this batch, the expert recorder) and hands it to the model plugin, which passes it
// back into every op. Device-specific ops tables (core/ops/cpu, core/ops/cuda) read it.
// Thread-safety: one context belongs to one forward on one thread.
#pragma once

#include <cstdint>

#include "sable/sable.h"

namespace sable::ops {

class Arena;                  // scratch memory for one forward (core/ops/arena.h)
class ExpertRecorder;         // per-layer expert selection counts (core/ops/expert_recorder.h)

}  // namespace sable::ops

struct SableOpsContext {
  int32_t device_type = SABLE_DEVICE_CPU;
  int32_t device_index = 0;
  void* stream = nullptr;  // cudaStream_t on CUDA
  sable::ops::Arena* arena = nullptr;

  // The attention backend, planned for this batch by the runner before the forward.
  const SableAttentionApi* attention_api = nullptr;
  SableAttention* attention = nullptr;

  // Expert-distribution recording; nullptr when off (costs nothing then).
  sable::ops::ExpertRecorder* expert_recorder = nullptr;

  // Tensor parallelism: communicator (ncclComm_t on CUDA), nullptr on one rank.
  void* communicator = nullptr;
  int32_t tp_rank = 0;
  int32_t tp_size = 1;

  // Last error text of an op (ops report failures here and through the host log).
  const char* last_error = nullptr;
};
