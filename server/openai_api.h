// OpenAI-compatible /v1/completions and /v1/chat/completions: request parsing (OpenAI fields mapped
// onto SGLang's sampling parameters, the chat template applied) and the response objects and stream
// chunks, shaped as spec/openai_openapi.yaml requires (fields it marks required, such as
// choices[].logprobs and message.refusal, are present and null when there is nothing to say).
//
// Parsing throws HttpError (400, naming the field) or sampling::ValidationError. Thread-safe: plain
// functions; a ChatTemplate is immutable once compiled.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/backend.h"
#include "server/generate_api.h"

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
  std::string rid;
};

// What the chat template needs besides the messages.
struct ChatRenderer {
  std::shared_ptr<const chat::ChatTemplate> tmpl;  // null: the model has no chat template
  std::string bos_token;
  std::string eos_token;
};

// `preferred`: the server's preferred_sampling_params (object or null).
OpenAIRequest parse_completion_request(const nlohmann::json& body, const nlohmann::json& preferred);
// `body` is the ordered form so that tools render with the client's key order.
OpenAIRequest parse_chat_request(const nlohmann::ordered_json& body,
                                 const nlohmann::json& preferred, const ChatRenderer& renderer);

// Renders messages (+tools, kwargs) with add_generation_prompt. Throws HttpError 400 on a template
// error or when there is no template.
std::string render_chat(const ChatRenderer& renderer, const nlohmann::ordered_json& body);

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
// The closing chunk with "choices": [] and the usage.
nlohmann::json usage_chunk(const ResponseHead& head, bool chat, const nlohmann::json& usage);

}  // namespace sable::server
