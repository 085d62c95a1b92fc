// The per-row sampling kernel behind CudaSampler, callable from host C++ (see cuda_sampler.h).
#pragma once

#include <cstdint>

namespace sable::sampling {

constexpr int kMaxTopLogprobs = 32;  // top_logprobs_num cap per row on the GPU path

// One row's parameters, prepared on the host (u is the CPU sampler's seeded uniform).
struct SampleRowParams {
  float temperature, top_p, min_p, rep, freq, pres;
  int32_t top_k, top_n;
  double u;
  int64_t row;  // logits row to sample
  int32_t pen_begin, pen_len, bias_begin, bias_len, mask_begin, ids_begin, ids_len, pad;
};

struct SampleRowOut {
  int32_t token;
  float logprob;
  int32_t top_ids[kMaxTopLogprobs];
  float top_lp[kMaxTopLogprobs];
};

// One block per row over device logits [rows, vocab] (rows ld apart), modified in place.
void launch_sample_kernel(float* logits, int64_t ld, int64_t vocab, int64_t rows,
                          const SampleRowParams* params, const int32_t* pen_tok,
                          const int32_t* pen_cnt, const int32_t* bias_ids, const float* bias_vals,
                          const uint32_t* masks, const int32_t* ids, float* ids_lp,
                          SampleRowOut* out, void* stream);

}  // namespace sable::sampling
