// The GPU sampler against the built-in CPU sampler: greedy tokens and log-probabilities agree,
// plain temperature sampling draws the same token from the same seeded uniform, top-k/top-p/min-p
// keep draws inside the allowed set with the right frequencies, penalties, bias and the grammar
// mask act as on the CPU, and seeded runs are reproducible.
#include "core/sampling/cuda/cuda_sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "core/sampling/cuda/sample_kernel.h"
#include "core/sampling/sampler.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

SableSamplingRow base_row() {
  SableSamplingRow r{};
  r.struct_size = sizeof(r);
  r.want_logprob = 1;
  r.temperature = 1.0f;
  r.top_p = 1.0f;
  r.top_k = -1;
  r.repetition_penalty = 1.0f;
  return r;
}

struct Fixture {
  std::vector<float> logits;
  int64_t vocab;
  DeviceBuffer dev;
  sampling::CudaSampler sampler;  // kept across calls: a split launch leaves its tickets at zero
  Fixture(int64_t rows, int64_t v, uint32_t seed) : vocab(v), dev(rows * v * 4) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    logits.resize(rows * v);
    for (auto& x : logits) x = nd(rng);
  }
  // Result slots for rows, with top-n buffers when top_ids is given.
  static std::vector<SableSampleResult> results(size_t rows, int top, std::vector<int32_t>* top_ids,
                                                std::vector<float>* top_lp) {
    std::vector<SableSampleResult> res(rows);
    if (top_ids) {
      top_ids->resize(rows * top);
      top_lp->resize(rows * top);
    }
    for (size_t i = 0; i < rows; ++i) {
      res[i].struct_size = sizeof(SableSampleResult);
      if (top_ids) {
        res[i].top_ids = top_ids->data() + i * top;
        res[i].top_logprobs = top_lp->data() + i * top;
      }
    }
    return res;
  }
  std::vector<SableSampleResult> gpu(std::vector<SableSamplingRow> rows, int top = 0,
                                     std::vector<int32_t>* top_ids = nullptr,
                                     std::vector<float>* top_lp = nullptr) {
    dev.upload(logits);
    auto res = results(rows.size(), top, top_ids, top_lp);
    sampler.sample(static_cast<float*>(dev.get()), vocab, vocab, rows, res, nullptr);
    return res;
  }
  std::vector<SableSampleResult> cpu(std::vector<SableSamplingRow> rows, int top = 0,
                                     std::vector<int32_t>* top_ids = nullptr,
                                     std::vector<float>* top_lp = nullptr) {
    std::vector<float> copy = logits;
    auto res = results(rows.size(), top, top_ids, top_lp);
    sampling::sample_rows(copy.data(), static_cast<int64_t>(rows.size()), vocab, rows.data(), res.data());
    return res;
  }
};

// Greedy tokens and the top-n log-probabilities (ids and values, in order) agree with the CPU:
// split rows (each split's first n merged by the last block) and unsplit ones, with ties (equal
// logits list the lower index first) and a sampled row's top-n.
TEST(CudaSampler, GreedyAndLogprobsMatchCpu) {
  SABLE_REQUIRE_GPU();
  for (const int64_t vocab : {int64_t{151936}, int64_t{1000}}) {
    Fixture f(8, vocab, 1);
    for (int64_t r = 0; r < 8; ++r) {  // ties: the row's max repeated, a run of equal logits
      f.logits[r * vocab + vocab - 7] = f.logits[r * vocab + 3] = 12.0f;
      for (int k = 0; k < 6; ++k) f.logits[r * vocab + 100 + 97 * k] = 9.5f;
    }
    std::vector<SableSamplingRow> rows(8, base_row());
    for (auto& r : rows) r.temperature = 0.0f;
    rows[3].top_k = 1;
    rows[3].temperature = 0.7f;
    rows[5].temperature = 0.9f;  // sampled, with its top-n
    rows[5].seed = 3;
    const int top = 20;
    for (auto& r : rows) r.top_logprobs_num = top;
    std::vector<int32_t> ids, cids;
    std::vector<float> lps, clps;
    auto g = f.gpu(rows, top, &ids, &lps);
    auto c = f.cpu(rows, top, &cids, &clps);
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(g[i].token, c[i].token) << "vocab " << vocab << " row " << i;
      EXPECT_NEAR(g[i].logprob, c[i].logprob, 1e-3);
      if (i != 5) EXPECT_EQ(ids[i * top], g[i].token);
      for (int j = 0; j < top; ++j) {
        EXPECT_EQ(ids[i * top + j], cids[i * top + j])
            << "vocab " << vocab << " row " << i << " top " << j;
        EXPECT_NEAR(lps[i * top + j], clps[i * top + j], 1e-3);
      }
    }
  }
}

// More top log-probabilities than the kernel keeps (40 > kMaxTopLogprobs): the row's processed
// logits come back to the host, and ids and values agree with the CPU's, bias and mask included.
// Before, such a request failed the whole batch on CUDA.
TEST(CudaSampler, TopNAboveTheKernelsLimitComesFromTheHost) {
  SABLE_REQUIRE_GPU();
  const int64_t vocab = 151936, words = (vocab + 31) / 32;
  Fixture f(3, vocab, 21);
  std::vector<uint32_t> mask(words, 0x0F0F0F0Fu);
  std::vector<int32_t> bias_ids = {7, 70000};
  std::vector<float> bias_vals = {30.0f, 25.0f};
  std::vector<SableSamplingRow> rows(3, base_row());
  const int top = 40;
  for (auto& r : rows) r.top_logprobs_num = top;
  rows[0].temperature = 0.0f;
  rows[0].grammar_mask = mask.data();
  rows[1].temperature = 0.8f;
  rows[1].top_p = 0.9f;
  rows[1].seed = 5;
  rows[2].temperature = 0.0f;
  rows[2].logit_bias_ids = bias_ids.data();
  rows[2].logit_bias_values = bias_vals.data();
  rows[2].num_logit_bias = 2;
  std::vector<int32_t> ids, cids;
  std::vector<float> lps, clps;
  auto g = f.gpu(rows, top, &ids, &lps);
  auto c = f.cpu(rows, top, &cids, &clps);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i != 1) EXPECT_EQ(g[i].token, c[i].token) << "row " << i;
    for (int j = 0; j < top; ++j) {
      EXPECT_EQ(ids[i * top + j], cids[i * top + j]) << "row " << i << " top " << j;
      EXPECT_NEAR(lps[i * top + j], clps[i * top + j], 1e-3) << "row " << i << " top " << j;
    }
  }
  EXPECT_EQ(ids[2 * top], 7);
}

TEST(CudaSampler, PlainTemperatureDrawsTheSameTokenAsCpu) {
  SABLE_REQUIRE_GPU();
  Fixture f(16, 1000, 2);
  std::vector<SableSamplingRow> rows(16, base_row());
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].temperature = 0.5f + 0.1f * i;
    rows[i].seed = 1000 + i;
    rows[i].step = i;
  }
  auto g = f.gpu(rows), c = f.cpu(rows);
  int same = 0;
  for (size_t i = 0; i < rows.size(); ++i) same += g[i].token == c[i].token;
  EXPECT_GE(same, 15);  // float vs double prefix sums may differ at a boundary, rarely
}

TEST(CudaSampler, TopKTopPMinPFrequencies) {
  SABLE_REQUIRE_GPU();
  Fixture f(1, 50, 3);
  auto probs = [&](float t) {
    std::vector<double> p(50);
    double m = *std::max_element(f.logits.begin(), f.logits.end()), s = 0;
    for (int i = 0; i < 50; ++i) s += (p[i] = std::exp((f.logits[i] - m) / t));
    for (auto& x : p) x /= s;
    return p;
  };
  const auto p = probs(1.0f);
  std::vector<int> order(50);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
  const int n = 4000;
  std::vector<SableSamplingRow> rows(n, base_row());
  for (int i = 0; i < n; ++i) {
    rows[i].seed = 7;
    rows[i].step = i;
    rows[i].top_k = 5;
  }
  f.logits.resize(size_t(n) * 50);
  for (int i = 1; i < n; ++i) std::copy_n(f.logits.begin(), 50, f.logits.begin() + i * 50);
  f.dev = DeviceBuffer(size_t(n) * 50 * 4);
  auto g = f.gpu(rows);
  std::map<int, int> hist;
  for (auto& r : g) ++hist[r.token];
  double kept = 0;
  for (int j = 0; j < 5; ++j) kept += p[order[j]];
  for (auto [tok, cnt] : hist) {
    ASSERT_TRUE(std::find(order.begin(), order.begin() + 5, tok) != order.begin() + 5) << tok;
    EXPECT_NEAR(double(cnt) / n, p[tok] / kept, 0.03);
  }
  // top_p = 0.5: only the head of the distribution whose mass reaches 0.5.
  for (auto& r : rows) {
    r.top_k = -1;
    r.top_p = 0.5f;
  }
  g = f.gpu(rows);
  double acc = 0;
  int head = 0;
  while (acc < 0.5) acc += p[order[head++]];
  for (auto& r : g)
    ASSERT_TRUE(std::find(order.begin(), order.begin() + head, r.token) != order.begin() + head);
  // min_p = 0.5: tokens with p >= 0.5 p_max.
  for (auto& r : rows) {
    r.top_p = 1.0f;
    r.min_p = 0.5f;
  }
  g = f.gpu(rows);
  for (auto& r : g) ASSERT_GE(p[r.token], 0.5 * p[order[0]] * 0.999);
  // Reproducible.
  auto g2 = f.gpu(rows);
  for (int i = 0; i < n; ++i) ASSERT_EQ(g[i].token, g2[i].token);
}

TEST(CudaSampler, PenaltiesBiasAndMaskMatchCpu) {
  SABLE_REQUIRE_GPU();
  Fixture f(3, 300, 4);
  std::vector<int32_t> prev = {3, 3, 7, 200, 3};
  std::vector<int32_t> bias_ids = {11, 12};
  std::vector<float> bias_vals = {50.0f, -5.0f};
  std::vector<uint32_t> mask((300 + 31) / 32, 0);
  mask[100 / 32] |= 1u << (100 % 32);
  mask[101 / 32] |= 1u << (101 % 32);
  std::vector<SableSamplingRow> rows(3, base_row());
  for (auto& r : rows) r.temperature = 0.0f;
  rows[0].repetition_penalty = 1.3f;
  rows[0].frequency_penalty = 0.5f;
  rows[0].presence_penalty = 0.2f;
  rows[0].prev_tokens = prev.data();
  rows[0].num_prev_tokens = static_cast<int32_t>(prev.size());
  rows[1].num_logit_bias = 2;
  rows[1].logit_bias_ids = bias_ids.data();
  rows[1].logit_bias_values = bias_vals.data();
  rows[2].grammar_mask = mask.data();
  auto g = f.gpu(rows), c = f.cpu(rows);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(g[i].token, c[i].token) << i;
    EXPECT_NEAR(g[i].logprob, c[i].logprob, 1e-3) << i;
  }
  EXPECT_EQ(g[1].token, 11);
  EXPECT_TRUE(g[2].token == 100 || g[2].token == 101);
}

// A greedy row's mask is applied in its row statistics (no -inf written over the logits), a
// row that also reports the logprobs of given ids gets it written: both agree with the CPU, and
// so does a row whose mask allows nothing (token 0 at -inf).
TEST(CudaSampler, GreedyMaskedRowsReadTheMaskOrWriteIt) {
  SABLE_REQUIRE_GPU();
  Fixture f(3, 1003, 9);  // 1003: a tail after the 16-byte groups
  // Rows 0 and 1 see the same logits, so the two paths must choose the same token (the first
  // version of this test compared rows of different random logits and failed on the H100).
  std::copy(f.logits.begin(), f.logits.begin() + 1003, f.logits.begin() + 1003);
  std::vector<uint32_t> mask((1003 + 31) / 32, 0u), none((1003 + 31) / 32, 0u);
  for (int id : {2, 3, 640, 1001, 1002}) mask[id / 32] |= 1u << (id % 32);
  std::vector<int32_t> ids = {3, 7, 1002};
  std::vector<SableSamplingRow> rows(3, base_row());
  for (auto& r : rows) r.temperature = 0.0f;
  rows[0].grammar_mask = mask.data();
  rows[1].grammar_mask = mask.data();
  rows[1].num_token_ids_logprob = static_cast<int32_t>(ids.size());
  rows[1].token_ids_logprob = ids.data();
  rows[2].grammar_mask = none.data();
  auto g = f.gpu(rows), c = f.cpu(rows);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g[i].token, c[i].token) << i;
  EXPECT_NEAR(g[0].logprob, c[0].logprob, 1e-3);
  EXPECT_NEAR(g[1].logprob, c[1].logprob, 1e-3);
  EXPECT_EQ(g[0].token, g[1].token);
  EXPECT_NEAR(g[0].logprob, g[1].logprob, 1e-5);
  EXPECT_EQ(g[2].token, 0);
  EXPECT_TRUE(std::isinf(g[2].logprob) && g[2].logprob < 0) << g[2].logprob;
  EXPECT_TRUE(std::isinf(c[2].logprob) && c[2].logprob < 0) << c[2].logprob;
}

// A long row is split over blocks (sample_splits) and its last block merges the slices' statistics:
// penalties, bias and mask entries in different slices, the winner in a late slice, a tie across
// slices (the lowest index wins, as on the CPU) and a sampled row that reads the whole row after
// the merge all agree with the CPU, in one call and again in the next (the tickets were reset).
TEST(CudaSampler, SplitRowsMatchCpuAcrossSlices) {
  SABLE_REQUIRE_GPU();
  const int64_t vocab = 151936, words = (vocab + 31) / 32;
  ASSERT_GT(sampling::sample_splits(vocab, 4), 4) << "SABLE_SAMPLE_SPLITS set?";
  Fixture f(4, vocab, 12);
  std::vector<int32_t> prev = {5, 70001, 151935, 70001};
  std::vector<int32_t> bias_ids = {10, 140003};
  std::vector<float> bias_vals = {-3.0f, 40.0f};
  std::vector<uint32_t> greedy_mask(words, 0u), sample_mask(words, 0u);
  for (int id : {17, 80001, 151930}) greedy_mask[id / 32] |= 1u << (id % 32);
  for (int k = 0; k < 600; ++k)
    sample_mask[(k * 251) % vocab / 32] |= 1u << ((k * 251) % vocab % 32);
  f.logits[3 * vocab + 1000] = f.logits[3 * vocab + 150000] = 30.0f;  // a tie across slices
  std::vector<SableSamplingRow> rows(4, base_row());
  rows[0].temperature = 0.0f;
  rows[0].repetition_penalty = 1.2f;
  rows[0].frequency_penalty = 0.4f;
  rows[0].prev_tokens = prev.data();
  rows[0].num_prev_tokens = static_cast<int32_t>(prev.size());
  rows[0].num_logit_bias = 2;
  rows[0].logit_bias_ids = bias_ids.data();
  rows[0].logit_bias_values = bias_vals.data();
  rows[1].temperature = 0.0f;
  rows[1].grammar_mask = greedy_mask.data();
  rows[2].temperature = 0.8f;
  rows[2].top_k = 20;
  rows[2].seed = 99;
  rows[2].grammar_mask = sample_mask.data();
  rows[3].temperature = 0.0f;
  for (int call = 0; call < 2; ++call) {
    std::vector<int32_t> ids;
    std::vector<float> lps;
    rows[0].top_logprobs_num = 3;
    auto g = f.gpu(rows, 3, &ids, &lps);
    auto c = f.cpu(rows);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(g[i].token, c[i].token) << "call " << call << " row " << i;
      EXPECT_NEAR(g[i].logprob, c[i].logprob, 1e-3) << "call " << call << " row " << i;
    }
    EXPECT_EQ(g[0].token, 140003);
    EXPECT_EQ(ids[0], 140003);
    EXPECT_TRUE(g[1].token == 17 || g[1].token == 80001 || g[1].token == 151930) << g[1].token;
    EXPECT_TRUE(sample_mask[g[2].token / 32] >> (g[2].token % 32) & 1u) << g[2].token;
    EXPECT_EQ(g[3].token, 1000);
    rows[2].step = 1;  // the next draw
  }
}

// The staged inputs go up on the sampler's copy stream while the logits' stream may still be
// busy: one sampler on a stream of its own, three calls in a row, each with logits written by an
// asynchronous copy on that stream just before (16 MB, still in flight when sample() stages) and
// a grammar mask of its own per row. Every call must sample its own logits under its own masks.
TEST(CudaSampler, StagedMasksAndStreamOrderHoldAcrossCalls) {
  SABLE_REQUIRE_GPU();
  const int64_t rows = 32, vocab = 128256, words = (vocab + 31) / 32;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  float* host = nullptr;
  ASSERT_EQ(cudaMallocHost(&host, rows * vocab * 4), cudaSuccess);
  DeviceBuffer dev(rows * vocab * 4);
  sampling::CudaSampler sampler;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int call = 0; call < 3; ++call) {
    for (int64_t i = 0; i < rows * vocab; ++i) host[i] = nd(rng);
    std::vector<uint32_t> masks(rows * words, 0u);
    std::vector<SableSamplingRow> rs(rows, base_row());
    for (int64_t r = 0; r < rows; ++r) {
      for (int k = 0; k < 40; ++k) {  // 40 allowed tokens a row, new ones each call
        const int64_t id = (r * 997 + call * 7919 + k * 3203) % vocab;
        masks[r * words + id / 32] |= 1u << (id % 32);
      }
      rs[r].temperature = 0.0f;
      rs[r].grammar_mask = masks.data() + r * words;
    }
    ASSERT_EQ(cudaMemcpyAsync(dev.get(), host, rows * vocab * 4, cudaMemcpyHostToDevice, stream),
              cudaSuccess);
    std::vector<SableSampleResult> g(rows), c(rows);
    for (auto& x : g) x.struct_size = sizeof(SableSampleResult);
    for (auto& x : c) x.struct_size = sizeof(SableSampleResult);
    sampler.sample(static_cast<float*>(dev.get()), vocab, vocab, rs, g, stream);
    std::vector<float> copy(host, host + rows * vocab);
    sampling::sample_rows(copy.data(), rows, vocab, rs.data(), c.data());
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t t = g[r].token;
      EXPECT_TRUE(masks[r * words + t / 32] >> (t % 32) & 1u) << "call " << call << " row " << r;
      EXPECT_EQ(t, c[r].token) << "call " << call << " row " << r;
      EXPECT_NEAR(g[r].logprob, c[r].logprob, 1e-3) << "call " << call << " row " << r;
    }
  }
  cudaFreeHost(host);
  cudaStreamDestroy(stream);
}

// Top-k and top-p over a Qwen-sized row keep the prefix of the probability order that the CPU's
// exact cut keeps and walk it in index order as the CPU does, so the same seeded uniform draws the
// same token; a few rows may differ where the GPU's exp and sums round otherwise at a boundary.
TEST(CudaSampler, TopKTopPDrawTheCpuToken) {
  SABLE_REQUIRE_GPU();
  const int64_t rows_n = 48;
  Fixture f(rows_n, 151936, 9);
  std::vector<SableSamplingRow> rows(rows_n, base_row());
  for (int64_t i = 0; i < rows_n; ++i) {
    rows[i].temperature = 0.6f + 0.02f * static_cast<float>(i);
    rows[i].top_k = i % 3 == 0 ? 50 : (i % 3 == 1 ? 2000 : -1);
    rows[i].top_p = i % 4 == 0 ? 1.0f : 0.5f + 0.1f * static_cast<float>(i % 5);
    if (rows[i].top_k < 0 && rows[i].top_p >= 1.0f) rows[i].top_p = 0.95f;
    rows[i].seed = 500 + i;
    rows[i].step = i;
  }
  auto g = f.gpu(rows), c = f.cpu(rows);
  int same = 0;
  for (int64_t i = 0; i < rows_n; ++i) same += g[i].token == c[i].token;
  EXPECT_GE(same, 44) << "of " << rows_n;
  // Reproducible: the same rows again draw the same tokens.
  auto again = f.gpu(rows);
  for (int64_t i = 0; i < rows_n; ++i) EXPECT_EQ(again[i].token, g[i].token) << "row " << i;
}

// One call mixes greedy rows, temperature alone, top-k, top-p, both with min-p, and a grammar
// mask: the cut kernels sample only the rows the statistics kernel left them, and each row draws
// the CPU's token. Peaked rows (a trained model's: a few tokens far above the rest), 24 calls,
// split rows (4 rows of 151,936) and, at 300 rows, one block a row.
TEST(CudaSampler, MixedRowsDrawTheCpuTokenSplitOrNot) {
  SABLE_REQUIRE_GPU();
  for (const int64_t rows_n : {int64_t{6}, int64_t{300}}) {
    const int64_t vocab = 151936;
    Fixture f(rows_n, vocab, 11);
    std::mt19937 rng(5);
    std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
    for (int64_t r = 0; r < rows_n; ++r)
      for (int k = 0; k < 30; ++k) f.logits[r * vocab + pick(rng)] += 6.0f + 0.25f * k;
    const int64_t words = (vocab + 31) / 32;
    std::vector<uint32_t> mask(words, 0xAAAAAAAAu);  // odd tokens only
    int same = 0, total = 0;
    for (int call = 0; call < (rows_n > 6 ? 2 : 24); ++call) {
      std::vector<SableSamplingRow> rows(rows_n, base_row());
      for (int64_t i = 0; i < rows_n; ++i) {
        SableSamplingRow& r = rows[i];
        r.seed = 40 + i;
        r.step = call;
        r.temperature = 0.7f;
        switch (i % 6) {
          case 0:
            r.temperature = 0.0f;
            break;
          case 1:
            break;  // temperature alone
          case 2:
            r.top_k = 20;
            break;
          case 3:
            r.top_p = 0.8f;
            break;
          case 4:
            r.top_k = 20, r.top_p = 0.8f, r.min_p = 0.05f;
            break;
          case 5:
            r.top_p = 0.9f, r.grammar_mask = mask.data();
            break;
        }
      }
      auto g = f.gpu(rows), c = f.cpu(rows);
      for (int64_t i = 0; i < rows_n; ++i) {
        if (i % 6 == 0) EXPECT_EQ(g[i].token, c[i].token) << "greedy row " << i;
        if (i % 6 == 5) EXPECT_EQ(g[i].token % 2, 1) << "masked row " << i;
        if (g[i].token == c[i].token) EXPECT_NEAR(g[i].logprob, c[i].logprob, 1e-2) << "row " << i;
        same += g[i].token == c[i].token;
        ++total;
      }
    }
    EXPECT_GE(same, total * 95 / 100) << "of " << total << " at " << rows_n << " rows";
  }
}

// A near-uniform row puts most of its tokens in the cut's boundary bucket (more candidates than
// the shared list holds): the last block cuts over the whole row instead. Exact ties keep the
// lower indices, as on the CPU: top-k 3 over equal logits draws only tokens 0-2, and top-p 0.5
// over them only the first half of the row.
TEST(CudaSampler, NearUniformRowsCutOverTheWholeRow) {
  SABLE_REQUIRE_GPU();
  const int64_t rows_n = 4, vocab = 151936;
  Fixture f(rows_n, vocab, 12);
  std::mt19937 rng(6);
  std::normal_distribution<float> tiny(0.0f, 1e-3f);
  for (int64_t i = 0; i < 2 * vocab; ++i) f.logits[i] = tiny(rng);
  std::fill(f.logits.begin() + 2 * vocab, f.logits.end(), 0.5f);
  int near_same = 0;
  for (int call = 0; call < 6; ++call) {
    std::vector<SableSamplingRow> rows(rows_n, base_row());
    for (int64_t i = 0; i < rows_n; ++i) {
      rows[i].seed = 90 + i;
      rows[i].step = call;
    }
    rows[0].top_p = 0.9f;
    rows[1].top_k = 100000, rows[1].top_p = 0.5f;
    rows[2].top_k = 3;
    rows[3].top_p = 0.5f;
    auto g = f.gpu(rows), c = f.cpu(rows);
    EXPECT_LT(g[2].token, 3) << "call " << call;
    EXPECT_LT(g[3].token, vocab / 2 + 1) << "call " << call;
    // Exact ties (rows 2, 3) draw the CPU's token always; near-ties may differ where the two
    // devices' exp rounds otherwise at a boundary, rarely.
    for (int64_t i = 2; i < rows_n; ++i)
      EXPECT_EQ(g[i].token, c[i].token) << "row " << i << " call " << call;
    for (int64_t i = 0; i < 2; ++i) near_same += g[i].token == c[i].token;
  }
  EXPECT_GE(near_same, 11) << "of 12";
}

}  // namespace
}  // namespace sable::gputest
