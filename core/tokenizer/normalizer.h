// Normalizers of tokenizer.json ("normalizer"): Unicode forms (utf8proc), Prepend, Replace,
// Lowercase, Strip and Sequence. Built once at load; apply() is const and thread-safe.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace sable::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites text (valid UTF-8 in, valid UTF-8 out) in place.
  virtual void apply(std::string& text) const = 0;
};

// Builds the normalizer described by a tokenizer.json "normalizer" object; returns nullptr for
// JSON null. Throws std::runtime_error naming the component type when it is not supported.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec);

}  // namespace sable::tokenizer
