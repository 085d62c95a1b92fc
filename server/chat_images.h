// Images in OpenAI chat messages: content parts {"type": "image_url", "image_url": {"url": ...,
// "detail": ...}} (or "image_url": "<url>"). Each is taken out of its message, in order, as an
// image reference for the engine (a URL, a data: URL, base64 or a server path), and the message's
// content list becomes one string in which every image part is the model's placeholder text (for
// Qwen2.5-VL <|vision_start|><|image_pad|><|vision_end|>), text parts joined as they come. Every
// chat template that takes string content then renders it, as SGLang's own chat templates do.
// `detail` is accepted (auto | low | high) and has no effect: the processor's pixel bounds decide.
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sable::server {

// The messages with their image parts replaced, appending the references to `images`; the
// messages unchanged (and nothing appended) when none has an image part. `placeholder` empty means
// the model takes no image input: an image part is then a 400 naming the message.
nlohmann::ordered_json take_chat_images(const nlohmann::ordered_json& messages,
                                        const std::string& placeholder,
                                        std::vector<std::string>& images);

}  // namespace sable::server
