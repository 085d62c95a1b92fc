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
#include <functional>
#include <span>

#include "sable/sampler.h"

namespace sable::sampling {

// Deterministic uniform double in [0, 1) for draw number `step` of the stream `seed`.
double seeded_uniform(uint64_t seed, uint64_t step);

// Runs fn(i) for every i in [0, n), possibly on several threads, and returns when all have run
// (the CPU ops' thread pool, handed down by the model backend). fn does not throw.
using ParallelRows = std::function<void(int64_t n, const std::function<void(int64_t)>& fn)>;

// Samples every row of `logits` [num_rows, vocab] (host memory, modified in place).
// rows/results: [num_rows]. Throws std::invalid_argument on malformed rows, before any row is
// sampled. With `parallel`, rows of a large vocabulary are sampled over its threads (the same
// results: each row draws from its own seed and step).
void sample_rows(float* logits, int64_t num_rows, int64_t vocab, const SableSamplingRow* rows,
                 SableSampleResult* results, const ParallelRows& parallel = {});

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
  // `parallel` spreads the built-in sampler's rows over threads (a plugin's table gets them all).
  void sample(float* logits, int64_t vocab, std::span<const SableSamplingRow> rows,
              std::span<SableSampleResult> results, SableOpsContext* ctx = nullptr,
              const ParallelRows& parallel = {});

 private:
  const SableSamplerApi* api_;
  SableSampler* sampler_ = nullptr;
};

}  // namespace sable::sampling
