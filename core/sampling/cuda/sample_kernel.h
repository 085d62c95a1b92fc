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

// One of a split's first top_n logits (value descending, index ascending) for the top-n
// log-probabilities; -inf at INT_MAX past the slice's end.
struct SampleTopPart {
  float value;
  int32_t index;
};

constexpr int kMaxSampleSplits = 64;
constexpr int64_t kMaxSplitRows = 256;  // rows of a launch with splits > 1 (see sample_splits)

// A sampled (not greedy) row's state between the launches: its log-softmax statistics (written
// by the statistics kernel's last block) and the candidate range of its cut (the histogram
// kernel's). Order by q_i = exp((l_i - max) / T) descending is cut into kCutBuckets buckets of q's
// bits (cut_kernels.cu): tokens of buckets below `blo` are kept whatever the exact cut, of buckets
// above `bhi` cut, and those of [blo, bhi] are the candidates the exact cut is resolved among.
struct SampleRowCut {
  float mx, lse;
  int32_t mi, deferred;  // deferred: the cut kernels sample the row
  int32_t blo, bhi;      // no cut: blo = kCutBuckets (every token kept)
  unsigned long long above_count, above_mass, total_mass;  // buckets below blo; the whole row
};

// One split's part of the draw: the mass it keeps for sure and where its candidates went.
struct SampleCutPart {
  unsigned long long above;
  uint32_t base, count;
};

constexpr int kCutBuckets = 4098;     // q == 1, 4,096 of q in [2^-32, 1), then q < 2^-32
constexpr int kCutCandidates = 8192;  // a row's candidates resolved in shared memory (else the row)

// Device scratch of the cut kernels (allocated by CudaSampler; `zero` arrays are zero before a
// launch and left zero after it).
struct SampleCutScratch {
  SampleRowCut* cuts = nullptr;             // rows
  uint32_t* hist_count = nullptr;           // rows x kCutBuckets, zero (split rows only)
  unsigned long long* hist_mass = nullptr;  // rows x kCutBuckets, zero (split rows only)
  int32_t* cand_idx = nullptr;              // rows x cand_cap
  float* cand_q = nullptr;                  // rows x cand_cap
  int64_t cand_cap = 0;                     // min(vocab, kCutCandidates)
  uint32_t* cand_count = nullptr;           // rows, zero
  SampleCutPart* parts = nullptr;           // kMaxSplitRows x kMaxSampleSplits
  uint32_t* tickets = nullptr;              // kMaxSplitRows, zero (the statistics kernel's)
};

// Blocks a row's statistics are split over (1 to kMaxSampleSplits; 1 from kMaxSplitRows rows on,
// and for short rows). A long row sampled alone is read by one SM in ~30 us at 150k logits
// (bench/NOTES.md v14); split, its slices are read at once and the row's last block to finish
// merges them and samples.
int sample_splits(int64_t vocab, int64_t rows);

// Samples device logits [rows, vocab] (rows ld apart), modified in place (penalties, bias,
// written masks), into out[rows]: greedy rows here, the others' statistics into cuts[rows] for
// launch_cut_kernels. Grid (rows, splits); with splits > 1, parts holds rows x splits entries,
// top_parts kMaxSplitRows x kMaxSampleSplits x kMaxTopLogprobs, and tickets rows counters, zero
// before the launch and zero again after it (the row's last block resets its counter): allocate
// them zeroed once and keep them.
void launch_sample_kernel(float* logits, int64_t ld, int64_t vocab, int64_t rows,
                          const SampleRowParams* params, const int32_t* pen_tok,
                          const int32_t* pen_cnt, const int32_t* bias_ids, const float* bias_vals,
                          const uint32_t* masks, const int32_t* ids, float* ids_lp,
                          SampleRowOut* out, int splits, SampleSplitPart* parts,
                          SampleTopPart* top_parts, uint32_t* tickets, SampleRowCut* cuts,
                          void* stream);

// Samples the rows launch_sample_kernel deferred (same logits, rows and splits, on the same
// stream after it): the top-k / top-p cut over every split block (`cut`: some row has one), then
// the draw. Writes out[].token and .logprob of those rows.
void launch_cut_kernels(const float* logits, int64_t ld, int64_t vocab, int64_t rows,
                        const SampleRowParams* params, SampleRowOut* out, int splits,
                        const SampleCutScratch& scratch, bool cut, void* stream);

}  // namespace sable::sampling
