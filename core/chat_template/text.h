// Python `str` semantics over UTF-8: templates index, slice, strip and case-map strings by code
// point as Python does, while Sable keeps strings as UTF-8 bytes. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sable::chat::detail {

// Invalid UTF-8 bytes decode to U+FFFD (never throws).
std::u32string utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(std::u32string_view s);
std::size_t utf8_length(std::string_view s);

bool is_py_space(char32_t c);  // Python's str.isspace for one code point

// str.strip / lstrip / rstrip; chars unset means whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                     bool right);
// str.split(sep, maxsplit); sep unset splits on runs of whitespace. Throws EvalError on sep "".
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  long long maxsplit);
// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(std::string_view s, std::string_view from, std::string_view to,
                       long long count);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);

// repr(float) as Python prints it: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string py_float_repr(double v);

}  // namespace sable::chat::detail
