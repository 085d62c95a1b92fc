// The "choices" grammar kind: the output must be exactly one of a list of strings (the spec is a
// JSON array of strings, e.g. ["yes", "no"]). Translated to a regex alternation of the literals.
#pragma once

#include <string>
#include <string_view>

namespace sable::grammar {

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) unless the spec is a non-empty JSON array of
// strings.
std::string choices_to_regex(std::string_view spec_json);

}  // namespace sable::grammar
