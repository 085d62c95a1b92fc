// Incremental tool-call parsing per format and the forced tool_choice schema (see
// tool_call_parser.h).
#include "server/tool_call_parser.h"

#include <algorithm>

#include "server/call_object_scan.h"
#include "server/text_scan.h"

namespace sable::server {

namespace {

constexpr std::string_view kQwenOpen = "<tool_call>";
constexpr std::string_view kQwenClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";

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
  if (name == "mistral") return ToolCallFormat::kMistral;  // kJson is internal: no name
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

bool ToolCallParser::known(const std::string& name) const {
  return std::find(tool_names_.begin(), tool_names_.end(), name) != tool_names_.end();
}

// A whole call that never streamed: unknown ones are reported, known ones get one delta.
void ToolCallParser::emit_call(ToolCall call, ToolCallOutput& out) {
  pending_ws_.clear();
  skip_ws_ = true;
  python_tag_pending_ = false;
  if (!known(call.name)) {
    out.unknown.push_back(std::move(call.name));
    return;
  }
  out.deltas.push_back({next_index_++, call.name, call.arguments});
  out.pieces.push_back({"", std::move(call)});
}

// The call object at buffer_[offset] (open or complete): starts the call once it may, then sends
// the arguments text received since the last delta.
void ToolCallParser::stream_call(size_t offset, ToolCallOutput& out) {
  const std::string_view text = std::string_view(buffer_).substr(offset);
  const CallObjectScan scan = scan_call_object(text);
  constexpr size_t npos = std::string_view::npos;
  if (!open_.started) {
    if (!scan.name || scan.args_begin == npos || scan.args_begin >= scan.valid_end ||
        text[scan.args_begin] != '{' || !known(*scan.name))
      return;
    open_ = {true, next_index_++, *scan.name, offset, 0};
    pending_ws_.clear();
    python_tag_pending_ = false;
    out.deltas.push_back({open_.index, open_.name, ""});
  }
  const size_t from = scan.args_begin + open_.args_sent;
  const size_t until = std::min(scan.args_end, scan.valid_end);
  if (until > from) {
    out.deltas.push_back({open_.index, "", std::string(text.substr(from, until - from))});
    open_.args_sent += until - from;
  }
}

// The block of a call ended: `call` is what it parsed to (nullopt: malformed), `raw` its text.
// A started call becomes a call if it parsed (else it is dropped); any other block is a call,
// an unknown call, or (malformed) content, as before streaming existed.
void ToolCallParser::close_call(std::optional<ToolCall> call, std::string_view raw,
                                ToolCallOutput& out) {
  if (!open_.started) {
    if (call)
      emit_call(std::move(*call), out);
    else
      emit_content(raw, out);
    return;
  }
  if (call && call->name == open_.name) out.pieces.push_back({"", std::move(*call)});
  open_ = {};
  pending_ws_.clear();
  skip_ws_ = true;
  python_tag_pending_ = false;
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
    stream_call(i, out);
    const size_t object_end = json_value_end(buffer_, i);
    if (object_end == std::string::npos) return false;  // finish() decides
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
  close_call(call_from_text(body), std::string_view(buffer_).substr(0, end), out);
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
      stream_call(i, out);
      const size_t end = json_value_end(buffer_, i);
      if (end == std::string::npos) return false;
      const size_t next = first_non_space(buffer_, end);
      if (next == buffer_.size()) return false;  // ';' or the end of the output decides
      const bool separator = buffer_[next] == ';';
      auto call = call_from_text(std::string_view(buffer_).substr(i, end - i));
      if ((!separator || !call) && !open_.started) return malformed();
      close_call(std::move(call), {}, out);  // a started call: the text after it is content
      buffer_.erase(0, separator ? next + 1 : end);
      if (!separator) state_ = State::kPlain;
      return true;
    }
    case State::kPlain:
      emit_content(buffer_, out);
      buffer_.clear();
      return false;
  }
  return false;
}

// The JSON array of call objects at buffer_[start] ('['): each element is streamed and closed as
// it completes. True once the list closed (buffer_ consumed through it). Not a list of calls: as
// content, from the element that failed (the whole region when no call of it started).
bool ToolCallParser::step_list(size_t start, ToolCallOutput& out) {
  size_t pos = start + 1;
  auto not_calls = [&](size_t from) {
    const size_t list_end = json_value_end(buffer_, start);
    if (list_end == std::string::npos) return false;  // finish() decides
    if (list_closed_ == 0 && !open_.started) from = 0;
    emit_content(std::string_view(buffer_).substr(from, list_end - from), out);
    buffer_.erase(0, list_end);
    list_closed_ = 0;
    return true;
  };
  for (size_t k = 0;; ++k) {
    pos = first_non_space(buffer_, pos);
    if (pos == buffer_.size()) return false;
    if (buffer_[pos] != '{') return not_calls(pos);
    if (k >= list_closed_) stream_call(pos, out);
    const size_t end = json_value_end(buffer_, pos);
    if (end == std::string::npos) return false;
    if (k >= list_closed_) {
      auto call = call_from_text(std::string_view(buffer_).substr(pos, end - pos));
      if (!call && !open_.started) return not_calls(pos);
      close_call(std::move(call), {}, out);
      ++list_closed_;
    }
    pos = first_non_space(buffer_, end);
    if (pos == buffer_.size()) return false;
    if (buffer_[pos] == ']') {
      buffer_.erase(0, pos + 1);
      list_closed_ = 0;
      return true;
    }
    if (buffer_[pos] != ',') return not_calls(pos);
    ++pos;
  }
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
  if (buffer_[i] != '[') {  // not a call list: the marker is plain text
    state_ = State::kText;
    emit_content(std::string_view(buffer_).substr(0, i), out);
    buffer_.erase(0, i);
    return true;
  }
  if (!step_list(i, out)) return false;
  state_ = State::kText;
  return true;
}

// The forced output: one call object or a list of them; anything after it is content.
bool ToolCallParser::step_json(ToolCallOutput& out) {
  if (state_ == State::kPlain || state_ == State::kText) {
    emit_content(buffer_, out);
    buffer_.clear();
    return false;
  }
  const size_t i = first_non_space(buffer_);
  if (i == buffer_.size()) return false;
  if (buffer_[i] == '[') {
    if (!step_list(i, out)) return false;
  } else if (buffer_[i] == '{') {
    stream_call(i, out);
    const size_t end = json_value_end(buffer_, i);
    if (end == std::string::npos) return false;
    close_call(call_from_text(std::string_view(buffer_).substr(i, end - i)),
               std::string_view(buffer_).substr(0, end), out);
    buffer_.erase(0, end);
  }
  state_ = State::kPlain;
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
      case ToolCallFormat::kJson:
        moved = step_json(out);
        break;
    }
    if (!moved) return;
  }
}

// The output ended. A started call whose object is complete is a call (its closing tag was cut
// off), an incomplete one is dropped with the rest of its block; a complete trailing llama3 call
// is a call; a forced (kJson) output's unfinished tail is dropped; anything else is content.
void ToolCallParser::finish_region(ToolCallOutput& out) {
  if (open_.started) {
    const std::string_view object = std::string_view(buffer_).substr(open_.offset);
    const size_t end = json_value_end(object, 0);
    close_call(end == std::string::npos ? std::nullopt : call_from_text(object.substr(0, end)), {},
               out);
    buffer_.clear();
    list_closed_ = 0;
    return;
  }
  // A list whose calls were sent, cut before it closed, or a forced output cut before its first
  // call started: nothing else (a forced output is all calls, never content).
  if (list_closed_ > 0 || (format_ == ToolCallFormat::kJson && state_ != State::kPlain)) {
    buffer_.clear();
    list_closed_ = 0;
    return;
  }
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

ParsedToolCalls parse_forced_tool_calls(const std::vector<std::string>& tool_names,
                                        std::string_view text) {
  return parse_tool_calls(ToolCallFormat::kJson, tool_names, text);
}

}  // namespace sable::server
