// UTF-8 helpers shared by the tokenizer stages: validation, lossy repair (the way Rust's
// String::from_utf8_lossy and Python's errors="replace" do it: one U+FFFD per maximal invalid
// subpart) and code point iteration. All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sable::tokenizer::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not a valid
// (complete, shortest-form, non-surrogate) encoding.
size_t valid_sequence_length(std::string_view s, size_t i);

// Length of the maximal invalid subpart at s[i] (>= 1), used when valid_sequence_length is 0.
size_t invalid_subpart_length(std::string_view s, size_t i);

bool is_valid(std::string_view s);

// Copies s, replacing every maximal invalid subpart with U+FFFD.
std::string make_valid(std::string_view s);

// Decodes the code point at s[i] (s must be valid UTF-8 there) and advances i.
inline char32_t next(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 < 0xE0) {
    char32_t c = ((b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
    i += 2;
    return c;
  }
  if (b0 < 0xF0) {
    char32_t c = ((b0 & 0x0F) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
                 (static_cast<unsigned char>(s[i + 2]) & 0x3F);
    i += 3;
    return c;
  }
  char32_t c = ((b0 & 0x07) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
               ((static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) |
               (static_cast<unsigned char>(s[i + 3]) & 0x3F);
  i += 4;
  return c;
}

// Length in bytes of the character whose lead byte is b (1 for continuation/invalid bytes).
inline size_t char_length(unsigned char b) {
  if (b < 0xC0) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

void append(std::string& out, char32_t c);

// Unicode White_Space (what Rust's char::is_whitespace accepts).
bool is_whitespace(char32_t c);

}  // namespace sable::tokenizer::utf8
