// Choices -> regex (see choices.h).
#include "choices.h"

#include <nlohmann/json.hpp>

#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {

std::string choices_to_regex(std::string_view spec_json) {
  using sable::cpp::fail;
  nlohmann::json spec;
  try {
    spec = nlohmann::json::parse(spec_json);
  } catch (const nlohmann::json::exception& e) {
    fail(SABLE_ERR_INVALID_ARGUMENT, std::string("the spec is not valid JSON: ") + e.what());
  }
  if (!spec.is_array() || spec.empty())
    fail(SABLE_ERR_INVALID_ARGUMENT, "the spec must be a non-empty JSON array of strings");
  std::string out = "(?:";
  for (size_t i = 0; i < spec.size(); ++i) {
    if (!spec[i].is_string())
      fail(SABLE_ERR_INVALID_ARGUMENT, "choice " + std::to_string(i) + " is not a string");
    if (i) out += '|';
    out += escape_regex_literal(spec[i].get<std::string>());
  }
  return out + ")";
}

}  // namespace sable::grammar
