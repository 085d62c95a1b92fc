// Sampling on the GPU: the built-in sampler's rules (sampler.h) applied to device logits, so that
// only the chosen tokens and the requested log-probabilities cross to the host, never the logits.
//
// One block per row: logit bias and penalties (over the row's distinct previous tokens,
// deduplicated on the host), grammar mask, log-softmax statistics, then greedy argmax or
// temperature / top-k / top-p / min-p (radix selection for rows with a top-k, threshold bisection
// for top-p alone: radix_cut.cuh) and an inverse-CDF draw in index order with the same seeded
// uniform as the CPU sampler. Thread-safety: one object per scheduler thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "sable/sampler.h"

namespace sable::sampling {

class CudaSampler {
 public:
  CudaSampler();
  ~CudaSampler();
  CudaSampler(const CudaSampler&) = delete;
  CudaSampler& operator=(const CudaSampler&) = delete;

  // logits: device F32 rows `ld` floats apart (modified in place); row i of `rows` samples logits
  // row row_index[i] (row i when row_index is empty). stream: cudaStream_t. Blocks until the
  // results are on the host. Throws std::invalid_argument / std::runtime_error.
  void sample(float* logits, int64_t ld, int64_t vocab, std::span<const SableSamplingRow> rows,
              std::span<SableSampleResult> results, void* stream,
              std::span<const int64_t> row_index = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SableSamplerApi over CudaSampler: sample() takes a CUDA F32 logits tensor [B, V].
const SableSamplerApi* cuda_sampler_api();

}  // namespace sable::sampling
