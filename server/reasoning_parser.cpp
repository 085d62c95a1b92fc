// Incremental <think>...</think> separation (see reasoning_parser.h).
#include "server/reasoning_parser.h"

#include "server/text_scan.h"

namespace sable::server {

namespace {

constexpr std::string_view kThinkStart = "<think>";
constexpr std::string_view kThinkEnd = "</think>";


}  // namespace

std::optional<ReasoningFormat> reasoning_format_from_name(std::string_view name) {
  if (name == "qwen3") return ReasoningFormat::kQwen3;
  if (name == "deepseek-r1") return ReasoningFormat::kDeepSeekR1;
  return std::nullopt;
}

ReasoningParser::ReasoningParser(ReasoningFormat format) : format_(format) {
  // DeepSeek-R1's template opens the block in the prompt: the output starts inside it.
  saw_reasoning_ = format == ReasoningFormat::kDeepSeekR1;
}

void ReasoningParser::emit_reasoning(std::string_view text, ReasoningPieces& out) {
  if (!reasoning_started_) text.remove_prefix(first_non_space(text));
  if (text.empty()) return;
  const size_t last = trimmed_length(text);
  if (last == 0) {
    pending_ws_ += text;
    return;
  }
  out.reasoning += pending_ws_;
  out.reasoning += text.substr(0, last);
  pending_ws_ = std::string(text.substr(last));
  reasoning_started_ = true;
}

void ReasoningParser::step(ReasoningPieces& out) {
  for (;;) {
    switch (state_) {
      case State::kStart: {
        const std::string_view rest = std::string_view(buffer_).substr(first_non_space(buffer_));
        if (rest.empty()) return;
        if (rest.starts_with(kThinkStart)) {
          buffer_ = std::string(rest.substr(kThinkStart.size()));
          state_ = State::kReasoning;
          saw_reasoning_ = true;
          continue;
        }
        if (kThinkStart.starts_with(rest)) return;  // maybe the tag, not complete yet
        state_ = format_ == ReasoningFormat::kDeepSeekR1 ? State::kReasoning : State::kContent;
        continue;
      }
      case State::kReasoning: {
        const size_t end = buffer_.find(kThinkEnd);
        if (end != std::string::npos) {
          emit_reasoning(std::string_view(buffer_).substr(0, end), out);
          pending_ws_.clear();
          buffer_.erase(0, end + kThinkEnd.size());
          state_ = State::kAfterReasoning;
          continue;
        }
        const size_t hold = partial_tag_suffix(buffer_, kThinkEnd);
        emit_reasoning(std::string_view(buffer_).substr(0, buffer_.size() - hold), out);
        buffer_.erase(0, buffer_.size() - hold);
        return;
      }
      case State::kAfterReasoning:
        buffer_.erase(0, first_non_space(buffer_));
        if (buffer_.empty()) return;
        state_ = State::kContent;
        continue;
      case State::kContent:
        out.content += buffer_;
        buffer_.clear();
        return;
    }
  }
}

ReasoningPieces ReasoningParser::feed(std::string_view text) {
  ReasoningPieces out;
  buffer_ += text;
  step(out);
  return out;
}

ReasoningPieces ReasoningParser::finish() {
  ReasoningPieces out;
  step(out);
  switch (state_) {
    case State::kStart:
      // Only whitespace or the start of a tag came: qwen3 keeps it as content; for deepseek-r1 it
      // is (cut-off) reasoning.
      if (format_ == ReasoningFormat::kDeepSeekR1)
        emit_reasoning(buffer_, out);
      else
        out.content += buffer_;
      break;
    case State::kReasoning:  // cut off while thinking: the held-back bytes are reasoning
      emit_reasoning(buffer_, out);
      break;
    case State::kAfterReasoning:
    case State::kContent:
      break;
  }
  buffer_.clear();
  pending_ws_.clear();
  return out;
}

ReasoningSplit split_reasoning(ReasoningFormat format, std::string_view text) {
  ReasoningParser parser(format);
  ReasoningPieces a = parser.feed(text);
  ReasoningPieces b = parser.finish();
  return {parser.saw_reasoning(), a.reasoning + b.reasoning, a.content + b.content};
}

}  // namespace sable::server
