// A LoRA delta waiting for the op that reads its projection (issue 17): with the expand forked
// beside the base GEMM (lora_ops.cpp), what remains on the decode step's
// critical path is adding its fp32 sums into the GEMM's output, a read-add-write of a whole
// projection. The o and down projections go next into the rms_norm that adds them to the
// residual, gate|up into act_mul and q|k|v into rope; each reads every element anyway (rope reads
// q and k; its delta form writes v too), so they add the delta themselves (rms_norm_delta,
// act_mul_delta, rope_qkv_delta in kernels.h; the same bits as the separate add, rope's within
// one bf16 rounding of its rotation).
//
// While a LoraPendingScope is open on a thread (the executor opens one around each forward), the
// CUDA `lora` op of o, down, gate|up or q|k|v (lora_qkv_into_rope) records its delta here
// instead of launching lora_apply_delta. The next op decides: the matching rms_norm, act_mul or
// rope takes it in; any other op first launches the add (flush), so every op still sees the
// delta applied. The executor flushes at the end of the forward. Outside a scope (tests, other
// callers) nothing waits. Thread-safety: per thread; one forward at a time on a thread.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/ops/cuda/kernels.h"

namespace sable::ops::cuda {

// Where a forked LoRA call's expand runs (SABLE_LORA_EXPAND, read per thread so that a test can
// set it for a thread of its own): `fused` (default) beside the GEMM, its add left to the next op
// where that op can take it, else launched after the join; `after` on the op stream after the
// join, adding into the outs itself (before v18). bench/NOTES.md v18-v19 measured two more and
// removed them: the add always as its own kernel (slower by 0.4 ms), and shrink and expand as one
// launch with q|k|v's add inside rope (8B batch 64, 16 adapters: 18.3 against 9.8 ms).
enum class LoraExpandMode { kFused, kAfter };
LoraExpandMode lora_expand_mode();

struct LoraPendingDelta {
  bool active = false;
  LoraLaunch
      launch;  // out[i] the projections' outputs, delta their fp32 sums (zero where no adapter)
  int32_t dtype = 0;
  cudaStream_t stream = nullptr;
};

// The thread's pending delta while a scope is open in the fused mode; nullptr otherwise.
LoraPendingDelta* lora_pending();

// Whether modules first.. may wait for their consumer: o or down (rms_norm), gate|up (act_mul),
// and under lora_qkv_into_rope() q|k|v (rope).
bool lora_pending_allows(int32_t first_module, int32_t count);

// q|k|v's delta waits for the rope after it (rope_qkv_delta) instead of its own add after the
// join, one launch fewer a layer on the decode step's critical path (v21, H100, 8B batch 64 with
// 16 adapters: -1.5 % beside the zero fill). SABLE_LORA_QKV_ROPE=0: the add after the join (A/B;
// read per thread).
bool lora_qkv_into_rope();

// A delta left to its consumer is zeroed outside the adapters' rows by the expand itself
// (LoraLaunch::zero_rest), not by a memset before it: a graph node on the side branch's critical
// path that also breaks the PDL chain between the shrink and the expand (v21, H100, 8B batch 64
// with 16 adapters: -1.1 %). SABLE_LORA_ZERO_FILL=0: the memset (A/B; read per thread).
bool lora_zero_fill();

// Launches the pending add, if any, and clears it. False when the launch failed.
bool lora_flush_pending();

class LoraPendingScope {
 public:
  LoraPendingScope();
  ~LoraPendingScope();  // drops an unflushed delta (an error path) and closes the scope
  LoraPendingScope(const LoraPendingScope&) = delete;
  LoraPendingScope& operator=(const LoraPendingScope&) = delete;

 private:
  bool opened_ = false;
};

}  // namespace sable::ops::cuda
