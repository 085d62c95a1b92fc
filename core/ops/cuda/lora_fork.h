// Takes the LoRA shrink off a decode step's critical path. A LoRA call (ops lora / lora_stacked)
// comes right after the base projection that reads the same x: the shrink (x · Aᵀ) needs only x,
// which is ready before that GEMM starts, so it can run beside the GEMM on a side stream and only
// the expand waits for both. The CUDA ops record, before each GEMM of a LoRA batch, where its x is
// ready (an event on the op stream: a real event when eager, a fork point of the graph when the
// stream is being captured); the LoRA call forks its shrink from there and joins it before the
// expand. Any other op on the stream forgets the point, since it may write x.
//
// Thread-safety: one instance per thread (lora_fork()); each op stream gets its own side stream
// and events, created on first use on the thread's current device and kept for the process.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sable::ops::cuda {

class LoraFork {
 public:
  // Before a GEMM on `stream` that reads [x, x_end) and writes [out, out_end) is enqueued.
  void before_gemm(cudaStream_t stream, const void* x, const void* x_end, const void* out,
                   const void* out_end);
  // Any other op on `stream`: x may be rewritten after the recorded point.
  void forget(cudaStream_t stream);
  // The side stream, already waiting at the point where `x` was last recorded ready, or nullptr
  // when no such point is known (then the caller runs everything on `stream`).
  cudaStream_t fork(cudaStream_t stream, const void* x);
  // `stream` waits for what was enqueued on its side stream since fork(). False: the join could
  // not be enqueued (a CUDA error; the caller reports it).
  bool join(cudaStream_t stream);
  // Calls of fork() that returned a side stream (tests).
  int64_t forks() const { return forks_; }

  struct Lane;  // one op stream's side stream and events (lora_fork.cpp)

 private:
  Lane* lane(cudaStream_t stream, bool create);
  int64_t forks_ = 0;
};

// This thread's instance, and whether forking is on (false with SABLE_LORA_FORK=0).
LoraFork& lora_fork();
bool lora_fork_enabled();
// The most rows a forked LoRA call runs its expand beside the base GEMM (decode batches; a
// prefill's expand runs after it, lora_ops.cpp).
constexpr int64_t kLoraBesideMaxRows = 256;

}  // namespace sable::ops::cuda
