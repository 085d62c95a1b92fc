// Golden acceptance of the generic "transformers" model plugin through the model runner on the
// CPU: logits at every position and the last hidden state within 1e-4 relative error of
// transformers, and all greedy tokens with the prompts batched.
//  - helium: no native plugin claims it, so impl=auto falls back to the generic plugin;
//  - llama, mistral, qwen2, qwen3, qwen2_moe, mixtral, qwen3_moe: impl=transformers forces it over
//    the native plugins, and it must match the same references;
//  - gemma, olmo2, granite, phi3, stablelm (made by scripts/make_golden.py): impl=auto.
#include "tests/unit/model_moe_golden.h"

namespace {

using namespace sable::golden_test;

struct Case {
  std::string model;
  std::string impl;
};

class GenericGolden : public ::testing::TestWithParam<Case> {};

TEST_P(GenericGolden, LogitsAndHidden) {
  expect_logits_match(GetParam().model, GetParam().impl, 16, "transformers");
}

TEST_P(GenericGolden, GreedyBatched) { expect_greedy_match(GetParam().model, GetParam().impl, 1); }

INSTANTIATE_TEST_SUITE_P(
    Models, GenericGolden,
    ::testing::Values(Case{"helium", "auto"}, Case{"gemma", "auto"}, Case{"olmo2", "auto"},
                      Case{"granite", "auto"}, Case{"phi3", "auto"}, Case{"stablelm", "auto"},
                      Case{"llama", "transformers"}, Case{"mistral", "transformers"},
                      Case{"qwen2", "transformers"}, Case{"qwen3", "transformers"},
                      Case{"qwen2_moe", "transformers"}, Case{"mixtral", "transformers"},
                      Case{"qwen3_moe", "transformers"}),
    [](const auto& info) { return info.param.model + "_" + info.param.impl; });

}  // namespace
