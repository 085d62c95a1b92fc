// libFuzzer target for the chat-template renderer: any input either compiles or throws
// TemplateError, and a compiled template either renders or throws TemplateError, within small
// limits. Anything else (a crash, a sanitizer report, another exception, a hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "héllo <tool_response>"},
      {"role": "assistant", "content": "<think>\nr\n</think>\n\nok",
       "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1.5}}}]},
      {"role": "tool", "content": "42"}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "enable_thinking": false
  })");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  std::shared_ptr<const sable::chat::ChatTemplate> tpl;
  try {
    tpl = sable::chat::ChatTemplate::compile(source);
  } catch (const sable::chat::TemplateError&) {
    return 0;
  }
  sable::chat::RenderOptions options;
  options.now = 0;
  options.max_output_bytes = 1 << 20;
  options.max_steps = 20000;
  options.max_call_depth = 20;
  try {
    (void)tpl->render(context(), options);
  } catch (const sable::chat::TemplateError&) {
  }
  return 0;
}
