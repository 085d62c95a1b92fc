// OpenAI-compatible response shaping (see openai_api.h): choices, logprobs, usage, the stream
// chunks, and the chat output parser that separates reasoning and tool calls from the text.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/engine/result_json.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/log.h"
#include "server/openai_api.h"

namespace sable::server {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

json logprob_value(float v) { return std::isnan(v) ? json(nullptr) : json(v); }

std::string token_text(const tokenizer::Tokenizer& tok, int32_t id) {
  return tok.decode(std::span<const int32_t>(&id, 1), false);
}

json token_bytes(const tokenizer::Tokenizer& tok, int32_t id) {
  json bytes = json::array();
  for (unsigned char c : tok.token_bytes(id)) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// Appends positions to completions logprobs {tokens, token_logprobs, top_logprobs, text_offset};
// `offset` is where the first one's text starts in the choice's text.
void append_completion_logprobs(json& lp, const std::vector<PositionLogprobs>& positions,
                                const tokenizer::Tokenizer& tok, int64_t offset) {
  for (const auto& p : positions) {
    std::string t = token_text(tok, p.chosen.token);
    lp["text_offset"].push_back(offset);
    offset += static_cast<int64_t>(t.size());
    lp["tokens"].push_back(std::move(t));
    lp["token_logprobs"].push_back(logprob_value(p.chosen.logprob));
    // The first prompt token has no logprob and no alternatives: null, as OpenAI sends it.
    json top = std::isnan(p.chosen.logprob) && p.top.empty() ? json(nullptr) : json::object();
    for (const auto& c : p.top) top[token_text(tok, c.token)] = logprob_value(c.logprob);
    lp["top_logprobs"].push_back(std::move(top));
  }
}

json completion_logprobs(const std::vector<PositionLogprobs>& positions,
                         const tokenizer::Tokenizer& tok, int64_t offset) {
  json lp = {{"tokens", json::array()},
             {"token_logprobs", json::array()},
             {"top_logprobs", json::array()},
             {"text_offset", json::array()}};
  append_completion_logprobs(lp, positions, tok, offset);
  return lp;
}

// Echo with logprobs: the prompt's tokens (from offset 0, the first one null), then the output's
// from the end of the prompt text.
json echo_logprobs(const std::vector<PositionLogprobs>& prompt,
                   const std::vector<PositionLogprobs>& output, const tokenizer::Tokenizer& tok,
                   int64_t output_offset) {
  json lp = completion_logprobs(prompt, tok, 0);
  append_completion_logprobs(lp, output, tok, output_offset);
  return lp;
}

// Chat logprobs: {"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}.
json chat_logprobs(const std::vector<PositionLogprobs>& positions,
                   const tokenizer::Tokenizer& tok) {
  json content = json::array();
  for (const auto& p : positions) {
    json top = json::array();
    for (const auto& c : p.top) {
      top.push_back({{"token", token_text(tok, c.token)},
                     {"logprob", logprob_value(c.logprob)},
                     {"bytes", token_bytes(tok, c.token)}});
    }
    content.push_back({{"token", token_text(tok, p.chosen.token)},
                       {"logprob", logprob_value(p.chosen.logprob)},
                       {"bytes", token_bytes(tok, p.chosen.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

// [{"id", "index", "type": "function", "function": {"name", "arguments"}}].
json tool_calls_json(const std::vector<ToolCall>& calls) {
  json list = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    list.push_back({{"id", make_tool_call_id()},
                    {"index", static_cast<int>(i)},
                    {"type", "function"},
                    {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  }
  return list;
}

// Stream entries of tool_calls: consecutive deltas of one call merge; a call's first entry has its
// id, type and name (and arguments ""), later ones only arguments.
json tool_call_deltas_json(const std::vector<ToolCallDelta>& deltas) {
  json list = json::array();
  for (const ToolCallDelta& d : deltas) {
    if (!list.empty() && list.back()["index"] == d.index && d.name.empty()) {
      list.back()["function"]["arguments"] =
          list.back()["function"]["arguments"].get<std::string>() + d.arguments;
      continue;
    }
    json entry = {{"index", d.index}};
    if (!d.name.empty()) {
      entry["id"] = make_tool_call_id();
      entry["type"] = "function";
      entry["function"] = {{"name", d.name}, {"arguments", d.arguments}};
    } else {
      entry["function"] = {{"arguments", d.arguments}};
    }
    list.push_back(std::move(entry));
  }
  return list;
}

// finish_reason / matched_stop, with "stop" becoming "tool_calls" when calls were parsed.
void set_finish(json& choice, const std::optional<Finish>& finish, bool had_calls) {
  if (had_calls && finish && finish->type == Finish::Type::kStop) {
    choice["finish_reason"] = "tool_calls";
    choice["matched_stop"] = nullptr;
    return;
  }
  choice["finish_reason"] = openai_finish_reason(finish);
  choice["matched_stop"] = openai_matched_stop(finish);
}

json head_json(const ResponseHead& head, const char* object) {
  return {{"id", head.id}, {"object", object}, {"created", head.created}, {"model", head.model}};
}

}  // namespace

ChatOutputParser::ChatOutputParser(const OpenAIRequest& req) {
  if (req.reasoning_format) reasoning_.emplace(*req.reasoning_format);
  if (req.forced_tool_calls)
    tools_.emplace(ToolCallFormat::kJson, req.tool_names);
  else if (req.tool_format)
    tools_.emplace(*req.tool_format, req.tool_names);
}

ChatParts ChatOutputParser::run(std::string_view text, bool last) {
  ChatParts parts;
  std::string content;
  if (reasoning_) {
    ReasoningPieces p = reasoning_->feed(text);
    if (last) {
      ReasoningPieces rest = reasoning_->finish();
      p.reasoning += rest.reasoning;
      p.content += rest.content;
    }
    parts.reasoning = std::move(p.reasoning);
    content = std::move(p.content);
  } else {
    content = std::string(text);
  }
  if (!tools_) {
    parts.content = std::move(content);
    return parts;
  }
  std::vector<ToolCallOutput> outs;
  outs.push_back(tools_->feed(content));
  if (last) outs.push_back(tools_->finish());
  ParsedToolCalls parsed = collect_tool_calls(outs);
  for (const auto& name : parsed.unknown)
    log::warn("dropped a tool call to '{}': it is not in the request's tools", name);
  parts.content = std::move(parsed.content);
  parts.calls = std::move(parsed.calls);
  for (ToolCallOutput& o : outs) {
    for (ToolCallDelta& d : o.deltas) {
      if (!d.name.empty()) ++calls_started_;
      parts.deltas.push_back(std::move(d));
    }
  }
  return parts;
}

ChatParts ChatOutputParser::feed(std::string_view text) {
  return run(text, false);
}
ChatParts ChatOutputParser::finish() {
  return run({}, true);
}

ChatParts parse_chat_output(const OpenAIRequest& req, std::string_view text) {
  ChatOutputParser parser(req);
  ChatParts parts = parser.feed(text);
  ChatParts rest = parser.finish();
  parts.reasoning += rest.reasoning;
  parts.content += rest.content;
  for (ToolCall& c : rest.calls) parts.calls.push_back(std::move(c));
  for (ToolCallDelta& d : rest.deltas) parts.deltas.push_back(std::move(d));
  return parts;
}

json openai_finish_reason(const std::optional<Finish>& finish) {
  if (!finish) return nullptr;
  switch (finish->type) {
    case Finish::Type::kStop: return "stop";
    case Finish::Type::kLength: return "length";
    case Finish::Type::kAbort: return "abort";
  }
  return nullptr;
}

json openai_matched_stop(const std::optional<Finish>& finish) {
  if (!finish || finish->type != Finish::Type::kStop) return nullptr;
  if (finish->matched_text) return *finish->matched_text;
  if (finish->matched_token) return *finish->matched_token;
  return nullptr;
}

json usage_json(const std::vector<ChoiceOutput>& choices, int32_t n, bool cache_report) {
  int64_t prompt = 0, completion = 0, cached = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    const GenerateOutput& out = *choices[i].out;
    if (n <= 1 || i % static_cast<size_t>(n) == 0) {
      prompt += out.prompt_tokens;
      cached += out.cached_tokens;
    }
    completion += out.completion_tokens;
  }
  json usage = {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}};
  if (cache_report) usage["prompt_tokens_details"] = {{"cached_tokens", cached}};
  return usage;
}

json completion_response(const ResponseHead& head, const OpenAIRequest& req,
                         const std::vector<ChoiceOutput>& choices,
                         const tokenizer::Tokenizer& tok) {
  json out = head_json(head, "text_completion");
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const GenerateOutput& o = *choices[i].out;
    std::string text = req.echo ? choices[i].prompt_text + o.text : o.text;
    const int64_t offset = req.echo ? static_cast<int64_t>(choices[i].prompt_text.size()) : 0;
    json logprobs = nullptr;
    if (req.logprobs) {
      logprobs = req.echo ? echo_logprobs(o.input_logprobs, o.output_logprobs, tok, offset)
                          : completion_logprobs(o.output_logprobs, tok, offset);
    }
    list.push_back({{"index", i},
                    {"text", std::move(text)},
                    {"logprobs", std::move(logprobs)},
                    {"finish_reason", openai_finish_reason(o.finish)},
                    {"matched_stop", openai_matched_stop(o.finish)}});
    if (req.return_hidden_states)
      list.back()["hidden_states"] = engine::last_hidden_state_json(o.hidden_states);
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(choices, req.params.n, head.cache_report);
  out["metadata"] = {{"weight_version", head.weight_version}};
  return out;
}

json chat_response(const ResponseHead& head, const OpenAIRequest& req,
                   const std::vector<ChoiceOutput>& choices, const tokenizer::Tokenizer& tok) {
  json out = head_json(head, "chat.completion");
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const GenerateOutput& o = *choices[i].out;
    ChatParts parts = parse_chat_output(req, o.text);
    json message = {
        {"role", "assistant"},
        {"content", std::move(parts.content)},
        {"refusal", nullptr},
        {"reasoning_content", parts.reasoning.empty() ? json(nullptr) : json(parts.reasoning)}};
    if (!parts.calls.empty()) message["tool_calls"] = tool_calls_json(parts.calls);
    json choice = {
        {"index", i},
        {"message", std::move(message)},
        {"logprobs", req.logprobs ? chat_logprobs(o.output_logprobs, tok) : json(nullptr)}};
    set_finish(choice, o.finish, !parts.calls.empty());
    if (req.return_hidden_states)
      choice["hidden_states"] = engine::last_hidden_state_json(o.hidden_states);
    list.push_back(std::move(choice));
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(choices, req.params.n, head.cache_report);
  out["metadata"] = {{"weight_version", head.weight_version}};
  return out;
}

json completion_chunk(const ResponseHead& head, const OpenAIRequest& req, int index,
                      const Delta& delta, const tokenizer::Tokenizer& tok, int64_t text_offset) {
  json out = head_json(head, "text_completion");
  out["choices"] = json::array(
      {{{"index", index},
        {"text", delta.text},
        {"logprobs", req.logprobs ? completion_logprobs(delta.output_logprobs, tok, text_offset)
                                  : json(nullptr)},
        {"finish_reason", openai_finish_reason(delta.finish)},
        {"matched_stop", openai_matched_stop(delta.finish)}}});
  return out;
}

json chat_role_chunk(const ResponseHead& head, int index) {
  json out = head_json(head, "chat.completion.chunk");
  out["choices"] = json::array({{{"index", index},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}}});
  return out;
}

json chat_chunk(const ResponseHead& head, const OpenAIRequest& req, int index, const Delta& delta,
                const tokenizer::Tokenizer& tok) {
  json out = head_json(head, "chat.completion.chunk");
  json d = json::object();
  if (!delta.text.empty() || !delta.finish) d["content"] = delta.text;
  out["choices"] = json::array(
      {{{"index", index},
        {"delta", std::move(d)},
        {"logprobs", req.logprobs && !delta.output_logprobs.empty()
                         ? chat_logprobs(delta.output_logprobs, tok)
                         : json(nullptr)},
        {"finish_reason", openai_finish_reason(delta.finish)},
        {"matched_stop", openai_matched_stop(delta.finish)}}});
  return out;
}

std::optional<json> chat_parsed_chunk(const ResponseHead& head, const OpenAIRequest& req, int index,
                                      const Delta& delta, const tokenizer::Tokenizer& tok,
                                      ChatOutputParser& parser) {
  ChatParts parts = parser.feed(delta.text);
  if (delta.finish) {
    ChatParts rest = parser.finish();
    parts.reasoning += rest.reasoning;
    parts.content += rest.content;
    for (ToolCallDelta& d : rest.deltas) parts.deltas.push_back(std::move(d));
  }
  const bool with_logprobs = req.logprobs && !delta.output_logprobs.empty();
  if (parts.reasoning.empty() && parts.content.empty() && parts.deltas.empty() && !with_logprobs &&
      !delta.finish) {
    return std::nullopt;
  }
  json d = json::object();
  if (!parts.reasoning.empty()) d["reasoning_content"] = std::move(parts.reasoning);
  if (!parts.content.empty() || (d.empty() && parts.deltas.empty() && !delta.finish))
    d["content"] = std::move(parts.content);
  if (!parts.deltas.empty()) d["tool_calls"] = tool_call_deltas_json(parts.deltas);
  json choice = {
      {"index", index},
      {"delta", std::move(d)},
      {"logprobs", with_logprobs ? chat_logprobs(delta.output_logprobs, tok) : json(nullptr)}};
  set_finish(choice, delta.finish, parser.calls_started() > 0);
  json out = head_json(head, "chat.completion.chunk");
  out["choices"] = json::array({std::move(choice)});
  return out;
}

json usage_chunk(const ResponseHead& head, bool chat, const json& usage) {
  json out = head_json(head, chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage;
  return out;
}

}  // namespace sable::server
