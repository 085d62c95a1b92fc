// Small scanning helpers the streaming output parsers (reasoning_parser, tool_call_parser) share:
// ASCII whitespace, and how much of a text's tail may still grow into a marker tag (that tail is
// held back until the next bytes decide). Pure functions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace sable::server {

inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Index of the first non-space byte of s at or after `from` (s.size() if none).
inline size_t first_non_space(std::string_view s, size_t from = 0) {
  while (from < s.size() && is_space(s[from])) ++from;
  return from;
}

// Length of s without its trailing whitespace.
inline size_t trimmed_length(std::string_view s) {
  size_t last = s.size();
  while (last > 0 && is_space(s[last - 1])) --last;
  return last;
}

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
inline size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace sable::server
