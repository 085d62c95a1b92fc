// Built-in CPU sampler (see sampler.h). The whole vocabulary is never sorted: top-k and top-p cut
// a prefix of the probability order by radix selection (top_cut.h), and the draw walks the kept
// tokens in index order.
#include "core/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sampling/row_logprobs.h"
#include "core/sampling/top_cut.h"
#include "core/util/lanes4.h"
#include "sable/cpp/error.h"

namespace sable::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kParallelMinVocab = 16384;  // smaller rows are sampled on the calling thread

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void apply_bias_and_penalties(float* row, int64_t vocab, const SableSamplingRow& r) {
  for (int32_t i = 0; i < r.num_logit_bias; ++i) {
    row[r.logit_bias_ids[i]] += r.logit_bias_values[i];  // ids checked by sample_rows
  }
  const bool penalties = r.repetition_penalty != 1.0f || r.frequency_penalty != 0.0f ||
                         r.presence_penalty != 0.0f;
  if (!penalties || r.num_prev_tokens <= 0 || r.prev_tokens == nullptr) return;
  // (token, generated?) pairs sorted by token: repetition applies once per distinct token of
  // prompt + output; frequency/presence count only the generated occurrences.
  const int32_t prompt = SABLE_HAS(&r, num_prompt_tokens)
                             ? std::clamp(r.num_prompt_tokens, 0, r.num_prev_tokens)
                             : 0;
  std::vector<std::pair<int32_t, bool>> prev;
  prev.reserve(static_cast<size_t>(r.num_prev_tokens));
  for (int32_t k = 0; k < r.num_prev_tokens; ++k) prev.emplace_back(r.prev_tokens[k], k >= prompt);
  std::sort(prev.begin(), prev.end());
  for (size_t i = 0; i < prev.size();) {
    size_t j = i;
    float generated = 0.0f;
    for (; j < prev.size() && prev[j].first == prev[i].first; ++j) generated += prev[j].second;
    const int32_t id = prev[i].first;
    i = j;
    if (id < 0 || id >= vocab) continue;
    float& l = row[id];
    if (r.repetition_penalty != 1.0f) l = l > 0 ? l / r.repetition_penalty : l * r.repetition_penalty;
    if (generated > 0.0f) l -= r.frequency_penalty * generated + r.presence_penalty;
  }
}

void apply_mask(float* row, int64_t vocab, const uint32_t* mask) {
  if (mask == nullptr) return;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!((mask[i >> 5] >> (i & 31)) & 1u)) row[i] = kNegInf;
  }
}

// libm's double exp per logit was most of a CPU decode step's sampling at 150k-token
// vocabularies: the loops below run four lanes wide (core/util/lanes4.h).
using lanes4::F4;
using lanes4::I4;
using lanes4::exp_nonpositive;
using lanes4::load4;

// The first index of the largest logit, in 16 lanes (four independent chains of four: one chain
// was a serial compare-and-blend per 4 logits, 1.5 % of a Qwen2.5-0.5B batch-8 CPU step, on the
// calling thread at any thread count). Every lane starts at -inf, so a NaN never wins and never
// hides a lane's later values (a NaN that seeded a lane once did).
int32_t argmax_row(const float* row, int64_t vocab) {
  int64_t i = 0;
  int64_t best = 0;
  float best_val = kNegInf;
  if (vocab >= 16) {
    F4 best_v[4];
    I4 best_i[4], idx[4];
    for (int c = 0; c < 4; ++c) {
      best_v[c] = F4{kNegInf, kNegInf, kNegInf, kNegInf};
      best_i[c] = I4{0, 1, 2, 3} + 4 * c;
      idx[c] = best_i[c] - 16;
    }
    for (; i + 16 <= vocab; i += 16) {
      for (int c = 0; c < 4; ++c) {
        idx[c] += 16;
        const F4 v = load4(row + i + 4 * c);
        const I4 gt = v > best_v[c];  // strict: the earlier index stays on ties
        best_v[c] = gt ? v : best_v[c];
        best_i[c] = gt ? idx[c] : best_i[c];
      }
    }
    best = best_i[0][0];
    best_val = best_v[0][0];
    for (int c = 0; c < 4; ++c)
      for (int k = 0; k < 4; ++k)
        if (best_v[c][k] > best_val || (best_v[c][k] == best_val && best_i[c][k] < best)) {
          best = best_i[c][k];
          best_val = best_v[c][k];
        }
  }
  for (; i < vocab; ++i)
    if (row[i] > best_val) {
      best = i;
      best_val = row[i];
    }
  return static_cast<int32_t>(best);
}

// The sum of n floats in double, four chains at a time.
double sum_block(const float* p, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return (s0 + s1) + (s2 + s3);
}

// Draws from softmax(row / T) restricted by top-k / top-p / min-p; best is the row's argmax and m
// its logit. The kept tokens (a prefix of the probability order, top_cut.h) are walked in index
// order, as the CUDA sampler walks them: the same distribution as a walk in sorted order, without
// the sort.
int32_t draw(const float* row, int64_t vocab, const SableSamplingRow& r, int32_t best, float m) {
  const float inv_t = 1.0f / r.temperature;
  if (m == kNegInf) return 0;
  thread_local std::vector<float> p;  // reused: a fresh 600 KB buffer a row was page faults
  p.resize(static_cast<size_t>(vocab));
  // max prob -> 1; a masked (-inf) logit exactly 0
  int64_t i = 0;
  for (; i + 4 <= vocab; i += 4) {
    const F4 v = load4(row + i);
    const F4 e = exp_nonpositive((v - m) * inv_t);
    const F4 q = v == kNegInf ? F4{} : e;
    std::memcpy(p.data() + i, &q, sizeof(q));
  }
  for (; i < vocab; ++i) p[i] = row[i] == kNegInf ? 0.0f : exp_nonpositive((row[i] - m) * inv_t);
  const std::span<const float> probs(p.data(), p.size());
  const bool use_top_k = r.top_k > 0 && r.top_k < vocab;
  const bool use_top_p = r.top_p < 1.0f;
  TopCut cut;  // keeps every token
  const bool cut_active = use_top_k || use_top_p;
  if (cut_active) {
    thread_local std::vector<int32_t> top_k;  // the top-k tokens, when top-p cuts within them
    top_k.clear();
    if (use_top_k) {
      cut = top_k_cut(probs, {}, r.top_k);
      if (use_top_p) {
        for (int64_t j = 0; j < vocab; ++j)
          if (cut.keeps(p[j], static_cast<int32_t>(j))) top_k.push_back(static_cast<int32_t>(j));
      }
    }
    if (use_top_p) {
      double top_total = 0;  // the probability mass top-p measures against
      if (top_k.empty()) {
        top_total = sum_block(p.data(), vocab);
      } else {
        for (const int32_t j : top_k) top_total += p[j];
      }
      cut = top_mass_cut(probs, top_k, static_cast<double>(r.top_p) * top_total);
    }
  }
  // The cuts zero what they drop, and the kept mass is summed by blocks for the draw below.
  const float min_p = r.min_p > 0.0f ? r.min_p : 0.0f;  // relative to the max (1.0), which stays
  const bool filter = cut_active || min_p > 0.0f;
  constexpr int64_t kBlock = 1024;
  thread_local std::vector<double> blocks;
  blocks.clear();
  double total = 0;
  for (int64_t b = 0; b < vocab; b += kBlock) {
    const int64_t e = std::min(vocab, b + kBlock);
    if (filter) {
      for (int64_t j = b; j < e; ++j) {
        const float v = p[j];
        const bool keep = cut.keeps(v, static_cast<int32_t>(j)) && (v >= min_p || j == best);
        p[j] = keep ? v : 0.0f;
      }
    }
    blocks.push_back(sum_block(p.data() + b, e - b));
    total += blocks.back();
  }
  const double target = seeded_uniform(r.seed, r.step) * total;
  double acc = 0;
  int32_t last = best;
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (blocks[k] <= 0.0) continue;
    const int64_t b = static_cast<int64_t>(k) * kBlock;
    if (acc + blocks[k] <= target && k + 1 < blocks.size()) {
      acc += blocks[k];
      continue;
    }
    for (int64_t j = b; j < std::min(vocab, b + kBlock); ++j) {
      if (p[j] <= 0.0f) continue;
      acc += p[j];
      last = static_cast<int32_t>(j);
      if (acc > target) return last;
    }
  }
  return last;  // rounding at the very end
}

void sample_row(float* row, int64_t vocab, const SableSamplingRow& r, SableSampleResult& out) {
  apply_bias_and_penalties(row, vocab, r);
  apply_mask(row, vocab, r.grammar_mask);
  // Log-probabilities of the processed logits.
  const int32_t best = argmax_row(row, vocab);
  const float m = row[best];
  // The normalizer is a pass of exponentials over the vocabulary that only log-probabilities need
  // (a 1.8 host's row wants them all); rows of requests without logprobs skip it, so a greedy pick
  // makes no such pass. On a 152K vocabulary it was a third of a small model's CPU decode step
  // (bench/NOTES.md v25).
  const bool want = !SABLE_HAS(&r, want_logprob) || r.want_logprob != 0;
  const bool need_lse = want || r.top_logprobs_num > 0 || r.num_token_ids_logprob > 0;
  const float lse =
      m == kNegInf || !need_lse ? 0.0f : log_sum_exp({row, static_cast<size_t>(vocab)}, m);
  auto logprob = [&](int64_t id) { return row[id] - lse; };

  const bool greedy = r.temperature <= 1e-6f || r.top_k == 1;
  const int32_t token = greedy ? best : draw(row, vocab, r, best, m);
  out.token = token;
  out.logprob = want ? logprob(token) : 0.0f;
  if (r.top_logprobs_num > 0 && out.top_ids != nullptr && out.top_logprobs != nullptr) {
    const int64_t n = std::min<int64_t>(r.top_logprobs_num, vocab);
    top_indices({row, static_cast<size_t>(vocab)}, {out.top_ids, static_cast<size_t>(n)});
    for (int64_t i = 0; i < n; ++i) out.top_logprobs[i] = logprob(out.top_ids[i]);
  }
  if (r.num_token_ids_logprob > 0 && out.ids_logprobs != nullptr) {
    for (int32_t i = 0; i < r.num_token_ids_logprob; ++i) {
      const int32_t id = r.token_ids_logprob[i];
      out.ids_logprobs[i] = (id >= 0 && id < vocab) ? logprob(id) : kNegInf;
    }
  }
}

// ---- the C table
struct BuiltinObject {
  const SableHostApi* host;
  SableHostHandle* handle;
};

SableStatus builtin_create(const SableHostApi* host, SableHostHandle* h, SableSampler** out) {
  SABLE_TRY {
    *out = reinterpret_cast<SableSampler*>(new BuiltinObject{host, h});
    return SABLE_OK;
  }
  SABLE_CATCH(host, h)
}

void builtin_destroy(SableSampler* s) { delete reinterpret_cast<BuiltinObject*>(s); }

SableStatus builtin_sample(SableSampler* s, SableOpsContext* /*ctx*/, const SableTensor* logits,
                           const SableSamplingRow* rows, SableSampleResult* results) {
  auto* self = reinterpret_cast<BuiltinObject*>(s);
  SABLE_TRY {
    if (logits == nullptr || logits->dtype != SABLE_DTYPE_F32 || logits->ndim != 2 ||
        logits->device_type != SABLE_DEVICE_CPU || !sable_tensor_is_contiguous(logits)) {
      ::sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                         "builtin sampler: logits must be a contiguous [B, V] F32 host tensor");
    }
    sample_rows(static_cast<float*>(logits->data), logits->shape[0], logits->shape[1], rows,
                results);
    return SABLE_OK;
  }
  SABLE_CATCH(self->host, self->handle)
}

const SableSamplerApi kBuiltinApi = {sizeof(SableSamplerApi), 0, &builtin_create, &builtin_destroy,
                                     &builtin_sample};

}  // namespace

double seeded_uniform(uint64_t seed, uint64_t step) {
  const uint64_t x = splitmix64(splitmix64(seed) ^ (step * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull));
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);
}

void sample_rows(float* logits, int64_t num_rows, int64_t vocab, const SableSamplingRow* rows,
                 SableSampleResult* results, const ParallelRows& parallel) {
  if (vocab <= 0) throw std::invalid_argument("sampler: empty vocabulary");
  for (int64_t b = 0; b < num_rows; ++b) {  // every row checked before any is sampled
    const SableSamplingRow& r = rows[b];
    if (!(r.top_p > 0.0f && r.top_p <= 1.0f)) throw std::invalid_argument("sampler: top_p out of range");
    if (r.top_k == 0 || r.top_k < -1) throw std::invalid_argument("sampler: top_k must be -1 or >= 1");
    if (!(r.temperature >= 0.0f)) throw std::invalid_argument("sampler: negative temperature");
    for (int32_t i = 0; i < r.num_logit_bias; ++i) {
      if (r.logit_bias_ids[i] < 0 || r.logit_bias_ids[i] >= vocab) {
        throw std::invalid_argument("logit_bias id out of range");
      }
    }
  }
  // Rows are independent (each draws from its own (seed, step)), so threads change no result.
  // A row of a large vocabulary is tens of microseconds to a millisecond (top-p), worth a wake-up.
  if (!parallel || num_rows < 2 || vocab < kParallelMinVocab) {
    for (int64_t b = 0; b < num_rows; ++b)
      sample_row(logits + b * vocab, vocab, rows[b], results[b]);
    return;
  }
  std::mutex failure_mutex;
  std::exception_ptr failure;  // the first row that failed (allocation): rethrown here
  parallel(num_rows, [&](int64_t b) {
    try {
      sample_row(logits + b * vocab, vocab, rows[b], results[b]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
}

const SableSamplerApi* builtin_sampler_api() { return &kBuiltinApi; }

Sampler::Sampler(const SableSamplerApi* api, const SableHostApi* host, SableHostHandle* handle)
    : api_(api != nullptr ? api : builtin_sampler_api()) {
  if (api_->create(host, handle, &sampler_) != SABLE_OK) {
    throw std::runtime_error("sampler: create failed");
  }
}

Sampler::~Sampler() {
  if (api_ != nullptr) api_->destroy(sampler_);
}

void Sampler::sample(float* logits, int64_t vocab, std::span<const SableSamplingRow> rows,
                     std::span<SableSampleResult> results, SableOpsContext* ctx,
                     const ParallelRows& parallel) {
  if (rows.size() != results.size()) throw std::invalid_argument("sampler: rows/results size");
  if (rows.empty()) return;
  if (api_ == builtin_sampler_api()) {  // direct call keeps the exception's message
    sample_rows(logits, static_cast<int64_t>(rows.size()), vocab, rows.data(), results.data(),
                parallel);
    return;
  }
  const int64_t shape[2] = {static_cast<int64_t>(rows.size()), vocab};
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = SABLE_DTYPE_F32;
  t.device_type = SABLE_DEVICE_CPU;
  t.ndim = 2;
  t.shape[0] = shape[0];
  t.shape[1] = shape[1];
  t.strides[0] = vocab;
  t.strides[1] = 1;
  t.data = logits;
  if (api_->sample(sampler_, ctx, &t, rows.data(), results.data()) != SABLE_OK) {
    throw std::runtime_error("sampler: sample failed");
  }
}

int32_t argmax(std::span<const float> row) {
  return argmax_row(row.data(), static_cast<int64_t>(row.size()));
}

}  // namespace sable::sampling
