// bf16/f16/f32 GEMMs through cuBLASLt with fp32 accumulation: out[M,N] = x[M,K] · w[N,K]ᵀ (+ bias).
//
// One Gemm object per device. The algorithm for each (M, N, K, dtypes) is chosen once by cuBLASLt's
// heuristic and cached, or (small batches, by default) chosen by timing the heuristic's candidates
// at the shape's first eager call (gemm_tune_enabled); the workspace is fixed, so calls are
// capturable in CUDA graphs. Thread-safety: calls are serialised by an internal mutex (one forward
// at a time in practice).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace sable::ops::cuda {

// GEMM tuning (default on; SABLE_GEMM_TUNE=0 off): a small batch's GEMM shapes choose their
// algorithm by timing at their first call when it is eager (gemm.cpp); the runner then runs each
// decode bucket once eagerly before capturing it (cuda_exec.cpp). The choice is timed, so two
// processes may choose differently where candidates are close (rounding then differs between
// them, never within one). Read per thread, so that a test can set it for a thread of its own.
bool gemm_tune_enabled();
// Shapes whose first call timed its candidates, and those that could not (first met inside a
// capture, or no scratch memory), in this process: what the runner logs, so that an A/B can tell
// the switch did something.
struct GemmTuneCounts {
  int64_t timed = 0, untimed = 0;
};
GemmTuneCounts gemm_tune_counts();

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // x: [M, K] rows ldx elements apart; w: [N, K] contiguous; bias: [N] or null, in the dtype of
  // out (fused into the epilogue when out has the input dtype, else added by a separate kernel);
  // out: [M, N] contiguous.
  // accumulate: out += x · wᵀ (+ bias) in one pass (cuBLASLt's beta = 1; the residual add of the
  // o and down projections without a separate kernel), the sum rounded once.
  // Returns false and fills *error when cuBLASLt rejects the problem.
  bool run(const void* x, int64_t ldx, int32_t in_dtype, const void* w, const void* bias, void* out,
           int32_t out_dtype, int64_t m, int64_t n, int64_t k, void* stream, std::string* error,
           bool accumulate = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sable::ops::cuda
