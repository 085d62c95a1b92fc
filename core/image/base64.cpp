// base64 decoding (see base64.h).
#include "core/image/base64.h"

#include <array>
#include <cstdint>

namespace sable::image {

namespace {

constexpr int8_t kSkip = -2, kBad = -1;

constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = kBad;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  t['-'] = 62;
  t['_'] = 63;
  for (char c : {' ', '\n', '\r', '\t'}) t[static_cast<uint8_t>(c)] = kSkip;
  return t;
}

constexpr std::array<int8_t, 256> kTable = make_table();

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0, chars = 0;
  bool padding = false;
  for (const char ch : text) {
    const int8_t v = kTable[static_cast<uint8_t>(ch)];
    if (v == kSkip) continue;
    if (ch == '=') {
      padding = true;
      continue;
    }
    if (v == kBad || padding) return std::nullopt;  // a foreign character, or data after '='
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++chars;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (chars % 4 == 1) return std::nullopt;
  return out;
}

}  // namespace sable::image
