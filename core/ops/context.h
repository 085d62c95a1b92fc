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
struct LoraBatch;             // the adapters of this batch's rows (core/ops/lora_batch.h)

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

  // LoRA adapters of this batch (nullptr: no row uses one; the lora op then does nothing).
  const sable::ops::LoraBatch* lora = nullptr;

  // Tensor parallelism: this rank's endpoint of the group (sable/comm.h: in-process CPU ranks or
  // NCCL); both null on one rank, where all_reduce / all_gather are identities.
  const SableCommApi* comm_api = nullptr;
  SableComm* comm = nullptr;
  int32_t tp_rank = 0;
  int32_t tp_size = 1;

  // Last error text of an op (ops report failures here and through the host log).
  const char* last_error = nullptr;

  // Expert recording on CUDA without waiting for the device. When expert_recorder is set and this
  // is not null, the CUDA moe_route adds its selections into the device int64 counters
  // [expert_counts_layers, expert_counts_experts] (row-major, owned by whoever owns the recorder,
  // which downloads them into its dump); a layer or expert beyond them is an op error. When it is
  // null, the CUDA moe_route copies the ids to the host and calls expert_recorder->record (not
  // capturable: an error during CUDA graph capture). Unused on the CPU.
  int64_t* expert_counts_device = nullptr;
  int32_t expert_counts_layers = 0;
  int32_t expert_counts_experts = 0;
};
