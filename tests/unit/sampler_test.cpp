// Built-in sampler: greedy and top-k=1, seeded reproducibility, and statistical checks (on small
// synthetic logits) that temperature, top-k, top-p, min-p follow their definitions; penalties, logit
// bias and grammar masks change the processed logits exactly as defined; log-probabilities.
#include "core/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

using sable::sampling::Sampler;

namespace {

SableSamplingRow row(float temperature = 1.0f) {
  SableSamplingRow r{};
  r.struct_size = sizeof(r);
  r.want_logprob = 1;
  r.temperature = temperature;
  r.top_p = 1.0f;
  r.top_k = -1;
  r.repetition_penalty = 1.0f;
  r.seed = 1;
  return r;
}

SableSampleResult result() {
  SableSampleResult s{};
  s.struct_size = sizeof(s);
  return s;
}

int32_t sample_one(Sampler& sampler, std::vector<float> logits, const SableSamplingRow& r,
                   SableSampleResult* out = nullptr) {
  SableSampleResult res = out ? *out : result();
  sampler.sample(logits.data(), static_cast<int64_t>(logits.size()), {&r, 1}, {&res, 1});
  if (out) *out = res;
  return res.token;
}

// Empirical distribution of `draws` samples (steps 0..draws-1).
std::vector<double> histogram(const std::vector<float>& logits, SableSamplingRow r, int draws) {
  Sampler sampler;
  std::vector<double> h(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    r.step = static_cast<uint64_t>(i);
    h[sample_one(sampler, logits, r)] += 1.0 / draws;
  }
  return h;
}

std::vector<double> softmax(const std::vector<float>& l, double t) {
  std::vector<double> p(l.size());
  double m = -1e30, s = 0;
  for (float x : l) m = std::max(m, double(x));
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp((l[i] - m) / t);
  for (double& x : p) x /= s;
  return p;
}

// Keeps `keep` and renormalizes.
std::vector<double> restrict_to(std::vector<double> p, const std::vector<int>& keep) {
  std::vector<double> q(p.size(), 0.0);
  double s = 0;
  for (int i : keep) s += q[i] = p[i];
  for (double& x : q) x /= s;
  return q;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "token " << i;
}

const std::vector<float> kLogits = {1.0f, 2.0f, 0.5f, 1.5f, -1.0f, 0.0f};
constexpr int kDraws = 20000;
constexpr double kTol = 0.015;

}  // namespace

TEST(Sampler, GreedyAndTopKOneAreArgmax) {
  Sampler sampler;
  EXPECT_EQ(sample_one(sampler, kLogits, row(0.0f)), 1);
  EXPECT_EQ(sample_one(sampler, kLogits, row(1e-7f)), 1);
  for (uint64_t step = 0; step < 50; ++step) {
    SableSamplingRow r = row(1.5f);
    r.top_k = 1;
    r.step = step;
    EXPECT_EQ(sample_one(sampler, kLogits, r), 1);
  }
  // Ties: the first index wins.
  EXPECT_EQ(sample_one(sampler, {3.0f, 5.0f, 5.0f}, row(0.0f)), 1);
}

// The public argmax (the runner's greedy helper uses it): the first of equal maxima, NaNs never
// win, every length (the 16-lane loop's tail, two rounds of it), against a plain scan. A NaN among the first four
// values used to seed its lane and hide that lane's later values (the true maximum among them).
TEST(Sampler, ArgmaxIsTheFirstLargestAndSkipsNaN) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-3, 3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int n = 1; n <= 41; ++n) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> row(static_cast<size_t>(n));
      for (float& v : row) v = static_cast<float>(small(rng));  // many ties
      if (trial % 3 == 1) row[static_cast<size_t>(rng() % n)] = nan;
      int want = -1;  // a plain scan
      for (int i = 0; i < n; ++i)
        if (!std::isnan(row[i]) && (want < 0 || row[i] > row[want])) want = i;
      if (want < 0) want = 0;  // no number at all (n = 1 with its NaN): index 0
      EXPECT_EQ(sable::sampling::argmax(row), want) << "n=" << n << " trial " << trial;
    }
  }
}

TEST(Sampler, SeededDrawsAreReproducible) {
  SableSamplingRow r = row(1.0f);
  r.seed = 1234;
  std::vector<int32_t> a, b, c;
  Sampler s1, s2;
  for (uint64_t step = 0; step < 64; ++step) {
    r.step = step;
    a.push_back(sample_one(s1, kLogits, r));
    b.push_back(sample_one(s2, kLogits, r));
  }
  r.seed = 99;
  for (uint64_t step = 0; step < 64; ++step) {
    r.step = step;
    c.push_back(sample_one(s1, kLogits, r));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(sable::sampling::seeded_uniform(5, 6), sable::sampling::seeded_uniform(5, 6));
}

TEST(Sampler, TemperatureFollowsSoftmax) {
  for (double t : {1.0, 0.5, 2.0}) {
    expect_close(histogram(kLogits, row(static_cast<float>(t)), kDraws), softmax(kLogits, t), kTol);
  }
}

TEST(Sampler, TopKKeepsTheKBest) {
  SableSamplingRow r = row(1.0f);
  r.top_k = 3;  // tokens 1 (2.0), 3 (1.5), 0 (1.0)
  expect_close(histogram(kLogits, r, kDraws), restrict_to(softmax(kLogits, 1.0), {1, 3, 0}), kTol);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  const auto p = softmax(kLogits, 1.0);  // sorted: 1, 3, 0, 2, 5, 4
  SableSamplingRow r = row(1.0f);
  r.top_p = static_cast<float>(p[1] + p[3] + 0.01);  // needs token 0 too
  expect_close(histogram(kLogits, r, kDraws), restrict_to(p, {1, 3, 0}), kTol);
  r.top_p = static_cast<float>(p[1] - 0.01);  // the best alone
  expect_close(histogram(kLogits, r, 2000), restrict_to(p, {1}), 1e-9);
}

TEST(Sampler, MinPDropsTokensBelowTheFractionOfTheMax) {
  const auto p = softmax(kLogits, 1.0);
  SableSamplingRow r = row(1.0f);
  r.min_p = static_cast<float>(p[0] / p[1] - 0.01);  // keeps 1, 3, 0
  expect_close(histogram(kLogits, r, kDraws), restrict_to(p, {1, 3, 0}), kTol);
  // Combined with top-k (the sorted path).
  r.top_k = 5;
  expect_close(histogram(kLogits, r, kDraws), restrict_to(p, {1, 3, 0}), kTol);
}

// ABI 1.9's want_logprob: a greedy row that wants no log-probability gets the same token and a 0
// in its place; one that wants it, or a 1.8 host's row (which has no such field), gets it.
TEST(Sampler, WantLogprobDecidesTheChosenLogprob) {
  Sampler sampler;
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f};
  const double expect = std::log(softmax(logits, 1.0)[1]);
  for (float t : {0.0f, 1.0f}) {
    SableSamplingRow r = row(t);
    r.top_k = t == 0.0f ? -1 : 1;  // greedy both ways
    SableSampleResult res = result();
    r.want_logprob = 0;
    EXPECT_EQ(sample_one(sampler, logits, r, &res), 1);
    EXPECT_EQ(res.logprob, 0.0f);
    r.want_logprob = 1;
    EXPECT_EQ(sample_one(sampler, logits, r, &res), 1);
    EXPECT_NEAR(res.logprob, expect, 1e-6);
    r.want_logprob = 0;
    r.struct_size = offsetof(SableSamplingRow, want_logprob);  // a 1.8 host's row
    res.logprob = 0.0f;
    EXPECT_EQ(sample_one(sampler, logits, r, &res), 1);
    EXPECT_NEAR(res.logprob, expect, 1e-6);
  }
}

TEST(Sampler, PenaltiesAndBiasChangeProcessedLogits) {
  Sampler sampler;
  const std::vector<float> logits = {2.0f, 1.0f, -1.0f, 0.5f};
  const int32_t prev[] = {0, 2, 2};
  SableSamplingRow r = row(0.0f);
  r.prev_tokens = prev;
  r.num_prev_tokens = 3;
  r.repetition_penalty = 2.0f;   // 0: 2 -> 1, 2: -1 -> -2
  r.frequency_penalty = 0.25f;   // 0: -0.25, 2: -0.5
  r.presence_penalty = 0.5f;     // 0, 2: -0.5
  const int32_t bias_ids[] = {3};
  const float bias_values[] = {0.25f};  // 3: 0.5 -> 0.75
  r.num_logit_bias = 1;
  r.logit_bias_ids = bias_ids;
  r.logit_bias_values = bias_values;
  r.top_logprobs_num = 4;
  const std::vector<float> expected = {0.25f, 1.0f, -3.0f, 0.75f};
  std::vector<int32_t> top_ids(4);
  std::vector<float> top_lp(4);
  SableSampleResult res = result();
  res.top_ids = top_ids.data();
  res.top_logprobs = top_lp.data();
  EXPECT_EQ(sample_one(sampler, logits, r, &res), 1);
  const auto p = softmax(expected, 1.0);
  EXPECT_EQ(top_ids, (std::vector<int32_t>{1, 3, 0, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(top_lp[i], std::log(p[top_ids[i]]), 1e-5);
  EXPECT_NEAR(res.logprob, std::log(p[1]), 1e-5);
  // Presence/frequency alone: a sampled distribution moves away from repeated tokens.
  SableSamplingRow q = row(1.0f);
  const int32_t rep[] = {1, 1, 1, 1};
  q.prev_tokens = rep;
  q.num_prev_tokens = 4;
  q.frequency_penalty = 0.5f;
  std::vector<float> shifted = kLogits;
  shifted[1] -= 2.0f;
  expect_close(histogram(kLogits, q, kDraws), softmax(shifted, 1.0), kTol);
}

TEST(Sampler, LogitBiasAndGrammarMaskSteerTheChoice) {
  Sampler sampler;
  SableSamplingRow r = row(0.0f);
  const int32_t ids[] = {4};
  const float vals[] = {100.0f};
  r.num_logit_bias = 1;
  r.logit_bias_ids = ids;
  r.logit_bias_values = vals;
  EXPECT_EQ(sample_one(sampler, kLogits, r), 4);
  SableSamplingRow m = row(1.0f);
  const uint32_t mask[] = {(1u << 2) | (1u << 5)};  // only tokens 2 and 5 allowed
  m.grammar_mask = mask;
  auto h = histogram(kLogits, m, kDraws);
  expect_close(h, restrict_to(softmax(kLogits, 1.0), {2, 5}), kTol);
}

TEST(Sampler, TokenIdsLogprobAndBatchRows) {
  Sampler sampler;
  std::vector<float> logits = kLogits;
  logits.insert(logits.end(), kLogits.rbegin(), kLogits.rend());  // second row reversed
  SableSamplingRow rows[2] = {row(0.0f), row(0.0f)};
  const int32_t want[] = {4, 1};
  rows[1].num_token_ids_logprob = 2;
  rows[1].token_ids_logprob = want;
  float lp[2];
  SableSampleResult res[2] = {result(), result()};
  res[1].ids_logprobs = lp;
  sampler.sample(logits.data(), 6, rows, res);
  EXPECT_EQ(res[0].token, 1);
  EXPECT_EQ(res[1].token, 4);
  std::vector<float> rev(kLogits.rbegin(), kLogits.rend());
  const auto p = softmax(rev, 1.0);
  EXPECT_NEAR(lp[0], std::log(p[4]), 1e-5);
  EXPECT_NEAR(lp[1], std::log(p[1]), 1e-5);
}

TEST(Sampler, MalformedRowsAreErrors) {
  Sampler sampler;
  SableSamplingRow r = row(1.0f);
  r.top_k = 0;
  EXPECT_THROW(sample_one(sampler, kLogits, r), std::invalid_argument);
  r = row(1.0f);
  r.top_p = 0.0f;
  EXPECT_THROW(sample_one(sampler, kLogits, r), std::invalid_argument);
  // Through the C table: a status, not an exception.
  const SableSamplerApi* api = sable::sampling::builtin_sampler_api();
  SableSampler* s = nullptr;
  ASSERT_EQ(api->create(nullptr, nullptr, &s), SABLE_OK);
  SableTensor t{};
  t.struct_size = sizeof(t);
  t.dtype = SABLE_DTYPE_I32;
  t.ndim = 2;
  SableSampleResult res = result();
  EXPECT_EQ(api->sample(s, nullptr, &t, &r, &res), SABLE_ERR_INVALID_ARGUMENT);
  api->destroy(s);
  api->destroy(nullptr);
}

namespace {

// Frequency and presence penalties count generated tokens only; the repetition penalty also the
// prompt (SableSamplingRow.num_prompt_tokens), as SGLang's penalizers do.
TEST(SamplerPenalties, PromptTokensTakeOnlyTheRepetitionPenalty) {
  std::vector<float> logits = {2.0f, 2.0f, 2.0f, 0.0f};
  const std::vector<int32_t> prev = {0, 0, 1, 2};  // prompt: 0, 0 ; generated: 1, 2
  SableSamplingRow r{};
  r.struct_size = sizeof(r);
  r.want_logprob = 1;
  r.temperature = 0.0f;
  r.top_p = 1.0f;
  r.top_k = -1;
  r.repetition_penalty = 2.0f;
  r.frequency_penalty = 0.5f;
  r.presence_penalty = 0.25f;
  r.prev_tokens = prev.data();
  r.num_prev_tokens = 4;
  r.num_prompt_tokens = 2;
  SableSampleResult res{};
  res.struct_size = sizeof(res);
  sable::sampling::sample_rows(logits.data(), 1, 4, &r, &res);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);                 // prompt only: 2 / 2
  EXPECT_FLOAT_EQ(logits[1], 1.0f - 0.5f - 0.25f);  // generated once
  EXPECT_FLOAT_EQ(logits[2], 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(logits[3], 0.0f);
  EXPECT_EQ(res.token, 0);
}

}  // namespace

// Top-k and top-p over a large vocabulary cut without a sort (top_cut.h) and walk the kept tokens
// in index order: every draw must equal the draw over the prefix of a full sort of the
// vocabulary (same seeded uniform), walked in index order. Coarse logits make many exact ties.
TEST(Sampler, TopKAndTopPOverALargeVocabularyEqualAFullSort) {
  const int64_t vocab = 50000;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = std::round(normal(rng) * 8.0f) / 8.0f;
  struct Case {
    float top_p;
    int32_t top_k;
  };
  for (const Case c : {Case{0.1f, -1}, Case{0.9f, -1}, Case{0.999f, -1}, Case{1.0f, 40},
                       Case{1.0f, 7000}, Case{0.8f, 500}}) {
    SableSamplingRow r = row(0.7f);
    r.top_p = c.top_p;
    r.top_k = c.top_k;
    Sampler sampler;
    // The reference: probabilities, the whole vocabulary sorted, top-k's prefix, then top-p's
    // shortest prefix of it whose mass reaches top_p of the prefix's mass.
    const float inv_t = 1.0f / r.temperature;
    const float m = *std::max_element(logits.begin(), logits.end());
    std::vector<float> p(logits.size());
    for (size_t i = 0; i < p.size(); ++i) p[i] = std::exp((logits[i] - m) * inv_t);
    std::vector<int32_t> idx(p.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(),
              [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    size_t keep = c.top_k > 0 ? static_cast<size_t>(c.top_k) : idx.size();
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += p[idx[i]];
    if (c.top_p < 1.0f) {
      const double limit = static_cast<double>(c.top_p) * total;
      double acc = 0;
      size_t n = 0;
      while (n < keep) {
        acc += p[idx[n++]];
        if (acc >= limit) break;
      }
      keep = n;
    }
    std::vector<int32_t> kept(idx.begin(), idx.begin() + static_cast<int64_t>(keep));
    std::sort(kept.begin(), kept.end());
    double kept_mass = 0;
    for (int32_t i : kept) kept_mass += p[i];
    for (uint64_t step = 0; step < 40; ++step) {
      r.step = step;
      const double target = sable::sampling::seeded_uniform(r.seed, r.step) * kept_mass;
      int32_t want = kept.back();
      double acc = 0;
      for (int32_t i : kept) {
        acc += p[i];
        if (acc > target) {
          want = i;
          break;
        }
      }
      EXPECT_EQ(sample_one(sampler, logits, r), want)
          << "top_p " << c.top_p << " top_k " << c.top_k << " step " << step;
    }
  }
}

// The log-sum-exp runs in float lanes with a polynomial exp (sampler.cpp): over a Qwen-sized
// vocabulary with a wide spread of logits and a grammar mask, the log-probabilities stay within
// 2e-5 of a double-precision log-softmax, and a masked token is never drawn, even at a high
// temperature that flattens the distribution.
TEST(Sampler, LogprobsOverALargeVocabularyMatchDoublePrecision) {
  const int64_t vocab = 151936;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 6.0f);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = normal(rng);
  std::vector<uint32_t> mask(static_cast<size_t>((vocab + 31) / 32), 0u);
  for (int64_t i = 0; i < vocab; i += 3) mask[i >> 5] |= 1u << (i & 31);  // every third allowed
  double m = -1e30, sum = 0;
  for (int64_t i = 0; i < vocab; i += 3) m = std::max(m, double(logits[i]));
  for (int64_t i = 0; i < vocab; i += 3) sum += std::exp(double(logits[i]) - m);
  const double lse = m + std::log(sum);
  Sampler sampler;
  for (float temperature : {0.0f, 50.0f}) {
    SableSamplingRow r = row(temperature);
    r.grammar_mask = mask.data();
    r.top_logprobs_num = 3;
    std::vector<int32_t> top_ids(3);
    std::vector<float> top_lp(3);
    for (uint64_t step = 0; step < 20; ++step) {
      r.step = step;
      SableSampleResult res = result();
      res.top_ids = top_ids.data();
      res.top_logprobs = top_lp.data();
      const int32_t t = sample_one(sampler, logits, r, &res);
      ASSERT_EQ(t % 3, 0) << "a masked token was drawn at temperature " << temperature;
      EXPECT_NEAR(res.logprob, double(logits[t]) - lse, 2e-5);
      for (int k = 0; k < 3; ++k) EXPECT_NEAR(top_lp[k], double(logits[top_ids[k]]) - lse, 2e-5);
    }
  }
}

// Rows sampled over threads (the scheduler hands the CPU pool down) give exactly the tokens and
// log-probabilities of one thread, whatever order the rows run in; a malformed row is refused
// before any row is sampled, so no thread meets it.
TEST(Sampler, RowsOverThreadsEqualOneThread) {
  const int64_t vocab = 20000, rows = 24;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(vocab * rows));
  for (float& x : logits) x = normal(rng);
  std::vector<SableSamplingRow> rs(rows);
  for (int64_t b = 0; b < rows; ++b) {
    rs[b] = row(b % 4 == 0 ? 0.0f : 0.6f + 0.05f * static_cast<float>(b));
    rs[b].top_p = b % 3 == 0 ? 0.9f : 1.0f;
    rs[b].top_k = b % 5 == 0 ? 40 : -1;
    rs[b].seed = 100 + static_cast<uint64_t>(b);
    rs[b].step = static_cast<uint64_t>(b);
  }
  auto run = [&](const sable::sampling::ParallelRows& parallel) {
    std::vector<float> copy = logits;
    std::vector<SableSampleResult> res(rows, result());
    sable::sampling::sample_rows(copy.data(), rows, vocab, rs.data(), res.data(), parallel);
    return res;
  };
  const auto serial = run({});
  int calls = 0;
  const auto threaded = run([&](int64_t n, const std::function<void(int64_t)>& fn) {
    ++calls;
    std::vector<std::thread> team;
    for (int64_t i = n - 1; i >= 0; --i) team.emplace_back([&fn, i] { fn(i); });
    for (auto& t : team) t.join();
  });
  EXPECT_EQ(calls, 1);
  for (int64_t b = 0; b < rows; ++b) {
    EXPECT_EQ(threaded[b].token, serial[b].token) << "row " << b;
    EXPECT_EQ(threaded[b].logprob, serial[b].logprob) << "row " << b;
  }

  const int32_t bad_id = static_cast<int32_t>(vocab);
  const float bias = 1.0f;
  rs[rows - 1].num_logit_bias = 1;
  rs[rows - 1].logit_bias_ids = &bad_id;
  rs[rows - 1].logit_bias_values = &bias;
  std::vector<float> copy = logits;
  std::vector<SableSampleResult> res(rows, result());
  EXPECT_THROW(sable::sampling::sample_rows(copy.data(), rows, vocab, rs.data(), res.data(),
                                            [](int64_t, const std::function<void(int64_t)>&) {
                                              ADD_FAILURE()
                                                  << "a malformed batch reached the threads";
                                            }),
               std::invalid_argument);
  EXPECT_EQ(copy, logits);  // untouched: no row was sampled
}
