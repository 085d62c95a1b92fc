// Golden acceptance of the native "moe" model plugin (Qwen2-MoE, Mixtral, Qwen3-MoE) through the
// model runner on the CPU: logits at every position and the last hidden state within 1e-4 relative
// error of transformers, and all greedy tokens with the prompts batched, page sizes 1 and 16.
#include "tests/unit/model_moe_golden.h"

namespace {

using namespace sable::golden_test;

struct Case {
  std::string model;
  int32_t page_size;
};

class MoeGolden : public ::testing::TestWithParam<Case> {};

TEST_P(MoeGolden, LogitsAndHidden) {
  expect_logits_match(GetParam().model, "native", GetParam().page_size, "moe");
}

TEST_P(MoeGolden, GreedyBatched) {
  expect_greedy_match(GetParam().model, "native", GetParam().page_size);
}

INSTANTIATE_TEST_SUITE_P(Models, MoeGolden,
                         ::testing::Values(Case{"qwen2_moe", 1}, Case{"qwen2_moe", 16},
                                           Case{"mixtral", 1}, Case{"mixtral", 16},
                                           Case{"qwen3_moe", 1}, Case{"qwen3_moe", 16}),
                         [](const auto& info) {
                           return info.param.model + "_page" + std::to_string(info.param.page_size);
                         });

// impl=auto picks the native moe plugin for the architectures it claims.
TEST(MoeSelection, AutoPicksNativePlugin) {
  for (const char* name : {"qwen2_moe", "mixtral", "qwen3_moe"}) {
    auto r = make_runner(model_dir(name), "auto", 16);
    EXPECT_EQ(r->plugin_name(), "moe") << name;
  }
}

}  // namespace
