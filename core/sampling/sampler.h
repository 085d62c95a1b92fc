// The built-in sampler: SDK's SableSamplerApi implemented on host (CPU) logits, plus a small RAII
// wrapper the scheduler uses for whichever sampler is configured (built-in or a plugin's table).
//
// Per row, in the order sdk/include/sable/sampler.h documents: logit bias, repetition / frequency /
// presence penalties over prev_tokens, grammar mask, log-probabilities of those processed logits
// (before temperature), then temperature, top-k, top-p, min-p and a draw from the generator chosen
// by (seed, step). temperature <= 1e-6 or top_k == 1 is greedy (argmax, first index on ties).
// Thread-safety: a sampler object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <span>

#include "sable/sampler.h"

namespace sable::sampling {

// Deterministic uniform double in [0, 1) for draw number `step` of the stream `seed`.
double seeded_uniform(uint64_t seed, uint64_t step);

// Samples every row of `logits` [num_rows, vocab] (host memory, modified in place).
// rows/results: [num_rows]. Throws std::invalid_argument on malformed rows.
void sample_rows(float* logits, int64_t num_rows, int64_t vocab, const SableSamplingRow* rows,
                 SableSampleResult* results);

// The first index of the largest value (ties: the earliest; NaNs never win; 0 when no value is
// above -inf). `row` must not be empty. Sixteen lanes at a time: greedy decoding over a large
// vocabulary.
int32_t argmax(std::span<const float> row);

// The built-in sampler's function table. create() accepts a NULL host.
const SableSamplerApi* builtin_sampler_api();

// Owns one sampler object made by `api` (the built-in table when api is nullptr).
class Sampler {
 public:
  explicit Sampler(const SableSamplerApi* api = nullptr, const SableHostApi* host = nullptr,
                   SableHostHandle* handle = nullptr);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // logits [rows.size(), vocab] F32 on the host. Throws std::runtime_error when the sampler fails.
  void sample(float* logits, int64_t vocab, std::span<const SableSamplingRow> rows,
              std::span<SableSampleResult> results, SableOpsContext* ctx = nullptr);

 private:
  const SableSamplerApi* api_;
  SableSampler* sampler_ = nullptr;
};

}  // namespace sable::sampling
