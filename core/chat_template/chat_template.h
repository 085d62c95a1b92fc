// Renders Hugging Face chat templates: the Jinja subset that `tokenizer_config.json`'s
// `chat_template` uses, with the environment transformers builds (trim_blocks, lstrip_blocks,
// loop controls, its own `tojson`, `raise_exception`, `strftime_now`).
//
// A template is compiled once (lexed and parsed into a tree) and then rendered for many requests.
// Errors name the template line: TemplateError's message reads "chat template line N: ...".
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace sable::chat {

// A parse or render error. line() is 1-based (0 when no line applies).
class TemplateError : public std::runtime_error {
 public:
  TemplateError(int line, const std::string& detail);
  int line() const noexcept { return line_; }
  // The message without the "chat template line N: " prefix (for raise_exception: its text).
  const std::string& detail() const noexcept { return detail_; }

 private:
  int line_;
  std::string detail_;
};

// Bounds that keep a hostile template from hanging or exhausting memory. A render that passes
// one throws TemplateError naming the limit.
struct RenderOptions {
  // What strftime_now() formats; unset means the current local time.
  std::optional<std::time_t> now;
  std::size_t max_output_bytes = std::size_t{256} << 20;  // also bounds every built string
  std::uint64_t max_steps = 50'000'000;                   // loop iterations + macro calls
  int max_call_depth = 200;                               // nested macro calls
};

namespace detail {
struct Template;  // the parsed tree (core/chat_template/ast.h)
}

class ChatTemplate {
 public:
  // Parses once; throws TemplateError (derived from std::runtime_error) whose message names the
  // line.
  static std::shared_ptr<const ChatTemplate> compile(std::string_view source);

  // context: {"messages": [...], "tools": [...] or absent, "add_generation_prompt": bool,
  // "bos_token": "...", "eos_token": "...", plus extra kwargs (e.g. "enable_thinking")}.
  // Thread-safe (const). Object keys keep the context's order only with ordered_json: tojson of
  // `tools` then prints keys as the client sent them, as Python's json.dumps does.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context, const RenderOptions& options) const;
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options) const;

  explicit ChatTemplate(std::unique_ptr<detail::Template> tree);
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

 private:
  std::unique_ptr<detail::Template> tree_;
};

}  // namespace sable::chat
