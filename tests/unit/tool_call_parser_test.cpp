// ToolCallParser (qwen25, llama3, mistral): calls, text around them, malformed blocks, unknown
// functions, and that a stream cut anywhere gives the non-stream result. Also the forced
// tool_choice schema and its output, the request mapping of tools / tool_choice, and the combined
// reasoning + tool-call output of a chat response.
#include "server/tool_call_parser.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/chat_template/chat_template.h"
#include "core/tokenizer/tokenizer.h"
#include "server/http_error.h"
#include "server/openai_api.h"

namespace sable::server {
namespace {

using F = ToolCallFormat;
using nlohmann::json;
using nlohmann::ordered_json;

const std::vector<std::string> kTools = {"get_weather", "add"};

ParsedToolCalls stream(F format, const std::vector<std::string>& chunks) {
  ToolCallParser p(format, kTools);
  ParsedToolCalls parsed;
  auto take = [&](const ToolCallOutput& out) {
    for (const auto& piece : out.pieces) {
      if (piece.call)
        parsed.calls.push_back(*piece.call);
      else
        parsed.content += piece.content;
    }
    parsed.unknown.insert(parsed.unknown.end(), out.unknown.begin(), out.unknown.end());
  };
  for (const auto& c : chunks) take(p.feed(c));
  take(p.finish());
  return parsed;
}

void expect_same(const ParsedToolCalls& a, const ParsedToolCalls& b, const std::string& what) {
  EXPECT_EQ(a.content, b.content) << what;
  EXPECT_EQ(a.calls, b.calls) << what;
  EXPECT_EQ(a.unknown, b.unknown) << what;
}

void expect_split_invariant(F format, const std::string& text) {
  const ParsedToolCalls whole = parse_tool_calls(format, kTools, text);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    expect_same(stream(format, {text.substr(0, cut), text.substr(cut)}), whole,
                text + " cut at " + std::to_string(cut));
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  expect_same(stream(format, bytes), whole, text + " byte by byte");
}

ToolCall call(const std::string& name, const std::string& args) {
  return {name, args};
}

TEST(ToolCallParser, FormatNames) {
  EXPECT_EQ(tool_call_format_from_name("qwen25"), F::kQwen25);
  EXPECT_EQ(tool_call_format_from_name("qwen"), F::kQwen25);
  EXPECT_EQ(tool_call_format_from_name("llama3"), F::kLlama3);
  EXPECT_EQ(tool_call_format_from_name("mistral"), F::kMistral);
  EXPECT_FALSE(tool_call_format_from_name(""));
  EXPECT_FALSE(tool_call_format_from_name("pythonic"));
}

// ---- qwen25 ----

const std::vector<std::string> kQwenSamples = {
    "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"
    "\n</tool_call>",
    "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>\n"
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"}</tool_call>\"}}\n"
    "</tool_call>",
    "<tool_call>\n{not json}\n</tool_call> after",
    "<tool_call>\n{\"name\": \"delete_all\", \"arguments\": {}}\n</tool_call>",
    "text <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}",
    "plain text with < and <tool but no call  \n",
    "a<tool_call>{\"name\": \"add\"}</tool_call>b<tool_call>{\"name\": \"add\", "
    "\"parameters\": {\"x\": [1, {\"y\": \"z\"}]}}</tool_call>  c ",
    "",
    "<tool_call>{\"unbalanced\": 1</tool_call> x",
    "<tool_call>{\"name\": \"add\"} trailing</tool_call>",
};

TEST(ToolCallParser, QwenOneCallWithTextBefore) {
  auto p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[0]);
  EXPECT_EQ(p.content, "Let me check.");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0], call("get_weather", R"({"city":"Paris"})"));
}

TEST(ToolCallParser, QwenSeveralCalls) {
  auto p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[1]);
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0], call("add", R"({"a":1,"b":2})"));  // key order kept
  EXPECT_EQ(p.calls[1], call("get_weather", R"({"city":"}</tool_call>"})"));
  // Text between and after calls stays content; "parameters" and no arguments are accepted.
  p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[6]);
  EXPECT_EQ(p.content, "abc ");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0], call("add", "{}"));
  EXPECT_EQ(p.calls[1], call("add", R"({"x":[1,{"y":"z"}]})"));
}

TEST(ToolCallParser, QwenMalformedBlocksStayContent) {
  auto p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[2]);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, kQwenSamples[2]);
  // Cut off by max_tokens after the call object closed: the call is complete (its arguments
  // streamed), only the closing tag is missing.
  p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[4]);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0], call("add", R"({"a":1})"));
  EXPECT_EQ(p.content, "text");
  // Cut inside the arguments: the call started (its deltas went out), it is not complete, and
  // its text is not content either.
  p = parse_tool_calls(F::kQwen25, kTools, "text <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\"");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "text");
  // Cut before the arguments began: nothing started, the block is content.
  p = parse_tool_calls(F::kQwen25, kTools, "text <tool_call>\n{\"name\": \"add\"");
  EXPECT_EQ(p.content, "text <tool_call>\n{\"name\": \"add\"");
  // No name, arguments not an object.
  for (const char* body : {R"({"arguments": {}})", R"({"name": "add", "arguments": [1]})",
                           R"({"name": 3})", R"(["add"])"}) {
    const std::string text = std::string("<tool_call>") + body + "</tool_call>";
    p = parse_tool_calls(F::kQwen25, kTools, text);
    EXPECT_TRUE(p.calls.empty()) << body;
    EXPECT_EQ(p.content, text);
  }
  for (size_t i : {5, 8, 9}) {
    EXPECT_EQ(parse_tool_calls(F::kQwen25, kTools, kQwenSamples[i]).content, kQwenSamples[i]);
  }
}

TEST(ToolCallParser, UnknownFunctionsAreDropped) {
  auto p = parse_tool_calls(F::kQwen25, kTools, kQwenSamples[3]);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "");
  EXPECT_EQ(p.unknown, std::vector<std::string>{"delete_all"});
  p = parse_tool_calls(
      F::kMistral, kTools,
      R"([TOOL_CALLS] [{"name": "nope", "arguments": {}}, {"name": "add", "arguments": {"a": 1}}])");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "add");
  EXPECT_EQ(p.unknown, std::vector<std::string>{"nope"});
}

TEST(ToolCallParser, QwenStreamHoldsBackAPossibleMarker) {
  ToolCallParser p(F::kQwen25, kTools);
  ToolCallOutput out = p.feed("Sure <tool");
  ASSERT_EQ(out.pieces.size(), 1u);
  EXPECT_EQ(out.pieces[0].content, "Sure");  // the space may precede a call
  out = p.feed("_call>\n{\"name\": \"add\", \"arguments\": {}}\n");
  EXPECT_TRUE(out.pieces.empty());
  out = p.feed("</tool_call>\nthen");
  ASSERT_EQ(out.pieces.size(), 2u);
  EXPECT_EQ(out.pieces[0].call, call("add", "{}"));
  EXPECT_EQ(out.pieces[1].content, "then");
  EXPECT_TRUE(p.finish().pieces.empty());
}

// ---- llama3 ----

const std::vector<std::string> kLlamaSamples = {
    R"({"name": "get_weather", "parameters": {"city": "Paris"}})",
    " \n{\"name\": \"add\", \"parameters\": {\"a\": 1}}; {\"name\": \"add\", \"parameters\": "
    "{\"a\": 2}} ",
    R"(I will look it up.<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}})",
    R"({"name": "add", "parameters": {"a": 1}} and some text)",
    R"({"name": "add", "parameters": {"a": 1}}; not json)",
    "Just an answer, no tools. {\"name\": \"add\"}",
    R"({"name": "add", "parameters": {"a": 1})",
    "<|python_tag|>",
    "<|python_tag|>oops",
    R"({"name": "nope", "parameters": {}};{"name": "add", "parameters": {}};)",
};

TEST(ToolCallParser, Llama3Calls) {
  auto p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[0]);
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0], call("get_weather", R"({"city":"Paris"})"));
  p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[1]);
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[1], call("add", R"({"a":2})"));
  p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[2]);
  EXPECT_EQ(p.content, "I will look it up.");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0], call("get_weather", R"({"city":"Oslo"})"));
  p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[9]);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.unknown, std::vector<std::string>{"nope"});
}

TEST(ToolCallParser, Llama3MalformedStaysContent) {
  for (size_t i : {5, 7, 8}) {
    auto p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[i]);
    EXPECT_TRUE(p.calls.empty()) << kLlamaSamples[i];
    EXPECT_EQ(p.content, kLlamaSamples[i]);
  }
  // A valid first call, then garbage: the call is kept, the rest is content.
  auto p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[4]);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.content, "not json");
  // A call (it started streaming) followed by text without ';': a call, then content.
  p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[3]);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.content, "and some text");
  // Cut inside a started call: neither a call nor content.
  p = parse_tool_calls(F::kLlama3, kTools, kLlamaSamples[6]);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "");
}

// ---- mistral ----

const std::vector<std::string> kMistralSamples = {
    R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Rome"}}, {"name": "add", "arguments": {"a": 1, "b": [2]}}])",
    R"(Checking. [TOOL_CALLS] [{"name": "add", "arguments": {}}] Done.)",
    R"([TOOL_CALLS] [{"name": "add", "arguments": 5}])",
    R"([TOOL_CALLS] not a list)",
    R"([TOOL_CALLS] [{"name": "add", "arguments": {})",
    R"([TOOL_CALLS] [])",
    "[TOOL_ no marker",
};

TEST(ToolCallParser, MistralCalls) {
  auto p = parse_tool_calls(F::kMistral, kTools, kMistralSamples[0]);
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0], call("get_weather", R"({"city":"Rome"})"));
  EXPECT_EQ(p.calls[1], call("add", R"({"a":1,"b":[2]})"));
  p = parse_tool_calls(F::kMistral, kTools, kMistralSamples[1]);
  EXPECT_EQ(p.content, "Checking.Done.");
  ASSERT_EQ(p.calls.size(), 1u);
}

TEST(ToolCallParser, MistralMalformedStaysContent) {
  for (size_t i = 2; i < kMistralSamples.size(); ++i) {
    auto p = parse_tool_calls(F::kMistral, kTools, kMistralSamples[i]);
    if (i == 4) {  // cut inside a started call
      EXPECT_TRUE(p.calls.empty());
      EXPECT_EQ(p.content, "");
      continue;
    }
    EXPECT_TRUE(p.calls.empty()) << kMistralSamples[i];
    EXPECT_EQ(p.content, kMistralSamples[i]);
  }
}

TEST(ToolCallParser, StreamSplitAnywhereEqualsNonStream) {
  for (const auto& t : kQwenSamples) expect_split_invariant(F::kQwen25, t);
  for (const auto& t : kLlamaSamples) expect_split_invariant(F::kLlama3, t);
  for (const auto& t : kMistralSamples) expect_split_invariant(F::kMistral, t);
  // Every format on every other format's text (plain content for it).
  for (F f : {F::kQwen25, F::kLlama3, F::kMistral}) {
    for (const auto& t : kQwenSamples) expect_split_invariant(f, t);
    for (const auto& t : kMistralSamples) expect_split_invariant(f, t);
  }
}

// ---- forced tool_choice ----

const ordered_json kToolsJson = ordered_json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
    "properties": {"city": {"$ref": "#/$defs/city"}}, "required": ["city"],
    "$defs": {"city": {"type": "string"}}}}},
  {"type": "function", "function": {"name": "add"}}
])");

TEST(ForcedToolCalls, RequiredSchemaIsAnArrayOfAnyOf) {
  const json s = json::parse(forced_tool_schema(kToolsJson, nullptr, true));
  EXPECT_EQ(s["type"], "array");
  EXPECT_EQ(s["minItems"], 1);
  EXPECT_FALSE(s.contains("maxItems"));
  const json& any = s["items"]["anyOf"];
  ASSERT_EQ(any.size(), 2u);
  EXPECT_EQ(any[0]["properties"]["name"]["const"], "get_weather");
  EXPECT_EQ(any[0]["required"], json::array({"name", "parameters"}));
  EXPECT_FALSE(any[0]["properties"]["parameters"].contains("$defs"));
  EXPECT_EQ(any[1]["properties"]["parameters"], json::parse(R"({"type": "object"})"));
  EXPECT_EQ(s["$defs"]["city"]["type"], "string");  // moved to the root: #/$defs/city resolves
  // "name" is declared before "parameters" and the wrapper asks for declared order (the grammar
  // engine's default is any order), so the name is generated first.
  EXPECT_EQ(any[0]["x-sable"]["property_order"], "declared");
  EXPECT_EQ(any[0]["x-sable"]["strict"], true);  // no members beyond the declared parameters
  const std::string text = forced_tool_schema(kToolsJson, nullptr, false);
  EXPECT_LT(text.find("\"name\""), text.find("\"parameters\""));
  EXPECT_EQ(json::parse(text)["maxItems"], 1);
}

TEST(ForcedToolCalls, NamedSchemaIsOneObject) {
  const std::string name = "add";
  const json s = json::parse(forced_tool_schema(kToolsJson, &name, true));
  EXPECT_EQ(s["type"], "object");
  EXPECT_EQ(s["properties"]["name"]["const"], "add");
  EXPECT_FALSE(s.contains("$defs"));
}

TEST(ForcedToolCalls, OutputBecomesCalls) {
  auto p = parse_forced_tool_calls(
      kTools,
      R"([{"name": "add", "parameters": {"a": 1}}, {"name": "get_weather", "parameters": {}}])");
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0], call("add", R"({"a":1})"));
  p = parse_forced_tool_calls(kTools, R"({"name": "add", "parameters": {"b": "x"}})");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0], call("add", R"({"b":"x"})"));
  // Cut off before the first call started: no calls, and the raw JSON is not content either.
  p = parse_forced_tool_calls(kTools, R"([{"name": "add", "param)");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "");
  // Cut after a complete call: that call.
  p = parse_forced_tool_calls(kTools, R"([{"name": "add", "parameters": {}}, {"name": "get)");
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.content, "");
  p = parse_forced_tool_calls(kTools, "[]");
  EXPECT_TRUE(p.calls.empty());
  p = parse_forced_tool_calls(kTools, R"([{"name": "rm", "parameters": {}}])");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.unknown, std::vector<std::string>{"rm"});
}

TEST(ForcedToolCalls, CallIdsAreCallAnd24Hex) {
  const std::string a = make_tool_call_id(), b = make_tool_call_id();
  EXPECT_TRUE(std::regex_match(a, std::regex("call_[0-9a-f]{24}"))) << a;
  EXPECT_NE(a, b);
}

// ---- the chat request and response ----

const tokenizer::Tokenizer& qwen() {
  static auto tok = tokenizer::Tokenizer::load(SABLE_TEST_DATA_DIR "/models/qwen2_tok");
  return *tok;
}

OpenAIRequest chat_request(const std::string& extra, const ChatParsers& parsers) {
  ChatRenderer r;
  r.tmpl = chat::ChatTemplate::compile(qwen().chat_template());
  const std::string body = R"({"messages": [{"role": "user", "content": "Hi"}], "tools": [
      {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}},
      {"type": "function", "function": {"name": "get_weather"}}])" +
                           extra + "}";
  return parse_chat_request(ordered_json::parse(body), nullptr, r, parsers);
}

std::string error_of(const std::string& extra) {
  try {
    chat_request(extra, {});
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.what();
  }
  return "no error";
}

TEST(ChatTools, ToolChoiceMapping) {
  const ChatParsers parsers{F::kQwen25, ReasoningFormat::kQwen3};
  OpenAIRequest auto_req = chat_request("", parsers);
  EXPECT_EQ(auto_req.tool_format, F::kQwen25);
  EXPECT_EQ(auto_req.tool_names, (std::vector<std::string>{"add", "get_weather"}));
  EXPECT_EQ(auto_req.reasoning_format, ReasoningFormat::kQwen3);
  EXPECT_FALSE(auto_req.params.json_schema);
  EXPECT_NE(auto_req.prompts[0].text->find("<tools>"), std::string::npos);

  OpenAIRequest none = chat_request(R"(, "tool_choice": "none")", parsers);
  EXPECT_FALSE(none.tool_format);
  EXPECT_TRUE(none.tool_names.empty());
  EXPECT_EQ(none.prompts[0].text->find("<tools>"), std::string::npos);  // not offered

  OpenAIRequest required = chat_request(R"(, "tool_choice": "required")", parsers);
  EXPECT_TRUE(required.forced_tool_calls);
  EXPECT_FALSE(required.reasoning_format);
  ASSERT_TRUE(required.params.json_schema);
  EXPECT_EQ(json::parse(*required.params.json_schema)["type"], "array");

  OpenAIRequest named = chat_request(
      R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})", {});
  ASSERT_TRUE(named.params.json_schema);
  EXPECT_EQ(json::parse(*named.params.json_schema)["properties"]["name"]["const"], "get_weather");

  // Another constraint wins; the tool choice falls back to parsing.
  OpenAIRequest regex = chat_request(R"(, "tool_choice": "required", "regex": "a+")", parsers);
  EXPECT_FALSE(regex.forced_tool_calls);
  EXPECT_EQ(*regex.params.regex, "a+");
  EXPECT_EQ(regex.tool_format, F::kQwen25);

  // Reasoning off per request.
  EXPECT_FALSE(chat_request(R"(, "separate_reasoning": false)", parsers).reasoning_format);
  EXPECT_FALSE(chat_request(R"(, "chat_template_kwargs": {"enable_thinking": false})", parsers)
                   .reasoning_format);
}

TEST(ChatTools, ValidationErrors) {
  EXPECT_EQ(error_of(R"(, "tool_choice": {"type": "function", "function": {"name": "nope"}})"),
            "Tool 'nope' not found in tools list.");
  EXPECT_NE(error_of(R"(, "tool_choice": "sometimes")").find("tool_choice must be"),
            std::string::npos);
  ChatRenderer r;
  r.tmpl = chat::ChatTemplate::compile(qwen().chat_template());
  for (
      const char* body :
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})",
       R"({"messages": [{"role": "user", "content": "x"}], "tools": [], "tool_choice": "required"})"}) {
    try {
      parse_chat_request(ordered_json::parse(body), nullptr, r);
      ADD_FAILURE() << body;
    } catch (const HttpError& e) {
      EXPECT_STREQ(e.what(), "Tools cannot be empty if tool choice is set to required.");
    }
  }
  try {
    parse_chat_request(ordered_json::parse(R"({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]})"),
                       nullptr, r);
    ADD_FAILURE();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.param(), "tools");
  }
}

TEST(ChatTools, ResponseHasReasoningContentAndToolCalls) {
  const OpenAIRequest req = chat_request("", {F::kQwen25, ReasoningFormat::kQwen3});
  GenerateOutput out;
  out.text =
      "<think>plan</think>Hi<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n"
      "</tool_call>";
  out.finish = Finish{};
  out.finish->type = Finish::Type::kStop;
  out.finish->matched_token = 151645;
  ResponseHead head;
  const json r = chat_response(head, req, {{&out, ""}}, qwen());
  const json& choice = r["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["matched_stop"].is_null());
  EXPECT_EQ(choice["message"]["content"], "Hi");
  EXPECT_EQ(choice["message"]["reasoning_content"], "plan");
  const json& tc = choice["message"]["tool_calls"][0];
  EXPECT_EQ(tc["index"], 0);
  EXPECT_EQ(tc["type"], "function");
  EXPECT_EQ(tc["function"]["name"], "add");
  EXPECT_EQ(json::parse(tc["function"]["arguments"].get<std::string>()), json::parse(R"({"a":1})"));
  EXPECT_TRUE(std::regex_match(tc["id"].get<std::string>(), std::regex("call_[0-9a-f]{24}")));

  // Streamed token by token: the same message, in order; the call's first entry has its id, type
  // and name, the arguments follow in pieces; the last chunk says tool_calls.
  ChatOutputParser parser(req);
  std::string reasoning, content, arguments;
  json calls = json::array();
  json last;
  for (size_t i = 0; i < out.text.size(); ++i) {
    Delta d;
    d.text = out.text.substr(i, 1);
    if (i + 1 == out.text.size()) d.finish = out.finish;
    auto chunk = chat_parsed_chunk(head, req, 0, d, qwen(), parser);
    if (!chunk) continue;
    const json& delta = (*chunk)["choices"][0]["delta"];
    reasoning += delta.value("reasoning_content", "");
    content += delta.value("content", "");
    if (delta.contains("tool_calls"))
      for (const auto& c : delta["tool_calls"]) {
        calls.push_back(c);
        arguments += c["function"]["arguments"].get<std::string>();
      }
    last = *chunk;
  }
  EXPECT_EQ(reasoning, "plan");
  EXPECT_EQ(content, "Hi");
  ASSERT_GT(calls.size(), 2u);  // the arguments came in pieces
  EXPECT_EQ(calls[0]["function"]["name"], "add");
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_TRUE(std::regex_match(calls[0]["id"].get<std::string>(), std::regex("call_[0-9a-f]{24}")));
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i]["index"], 0);
    EXPECT_FALSE(calls[i].contains("id"));
  }
  EXPECT_EQ(json::parse(arguments), json::parse(R"({"a": 1})"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "tool_calls");

  // Forced calls cut by max_tokens: the complete call arrives as a tool call, the cut one is not
  // content; finish_reason is length.
  OpenAIRequest forced = chat_request(R"(, "tool_choice": "required")", {});
  GenerateOutput cut;
  cut.text = R"([{"name": "add", "parameters": {"x": 1}}, {"name": "get_weather", "param)";
  cut.finish = Finish{};
  cut.finish->type = Finish::Type::kLength;
  const json rc = chat_response(head, forced, {{&cut, ""}}, qwen());
  const json& cc = rc["choices"][0];
  EXPECT_EQ(cc["finish_reason"], "length");
  EXPECT_EQ(cc["message"]["content"], "");
  ASSERT_EQ(cc["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(cc["message"]["tool_calls"][0]["function"]["arguments"], R"({"x":1})");
}

}  // namespace
}  // namespace sable::server
