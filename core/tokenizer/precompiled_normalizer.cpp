// The Precompiled normalizer (see precompiled_normalizer.h).
#include "core/tokenizer/precompiled_normalizer.h"

#include <utf8proc.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) throw std::runtime_error("Precompiled normalizer: precompiled_charsmap is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

class Precompiled final : public Normalizer {
 public:
  explicit Precompiled(const std::string& charsmap) {
    if (charsmap.size() < 4) throw std::runtime_error("Precompiled normalizer: charsmap too short");
    uint32_t trie_bytes = 0;
    std::memcpy(&trie_bytes, charsmap.data(), 4);  // little-endian, as written by SentencePiece
    if (trie_bytes % 4 != 0 || 4 + static_cast<size_t>(trie_bytes) > charsmap.size())
      throw std::runtime_error("Precompiled normalizer: charsmap trie size is inconsistent");
    units_.resize(trie_bytes / 4);
    std::memcpy(units_.data(), charsmap.data() + 4, trie_bytes);
    normalized_ = charsmap.substr(4 + trie_bytes);
    if (units_.empty()) throw std::runtime_error("Precompiled normalizer: empty trie");
  }

  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
      const size_t begin = i;
      next_grapheme(text, i);
      const std::string_view grapheme(text.data() + begin, i - begin);
      if (grapheme.size() < 6) {
        if (auto norm = transform(grapheme)) {
          out.append(*norm);
          continue;
        }
      }
      for (size_t j = 0; j < grapheme.size();) {
        const size_t c = j;
        utf8::next(grapheme, j);
        const std::string_view part = grapheme.substr(c, j - c);
        if (auto norm = transform(part)) out.append(*norm);
        else out.append(part);
      }
    }
    text.swap(out);
  }

 private:
  // darts-clone unit accessors.
  static bool has_leaf(uint32_t u) { return ((u >> 8) & 1u) == 1u; }
  static uint32_t value(uint32_t u) { return u & ((1u << 31) - 1); }
  static uint32_t label(uint32_t u) { return u & ((1u << 31) | 0xFFu); }
  static size_t offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

  // The replacement of the shortest prefix of `chunk` the trie holds (spm_precompiled's
  // transform takes the first common-prefix match).
  std::optional<std::string_view> transform(std::string_view chunk) const {
    size_t pos = 0;
    uint32_t unit = units_[0];
    pos ^= offset(unit);
    for (unsigned char c : chunk) {
      if (c == 0) break;
      pos ^= c;
      if (pos >= units_.size()) return std::nullopt;
      unit = units_[pos];
      if (label(unit) != c) return std::nullopt;
      pos ^= offset(unit);
      if (pos >= units_.size()) return std::nullopt;
      if (has_leaf(unit)) {
        const size_t index = value(units_[pos]);
        if (index >= normalized_.size()) return std::nullopt;
        const size_t end = normalized_.find('\0', index);
        return std::string_view(normalized_).substr(
            index, (end == std::string::npos ? normalized_.size() : end) - index);
      }
    }
    return std::nullopt;
  }

  // Advances i past one extended grapheme cluster (Unicode UAX #29, through utf8proc).
  static void next_grapheme(std::string_view s, size_t& i) {
    utf8proc_int32_t state = 0;
    char32_t prev = utf8::next(s, i);
    while (i < s.size()) {
      size_t j = i;
      const char32_t c = utf8::next(s, j);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                           static_cast<utf8proc_int32_t>(c), &state))
        return;
      prev = c;
      i = j;
    }
  }

  std::vector<uint32_t> units_;
  std::string normalized_;
};

}  // namespace

std::unique_ptr<Normalizer> make_precompiled_normalizer(const nlohmann::json& spec) {
  const std::string map = spec.value("precompiled_charsmap", std::string());
  if (map.empty()) return nullptr;  // an empty charsmap normalizes nothing (HF does the same)
  return std::make_unique<Precompiled>(base64_decode(map));
}

}  // namespace sable::tokenizer
