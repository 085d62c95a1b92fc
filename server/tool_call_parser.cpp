// Incremental tool-call parsing per format and the forced tool_choice schema (see
// tool_call_parser.h).
#include "server/tool_call_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "server/text_scan.h"

namespace sable::server {

namespace {

using nlohmann::ordered_json;

constexpr std::string_view kQwenOpen = "<tool_call>";
constexpr std::string_view kQwenClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";


// One past the bracket that closes the object/array opening at s[start], or npos while it is still
// open. Strings (with escapes) are skipped; whether the JSON is valid is decided by the parser.
size_t json_value_end(std::string_view s, size_t start) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = start; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if ((c == '}' || c == ']') && --depth == 0)
      return i + 1;
  }
  return std::string_view::npos;
}

std::string compact(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// {"name": str, "arguments"|"parameters": object (or a string holding one)} -> a call.
std::optional<ToolCall> call_from_json(const ordered_json& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) {
    return std::nullopt;
  }
  ordered_json args = ordered_json::object();
  for (const char* key : {"arguments", "parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    args = *it;
    break;
  }
  if (args.is_string()) args = ordered_json::parse(args.get<std::string>(), nullptr, false);
  if (!args.is_object()) return std::nullopt;
  return ToolCall{name->get<std::string>(), compact(args)};
}

std::optional<ToolCall> call_from_text(std::string_view text) {
  const ordered_json j = ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return call_from_json(j);
}

}  // namespace

ParsedToolCalls collect_tool_calls(const std::vector<ToolCallOutput>& outputs) {
  ParsedToolCalls parsed;
  for (const ToolCallOutput& out : outputs) {
    for (const ToolCallPiece& p : out.pieces) {
      if (p.call)
        parsed.calls.push_back(*p.call);
      else
        parsed.content += p.content;
    }
    parsed.unknown.insert(parsed.unknown.end(), out.unknown.begin(), out.unknown.end());
  }
  return parsed;
}

std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name) {
  if (name == "qwen25" || name == "qwen") return ToolCallFormat::kQwen25;
  if (name == "llama3") return ToolCallFormat::kLlama3;
  if (name == "mistral") return ToolCallFormat::kMistral;
  return std::nullopt;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, std::vector<std::string> tool_names)
    : format_(format), tool_names_(std::move(tool_names)) {}

void ToolCallParser::emit_content(std::string_view text, ToolCallOutput& out) {
  if (skip_ws_) {
    text.remove_prefix(first_non_space(text));
    if (text.empty()) return;
    skip_ws_ = false;
  }
  const size_t last = trimmed_length(text);
  if (last == 0) {
    pending_ws_ += text;
    return;
  }
  std::string piece = std::move(pending_ws_);
  piece += text.substr(0, last);
  pending_ws_ = std::string(text.substr(last));
  if (!out.pieces.empty() && !out.pieces.back().call)
    out.pieces.back().content += piece;
  else
    out.pieces.push_back({std::move(piece), std::nullopt});
}

void ToolCallParser::emit_call(ToolCall call, ToolCallOutput& out) {
  pending_ws_.clear();
  skip_ws_ = true;
  python_tag_pending_ = false;
  if (std::find(tool_names_.begin(), tool_names_.end(), call.name) == tool_names_.end()) {
    out.unknown.push_back(std::move(call.name));
    return;
  }
  out.pieces.push_back({"", std::move(call)});
}

// Each step_* handles the current state once: true when it moved on (run again), false when it
// needs more text.
bool ToolCallParser::step_qwen(ToolCallOutput& out) {
  if (state_ == State::kStart) state_ = State::kText;
  if (state_ == State::kText) {
    const size_t open = buffer_.find(kQwenOpen);
    if (open == std::string::npos) {
      const size_t keep = partial_tag_suffix(buffer_, kQwenOpen);
      emit_content(std::string_view(buffer_).substr(0, buffer_.size() - keep), out);
      buffer_.erase(0, buffer_.size() - keep);
      return false;
    }
    emit_content(std::string_view(buffer_).substr(0, open), out);
    buffer_.erase(0, open);
    state_ = State::kCall;
    return true;
  }
  // kCall: buffer_ starts with <tool_call>. A JSON body ends where its object closes (so that a
  // "</tool_call>" inside a string does not end it); otherwise, at the first </tool_call>.
  const size_t i = first_non_space(buffer_, kQwenOpen.size());
  if (i == buffer_.size()) return false;
  size_t body_end = std::string::npos, end = std::string::npos;
  if (buffer_[i] == '{') {
    const size_t object_end = json_value_end(buffer_, i);
    if (object_end == std::string::npos) return false;  // finish() makes it content
    const std::string_view rest =
        std::string_view(buffer_).substr(first_non_space(buffer_, object_end));
    if (rest.starts_with(kQwenClose)) {
      body_end = object_end;
      end = buffer_.size() - rest.size() + kQwenClose.size();
    } else if (kQwenClose.starts_with(rest)) {
      return false;  // the closing tag may still come
    }
  }
  if (end == std::string::npos) {
    const size_t close = buffer_.find(kQwenClose, kQwenOpen.size());
    if (close == std::string::npos) return false;
    body_end = close;
    end = close + kQwenClose.size();
  }
  const std::string_view body =
      std::string_view(buffer_).substr(kQwenOpen.size(), body_end - kQwenOpen.size());
  if (auto call = call_from_text(body))
    emit_call(std::move(*call), out);
  else
    emit_content(std::string_view(buffer_).substr(0, end), out);  // malformed: plain text
  buffer_.erase(0, end);
  state_ = State::kText;
  return true;
}

bool ToolCallParser::step_llama3(ToolCallOutput& out) {
  // The rest of the region is not a call: it, and an unused <|python_tag|>, are content.
  auto malformed = [&] {
    std::string text = python_tag_pending_ ? std::string(kPythonTag) : std::string();
    python_tag_pending_ = false;
    text += buffer_;
    buffer_.clear();
    emit_content(text, out);
    state_ = State::kPlain;
    return true;
  };
  switch (state_) {
    case State::kStart: {
      const size_t i = first_non_space(buffer_);
      if (i == buffer_.size()) return false;
      state_ = buffer_[i] == '{' ? State::kCall : State::kText;
      return true;
    }
    case State::kText: {
      const size_t tag = buffer_.find(kPythonTag);
      if (tag == std::string::npos) {
        const size_t keep = partial_tag_suffix(buffer_, kPythonTag);
        emit_content(std::string_view(buffer_).substr(0, buffer_.size() - keep), out);
        buffer_.erase(0, buffer_.size() - keep);
        return false;
      }
      emit_content(std::string_view(buffer_).substr(0, tag), out);
      buffer_.erase(0, tag + kPythonTag.size());
      python_tag_pending_ = true;
      state_ = State::kCall;
      return true;
    }
    case State::kCall: {
      const size_t i = first_non_space(buffer_);
      if (i == buffer_.size()) return false;
      if (buffer_[i] != '{') return malformed();
      const size_t end = json_value_end(buffer_, i);
      if (end == std::string::npos) return false;
      const size_t next = first_non_space(buffer_, end);
      if (next == buffer_.size()) return false;  // ';' or the end of the output decides
      if (buffer_[next] != ';') return malformed();
      auto call = call_from_text(std::string_view(buffer_).substr(i, end - i));
      if (!call) return malformed();
      emit_call(std::move(*call), out);
      buffer_.erase(0, next + 1);
      return true;
    }
    case State::kPlain:
      emit_content(buffer_, out);
      buffer_.clear();
      return false;
  }
  return false;
}

bool ToolCallParser::step_mistral(ToolCallOutput& out) {
  if (state_ == State::kStart) state_ = State::kText;
  if (state_ == State::kText) {
    const size_t tag = buffer_.find(kMistralTag);
    if (tag == std::string::npos) {
      const size_t keep = partial_tag_suffix(buffer_, kMistralTag);
      emit_content(std::string_view(buffer_).substr(0, buffer_.size() - keep), out);
      buffer_.erase(0, buffer_.size() - keep);
      return false;
    }
    emit_content(std::string_view(buffer_).substr(0, tag), out);
    buffer_.erase(0, tag);
    state_ = State::kCall;
    return true;
  }
  // kCall: buffer_ starts with [TOOL_CALLS].
  const size_t i = first_non_space(buffer_, kMistralTag.size());
  if (i == buffer_.size()) return false;
  state_ = State::kText;
  if (buffer_[i] != '[') {  // not a call list: the marker is plain text
    emit_content(std::string_view(buffer_).substr(0, i), out);
    buffer_.erase(0, i);
    return true;
  }
  const size_t end = json_value_end(buffer_, i);
  if (end == std::string::npos) {
    state_ = State::kCall;
    return false;
  }
  const ordered_json list =
      ordered_json::parse(std::string_view(buffer_).substr(i, end - i), nullptr, false);
  std::vector<ToolCall> calls;
  if (list.is_array()) {
    for (const ordered_json& item : list) {
      auto call = call_from_json(item);
      if (!call) break;
      calls.push_back(std::move(*call));
    }
  }
  if (!calls.empty() && calls.size() == list.size()) {
    for (ToolCall& c : calls) emit_call(std::move(c), out);
  } else {
    emit_content(std::string_view(buffer_).substr(0, end), out);
  }
  buffer_.erase(0, end);
  return true;
}

void ToolCallParser::step(ToolCallOutput& out) {
  for (;;) {
    bool moved = false;
    switch (format_) {
      case ToolCallFormat::kQwen25:
        moved = step_qwen(out);
        break;
      case ToolCallFormat::kLlama3:
        moved = step_llama3(out);
        break;
      case ToolCallFormat::kMistral:
        moved = step_mistral(out);
        break;
    }
    if (!moved) return;
  }
}

// The output ended: a complete trailing llama3 call is a call; anything else held is content.
void ToolCallParser::finish_region(ToolCallOutput& out) {
  if (format_ == ToolCallFormat::kLlama3 && state_ == State::kCall) {
    const size_t i = first_non_space(buffer_);
    if (i < buffer_.size() && buffer_[i] == '{') {
      const size_t end = json_value_end(buffer_, i);
      if (end != std::string::npos && first_non_space(buffer_, end) == buffer_.size()) {
        if (auto call = call_from_text(std::string_view(buffer_).substr(i, end - i))) {
          emit_call(std::move(*call), out);
          buffer_.clear();
          return;
        }
      }
    }
    if (python_tag_pending_) buffer_.insert(0, kPythonTag);
  }
  emit_content(buffer_, out);
  buffer_.clear();
}

ToolCallOutput ToolCallParser::feed(std::string_view text) {
  ToolCallOutput out;
  buffer_ += text;
  step(out);
  return out;
}

ToolCallOutput ToolCallParser::finish() {
  ToolCallOutput out;
  step(out);
  finish_region(out);
  if (!pending_ws_.empty()) {
    if (!out.pieces.empty() && !out.pieces.back().call)
      out.pieces.back().content += pending_ws_;
    else
      out.pieces.push_back({std::move(pending_ws_), std::nullopt});
  }
  pending_ws_.clear();
  python_tag_pending_ = false;
  return out;
}

ParsedToolCalls parse_tool_calls(ToolCallFormat format, const std::vector<std::string>& tool_names,
                                 std::string_view text) {
  ToolCallParser parser(format, tool_names);
  std::vector<ToolCallOutput> outputs;
  outputs.push_back(parser.feed(text));
  outputs.push_back(parser.finish());
  return collect_tool_calls(outputs);
}

std::string forced_tool_schema(const ordered_json& tools, const std::string* named, bool parallel) {
  ordered_json defs = ordered_json::object();
  std::vector<ordered_json> alternatives;
  for (const ordered_json& tool : tools) {
    const ordered_json& fn = tool.at("function");
    const std::string name = fn.at("name").get<std::string>();
    if (named && name != *named) continue;
    ordered_json params = ordered_json::object();
    params["type"] = "object";
    if (auto it = fn.find("parameters"); it != fn.end() && !it->is_null()) params = *it;
    if (auto d = params.find("$defs"); d != params.end() && d->is_object()) {
      for (auto it = d->begin(); it != d->end(); ++it) defs[it.key()] = it.value();
      params.erase("$defs");
    }
    ordered_json name_schema = ordered_json::object();
    name_schema["const"] = name;
    ordered_json object = ordered_json::object();
    object["type"] = "object";
    object["properties"] = ordered_json::object();
    object["properties"]["name"] = std::move(name_schema);
    object["properties"]["parameters"] = std::move(params);
    object["required"] = ordered_json::array({"name", "parameters"});
    alternatives.push_back(std::move(object));
  }
  ordered_json schema;
  if (named) {
    schema = alternatives.empty() ? ordered_json::object() : alternatives.front();
  } else {
    schema = ordered_json::object();
    schema["type"] = "array";
    schema["minItems"] = 1;
    if (!parallel) schema["maxItems"] = 1;
    schema["items"] = ordered_json::object();
    schema["items"]["anyOf"] = ordered_json(alternatives);
  }
  if (!defs.empty()) schema["$defs"] = std::move(defs);
  return compact(schema);
}

ParsedToolCalls parse_forced_tool_calls(const std::vector<std::string>& tool_names,
                                        std::string_view text) {
  ParsedToolCalls parsed;
  const ordered_json j = ordered_json::parse(text, nullptr, false);
  std::vector<ToolCall> calls;
  bool ok = !j.is_discarded() && (j.is_object() || (j.is_array() && !j.empty()));
  if (ok) {
    for (const ordered_json& item : j.is_array() ? j : ordered_json::array({j})) {
      auto call = call_from_json(item);
      if (!call) {
        ok = false;
        break;
      }
      calls.push_back(std::move(*call));
    }
  }
  if (!ok) {
    parsed.content = std::string(text);
    return parsed;
  }
  for (ToolCall& c : calls) {
    if (std::find(tool_names.begin(), tool_names.end(), c.name) == tool_names.end()) {
      parsed.unknown.push_back(std::move(c.name));
    } else {
      parsed.calls.push_back(std::move(c));
    }
  }
  return parsed;
}

std::string make_tool_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t hi = rng(), lo = rng();
  return fmt::format("call_{:08x}{:016x}", static_cast<uint32_t>(hi), lo);
}

}  // namespace sable::server
