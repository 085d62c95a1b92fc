// Tool calls in chat output: SGLang's --tool-call-parser for the common formats, and the JSON
// constraint behind tool_choice "required" / a named function (spec/sglang_api.md section 3,
// "Tool calling").
//
// Formats (what the model writes):
//   qwen25 (alias qwen)  <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one block
//                        per call, anywhere in the text.
//   llama3               {"name": ..., "parameters": {...}} as the whole output, or after
//                        <|python_tag|>; several calls separated by ';'.
//   mistral              [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]
// A call object has a string "name" and an object "arguments" (or "parameters"; absent means {}).
//
// Rules, the same for the whole text and for a stream: text outside the calls is content;
// whitespace right before and right after a parsed call is dropped; a block that is malformed (bad
// JSON, no name, unterminated when the output ends) stays in the content verbatim; a call to a
// function not in `tools` is removed and its name reported in `unknown` (the caller logs it).
//
// ToolCallParser is incremental: feed() returns content as soon as it cannot be part of a call
// (text that may be the start of a marker, and trailing whitespace, are held back) and each call
// once its block is complete; finish() flushes. Any split of the text gives the same pieces,
// concatenated, as parse_tool_calls(). Not thread-safe (one per choice); the functions are pure
// except make_tool_call_id (random).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sable::server {

enum class ToolCallFormat { kQwen25, kLlama3, kMistral };

// "qwen25" | "qwen" | "llama3" | "mistral"; nullopt otherwise ("" means off).
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object as compact text
  bool operator==(const ToolCall&) const = default;
};

// One piece of output in order: either content text or a call.
struct ToolCallPiece {
  std::string content;
  std::optional<ToolCall> call;
};

struct ToolCallOutput {
  std::vector<ToolCallPiece> pieces;
  std::vector<std::string> unknown;  // names of dropped calls to functions not in tools
};

class ToolCallParser {
 public:
  ToolCallParser(ToolCallFormat format, std::vector<std::string> tool_names);

  ToolCallOutput feed(std::string_view text);
  ToolCallOutput finish();

 private:
  enum class State { kStart, kText, kCall, kPlain };
  void step(ToolCallOutput& out);
  bool step_qwen(ToolCallOutput& out);
  bool step_llama3(ToolCallOutput& out);
  bool step_mistral(ToolCallOutput& out);
  void finish_region(ToolCallOutput& out);
  void emit_content(std::string_view text, ToolCallOutput& out);
  void emit_call(ToolCall call, ToolCallOutput& out);

  ToolCallFormat format_;
  std::vector<std::string> tool_names_;
  State state_ = State::kStart;
  std::string buffer_;               // received, not yet emitted
  std::string pending_ws_;           // content whitespace that may precede a call
  bool skip_ws_ = false;             // drop whitespace that follows a call
  bool python_tag_pending_ = false;  // llama3: <|python_tag|> consumed, no call parsed after it
};

// The whole text at once.
struct ParsedToolCalls {
  std::string content;
  std::vector<ToolCall> calls;
  std::vector<std::string> unknown;
};
ParsedToolCalls parse_tool_calls(ToolCallFormat format, const std::vector<std::string>& tool_names,
                                 std::string_view text);
// The pieces of several feed()/finish() outputs, in order: content joined, calls, unknown names.
ParsedToolCalls collect_tool_calls(const std::vector<ToolCallOutput>& outputs);

// tool_choice "required" (named == nullptr) or a named function: the JSON schema, as text, that
// constrains the output. required: an array (minItems 1; maxItems 1 unless parallel) whose items
// are anyOf over the tools of {"name": {"const": name}, "parameters": <parameters or
// {"type": "object"}>}, both required; named: that one object. The tools' "$defs" move to the root
// so that their "#/$defs/..." references still resolve. `tools` must be validated (see
// openai_api.cpp).
std::string forced_tool_schema(const nlohmann::ordered_json& tools, const std::string* named,
                               bool parallel);

// The output of a forced tool_choice: an array of {"name", "parameters"} objects or one such
// object. When it is not (cut off by max_tokens), there are no calls and the text is the content.
ParsedToolCalls parse_forced_tool_calls(const std::vector<std::string>& tool_names,
                                        std::string_view text);

// "call_" and 24 random hex digits.
std::string make_tool_call_id();

}  // namespace sable::server
