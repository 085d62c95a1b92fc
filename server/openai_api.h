// OpenAI-compatible /v1/completions and /v1/chat/completions: request parsing (OpenAI fields mapped
// onto SGLang's sampling parameters, the chat template applied) and the response objects and stream
// chunks, shaped as spec/openai_openapi.yaml requires (fields it marks required, such as
// choices[].logprobs and message.refusal, are present and null when there is nothing to say).
// Chat output can be split into reasoning_content, content and tool_calls (ChatOutputParser, built
// on tool_call_parser.h and reasoning_parser.h), and tool_choice can constrain decoding.
//
// Parsing throws HttpError (400, naming the field) or sampling::ValidationError. Thread-safe: plain
// functions; a ChatTemplate is immutable once compiled.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/backend.h"
#include "server/generate_api.h"
#include "server/reasoning_parser.h"
#include "server/tool_call_parser.h"

namespace sable::chat {
class ChatTemplate;
}

namespace sable::server {

struct OpenAIPrompt {
  std::optional<std::string> text;
  std::optional<std::vector<int32_t>> ids;
};

struct OpenAIRequest {
  bool chat = false;
  std::string model;  // as the client sent it ("default" when absent)
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  bool continuous_usage_stats = false; // stream_options.continuous_usage_stats
  bool echo = false;                   // completions: prepend the prompt
  std::vector<OpenAIPrompt> prompts;   // one per prompt (chat: exactly one)
  sampling::SamplingParams params;     // n is params.n
  bool logprobs = false;
  int32_t top_logprobs = 0;
  bool return_hidden_states = false;  // SGLang's extension: choices[i].hidden_states (non-stream)
  std::string rid;
  std::vector<std::string> image_data;  // chat: the messages' image_url parts, in order

  // Chat: tool calling and reasoning (tool_call_parser.h, reasoning_parser.h).
  std::vector<std::string> tool_names;              // functions offered (none with tool_choice none)
  std::optional<ToolCallFormat> tool_format;        // tool_choice auto: parse calls in this format
  bool forced_tool_calls = false;                   // required / named: the output is JSON calls
  std::optional<ReasoningFormat> reasoning_format;  // separate <think> reasoning
};

// The server's --tool-call-parser and --reasoning-parser (nullopt: off).
struct ChatParsers {
  std::optional<ToolCallFormat> tool;
  std::optional<ReasoningFormat> reasoning;
};

// What the chat template needs besides the messages.
struct ChatRenderer {
  std::shared_ptr<const chat::ChatTemplate> tmpl;  // null: the model has no chat template
  std::string bos_token;
  std::string eos_token;
  std::string image_placeholder;  // one image's prompt text; empty: the model takes no images
};

// `preferred`: the server's preferred_sampling_params (object or null).
OpenAIRequest parse_completion_request(const nlohmann::json& body, const nlohmann::json& preferred);
// `body` is the ordered form so that tools render with the client's key order.
// tools / tool_choice: "none" renders without the tools and parses nothing; "auto" (the default
// with tools) parses calls when parsers.tool is set; "required" or a named function sets the
// sampling json_schema to forced_tool_schema() (skipped, with a warning, when the request has its
// own regex/ebnf/json_schema/response_format: then it is parsed as auto). Reasoning is separated
// when parsers.reasoning is set, unless separate_reasoning is false,
// chat_template_kwargs.enable_thinking is false, or tool calls are forced.
OpenAIRequest parse_chat_request(const nlohmann::ordered_json& body,
                                 const nlohmann::json& preferred, const ChatRenderer& renderer,
                                 const ChatParsers& parsers = {});

// Renders messages (+tools unless !offer_tools, kwargs) with add_generation_prompt. Throws
// HttpError 400 on a template error or when there is no template.
std::string render_chat(const ChatRenderer& renderer, const nlohmann::ordered_json& body,
                        bool offer_tools = true);

// A chat output (whole, or one stream step) split as the request asks.
struct ChatParts {
  std::string reasoning;  // empty: none
  std::string content;
  std::vector<ToolCall> calls;        // complete calls
  std::vector<ToolCallDelta> deltas;  // calls as they stream (tool_call_parser.h)
};

// Per-choice incremental parsing of a chat output: reasoning first, then tool calls in the
// content (forced calls: the output is the calls' JSON, format kJson). Unknown functions are
// logged and dropped. Inactive (text passes through as content) when the request asks for
// neither. Not thread-safe.
class ChatOutputParser {
 public:
  explicit ChatOutputParser(const OpenAIRequest& req);
  bool active() const { return reasoning_ || tools_; }
  ChatParts feed(std::string_view text);
  ChatParts finish();
  int calls_started() const { return calls_started_; }

 private:
  ChatParts run(std::string_view text, bool last);

  std::optional<ReasoningParser> reasoning_;
  std::optional<ToolCallParser> tools_;
  int calls_started_ = 0;
};

// The whole output at once (what chat_response uses).
ChatParts parse_chat_output(const OpenAIRequest& req, std::string_view text);

// Identity of one response: "cmpl-<rid>" / "chatcmpl-<rid>", created, model.
struct ResponseHead {
  std::string id;
  int64_t created = 0;
  std::string model;
  std::string weight_version = "default";
  bool cache_report = false;  // usage.prompt_tokens_details
};

// One choice's output in order of index; `prompt_text` is used by echo.
struct ChoiceOutput {
  const GenerateOutput* out = nullptr;
  std::string prompt_text;
};

// "stop" | "length" | "abort" (null when unfinished), as SGLang reports it.
nlohmann::json openai_finish_reason(const std::optional<Finish>& finish);
nlohmann::json openai_matched_stop(const std::optional<Finish>& finish);

// usage over the choices; prompt tokens counted once per prompt (n samples share one).
nlohmann::json usage_json(const std::vector<ChoiceOutput>& choices, int32_t n, bool cache_report);

nlohmann::json completion_response(const ResponseHead& head, const OpenAIRequest& req,
                                   const std::vector<ChoiceOutput>& choices,
                                   const tokenizer::Tokenizer& tok);
nlohmann::json chat_response(const ResponseHead& head, const OpenAIRequest& req,
                             const std::vector<ChoiceOutput>& choices,
                             const tokenizer::Tokenizer& tok);

// Stream chunks. `delta` is the new output of choice `index`; `finish` set on its last chunk.
nlohmann::json completion_chunk(const ResponseHead& head, const OpenAIRequest& req, int index,
                                const Delta& delta, const tokenizer::Tokenizer& tok,
                                int64_t text_offset);
nlohmann::json chat_role_chunk(const ResponseHead& head, int index);
nlohmann::json chat_chunk(const ResponseHead& head, const OpenAIRequest& req, int index,
                          const Delta& delta, const tokenizer::Tokenizer& tok);
// The same through `parser` (active): delta.reasoning_content / content / tool_calls (a call's
// first entry has index, id, type and function.name, later ones index and function.arguments
// pieces), finish_reason "tool_calls" when calls were sent and generation stopped ("length" when
// it was cut). nullopt when there is nothing to send yet (text held back, no logprobs, not
// finished).
std::optional<nlohmann::json> chat_parsed_chunk(const ResponseHead& head, const OpenAIRequest& req,
                                                int index, const Delta& delta,
                                                const tokenizer::Tokenizer& tok,
                                                ChatOutputParser& parser);
// The closing chunk with "choices": [] and the usage.
nlohmann::json usage_chunk(const ResponseHead& head, bool chat, const nlohmann::json& usage);

}  // namespace sable::server
