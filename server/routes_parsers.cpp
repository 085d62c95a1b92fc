// SGLang's text-parsing routes, over the same parsers the chat route uses:
//   POST /parse_function_call  {text, tools, tool_call_parser} -> {normal_text, calls: [{tool_index,
//                              name, parameters}]}
//   POST /separate_reasoning   {text, reasoning_parser, return_blocks?} -> {reasoning_text, text}
//                              (+ reasoning_blocks, text_blocks, blocks with return_blocks)
// Nothing is generated: the client brings the text (e.g. from /generate) and gets it split.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "server/http_error.h"
#include "server/reasoning_parser.h"
#include "server/route_util.h"
#include "server/tool_call_parser.h"

namespace sable::server {

namespace {

using nlohmann::json;

std::string required_string(const json& body, const char* field) {
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    throw HttpError::bad_request(fmt::format("{} is required: a string", field), field);
  }
  return it->get<std::string>();
}

json parse_function_call(const json& body) {
  const std::string text = required_string(body, "text");
  const std::string parser = required_string(body, "tool_call_parser");
  const auto format = tool_call_format_from_name(parser);
  if (!format) {
    throw HttpError::bad_request(
        fmt::format("tool_call_parser '{}' is not supported (qwen25, qwen, llama3, mistral)",
                    parser),
        "tool_call_parser");
  }
  std::vector<std::string> names;
  const json tools = body.value("tools", json::array());
  if (!tools.is_array()) throw HttpError::bad_request("tools must be a list", "tools");
  for (const auto& tool : tools) {
    const json* fn = tool.is_object() && tool.contains("function") ? &tool["function"] : nullptr;
    if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
      throw HttpError::bad_request(
          "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tools");
    }
    names.push_back((*fn)["name"].get<std::string>());
  }
  const ParsedToolCalls parsed = parse_tool_calls(*format, names, text);
  json calls = json::array();
  for (const ToolCall& call : parsed.calls) {
    const auto index = std::find(names.begin(), names.end(), call.name) - names.begin();
    calls.push_back({{"tool_index", index}, {"name", call.name}, {"parameters", call.arguments}});
  }
  return {{"normal_text", parsed.content}, {"calls", std::move(calls)}};
}

json separate_reasoning(const json& body) {
  const std::string text = required_string(body, "text");
  const std::string parser = required_string(body, "reasoning_parser");
  const auto format = reasoning_format_from_name(parser);
  if (!format) {
    throw HttpError::bad_request(
        fmt::format("reasoning_parser '{}' is not supported (qwen3, deepseek-r1)", parser),
        "reasoning_parser");
  }
  const json blocks_flag = body.value("return_blocks", json(false));
  if (!blocks_flag.is_boolean()) {
    throw HttpError::bad_request("return_blocks must be a boolean", "return_blocks");
  }
  const ReasoningSplit split = split_reasoning(*format, text);
  json out = {{"reasoning_text", split.reasoning}, {"text", split.content}};
  if (blocks_flag.get<bool>()) {
    json blocks = json::array();
    if (!split.reasoning.empty()) blocks.push_back({{"type", "reasoning"}, {"text", split.reasoning}});
    blocks.push_back({{"type", "text"}, {"text", split.content}});
    out["reasoning_blocks"] = split.reasoning.empty() ? json::array() : json::array({split.reasoning});
    out["text_blocks"] = json::array({split.content});
    out["blocks"] = std::move(blocks);
  }
  return out;
}

}  // namespace

void register_parser_routes(httplib::Server& svr, ServerState& state) {
  svr.Post("/parse_function_call", guarded(state, [](const auto& req, auto& res) {
    send_json(res, parse_function_call(parse_body(req)));
  }));
  svr.Post("/separate_reasoning", guarded(state, [](const auto& req, auto& res) {
    send_json(res, separate_reasoning(parse_body(req)));
  }));
}

}  // namespace sable::server
