// What goes between the quotes of a JSON string, for the JSON schema front end: the regexes are
// over the JSON *text* (escapes included), while schema keywords speak of the decoded string.
//
// - pattern: the pattern's language (a full match; the converter first wraps unanchored ends for
//   JSON Schema's search semantics, key_patterns.h) re-encoded character by character: `"` as \",
//   `\` as \\, control characters as \b \f \n \r \t or \u00XX, everything else raw.
// - format: date-time, date, time (RFC 3339), email (a dot-atom local part and a domain), uuid,
//   ipv4 (dotted quad without leading zeros), ipv6 (RFC 4291 text forms, hex groups with `::`),
//   uri (RFC 3986 absolute URI: scheme ":" hier-part, optional query and fragment), hostname
//   (RFC 1123 labels; host-name and ip-address are draft 3's names of hostname and ipv4).
// - keys that are none of a set of names (additionalProperties beside properties), unescaped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sable::grammar {

// The regex (inside the quotes) of the JSON strings whose decoded text fully matches `pattern`.
// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) when the pattern does not parse.
std::string json_string_pattern_regex(std::string_view pattern);

// The same for the strings of `pattern` with lo..hi code points (hi < 0: no upper bound), when the
// pattern is fixed-length parts around one repeated code point set (`[a-z0-9-]+`, `[A-Z][a-z]*`):
// that repetition's bounds take the length bounds in. nullopt for other patterns.
std::optional<std::string> json_string_pattern_regex_within(std::string_view pattern, int64_t lo,
                                                            int64_t hi);

// The regex (inside the quotes) of a supported format, or "" when the format is not one.
std::string json_string_format_regex(std::string_view format);

// Whether `format` is one that a JSON Schema draft defines. Any other name (OpenAPI's `byte`,
// `int64`, a project's own `semver`) asserts nothing: JSON Schema makes unknown formats
// annotations, and validators accept every string for them.
bool is_json_schema_format(std::string_view format);

// The formats json_string_format_regex knows, for error messages: "date-time, date, ...".
std::string supported_formats();

// The regex (inside the quotes) of unescaped strings equal to none of `names`.
std::string json_key_other_than(const std::vector<std::string>& names);

// Smallest and largest number of code points of the strings `pattern` (parsed as regex.h reads
// it) fully matches; max is -1 when unbounded.
struct LengthRange {
  int64_t min = 0;
  int64_t max = -1;
};
LengthRange regex_length_range(std::string_view pattern);

}  // namespace sable::grammar
