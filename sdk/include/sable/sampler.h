/* Sampler plugins: logits [B, V] F32 plus per-row parameters -> chosen tokens and log-probabilities.
 * The built-in sampler in core implements this same interface.
 *
 * Order of operations per row (as SGLang/vLLM): logit bias, repetition/frequency/presence penalties
 * over the row's previous tokens, grammar mask (disallowed = -inf), then log-probabilities of the
 * processed logits (before temperature), then temperature, top-k, top-p, min-p, and a draw from
 * the seeded generator. temperature <= 1e-6 (or top_k == 1) means greedy.
 * A sampler object is used by one thread at a time.
 */
#ifndef SABLE_SAMPLER_H_
#define SABLE_SAMPLER_H_

#include "sable/host.h"

typedef struct SableSampler SableSampler; /* opaque, owned by the plugin */

typedef struct SableSamplingRow {
  uint32_t struct_size;
  float temperature;
  float top_p;               /* (0, 1] */
  int32_t top_k;             /* -1 = off */
  float min_p;               /* [0, 1] */
  float frequency_penalty;   /* [-2, 2] */
  float presence_penalty;    /* [-2, 2] */
  float repetition_penalty;  /* > 0, 1 = off */
  uint64_t seed;             /* generator seed of this request */
  uint64_t step;             /* tokens generated so far: with seed, picks the random stream */
  const int32_t* prev_tokens; /* tokens the penalties look at (prompt + output), host memory */
  int32_t num_prev_tokens;
  int32_t num_logit_bias;
  const int32_t* logit_bias_ids;   /* [num_logit_bias] */
  const float* logit_bias_values;  /* [num_logit_bias] */
  const uint32_t* grammar_mask;    /* [ceil(V/32)] bit i = token i allowed, or NULL */
  int32_t top_logprobs_num;        /* top-n log-probabilities wanted, 0 = none */
  int32_t num_token_ids_logprob;   /* extra ids whose log-probabilities are wanted */
  const int32_t* token_ids_logprob;
  /* The first num_prompt_tokens of prev_tokens are the prompt: the repetition penalty looks at all
   * of prev_tokens, frequency/presence penalties only at the generated rest (as SGLang does).
   * A reader of a row whose struct_size ends before this field counts every prev token. */
  int32_t num_prompt_tokens;
  /* end of ABI 1.0 - do not modify above */
  /* since 1.9: 0 = nobody reads SableSampleResult.logprob for this row (the request asked for no
   * log-probabilities), so a sampler may leave it 0 and skip the normalizer over the vocabulary
   * that a greedy pick does not need otherwise; nonzero = fill it. A row whose struct_size ends
   * before this field wants it (SABLE_HAS). */
  int32_t want_logprob;
  /* end of ABI 1.9 - do not modify above */
} SableSamplingRow;

typedef struct SableSampleResult {
  uint32_t struct_size;
  int32_t token;            /* chosen token */
  float logprob;            /* its log-probability (may be 0 where the row's want_logprob is 0) */
  int32_t* top_ids;         /* [top_logprobs_num] caller-provided, filled best first */
  float* top_logprobs;      /* [top_logprobs_num] */
  float* ids_logprobs;      /* [num_token_ids_logprob] */
  /* end of ABI 1.0 - do not modify above */
} SableSampleResult;

typedef struct SableSamplerApi {
  uint32_t struct_size;
  uint32_t reserved;
  SableStatus (*create)(const SableHostApi* host, SableHostHandle* h, SableSampler** out);
  void (*destroy)(SableSampler* sampler); /* accepts NULL */
  /* logits [B, V] F32 on the host's device (may be modified in place); rows/results [B] host. */
  SableStatus (*sample)(SableSampler* sampler, SableOpsContext* ctx, const SableTensor* logits,
                        const SableSamplingRow* rows, SableSampleResult* results);
  /* end of ABI 1.0 - do not modify above */
} SableSamplerApi;

#endif /* SABLE_SAMPLER_H_ */
