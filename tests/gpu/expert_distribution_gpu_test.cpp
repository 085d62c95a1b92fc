// Expert distribution recording on CUDA with decode graphs on (golden qwen2_moe: 2 MoE layers,
// 8 experts, top-2): the device counters see every forwarded token once per layer in eager
// prefills, exact-bucket graph replays and padded decode batches (run eagerly while recording),
// so each layer sums to tokens x top_k; counts stop with recording (graph replays while off are
// not counted), and the Engine gives (P + N - 1) x top_k over one request as on the CPU.
#include <numeric>

#include "core/engine/engine.h"
#include "core/plugin/registry.h"
#include "core/runner/model_runner.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/built_plugins.h"

namespace sable::gputest {
namespace {

using runner::ModelRunner;

const std::string kModel = std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_moe";
constexpr int64_t kTopK = 2;
constexpr size_t kLayers = 2, kExperts = 8;
constexpr int32_t kPage = 16, kPagesPerSeq = 4;

using test_support::registry;

std::unique_ptr<ModelRunner> make_runner(bool recording) {
  runner::RunnerOptions o;
  o.model_path = kModel;
  o.device = "cuda";
  o.page_size = kPage;
  o.max_total_tokens = 4096;
  o.max_batch_tokens = 512;
  o.max_seqs = 16;
  o.cuda_graphs = true;
  o.expert_recording = recording;
  o.registry = &registry();
  return ModelRunner::create(o);
}

void expect_sums(const std::vector<std::vector<int64_t>>& counts, int64_t tokens) {
  ASSERT_EQ(counts.size(), kLayers);
  for (size_t l = 0; l < kLayers; ++l) {
    ASSERT_EQ(counts[l].size(), kExperts);
    EXPECT_EQ(std::accumulate(counts[l].begin(), counts[l].end(), int64_t{0}), tokens * kTopK)
        << "layer " << l;
  }
}

// Sequences with disjoint pages; prefill() then decode(ids) steps of one token each.
struct Batch {
  ModelRunner& r;
  std::vector<std::vector<int32_t>> tokens, pages;
  std::vector<int32_t> cached;

  void prefill(const std::vector<std::vector<int32_t>>& prompts) {
    std::vector<ModelRunner::Sequence> seqs;
    for (const auto& p : prompts) {
      const auto i = static_cast<int32_t>(tokens.size());
      tokens.push_back(p);
      std::vector<int32_t> pg(kPagesPerSeq);
      std::iota(pg.begin(), pg.end(), i * kPagesPerSeq);
      pages.push_back(pg);
      cached.push_back(0);
    }
    for (size_t i = 0; i < tokens.size(); ++i)
      seqs.push_back({tokens[i], 0, pages[i], false});
    r.forward(seqs);
    for (size_t i = 0; i < tokens.size(); ++i) cached[i] = static_cast<int32_t>(tokens[i].size());
  }
  // One decode token for each of the first `n` sequences; returns the tokens forwarded.
  int64_t decode(size_t n) {
    std::vector<std::vector<int32_t>> next(n);
    std::vector<ModelRunner::Sequence> seqs;
    for (size_t i = 0; i < n; ++i) {
      next[i] = {static_cast<int32_t>((cached[i] * 37 + 11 * i) % 1000)};
      seqs.push_back({next[i], cached[i], pages[i], false});
    }
    r.forward(seqs);
    for (size_t i = 0; i < n; ++i) ++cached[i];
    return static_cast<int64_t>(n);
  }
};

TEST(ExpertDistributionGpu, GraphsAndEagerCountEveryTokenOncePerLayer) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner(true);
  ASSERT_EQ(r->num_experts(), static_cast<int32_t>(kExperts));
  r->set_expert_recording(true);
  Batch b{*r, {}, {}, {}};
  b.prefill({{1, 2, 3, 4, 5}, {10, 20, 30, 40, 50, 60, 70}, {7, 8, 9}});
  int64_t tokens = 5 + 7 + 3;
  for (int step = 0; step < 4; ++step) {
    tokens += b.decode(1);  // bucket 1: graph replay
    tokens += b.decode(2);  // bucket 2: graph replay
    tokens += b.decode(3);  // padded to 4: eager while recording
  }
  expect_sums(r->expert_counts(), tokens);

  // Stopped: padded and exact replays add nothing; the counts stay readable.
  r->set_expert_recording(false);
  b.decode(3);
  b.decode(2);
  expect_sums(r->expert_counts(), tokens);

  // On again: counts continue; reset zeroes them (device and host parts).
  r->set_expert_recording(true);
  tokens += b.decode(3) + b.decode(1);
  expect_sums(r->expert_counts(), tokens);
  r->reset_expert_counts();
  expect_sums(r->expert_counts(), 0);
  tokens = b.decode(2);
  expect_sums(r->expert_counts(), tokens);
}

TEST(ExpertDistributionGpu, OffCostsNothingAndRefusesToStart) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner(false);
  EXPECT_THROW(r->set_expert_recording(true), std::invalid_argument);
  Batch b{*r, {}, {}, {}};
  b.prefill({{1, 2, 3}});
  b.decode(1);
  expect_sums(r->expert_counts(), 0);
}

TEST(ExpertDistributionGpu, EngineRequestSumsToPromptPlusGeneratedMinusOne) {
  SABLE_REQUIRE_GPU();
  config::ServerConfig c;
  c.model_path = kModel;
  c.tokenizer_path = std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/qwen3";
  c.plugin_dirs = {SABLE_PLUGIN_DIR};
  c.device = "cuda";
  c.max_total_tokens = 2048;
  c.random_seed = 1;
  c.expert_distribution_recorder_mode = "stat";
  engine::Engine e(c);
  e.start_expert_distribution_record();
  engine::GenerateInput in;
  in.input_ids = {3, 14, 15, 92, 65, 35, 89, 79};
  in.params.temperature = 0;
  in.params.max_new_tokens = 9;
  in.params.ignore_eos = true;
  const auto out = e.generate({in});
  ASSERT_EQ(out.at(0).output_ids.size(), 9u);
  const engine::ExpertDistribution d = e.dump_expert_distribution_record();
  expect_sums(d.counts, 8 + 9 - 1);
  EXPECT_EQ(d.total, (8 + 9 - 1) * kTopK * static_cast<int64_t>(kLayers));
}

}  // namespace
}  // namespace sable::gputest
