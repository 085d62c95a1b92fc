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

// One split's log-softmax statistics of its slice of a row: the max, the sum of exp(x - max), the
// max's lowest index.
struct SampleSplitPart {
  float mx, sum;
  int32_t mi, pad;
};

constexpr int kMaxSampleSplits = 64;
constexpr int64_t kMaxSplitRows = 256;  // rows of a launch with splits > 1 (see sample_splits)

// Blocks a row's statistics are split over (1 to kMaxSampleSplits; 1 from kMaxSplitRows rows on,
// and for short rows). A long row sampled alone is read by one SM in ~30 us at 150k logits
// (bench/NOTES.md v14); split, its slices are read at once and the row's last block to finish
// merges them and samples.
int sample_splits(int64_t vocab, int64_t rows);

// Samples device logits [rows, vocab] (rows ld apart), modified in place (penalties, bias,
// written masks), into out[rows]. Grid (rows, splits); with splits > 1, parts holds rows x splits
// entries and tickets rows counters, zero before the launch and zero again after it (the row's
// last block resets its counter): allocate them zeroed once and keep them.
void launch_sample_kernel(float* logits, int64_t ld, int64_t vocab, int64_t rows,
                          const SampleRowParams* params, const int32_t* pen_tok,
                          const int32_t* pen_cnt, const int32_t* bias_ids, const float* bias_vals,
                          const uint32_t* masks, const int32_t* ids, float* ids_lp,
                          SampleRowOut* out, int splits, SampleSplitPart* parts, uint32_t* tickets,
                          void* stream);

}  // namespace sable::sampling
