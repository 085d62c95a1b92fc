// Unit tests of the server's pure pieces: error bodies, the Prometheus exposition, /generate
// request parsing and response shaping, OpenAI request mapping and response/chunk shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"
#include "core/tokenizer/tokenizer.h"
#include "server/generate_api.h"
#include "server/http_error.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace sable::server {
namespace {

using nlohmann::json;

const tokenizer::Tokenizer& qwen() {
  static auto tok = tokenizer::Tokenizer::load(SABLE_TEST_DATA_DIR "/models/qwen2_tok");
  return *tok;
}

// Runs `f`, expecting an HttpError with `status` whose param is `param`.
template <class F>
void expect_http_error(F f, int status, const std::string& param) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_EQ(e.param(), param) << e.what();
  }
}

TEST(ServerError, BodyHasOpenAIShape) {
  const json body = json::parse(error_body(400, "top_p is bad", "top_p"));
  ASSERT_TRUE(body.contains("error"));
  const json& e = body["error"];
  EXPECT_EQ(e["message"], "top_p is bad");
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["param"], "top_p");
  EXPECT_EQ(e["code"], 400);
  const json unauth = json::parse(error_body(401, "no", "", "invalid_api_key"));
  EXPECT_TRUE(unauth["error"]["param"].is_null());
  EXPECT_EQ(unauth["error"]["code"], "invalid_api_key");
  EXPECT_EQ(unauth["error"]["type"], "authentication_error");
}

TEST(ServerMetrics, HistogramIsCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.5);
  h.observe(5.0);
  std::string out;
  h.render(out, "x", "help", "a=\"b\"");
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"1\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count{a=\"b\"} 4\n"), std::string::npos) << out;
  EXPECT_DOUBLE_EQ(h.sum(), 6.05);
}

TEST(ServerMetrics, RenderHasGaugesAndHistograms) {
  Metrics m("my \"model\"");
  m.observe_ttft(0.02);
  m.observe_itl(0.004);
  m.count_request(false);
  BackendStats s;
  s.running = 3;
  s.queued = 2;
  s.kv_usage = 0.25;
  s.prompt_tokens = 100;
  ModelFacts f;
  f.max_total_num_tokens = 4096;
  const std::string text = m.render(s, f);
  const std::string labels = "{model_name=\"my \\\"model\\\"\"}";
  EXPECT_NE(text.find("sglang:num_running_reqs" + labels + " 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sglang:num_queue_reqs" + labels + " 2\n"), std::string::npos);
  EXPECT_NE(text.find("sglang:token_usage" + labels + " 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("sglang:prompt_tokens_total" + labels + " 100\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE sglang:time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("sglang:inter_token_latency_seconds_count" + labels + " 1\n"),
            std::string::npos);
}

TEST(ServerGenerate, SingleText) {
  const auto req = parse_generate_request(
      json::parse(R"({"text": "hi", "sampling_params": {"max_new_tokens": 5, "temperature": 0},
                      "rid": "abc", "return_logprob": true, "top_logprobs_num": 2})"),
      nullptr);
  EXPECT_FALSE(req.is_batch);
  ASSERT_EQ(req.items.size(), 1u);
  EXPECT_EQ(*req.items[0].text, "hi");
  EXPECT_EQ(req.items[0].input.rid, "abc");
  EXPECT_EQ(*req.items[0].input.params.max_new_tokens, 5);
  EXPECT_TRUE(req.items[0].input.return_logprob);
  EXPECT_EQ(req.items[0].input.top_logprobs_num, 2);
}

TEST(ServerGenerate, BatchBroadcastsAndSuffixesRid) {
  const auto req = parse_generate_request(
      json::parse(R"({"text": ["a", "b"], "rid": "r", "sampling_params": [{"max_new_tokens": 1},
                      {"max_new_tokens": 2}], "return_logprob": [true, false]})"),
      nullptr);
  ASSERT_TRUE(req.is_batch);
  ASSERT_EQ(req.items.size(), 2u);
  EXPECT_EQ(req.items[0].input.rid, "r_0");
  EXPECT_EQ(req.items[1].input.rid, "r_1");
  EXPECT_EQ(*req.items[1].input.params.max_new_tokens, 2);
  EXPECT_TRUE(req.items[0].input.return_logprob);
  EXPECT_FALSE(req.items[1].input.return_logprob);
}

TEST(ServerGenerate, InputIdsBatchAndParallelSampling) {
  const auto req = parse_generate_request(
      json::parse(R"({"input_ids": [[1, 2], [3]], "sampling_params": {"n": 3}})"), nullptr);
  ASSERT_EQ(req.items.size(), 6u);
  EXPECT_EQ(*req.items[0].input_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(*req.items[3].input_ids, (std::vector<int32_t>{3}));
  EXPECT_EQ(req.items[4].prompt_index, 1u);
  EXPECT_EQ(req.items[4].input.params.n, 1);
  EXPECT_NE(req.items[0].input.rid, req.items[1].input.rid);
}

TEST(ServerGenerate, PreferredParamsAreDefaults) {
  const auto req = parse_generate_request(
      json::parse(R"({"text": "x", "sampling_params": {"top_p": 0.5}})"),
      json::parse(R"({"top_p": 0.9, "top_k": 7})"));
  EXPECT_DOUBLE_EQ(req.items[0].input.params.top_p, 0.5);
  EXPECT_EQ(req.items[0].input.params.top_k, 7);
}

TEST(ServerGenerate, BadInputNamesTheField) {
  expect_http_error([] { parse_generate_request(json::parse(R"({})"), nullptr); }, 400, "text");
  expect_http_error([] { parse_generate_request(json::parse(R"([1])"), nullptr); }, 400, "");
  expect_http_error(
      [] { parse_generate_request(json::parse(R"({"text": "a", "stream": "yes"})"), nullptr); },
      400, "stream");
  expect_http_error(
      [] { parse_generate_request(json::parse(R"({"input_ids": []})"), nullptr); }, 400,
      "input_ids");
  expect_http_error(
      [] { parse_generate_request(json::parse(R"({"input_ids": [1, "x"]})"), nullptr); }, 400,
      "input_ids");
  expect_http_error(
      [] {
        parse_generate_request(json::parse(R"({"text": ["a", "b"], "rid": ["x", "x"]})"), nullptr);
      },
      400, "rid");
  expect_http_error(
      [] {
        parse_generate_request(json::parse(R"({"text": "a", "sampling_params": 3})"), nullptr);
      },
      400, "sampling_params");
  try {
    parse_generate_request(json::parse(R"({"text": "a", "sampling_params": {"top_p": 1.5}})"),
                           nullptr);
    ADD_FAILURE();
  } catch (const sampling::ValidationError& e) {
    EXPECT_EQ(e.field(), "top_p");
    EXPECT_STREQ(e.what(), "top_p must be in (0, 1], got 1.5.");
  }
}

TEST(ServerGenerate, ResponseShape) {
  GenerateOutput out;
  out.rid = "r1";
  Delta a;
  a.token_ids = {10, 11};
  a.text = "he";
  a.prompt_tokens = 4;
  a.completion_tokens = 2;
  PositionLogprobs p;
  p.chosen = {-0.5f, 10};
  p.top = {{-0.5f, 10}, {-1.5f, 12}};
  a.output_logprobs = {p, p};
  PositionLogprobs first;
  first.chosen = {std::nanf(""), 3};
  a.input_logprobs = {first};
  out.apply(a);
  Delta b;
  b.token_ids = {12};
  b.text = "llo";
  b.prompt_tokens = 4;
  b.completion_tokens = 3;
  b.finish = Finish{};
  b.finish->matched_token = 151645;
  b.e2e_latency = 0.25;
  b.output_logprobs = {p};
  out.apply(b);
  GenerateInput in;
  in.return_logprob = true;
  in.top_logprobs_num = 2;
  const json j = native_response(out, native_shape(in, true, "v1"), &qwen());
  EXPECT_EQ(j["text"], "hello");
  EXPECT_EQ(j["output_ids"], json::array({10, 11, 12}));
  const json& m = j["meta_info"];
  EXPECT_EQ(m["id"], "r1");
  EXPECT_EQ(m["finish_reason"], json::parse(R"({"type":"stop","matched":151645})"));
  EXPECT_EQ(m["prompt_tokens"], 4);
  EXPECT_EQ(m["completion_tokens"], 3);
  EXPECT_EQ(m["weight_version"], "v1");
  EXPECT_DOUBLE_EQ(m["e2e_latency"].get<double>(), 0.25);
  ASSERT_EQ(m["output_token_logprobs"].size(), 3u);
  EXPECT_EQ(m["output_token_logprobs"][0][1], 10);
  EXPECT_EQ(m["output_token_logprobs"][0][2], qwen().decode(std::vector<int32_t>{10}, false));
  EXPECT_TRUE(m["input_token_logprobs"][0][0].is_null());
  EXPECT_EQ(m["output_top_logprobs"][0].size(), 2u);
  EXPECT_FALSE(m.contains("output_token_ids_logprobs"));

  // Unfinished: finish_reason null and no e2e_latency.
  const json partial = native_response(GenerateOutput::from_delta("r1", a), NativeShape{}, nullptr);
  EXPECT_TRUE(partial["meta_info"]["finish_reason"].is_null());
  EXPECT_FALSE(partial["meta_info"].contains("e2e_latency"));
  EXPECT_FALSE(partial["meta_info"].contains("output_token_logprobs"));
}

TEST(ServerGenerate, FinishReasonShapes) {
  Finish len;
  len.type = Finish::Type::kLength;
  len.length = 16;
  EXPECT_EQ(finish_reason_json(len), json::parse(R"({"type":"length","length":16})"));
  Finish stop;
  stop.matched_text = "\n\n";
  EXPECT_EQ(finish_reason_json(stop)["matched"], "\n\n");
  Finish abort;
  abort.type = Finish::Type::kAbort;
  abort.message = "gone";
  EXPECT_TRUE(finish_reason_json(abort)["status_code"].is_null());
  EXPECT_TRUE(finish_reason_json(std::nullopt).is_null());
}

TEST(ServerOpenAI, CompletionMapping) {
  const auto req = parse_completion_request(
      json::parse(R"({"model": "m", "prompt": "hi", "stop": "\n", "seed": 7, "temperature": 0,
                      "presence_penalty": 0.5, "logprobs": 2, "n": 2,
                      "stream": true, "stream_options": {"include_usage": true}})"),
      nullptr);
  EXPECT_EQ(req.model, "m");
  EXPECT_EQ(*req.params.max_new_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(req.params.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(*req.params.sampling_seed, 7u);
  EXPECT_DOUBLE_EQ(req.params.presence_penalty, 0.5);
  EXPECT_EQ(req.params.n, 2);
  EXPECT_TRUE(req.logprobs);
  EXPECT_EQ(req.top_logprobs, 2);
  EXPECT_TRUE(req.stream);
  EXPECT_TRUE(req.include_usage);
  const auto ids = parse_completion_request(json::parse(R"({"prompt": [[1, 2], [3]]})"), nullptr);
  ASSERT_EQ(ids.prompts.size(), 2u);
  EXPECT_EQ(*ids.prompts[1].ids, std::vector<int32_t>{3});
  EXPECT_EQ(ids.model, "default");
}

TEST(ServerOpenAI, CompletionErrorsNameTheField) {
  expect_http_error([] { parse_completion_request(json::parse(R"({})"), nullptr); }, 400,
                    "prompt");
  expect_http_error([] { parse_completion_request(json::parse(R"({"prompt": ""})"), nullptr); },
                    400, "prompt");
  expect_http_error(
      [] { parse_completion_request(json::parse(R"({"prompt": "a", "temperature": "hot"})"), nullptr); },
      400, "temperature");
  expect_http_error(
      [] { parse_completion_request(json::parse(R"({"prompt": "a", "max_tokens": -1})"), nullptr); },
      400, "max_tokens");
  expect_http_error(
      [] { parse_completion_request(json::parse(R"({"prompt": "a", "model": 3})"), nullptr); },
      400, "model");
}

TEST(ServerOpenAI, ChatRendersTemplate) {
  ChatRenderer r;
  r.tmpl = chat::ChatTemplate::compile(qwen().chat_template());
  const auto req = parse_chat_request(
      nlohmann::ordered_json::parse(
          R"({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
              "max_completion_tokens": 5, "logprobs": true, "top_logprobs": 3})"),
      nullptr, r);
  ASSERT_EQ(req.prompts.size(), 1u);
  const std::string& text = *req.prompts[0].text;
  EXPECT_NE(text.find("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(*req.params.max_new_tokens, 5);
  EXPECT_TRUE(req.logprobs);
  EXPECT_EQ(req.top_logprobs, 3);
  // No max tokens: until the context limit.
  const auto unlimited = parse_chat_request(
      nlohmann::ordered_json::parse(R"({"messages": [{"role": "user", "content": "x"}]})"),
      nullptr, r);
  EXPECT_FALSE(unlimited.params.max_new_tokens.has_value());
  expect_http_error(
      [&] { parse_chat_request(nlohmann::ordered_json::parse(R"({"messages": []})"), nullptr, r); },
      400, "messages");
  expect_http_error(
      [&] { parse_chat_request(nlohmann::ordered_json::parse(R"({"messages": [{}]})"), nullptr, r); },
      400, "messages");
  expect_http_error(
      [&] {
        parse_chat_request(nlohmann::ordered_json::parse(R"({"messages": [{"role": "user",
            "content": "x"}]})"), nullptr, ChatRenderer{});
      },
      400, "messages");
}

TEST(ServerOpenAI, ResponsesHaveRequiredFields) {
  GenerateOutput out;
  Delta d;
  d.token_ids = {9707};
  d.text = "Hello";
  d.prompt_tokens = 3;
  d.completion_tokens = 1;
  d.finish = Finish{};
  d.finish->type = Finish::Type::kLength;
  PositionLogprobs p;
  p.chosen = {-0.1f, 9707};
  p.top = {{-0.1f, 9707}};
  d.output_logprobs = {p};
  out.apply(d);
  ResponseHead head{"cmpl-x", 123, "m", "default", false};
  OpenAIRequest req;
  req.logprobs = true;
  req.top_logprobs = 1;
  const std::vector<ChoiceOutput> choices = {{&out, "prompt"}};

  const json c = completion_response(head, req, choices, qwen());
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "Hello");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["choices"][0]["logprobs"]["tokens"], json::array({"Hello"}));
  EXPECT_EQ(c["usage"], json::parse(R"({"prompt_tokens":3,"completion_tokens":1,"total_tokens":4})"));

  req.chat = true;
  const json ch = chat_response(head, req, choices, qwen());
  EXPECT_EQ(ch["object"], "chat.completion");
  const json& msg = ch["choices"][0]["message"];
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_EQ(msg["content"], "Hello");
  EXPECT_TRUE(msg.contains("refusal") && msg["refusal"].is_null());
  const json& lp = ch["choices"][0]["logprobs"];
  EXPECT_TRUE(lp["refusal"].is_null());
  EXPECT_EQ(lp["content"][0]["token"], "Hello");
  EXPECT_EQ(lp["content"][0]["bytes"], json::array({72, 101, 108, 108, 111}));

  req.logprobs = false;
  const json chunk = chat_chunk(head, req, 0, d, qwen());
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "Hello");
  EXPECT_TRUE(chunk["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(chunk["choices"][0]["finish_reason"], "length");
  const json role = chat_role_chunk(head, 0);
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  const json usage = usage_chunk(head, true, usage_json(choices, 1, true));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

TEST(ServerOpenAI, UsageCountsPromptOncePerPrompt) {
  GenerateOutput a, b;
  a.prompt_tokens = b.prompt_tokens = 10;
  a.completion_tokens = 3;
  b.completion_tokens = 4;
  const json u = usage_json({{&a, ""}, {&b, ""}}, 2, false);
  EXPECT_EQ(u["prompt_tokens"], 10);
  EXPECT_EQ(u["completion_tokens"], 7);
  EXPECT_EQ(u["total_tokens"], 17);
}

}  // namespace
}  // namespace sable::server
