// SamplingParams: defaults, JSON parsing (nulls, types, unknown keys) and every validation path with
// the field it names and SGLang's message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/sampling/sampling_params.h"

using nlohmann::json;
using sable::sampling::SamplingParams;
using sable::sampling::ValidationError;

namespace {

// Parses `j` (then validates against a 100-token vocab, context 64) and returns the error's field
// and message; fails the test if nothing was thrown.
std::pair<std::string, std::string> error_of(const json& j) {
  try {
    SamplingParams::from_json(j).validate(100, 64);
  } catch (const ValidationError& e) {
    return {e.field(), e.what()};
  }
  ADD_FAILURE() << "no ValidationError for " << j.dump();
  return {};
}

}  // namespace

TEST(SamplingParams, Defaults) {
  SamplingParams p = SamplingParams::from_json(json::object());
  EXPECT_EQ(p.max_new_tokens, 128);
  EXPECT_EQ(p.min_new_tokens, 0);
  EXPECT_DOUBLE_EQ(p.temperature, 1.0);
  EXPECT_DOUBLE_EQ(p.top_p, 1.0);
  EXPECT_EQ(p.top_k, -1);
  EXPECT_DOUBLE_EQ(p.min_p, 0.0);
  EXPECT_DOUBLE_EQ(p.repetition_penalty, 1.0);
  EXPECT_TRUE(p.skip_special_tokens);
  EXPECT_TRUE(p.spaces_between_special_tokens);
  EXPECT_FALSE(p.ignore_eos);
  EXPECT_EQ(p.n, 1);
  EXPECT_FALSE(p.sampling_seed.has_value());
  EXPECT_FALSE(p.is_greedy());
  EXPECT_NO_THROW(SamplingParams::from_json(json(nullptr)));
}

TEST(SamplingParams, ParsesEveryField) {
  json j = {{"max_new_tokens", 5},     {"min_new_tokens", 2},     {"temperature", 0.5},
            {"top_p", 0.9},            {"top_k", 40},             {"min_p", 0.1},
            {"frequency_penalty", 1},  {"presence_penalty", -1},  {"repetition_penalty", 1.2},
            {"stop", "xx"},            {"stop_token_ids", {7, 8}}, {"ignore_eos", true},
            {"no_stop_trim", true},    {"skip_special_tokens", false},
            {"logit_bias", {{"3", -2.5}}}, {"sampling_seed", 42}, {"n", 2},
            {"regex", "a+"},           {"top_logprobs_dummy_absent", nullptr}};
  j.erase("top_logprobs_dummy_absent");
  SamplingParams p = SamplingParams::from_json(j);
  EXPECT_EQ(p.max_new_tokens, 5);
  EXPECT_EQ(p.min_new_tokens, 2);
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.stop, std::vector<std::string>{"xx"});
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{7, 8}));
  ASSERT_EQ(p.logit_bias.size(), 1u);
  EXPECT_EQ(p.logit_bias[0].first, 3);
  EXPECT_FLOAT_EQ(p.logit_bias[0].second, -2.5f);
  EXPECT_EQ(p.sampling_seed, 42u);
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.regex, "a+");
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_FALSE(p.skip_special_tokens);
  // Null means default; null max_new_tokens stays "unlimited" only when given explicitly? SGLang:
  // null = default 128 for every non-optional field.
  SamplingParams q = SamplingParams::from_json({{"temperature", nullptr}, {"top_k", nullptr}});
  EXPECT_DOUBLE_EQ(q.temperature, 1.0);
  EXPECT_EQ(q.top_k, -1);
  EXPECT_TRUE(SamplingParams::from_json({{"temperature", 0}}).is_greedy());
  EXPECT_TRUE(SamplingParams::from_json({{"top_k", 1}}).is_greedy());
  EXPECT_EQ(SamplingParams::from_json({{"stop", {"a", "b"}}}).stop.size(), 2u);
}

TEST(SamplingParams, RangeErrorsNameTheFieldWithSglangWording) {
  EXPECT_EQ(error_of({{"top_p", 1.5}}),
            std::make_pair(std::string("top_p"), std::string("top_p must be in (0, 1], got 1.5.")));
  EXPECT_EQ(error_of({{"top_p", 0}}).first, "top_p");
  EXPECT_EQ(error_of({{"temperature", -1}}).second,
            "temperature must be a non-negative finite number, got -1.0.");
  EXPECT_EQ(error_of({{"min_p", 1.5}}).second, "min_p must be in [0, 1], got 1.5.");
  EXPECT_EQ(error_of({{"top_k", 0}}),
            std::make_pair(std::string("top_k"),
                           std::string("top_k must be -1 (disable) or at least 1, got 0.")));
  EXPECT_EQ(error_of({{"top_k", -2}}).first, "top_k");
  EXPECT_EQ(error_of({{"frequency_penalty", 2.5}}).second,
            "frequency_penalty must be in [-2, 2], got 2.5.");
  EXPECT_EQ(error_of({{"presence_penalty", -3}}).second,
            "presence_penalty must be in [-2, 2], got -3.0.");
  EXPECT_EQ(error_of({{"repetition_penalty", 0}}).second,
            "repetition_penalty must be in (0, 2] (1.0 = no penalty), got 0.0.");
  EXPECT_EQ(error_of({{"repetition_penalty", 2.5}}).first, "repetition_penalty");
  EXPECT_EQ(error_of({{"max_new_tokens", -1}}),
            std::make_pair(std::string("max_new_tokens"),
                           std::string("max_new_tokens must be at least 0, got -1.")));
  EXPECT_EQ(error_of({{"max_new_tokens", 4}, {"min_new_tokens", 5}}).second,
            "min_new_tokens must be in [0, max_new_tokens(4)], got 5.");
  EXPECT_EQ(error_of({{"min_new_tokens", -1}}).first, "min_new_tokens");
  EXPECT_EQ(error_of({{"logit_bias", {{"100", 1.0}}}}).second,
            "logit_bias must has keys in [0, 99], got 100.");
  EXPECT_EQ(error_of({{"logit_bias", {{"-1", 1.0}}}}).first, "logit_bias");
  EXPECT_EQ(error_of({{"logit_bias", {{"abc", 1.0}}}}).first, "logit_bias");
  EXPECT_EQ(error_of({{"stop_token_ids", {100}}}).first, "stop_token_ids");
  EXPECT_EQ(error_of({{"n", 0}}).first, "n");
  EXPECT_EQ(error_of({{"stream_interval", 0}}).first, "stream_interval");
  EXPECT_EQ(error_of({{"regex", "a"}, {"json_schema", "{}"}}).second,
            "Only one of regex, json_schema, or ebnf can be set.");
  EXPECT_EQ(error_of({{"stop", {""}}}).first, "stop");
  EXPECT_EQ(error_of({{"min_new_tokens", 64}, {"max_new_tokens", 100}}).first, "min_new_tokens");
}

TEST(SamplingParams, TypeErrorsAndUnknownKeys) {
  EXPECT_EQ(error_of({{"temperature", "hot"}}).first, "temperature");
  EXPECT_EQ(error_of({{"max_new_tokens", 1.5}}).first, "max_new_tokens");
  EXPECT_EQ(error_of({{"ignore_eos", 1}}).first, "ignore_eos");
  EXPECT_EQ(error_of({{"stop", 3}}).first, "stop");
  EXPECT_EQ(error_of({{"stop_token_ids", "x"}}).first, "stop_token_ids");
  EXPECT_EQ(error_of({{"logit_bias", {1, 2}}}).first, "logit_bias");
  EXPECT_EQ(error_of({{"temprature", 1.0}}),
            std::make_pair(std::string("temprature"),
                           std::string("unknown sampling parameter 'temprature'")));
  EXPECT_EQ(error_of(json::array()).first, "sampling_params");
  EXPECT_EQ(SamplingParams::from_json({{"max_new_tokens", 3.0}}).max_new_tokens, 3);
}

TEST(SamplingParams, ToJsonRoundTrips) {
  SamplingParams p = SamplingParams::from_json(
      {{"temperature", 0.3}, {"logit_bias", {{"5", 1.0}}}, {"stop", {"x"}}, {"sampling_seed", 7}});
  json j = p.to_json();
  // Drop fields from_json does not take back as-is (null values are fine).
  SamplingParams q = SamplingParams::from_json(j);
  EXPECT_DOUBLE_EQ(q.temperature, 0.3);
  EXPECT_EQ(q.logit_bias, p.logit_bias);
  EXPECT_EQ(q.stop, p.stop);
  EXPECT_EQ(q.sampling_seed, 7u);
}
