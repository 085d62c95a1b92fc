// Image parts of chat messages (see chat_images.h).
#include "server/chat_images.h"

#include <fmt/format.h>

#include "server/http_error.h"

namespace sable::server {
namespace {

using nlohmann::ordered_json;

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw HttpError::bad_request(message, field);
}

bool is_image_part(const ordered_json& part) {
  return part.is_object() && part.contains("type") && part["type"].is_string() &&
         part["type"].get<std::string>() == "image_url";
}

// The URL of an image_url part.
std::string image_url(const ordered_json& part, const std::string& where) {
  const auto it = part.find("image_url");
  if (it != part.end() && it->is_string()) return it->get<std::string>();
  if (it != part.end() && it->is_object() && it->contains("url") && (*it)["url"].is_string()) {
    if (const auto d = it->find("detail"); d != it->end() && !d->is_null()) {
      const std::string detail = d->is_string() ? d->get<std::string>() : "";
      if (detail != "auto" && detail != "low" && detail != "high")
        bad(where, fmt::format("{}.image_url.detail must be auto, low or high", where));
    }
    return (*it)["url"].get<std::string>();
  }
  bad(where, fmt::format("{}: an image_url part needs \"image_url\": {{\"url\": string}}", where));
}

}  // namespace

ordered_json take_chat_images(const ordered_json& messages, const std::string& placeholder,
                              std::vector<std::string>& images) {
  bool any = false;
  for (const auto& m : messages)
    if (m.is_object() && m.contains("content") && m["content"].is_array())
      for (const auto& part : m["content"]) any = any || is_image_part(part);
  if (!any) return messages;
  ordered_json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    ordered_json& m = out[i];
    if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
    bool has_image = false;
    for (const auto& part : m["content"]) has_image = has_image || is_image_part(part);
    if (!has_image) continue;
    std::string text;
    for (size_t k = 0; k < m["content"].size(); ++k) {
      const ordered_json& part = m["content"][k];
      const std::string where = fmt::format("messages[{}].content[{}]", i, k);
      if (is_image_part(part)) {
        if (placeholder.empty())
          bad(where, fmt::format("{}: this model takes no image input (it is not a "
                                 "vision-language model)",
                                 where));
        images.push_back(image_url(part, where));
        text += placeholder;
      } else if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") &&
                 part["text"].is_string()) {
        text += part["text"].get<std::string>();
      } else {
        bad(where, fmt::format("{}: a message with images may have text and image_url parts "
                               "only",
                               where));
      }
    }
    m["content"] = text;
  }
  return out;
}

}  // namespace sable::server
