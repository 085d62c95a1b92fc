// The bytes_to_unicode() table of GPT-2, built once.
#include "core/tokenizer/byte_level.h"

#include <array>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer::byte_level {
namespace {

struct Table {
  std::array<std::string, 256> chars;
  std::array<int, 324> byte_of;  // code point -> byte, -1 if none (all code points are < 324)
  Table() {
    byte_of.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      utf8::append(chars[b], c);
      byte_of[c] = b;
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const std::string& char_for_byte(unsigned char b) { return table().chars[b]; }

std::optional<std::string> to_bytes(std::string_view token) {
  const Table& t = table();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    if (utf8::valid_sequence_length(token, i) == 0) return std::nullopt;
    char32_t c = utf8::next(token, i);
    if (c >= t.byte_of.size() || t.byte_of[c] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.byte_of[c]));
  }
  return out;
}

}  // namespace sable::tokenizer::byte_level
