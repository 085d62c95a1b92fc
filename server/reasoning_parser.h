// Separates a reasoning model's thinking from its answer: the text inside <think>...</think> goes
// to `reasoning_content`, the rest to `content` (SGLang's --reasoning-parser; spec/sglang_api.md
// section 3, "Reasoning").
//
// Formats:
//   qwen3        a reasoning block only when the output opens with <think> (leading whitespace
//                allowed); otherwise the whole output is content.
//   deepseek-r1  the output starts inside the reasoning block; an opening <think> is optional, and
//                without a </think> everything is reasoning (cut off while thinking).
// Whitespace at both ends of the reasoning and at the start of the content after </think> is
// dropped. There is at most one reasoning block; a later <think> is plain content.
//
// ReasoningParser is incremental: feed() text as it is generated and it returns what is safe to
// emit, holding back text that may be the start of a tag (or whitespace that may turn out to be
// trailing); finish() flushes the rest. Feeding the whole text at once and cutting it anywhere give
// the same result, so the non-stream response is `split_reasoning()`. Not thread-safe (one per
// choice); the functions are pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sable::server {

enum class ReasoningFormat { kQwen3, kDeepSeekR1 };

// "qwen3" | "deepseek-r1"; nullopt for anything else ("" means off).
std::optional<ReasoningFormat> reasoning_format_from_name(std::string_view name);

// What one step produced; the reasoning always precedes the content in the output.
struct ReasoningPieces {
  std::string reasoning;
  std::string content;
};

class ReasoningParser {
 public:
  explicit ReasoningParser(ReasoningFormat format);

  ReasoningPieces feed(std::string_view text);
  ReasoningPieces finish();

  // A reasoning block was opened (reasoning_content is a string, not null).
  bool saw_reasoning() const { return saw_reasoning_; }

 private:
  enum class State { kStart, kReasoning, kAfterReasoning, kContent };
  void step(ReasoningPieces& out);
  void emit_reasoning(std::string_view text, ReasoningPieces& out);

  ReasoningFormat format_;
  State state_ = State::kStart;
  std::string buffer_;              // received, not yet emitted
  std::string pending_ws_;          // reasoning whitespace that may be trailing
  bool reasoning_started_ = false;  // a non-space reasoning character was emitted
  bool saw_reasoning_ = false;
};

// The whole text at once: {reasoning, content}; `has_reasoning` tells whether a block was found.
struct ReasoningSplit {
  bool has_reasoning = false;
  std::string reasoning;
  std::string content;
};
ReasoningSplit split_reasoning(ReasoningFormat format, std::string_view text);

}  // namespace sable::server
