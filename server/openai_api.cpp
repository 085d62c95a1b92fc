// OpenAI-compatible request parsing (see openai_api.h; spec/sglang_api.md
// section 3 for SGLang's mapping of the fields).
#include "server/openai_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/log.h"
#include "server/http_error.h"
#include "server/unsupported_fields.h"
#include "server/chat_images.h"

namespace sable::server {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// The message roles of OpenAI's chat API (function: the deprecated form of tool).
constexpr std::string_view kChatRoles[] = {"system", "developer", "user",
                                           "assistant", "tool", "function"};

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw HttpError::bad_request(message, field);
}

template <class J>
const J* field(const J& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

template <class J>
bool get_bool(const J& body, const char* name, bool fallback) {
  const J* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, fmt::format("{} must be a boolean, got {}", name, v->dump()));
  return v->template get<bool>();
}

template <class J>
std::optional<int64_t> get_int(const J& body, const char* name) {
  const J* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) {
    bad(name, fmt::format("{} must be an integer, got {}", name, v->dump()));
  }
  return v->template get<int64_t>();
}

// Copies body[name] into sp[target] after checking its JSON kind (number/bool/...).
template <class J>
void copy_number(const J& body, const char* name, json& sp, const char* target) {
  if (const J* v = field(body, name)) {
    if (!v->is_number()) bad(name, fmt::format("{} must be a number, got {}", name, v->dump()));
    sp[target] = v->template get<double>();
  }
}

template <class J>
void copy_raw(const J& body, const char* name, json& sp, const char* target) {
  if (const J* v = field(body, name)) sp[target] = json::parse(v->dump());
}

// The fields both endpoints share, onto a sampling_params object.
template <class J>
void map_common(const J& body, json& sp, OpenAIRequest& req) {
  reject_unsupported_fields(body);
  if (field(body, "image_data"))
    bad("image_data", "image_data is a /generate field: on the OpenAI API send images as "
                      "image_url content parts of chat messages");
  if (const J* m = field(body, "model")) {
    if (!m->is_string()) bad("model", "model must be a string");
    req.model = m->template get<std::string>();
  } else {
    req.model = "default";
  }
  req.stream = get_bool(body, "stream", false);
  req.return_hidden_states = get_bool(body, "return_hidden_states", false);
  if (req.return_hidden_states && req.stream)
    bad("return_hidden_states", "return_hidden_states is not supported with stream on the OpenAI "
                                "routes (use /generate)");
  if (const J* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "stream_options must be an object");
    req.include_usage = get_bool(*so, "include_usage", false);
    req.continuous_usage_stats = get_bool(*so, "continuous_usage_stats", false);
  }
  copy_number(body, "temperature", sp, "temperature");
  copy_number(body, "top_p", sp, "top_p");
  copy_number(body, "min_p", sp, "min_p");
  copy_number(body, "presence_penalty", sp, "presence_penalty");
  copy_number(body, "frequency_penalty", sp, "frequency_penalty");
  copy_number(body, "repetition_penalty", sp, "repetition_penalty");
  if (auto k = get_int(body, "top_k")) sp["top_k"] = *k;
  if (auto n = get_int(body, "n")) {
    // The upper bound is the server's max_parallel_samples (request_limits.h).
    if (*n < 1) bad("n", fmt::format("n must be at least 1, got {}", *n));
    sp["n"] = *n;
  }
  if (auto seed = get_int(body, "seed")) sp["sampling_seed"] = *seed;
  if (auto mt = get_int(body, "min_tokens")) sp["min_new_tokens"] = *mt;
  if (const J* stop = field(body, "stop")) {
    if (stop->is_string()) {
      sp["stop"] = json::array({stop->template get<std::string>()});
    } else if (stop->is_array()) {
      for (const auto& s : *stop) {
        if (!s.is_string()) bad("stop", "stop must be a string or a list of strings");
      }
      sp["stop"] = json::parse(stop->dump());
    } else {
      bad("stop", "stop must be a string or a list of strings");
    }
  }
  if (const J* lb = field(body, "logit_bias")) {
    if (!lb->is_object()) bad("logit_bias", "logit_bias must be an object of token id to bias");
    sp["logit_bias"] = json::parse(lb->dump());
  }
  for (const char* name : {"stop_token_ids", "ignore_eos", "no_stop_trim", "skip_special_tokens",
                           "spaces_between_special_tokens", "regex", "ebnf", "json_schema"}) {
    copy_raw(body, name, sp, name);
  }
  if (const J* rid = field(body, "rid")) {
    if (!rid->is_string()) bad("rid", "rid must be a string");
    req.rid = rid->template get<std::string>();
  } else {
    req.rid = make_request_id();
  }
}

sampling::SamplingParams finish_params(const json& sp, const json& preferred) {
  json merged = preferred.is_object() ? preferred : json::object();
  for (auto it = sp.begin(); it != sp.end(); ++it) merged[it.key()] = it.value();
  // max_new_tokens null means "until the context limit": from_json keeps defaults for null.
  const bool unlimited = merged.contains("max_new_tokens") && merged["max_new_tokens"].is_null();
  auto params = sampling::SamplingParams::from_json(merged);
  if (unlimited) params.max_new_tokens = std::nullopt;
  return params;
}

}  // namespace

OpenAIRequest parse_completion_request(const json& body, const json& preferred) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  OpenAIRequest req;
  json sp = json::object();
  map_common(body, sp, req);
  const json* prompt = field(body, "prompt");
  if (!prompt) bad("prompt", "prompt is required");
  auto int_list = [](const json& v) {
    std::vector<int32_t> ids;
    for (const auto& x : v) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX) {
        bad("prompt", "prompt token ids must be non-negative integers");
      }
      ids.push_back(x.get<int32_t>());
    }
    return ids;
  };
  if (prompt->is_string()) {
    req.prompts.push_back({prompt->get<std::string>(), std::nullopt});
  } else if (prompt->is_array() && !prompt->empty() && prompt->front().is_number()) {
    req.prompts.push_back({std::nullopt, int_list(*prompt)});
  } else if (prompt->is_array()) {
    for (const auto& p : *prompt) {
      if (p.is_string()) req.prompts.push_back({p.get<std::string>(), std::nullopt});
      else if (p.is_array()) req.prompts.push_back({std::nullopt, int_list(p)});
      else bad("prompt", "prompt must be a string, a list of strings or of token-id lists");
    }
  } else {
    bad("prompt", "prompt must be a string, a list of strings or of token-id lists");
  }
  if (req.prompts.empty()) bad("prompt", "Prompt cannot be empty");
  for (const auto& p : req.prompts) {
    if ((p.text && p.text->empty()) || (p.ids && p.ids->empty())) {
      bad("prompt", "Prompt cannot be empty");
    }
  }
  const int64_t max_tokens = get_int(body, "max_tokens").value_or(16);
  if (max_tokens < 0) bad("max_tokens", "max_tokens must be positive");
  sp["max_new_tokens"] = max_tokens;
  req.echo = get_bool(body, "echo", false);
  if (auto lp = get_int(body, "logprobs")) {
    if (*lp < 0 || *lp > 20) bad("logprobs", "logprobs must be between 0 and 20");
    req.logprobs = true;
    req.top_logprobs = static_cast<int32_t>(*lp);
  }
  req.params = finish_params(sp, preferred);
  return req;
}

std::string render_chat(const ChatRenderer& renderer, const ordered_json& body, bool offer_tools) {
  if (!renderer.tmpl) {
    bad("messages", "this model has no chat template; pass --chat-template or use /v1/completions");
  }
  ordered_json context = ordered_json::object();
  if (const auto* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) bad("chat_template_kwargs", "chat_template_kwargs must be an object");
    for (auto it = kwargs->begin(); it != kwargs->end(); ++it) context[it.key()] = it.value();
  }
  context["messages"] = body.at("messages");
  if (const auto* tools = field(body, "tools"); tools && offer_tools) {
    if (!tools->is_array()) bad("tools", "tools must be a list");
    context["tools"] = *tools;
  }
  context["add_generation_prompt"] = true;
  context["bos_token"] = renderer.bos_token;
  context["eos_token"] = renderer.eos_token;
  try {
    return renderer.tmpl->render(context);
  } catch (const std::exception& e) {
    bad("messages", fmt::format("cannot apply the chat template: {}", e.what()));
  }
}

namespace {

// Whether the sampling params already carry a grammar constraint (at most one is allowed).
bool has_grammar(const json& sp) {
  return sp.contains("regex") || sp.contains("ebnf") || sp.contains("json_schema");
}

}  // namespace

// response_format (chat): json_schema -> sampling json_schema (the schema as a string),
// json_object -> json_schema {"type": "object"}, text -> nothing.
void map_response_format(const ordered_json& body, json& sp) {
  const ordered_json* rf = field(body, "response_format");
  if (!rf) return;
  if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
    bad("response_format", "response_format must be an object with a string type");
  const std::string type = (*rf)["type"].get<std::string>();
  if (type == "text") return;
  if (has_grammar(sp)) bad("response_format", "Only one of regex, json_schema, or ebnf can be set.");
  if (type == "json_object") {
    sp["json_schema"] = R"({"type": "object"})";
  } else if (type == "json_schema") {
    const ordered_json* js = rf->contains("json_schema") ? &(*rf)["json_schema"] : nullptr;
    const ordered_json* schema = js && js->is_object() && js->contains("schema") ? &(*js)["schema"]
                                 : js && js->is_object() && js->contains("schema_") ? &(*js)["schema_"]
                                                                                    : nullptr;
    if (schema == nullptr || schema->is_null())
      bad("response_format", "schema_ is required for json_schema response format request.");
    sp["json_schema"] = schema->dump();  // declared property order kept (ordered_json)
  } else {
    bad("response_format", fmt::format("response_format type '{}' is not supported (text, "
                                       "json_object, json_schema)", type));
  }
}

namespace {

// tools must be [{"type": "function", "function": {"name": str, "parameters"?: object}}]; returns
// the names.
std::vector<std::string> tool_names_of(const ordered_json& tools) {
  if (!tools.is_array()) bad("tools", "tools must be a list");
  std::vector<std::string> names;
  for (const auto& tool : tools) {
    const ordered_json* fn = tool.is_object() ? field(tool, "function") : nullptr;
    if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      bad("tools", "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (const ordered_json* type = field(tool, "type");
        type && (!type->is_string() || type->get<std::string>() != "function"))
      bad("tools", fmt::format("tool type must be \"function\", got {}", type->dump()));
    if (const ordered_json* params = field(*fn, "parameters"); params && !params->is_object())
      bad("tools", fmt::format("the parameters of tool '{}' must be a JSON schema object",
                               (*fn)["name"].get<std::string>()));
    names.push_back((*fn)["name"].get<std::string>());
  }
  return names;
}

// Applies tools / tool_choice / reasoning options to `req` and the sampling params; returns
// whether the template should see the tools.
bool map_tools_and_reasoning(const ordered_json& body, json& sp, const ChatParsers& parsers,
                             OpenAIRequest& req) {
  const ordered_json* tools = field(body, "tools");
  const std::vector<std::string> names = tools ? tool_names_of(*tools) : std::vector<std::string>{};
  std::string choice = tools ? "auto" : "none";
  std::optional<std::string> named;
  if (const ordered_json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      choice = tc->get<std::string>();
      if (choice != "none" && choice != "auto" && choice != "required")
        bad("tool_choice", fmt::format("tool_choice must be none, auto, required or a named "
                                       "function, got '{}'",
                                       choice));
    } else if (tc->is_object() && tc->contains("function") && (*tc)["function"].is_object() &&
               (*tc)["function"].contains("name") && (*tc)["function"]["name"].is_string()) {
      choice = "named";
      named = (*tc)["function"]["name"].get<std::string>();
    } else {
      bad("tool_choice",
          "tool_choice must be none, auto, required or "
          "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
  }
  if (choice == "required" && names.empty())
    bad("tool_choice", "Tools cannot be empty if tool choice is set to required.");
  if (named && std::find(names.begin(), names.end(), *named) == names.end())
    bad("tool_choice", fmt::format("Tool '{}' not found in tools list.", *named));
  const bool parallel = get_bool(body, "parallel_tool_calls", true);
  const bool offer = tools && choice != "none";
  if (offer) req.tool_names = names;
  if (choice == "required" || choice == "named") {
    if (has_grammar(sp)) {
      log::warn(
          "request {}: tool_choice {} is not enforced because the request has its own "
          "regex/ebnf/json_schema/response_format constraint",
          req.rid, choice);
      req.tool_format = parsers.tool;
    } else {
      sp["json_schema"] = forced_tool_schema(*tools, named ? &*named : nullptr, parallel);
      req.forced_tool_calls = true;
    }
  } else if (choice == "auto" && !names.empty()) {
    req.tool_format = parsers.tool;
  }
  bool thinking = true;
  if (const ordered_json* kwargs = field(body, "chat_template_kwargs");
      kwargs && kwargs->is_object())
    if (auto it = kwargs->find("enable_thinking"); it != kwargs->end() && it->is_boolean())
      thinking = it->get<bool>();
  if (parsers.reasoning && thinking && !req.forced_tool_calls &&
      get_bool(body, "separate_reasoning", true)) {
    req.reasoning_format = parsers.reasoning;
  }
  return offer;
}

}  // namespace

OpenAIRequest parse_chat_request(const ordered_json& body, const json& preferred,
                                 const ChatRenderer& renderer, const ChatParsers& parsers) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  OpenAIRequest req;
  req.chat = true;
  json sp = json::object();
  map_common(body, sp, req);
  const ordered_json* messages = field(body, "messages");
  if (!messages) bad("messages", "messages is required");
  if (!messages->is_array()) bad("messages", "messages must be a list of message objects");
  if (messages->empty()) bad("messages", "Messages cannot be empty.");
  for (size_t i = 0; i < messages->size(); ++i) {
    const ordered_json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      bad("messages", "each message must be an object with a string role");
    }
    const std::string role = m["role"].get<std::string>();
    if (std::find(std::begin(kChatRoles), std::end(kChatRoles), role) == std::end(kChatRoles)) {
      bad(fmt::format("messages[{}].role", i),
          fmt::format("messages[{}].role '{}' is not a known role: use one of system, developer, "
                      "user, assistant, tool, function",
                      i, role));
    }
  }
  std::optional<int64_t> max_tokens = get_int(body, "max_completion_tokens");
  if (!max_tokens) max_tokens = get_int(body, "max_tokens");
  if (max_tokens && *max_tokens < 0) bad("max_tokens", "max_tokens must be positive");
  sp["max_new_tokens"] = max_tokens ? json(*max_tokens) : json(nullptr);
  req.logprobs = get_bool(body, "logprobs", false);
  if (auto top = get_int(body, "top_logprobs")) {
    if (*top < 0 || *top > 20) bad("top_logprobs", "top_logprobs must be between 0 and 20");
    req.top_logprobs = static_cast<int32_t>(*top);
  }
  map_response_format(body, sp);
  const bool offer_tools = map_tools_and_reasoning(body, sp, parsers, req);
  const ordered_json with_images =
      take_chat_images(*messages, renderer.image_placeholder, req.image_data);
  if (req.image_data.empty()) {
    req.prompts.push_back({render_chat(renderer, body, offer_tools), std::nullopt});
  } else {
    ordered_json flat = body;
    flat["messages"] = with_images;
    req.prompts.push_back({render_chat(renderer, flat, offer_tools), std::nullopt});
  }
  req.params = finish_params(sp, preferred);
  return req;
}

}  // namespace sable::server
