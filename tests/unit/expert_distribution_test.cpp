// Expert distribution recording through the Engine on the golden qwen2_moe checkpoint (2 MoE
// layers, 8 experts, top-2; CPU): every forwarded token routes once per MoE layer, so after a
// request of P prompt tokens and N generated ones each layer's counts sum to (P + N - 1) x top_k
// (the last sampled token is never forwarded). Also: dump resets, stop freezes, start restarts
// from zero, nothing is recorded before start, and a server without the mode refuses clearly.
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "core/engine/engine.h"

using namespace sable::engine;

namespace {

const std::filesystem::path kGolden(SABLE_TEST_DATA_DIR);
constexpr int64_t kTopK = 2;  // num_experts_per_tok of qwen2_moe/config.json
constexpr int32_t kLayers = 2;
constexpr int32_t kExperts = 8;

sable::config::ServerConfig config(const std::string& mode) {
  sable::config::ServerConfig c;
  c.model_path = (kGolden / "models/qwen2_moe").string();
  c.tokenizer_path = (kGolden / "tokenizers/qwen3").string();  // the model ships none
  c.plugin_dirs = {SABLE_PLUGIN_DIR};
  c.device = "cpu";
  c.max_total_tokens = 1024;
  c.random_seed = 1;
  c.log_level = "warning";
  c.expert_distribution_recorder_mode = mode;
  return c;
}

Engine& stat_engine() {
  static Engine* e = new Engine(config("stat"));  // one load for the suite
  return *e;
}

GenerateInput request(std::vector<int32_t> ids, int32_t new_tokens) {
  GenerateInput in;
  in.input_ids = std::move(ids);
  in.params.temperature = 0;
  in.params.max_new_tokens = new_tokens;
  in.params.ignore_eos = true;
  return in;
}

int64_t layer_sum(const ExpertDistribution& d, int32_t layer) {
  const auto& row = d.counts.at(static_cast<size_t>(layer));
  return std::accumulate(row.begin(), row.end(), int64_t{0});
}

void expect_per_layer(const ExpertDistribution& d, int64_t tokens) {
  ASSERT_EQ(d.num_layers, kLayers);
  ASSERT_EQ(d.num_experts, kExperts);
  ASSERT_EQ(d.counts.size(), static_cast<size_t>(kLayers));
  for (int32_t l = 0; l < kLayers; ++l) {
    ASSERT_EQ(d.counts[l].size(), static_cast<size_t>(kExperts));
    EXPECT_EQ(layer_sum(d, l), tokens * kTopK) << "layer " << l;
    for (int64_t v : d.counts[l]) {
      EXPECT_GE(v, 0);
      EXPECT_LE(v, tokens) << "an expert is picked at most once per token";
    }
  }
  EXPECT_EQ(d.total, tokens * kTopK * kLayers);
}

TEST(ExpertDistribution, OneRequestCountsEveryForwardedTokenTopKTimesPerLayer) {
  Engine& e = stat_engine();
  e.start_expert_distribution_record();
  const std::vector<int32_t> prompt = {11, 22, 33, 44, 55, 66, 77};
  const int32_t n = 5;
  const auto results = e.generate({request(prompt, n)});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].output_ids.size(), static_cast<size_t>(n));
  const ExpertDistribution d = e.dump_expert_distribution_record();
  EXPECT_EQ(d.mode, "stat");
  EXPECT_TRUE(d.recording);
  expect_per_layer(d, static_cast<int64_t>(prompt.size()) + n - 1);

  // dump resets: a dump right after has nothing.
  expect_per_layer(e.dump_expert_distribution_record(), 0);
  e.stop_expert_distribution_record();
}

TEST(ExpertDistribution, BatchOfRequestsSumsOverRequests) {
  Engine& e = stat_engine();
  e.start_expert_distribution_record();
  // Distinct first tokens: no prefix is shared, so every prompt token is forwarded.
  std::vector<GenerateInput> batch;
  batch.push_back(request({101, 102, 103}, 4));
  batch.push_back(request({201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211}, 2));
  batch.push_back(request({301}, 6));
  e.generate(std::move(batch));
  expect_per_layer(e.dump_expert_distribution_record(), (3 + 4 - 1) + (11 + 2 - 1) + (1 + 6 - 1));
  e.stop_expert_distribution_record();
}

TEST(ExpertDistribution, NothingRecordedBeforeStartOrAfterStop) {
  Engine& e = stat_engine();
  e.start_expert_distribution_record();
  e.stop_expert_distribution_record();
  e.dump_expert_distribution_record();  // empty now

  e.generate({request({401, 402, 403, 404}, 3)});  // stopped: not recorded
  ExpertDistribution d = e.dump_expert_distribution_record();
  EXPECT_FALSE(d.recording);
  expect_per_layer(d, 0);

  // Counts survive stop; start begins from zero again.
  e.start_expert_distribution_record();
  e.generate({request({501, 502}, 2)});
  e.stop_expert_distribution_record();
  e.generate({request({601, 602, 603}, 2)});  // after stop: not recorded
  expect_per_layer(e.dump_expert_distribution_record(), 2 + 2 - 1);

  e.start_expert_distribution_record();
  e.generate({request({701, 702, 703}, 2)});
  e.start_expert_distribution_record();  // restarts from zero
  expect_per_layer(e.dump_expert_distribution_record(), 0);
  e.stop_expert_distribution_record();
}

TEST(ExpertDistribution, ChunkedPrefillCountsEachPromptTokenOnce) {
  sable::config::ServerConfig c = config("stat");
  c.chunked_prefill_size = 4;  // an 11-token prompt runs as 4 + 4 + 3
  Engine e(c);
  e.start_expert_distribution_record();
  e.generate({request({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3)});
  expect_per_layer(e.dump_expert_distribution_record(), 11 + 3 - 1);
}

TEST(ExpertDistribution, ModeOffRefusesWithAClearError) {
  Engine e(config(""));
  try {
    e.start_expert_distribution_record();
    FAIL() << "start must refuse when the mode is off";
  } catch (const std::invalid_argument& err) {
    EXPECT_NE(std::string(err.what()).find("expert-distribution-recorder-mode"), std::string::npos)
        << err.what();
  }
  EXPECT_THROW(e.stop_expert_distribution_record(), std::invalid_argument);
  EXPECT_THROW(e.dump_expert_distribution_record(), std::invalid_argument);
  // Generation works as usual with recording off.
  const auto r = e.generate({request({1, 2, 3}, 2)});
  EXPECT_EQ(r[0].output_ids.size(), 2u);
}

}  // namespace
