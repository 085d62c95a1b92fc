// Golden acceptance of the llama and qwen model plugins through the model runner (fp32 CPU).
//
// For each of tests/golden/models/{llama,mistral,qwen2,qwen3}: the logits at every prompt position
// match golden.safetensors `logits_i`, the final-norm output at the last position matches
// `last_hidden_i`, and greedy decoding reproduces the 24 `greedy` tokens of every prompt, with
// the prompts run one at a time and all four in one batch (two start, two join while the first
// two decode), with page sizes 1 and 16 and shuffled, non-contiguous page ids; and a prompt
// prefilled in chunks matches the reference at every position.
//
// Relative error of a row or tensor: max|a - b| / max|b| (b the reference); bound 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/plugin/registry.h"
#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/unit/model_moe_golden.h"

namespace {

// Golden loading, the relative-error definition and the plugin registry are shared with the MoE
// and generic plugin tests.
using namespace sable::golden_test;

std::unique_ptr<ModelRunner> make_runner(const std::string& name, int32_t page_size,
                                         int64_t num_pages) {
  sable::runner::RunnerOptions opt;
  opt.model_path = model_dir(name);
  opt.page_size = page_size;
  opt.num_pages = num_pages;
  opt.attention_backend = "cpu";
  opt.registry = &registry();
  return ModelRunner::create(opt);
}

// A decoding sequence: its tokens so far, the pages it owns, and how many tokens are cached.
struct Seq {
  std::vector<int32_t> tokens;
  std::vector<int32_t> pages;
  int32_t cached = 0;
  std::vector<int32_t> generated;
};

// Gives each prompt the pages for prompt + kGreedySteps tokens out of a shuffled pool.
std::vector<Seq> assign_pages(const Golden& g, int32_t page_size, int64_t* pool_pages) {
  std::vector<int64_t> need;
  int64_t total = 0;
  for (const auto& p : g.prompts) {
    need.push_back((static_cast<int64_t>(p.size() + kGreedySteps) + page_size - 1) / page_size);
    total += need.back();
  }
  *pool_pages = total + 7;  // a few pages nobody uses
  std::vector<int32_t> ids(static_cast<size_t>(*pool_pages));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::mt19937 rng(1234);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<Seq> seqs(g.prompts.size());
  size_t next = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    seqs[i].tokens = g.prompts[i];
    for (int64_t k = 0; k < need[i]; ++k) seqs[i].pages.push_back(ids[next++]);
  }
  return seqs;
}

// One forward over the given sequences: each runs its uncached tokens and takes the argmax.
void step(ModelRunner& runner, std::vector<Seq*> active) {
  std::vector<ModelRunner::Sequence> batch;
  for (Seq* s : active) {
    ModelRunner::Sequence b;
    b.new_tokens = std::span<const int32_t>(s->tokens).subspan(static_cast<size_t>(s->cached));
    b.num_cached = s->cached;
    b.pages = s->pages;
    batch.push_back(b);
  }
  const auto out = runner.forward(batch);
  ASSERT_EQ(out.rows, static_cast<int64_t>(active.size()));
  for (size_t i = 0; i < active.size(); ++i) {
    Seq* s = active[i];
    const int32_t tok = sable::runner::argmax(out.row(static_cast<int64_t>(i)));
    s->cached = static_cast<int32_t>(s->tokens.size());
    s->tokens.push_back(tok);
    s->generated.push_back(tok);
  }
}

struct Case {
  std::string model;
  int32_t page_size;
};

class ModelGolden : public ::testing::TestWithParam<Case> {};

TEST_P(ModelGolden, LogitsAndHiddenAtEveryPosition) {
  const Case c = GetParam();
  const Golden g = load_golden(c.model);
  int64_t pool = 0;
  auto seqs = assign_pages(g, c.page_size, &pool);
  auto runner = make_runner(c.model, c.page_size, pool);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    ModelRunner::Sequence s;
    s.new_tokens = g.prompts[i];
    s.pages = seqs[i].pages;
    s.all_logits = true;
    const auto out = runner->forward(std::span(&s, 1), /*want_hidden=*/true);
    const auto ref = g.f32("logits_" + std::to_string(i));
    const int64_t len = static_cast<int64_t>(g.prompts[i].size());
    ASSERT_EQ(out.rows, len);
    ASSERT_EQ(ref.size(), static_cast<size_t>(len * out.vocab));
    for (int64_t r = 0; r < len; ++r) {
      const std::span<const float> want(ref.data() + r * out.vocab, static_cast<size_t>(out.vocab));
      EXPECT_LE(rel_err(out.row(r), want), kMaxRelErr)
          << c.model << " prompt " << i << " position " << r;
    }
    const auto hidden_ref = g.f32("last_hidden_" + std::to_string(i));
    ASSERT_EQ(hidden_ref.size(), static_cast<size_t>(out.hidden_size));
    const std::span<const float> last(out.hidden.data() + (len - 1) * out.hidden_size,
                                      static_cast<size_t>(out.hidden_size));
    EXPECT_LE(rel_err(last, hidden_ref), kMaxRelErr) << c.model << " hidden of prompt " << i;
  }
}

// The longest prompt prefilled in chunks of 17 tokens (each chunk attends to the cached ones),
// batched with the shortest prompt's prefill: every row still matches the reference.
TEST_P(ModelGolden, ChunkedPrefillMatchesLogits) {
  const Case c = GetParam();
  const Golden g = load_golden(c.model);
  int64_t pool = 0;
  auto seqs = assign_pages(g, c.page_size, &pool);
  auto runner = make_runner(c.model, c.page_size, pool);
  const auto& prompt = g.prompts[3];
  const auto ref = g.f32("logits_3");
  const int64_t len = static_cast<int64_t>(prompt.size());
  constexpr int64_t kChunk = 17;
  for (int64_t start = 0; start < len; start += kChunk) {
    const int64_t n = std::min(kChunk, len - start);
    std::vector<ModelRunner::Sequence> batch(1);
    batch[0].new_tokens = std::span<const int32_t>(prompt).subspan(static_cast<size_t>(start),
                                                                   static_cast<size_t>(n));
    batch[0].num_cached = static_cast<int32_t>(start);
    batch[0].pages = seqs[3].pages;
    batch[0].all_logits = true;
    if (start == 0) batch.push_back({g.prompts[0], 0, seqs[0].pages, false});
    const auto out = runner->forward(batch);
    ASSERT_EQ(out.rows, n + (start == 0 ? 1 : 0));
    for (int64_t r = 0; r < n; ++r) {
      const std::span<const float> want(ref.data() + (start + r) * out.vocab,
                                        static_cast<size_t>(out.vocab));
      EXPECT_LE(rel_err(out.row(r), want), kMaxRelErr) << c.model << " position " << start + r;
    }
  }
}

TEST_P(ModelGolden, GreedyOneAtATime) {
  const Case c = GetParam();
  const Golden g = load_golden(c.model);
  int64_t pool = 0;
  auto seqs = assign_pages(g, c.page_size, &pool);
  auto runner = make_runner(c.model, c.page_size, pool);
  for (size_t i = 0; i < seqs.size(); ++i) {
    while (seqs[i].generated.size() < kGreedySteps) {
      step(*runner, {&seqs[i]});
      if (HasFatalFailure()) return;
    }
    EXPECT_EQ(seqs[i].generated, g.greedy[i]) << c.model << " prompt " << i;
  }
}

TEST_P(ModelGolden, GreedyBatchedWithLateJoiners) {
  const Case c = GetParam();
  const Golden g = load_golden(c.model);
  int64_t pool = 0;
  auto seqs = assign_pages(g, c.page_size, &pool);
  auto runner = make_runner(c.model, c.page_size, pool);
  // Step 0: prompts 3 and 0 prefill. Step 1: they decode while 1 and 2 prefill. Then all decode
  // until each has its 24 tokens (the late ones finish one step later).
  step(*runner, {&seqs[3], &seqs[0]});
  ASSERT_FALSE(HasFatalFailure());
  step(*runner, {&seqs[0], &seqs[1], &seqs[3], &seqs[2]});
  ASSERT_FALSE(HasFatalFailure());
  for (;;) {
    std::vector<Seq*> active;
    for (auto& s : seqs)
      if (s.generated.size() < kGreedySteps) active.push_back(&s);
    if (active.empty()) break;
    step(*runner, active);
    ASSERT_FALSE(HasFatalFailure());
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i].generated, g.greedy[i]) << c.model << " prompt " << i;
}

INSTANTIATE_TEST_SUITE_P(Models, ModelGolden,
                         ::testing::Values(Case{"llama", 1}, Case{"llama", 16}, Case{"mistral", 1},
                                           Case{"mistral", 16}, Case{"qwen2", 1}, Case{"qwen2", 16},
                                           Case{"qwen3", 1}, Case{"qwen3", 16}),
                         [](const auto& info) {
                           return info.param.model + "_page" + std::to_string(info.param.page_size);
                         });

}  // namespace
