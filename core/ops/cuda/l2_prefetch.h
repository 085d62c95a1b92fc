// Weights pulled into L2 while a small decode batch's attention runs (the plan: core/ops/
// prefetch_plan.h). Before an attention call of at most `max_tokens` query rows, the CUDA ops fork
// a side stream at that point and launch one small kernel there that issues L2 prefetches over the
// weights the GEMMs after this call read in the previous forward (o, then gate|up, ... up to the
// budget). It runs beside the attention, whose few CTAs leave the memory system idle, so the
// projections after it find (part of) their weights in L2. A LoRA call's expand is latency-bound
// the same way at any decode batch, so it is such a point too (before_lora). Prefetches are hints:
// nothing waits for them, and a range is only prefetched while it is still registered weight memory
// (core/ops/weight_ranges.h), so a freed model's old record reads nothing.
//
// The side stream is joined at the end of each forward (end_forward), which a CUDA graph capture
// needs before it ends; eager forwards join the same way.
//
// Settings, read once per thread (off by default until measured on a GPU, bench/NOTES.md v17):
// SABLE_L2_PREFETCH=MB, the budget per attention / LoRA point (0 or unset: off);
// SABLE_L2_PREFETCH_TOKENS=N, the most query rows of an attention call that prefetches (default 8:
// larger batches' attention is bandwidth-bound itself); SABLE_L2_PREFETCH_LORA_TOKENS=N, the same
// for LoRA calls (default 256); SABLE_L2_PREFETCH_NEXT=MB, every GEMM of at most
// SABLE_L2_PREFETCH_TOKENS rows prefetches that many bytes of the next GEMM's weight beside itself
// (0 or unset: off); SABLE_L2_PREFETCH_LAST=1, those prefetches with L2's evict-last priority (so
// that an attention streaming long contexts through L2 does not evict them first).
//
// Thread-safety: one instance per thread (l2_prefetch()); the side stream and events of an op
// stream are created at the end of its first forward (outside any capture) on the thread's
// current device and kept for the process.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace sable::ops::cuda {

class L2Prefetch {
 public:
  L2Prefetch();
  // Before attention call (backend, layer) with `tokens` query rows is enqueued on `stream`.
  // Errors are swallowed (a prefetch is only a hint): the call then prefetches nothing.
  void before_attention(cudaStream_t stream, const void* backend, int32_t layer, int64_t tokens);
  // Before the expand of a LoRA call (layer, first module) of `tokens` rows is enqueued: the
  // expand is latency-bound, so the next base GEMMs' weights are prefetched beside it (up to
  // SABLE_L2_PREFETCH_LORA_TOKENS rows, default 256).
  void before_lora(cudaStream_t stream, const void* backend, int32_t layer, int32_t module,
                   int64_t tokens);
  // A GEMM of `tokens` rows reading [w, w + bytes) is about to be enqueued on `stream`: recorded
  // for the open points; with SABLE_L2_PREFETCH_NEXT it is a point too (the next GEMM's weight
  // prefetched beside this one).
  void on_gemm(cudaStream_t stream, const void* backend, const void* w, size_t bytes,
               int64_t tokens);
  // The forward on `stream` ended: closes the record and joins what was forked. False: the join
  // could not be enqueued (a CUDA error; the caller reports it).
  bool end_forward(cudaStream_t stream);
  // Prefetch kernels launched so far, and the budget per attention / LoRA point in bytes (tests).
  int64_t launches() const { return launches_; }
  size_t budget() const;

  struct Lane;  // one op stream's side stream and events (l2_prefetch.cu)
  struct State;

 private:
  Lane* lane(cudaStream_t stream);  // the stream's side stream and events; nullptr if unusable
  void fork(cudaStream_t stream, int channel, const void* backend, int64_t point, const void* self,
            bool launch);
  State* state_;  // owned by the thread-local instance, never freed (see l2_prefetch.cu)
  int64_t launches_ = 0;
};

// This thread's instance.
L2Prefetch& l2_prefetch();

// Issues L2 prefetches over [data[i], data[i] + bytes[i]) on `stream` (one launch; tests, the
// class, the LoRA ops). `evict_last`: the lines get L2's evict-last priority (they must outlive a
// stream of other loads before they are read).
bool launch_l2_prefetch(const void* const* data, const size_t* bytes, int count,
                        cudaStream_t stream, bool evict_last = false);

// SABLE_L2_PREFETCH_LORA_B=1: each LoRA call prefetches its B pools beside the base GEMM
// (lora_ops.cpp; off by default until measured).
bool lora_b_prefetch_enabled();

}  // namespace sable::ops::cuda
