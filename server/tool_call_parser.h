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
//   json (internal)      tool_choice "required" / a named function: the whole output is one call
//                        object or a JSON array of them, {"name": ..., "parameters": {...}}
//                        (decoding is constrained by forced_tool_schema()).
// A call object has a string "name" and an object "arguments" (or "parameters"; absent means {}).
//
// Rules, the same for the whole text and for a stream: text outside the calls is content;
// whitespace right before and right after a parsed call is dropped; a block that is malformed (bad
// JSON, no name, unterminated before its call started) stays in the content verbatim (kJson: an
// unfinished tail is dropped, the forced output is never content); a call to a
// function not in `tools` is removed and its name reported in `unknown` (the caller logs it).
//
// Streaming (ToolCallOutput::deltas, as SGLang's and vLLM's parsers do it): a call *starts* once
// its name is complete, names a function in `tools`, and its arguments object has begun; its first
// delta carries the name, later ones the arguments text as it grows (the raw text, never past a
// byte that cannot continue valid JSON). A started call is never content: if the output ends
// inside it (max_tokens), its deltas were sent but it is not among the complete calls; if it turns
// out malformed, the rest of its block is dropped. A complete call is in `pieces` with its
// arguments re-serialized compactly (a call of a known function whose arguments never began
// streaming, e.g. no "arguments" member, comes whole in one delta when its block closes).
// Whether a call starts depends only on the text up to its arguments' first byte, so any split of
// the text gives the same pieces, concatenated, as parse_tool_calls(), and deltas whose arguments
// concatenate to the complete calls' (as JSON).
// Not thread-safe (one per choice); the functions are pure except make_tool_call_id (random).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sable::server {

enum class ToolCallFormat { kQwen25, kLlama3, kMistral, kJson };

// "qwen25" | "qwen" | "llama3" | "mistral"; nullopt otherwise ("" means off).
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object as compact text
  bool operator==(const ToolCall&) const = default;
};

// One piece of output in order: either content text or a complete call.
struct ToolCallPiece {
  std::string content;
  std::optional<ToolCall> call;
};

// One step of a call as it streams: the first delta of a call has its name, the others pieces of
// its arguments text (the first may have both).
struct ToolCallDelta {
  int index = 0;          // the call's place among the output's calls: 0, 1, ...
  std::string name;       // set on the call's first delta only
  std::string arguments;  // the next piece of the arguments text
};

struct ToolCallOutput {
  std::vector<ToolCallPiece> pieces;  // content and complete calls, in order
  std::vector<ToolCallDelta> deltas;  // every call as it streams
  std::vector<std::string> unknown;   // names of dropped calls to functions not in tools
};

class ToolCallParser {
 public:
  ToolCallParser(ToolCallFormat format, std::vector<std::string> tool_names);

  ToolCallOutput feed(std::string_view text);
  ToolCallOutput finish();

 private:
  enum class State { kStart, kText, kCall, kPlain };
  // A call object whose block is still open (at most one at a time).
  struct OpenCall {
    bool started = false;
    int index = -1;
    std::string name;
    size_t offset = 0;     // where its '{' is in buffer_
    size_t args_sent = 0;  // bytes of its arguments text sent
  };
  void step(ToolCallOutput& out);
  bool step_qwen(ToolCallOutput& out);
  bool step_llama3(ToolCallOutput& out);
  bool step_mistral(ToolCallOutput& out);
  bool step_json(ToolCallOutput& out);
  bool step_list(size_t start, ToolCallOutput& out);
  void finish_region(ToolCallOutput& out);
  void emit_content(std::string_view text, ToolCallOutput& out);
  void emit_call(ToolCall call, ToolCallOutput& out);
  void stream_call(size_t offset, ToolCallOutput& out);
  void close_call(std::optional<ToolCall> call, std::string_view raw, ToolCallOutput& out);
  bool known(const std::string& name) const;

  ToolCallFormat format_;
  std::vector<std::string> tool_names_;
  State state_ = State::kStart;
  std::string buffer_;               // received, not yet emitted
  std::string pending_ws_;           // content whitespace that may precede a call
  bool skip_ws_ = false;             // drop whitespace that follows a call
  bool python_tag_pending_ = false;  // llama3: <|python_tag|> consumed, no call parsed after it
  OpenCall open_;
  int next_index_ = 0;     // calls with deltas so far
  size_t list_closed_ = 0;  // mistral/json lists: elements already closed
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

// The output of a forced tool_choice (format kJson): an array of {"name", "parameters"} objects or
// one such object. Cut off by max_tokens: the calls completed before the cut, no content.
ParsedToolCalls parse_forced_tool_calls(const std::vector<std::string>& tool_names,
                                        std::string_view text);

// "call_" and 24 random hex digits.
std::string make_tool_call_id();

}  // namespace sable::server
