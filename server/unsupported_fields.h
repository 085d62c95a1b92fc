// Request fields of SGLang's API that this server does not implement (video and audio inputs,
// sessions, custom logit processors; image_data is parsed by the routes that take images). A request that sets one gets a 400 naming it
// instead of an answer that silently ignores it; a null, false or empty value is accepted, since
// clients often send defaults.
#pragma once

#include <string>
#include <utility>

#include "core/sampling/sampling_params.h"

namespace sable::server {

template <class Json>
void reject_unsupported_fields(const Json& body) {
  static const std::pair<const char*, const char*> kUnsupported[] = {
      {"video_data", "video inputs are not supported: this server serves text-only models"},
      {"audio_data", "audio inputs are not supported: this server serves text-only models"},
      {"session_params", "sessions are not supported by this server"},
      {"custom_logit_processor", "custom logit processors are not supported by this server"},
  };
  if (!body.is_object()) return;
  for (const auto& [name, why] : kUnsupported) {
    auto it = body.find(name);
    if (it == body.end()) continue;
    const auto& v = *it;
    const bool unset = v.is_null() || (v.is_boolean() && !v.template get<bool>()) ||
                       ((v.is_string() || v.is_array() || v.is_object()) && v.empty());
    if (!unset) throw sampling::ValidationError(name, std::string(name) + ": " + why);
  }
}

}  // namespace sable::server
