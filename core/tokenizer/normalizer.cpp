// The normalizer components. Unicode normalization has an ASCII/quick-check fast path: most text
// (ASCII, CJK ideographs, precomposed Latin) is already NFC and is left untouched without calling
// utf8proc.
#include "core/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "core/tokenizer/bert_components.h"
#include "core/tokenizer/precompiled_normalizer.h"
#include "core/tokenizer/regex.h"
#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

using nlohmann::json;

// Characters with canonical combining class 0 that can still compose with what precedes them
// (NFC_Quick_Check=Maybe, ccc=0), outside the Hangul jamo ranges.
bool maybe_composes(char32_t c) {
  switch (c) {
    case 0x09BE: case 0x09D7: case 0x0B3E: case 0x0B56: case 0x0B57: case 0x0BBE: case 0x0BD7:
    case 0x0CC2: case 0x0CD5: case 0x0CD6: case 0x0D3E: case 0x0D57: case 0x0DCF: case 0x0DDF:
    case 0x102E: case 0x1B35:
      return true;
    default:
      return (c >= 0x1161 && c <= 0x1175) || (c >= 0x11A8 && c <= 0x11C2);
  }
}

// True when text certainly is unchanged by the normalization form (conservative: false means
// "run utf8proc").
bool quick_check_stable(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    char32_t c = utf8::next(text, i);
    const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
    if (p->combining_class != 0 || p->decomp_seqindex != UINT16_MAX || maybe_composes(c)) {
      return false;
    }
  }
  return true;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void apply(std::string& text) const override {
    if (quick_check_stable(text)) return;
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                      static_cast<utf8proc_ssize_t>(text.size()), &out,
                                      static_cast<utf8proc_option_t>(options_));
    if (n < 0) return;  // cannot happen for valid UTF-8; leave the text as it is
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
};

class Lowercase final : public Normalizer {
 public:
  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
      char32_t c = utf8::next(text, i);
      utf8::append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
    text.swap(out);
  }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string s) : prefix_(std::move(s)) {}
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(std::string pattern, std::string content, bool is_regex)
      : pattern_(std::move(pattern)), content_(std::move(content)) {
    if (is_regex) regex_ = std::make_unique<Regex>(pattern_);
    if (!is_regex && pattern_.empty()) throw std::runtime_error("Replace normalizer: empty pattern");
  }
  void apply(std::string& text) const override {
    std::string out;
    if (regex_) {
      std::vector<Regex::Match> m;
      regex_->find_all(text, m);
      if (m.empty()) return;
      size_t last = 0;
      for (const auto& r : m) {
        out.append(text, last, r.begin - last);
        out.append(content_);
        last = r.end;
      }
      out.append(text, last, std::string::npos);
    } else {
      size_t pos = text.find(pattern_);
      if (pos == std::string::npos) return;
      size_t last = 0;
      out.reserve(text.size() + text.size() / 4);
      while (pos != std::string::npos) {
        out.append(text, last, pos - last);
        out.append(content_);
        last = pos + pattern_.size();
        pos = text.find(pattern_, last);
      }
      out.append(text, last, std::string::npos);
    }
    text.swap(out);
  }

 private:
  std::string pattern_, content_;
  std::unique_ptr<Regex> regex_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void apply(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (left_) {
      while (b < e) {
        size_t j = b;
        if (!utf8::is_whitespace(utf8::next(text, j))) break;
        b = j;
      }
    }
    if (right_) {
      while (e > b) {
        size_t j = e - 1;
        while (j > b && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) --j;
        size_t k = j;
        if (!utf8::is_whitespace(utf8::next(text, k))) break;
        e = j;
      }
    }
    text = text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  void apply(std::string& text) const override {
    for (const auto& n : items_) n->apply(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec) {
  if (spec.is_null()) return nullptr;
  if (!spec.is_object() || !spec.contains("type")) {
    throw std::runtime_error("normalizer: expected an object with a \"type\"");
  }
  const std::string type = spec.at("type").get<std::string>();
  constexpr int kBase = UTF8PROC_STABLE;
  if (type == "BertNormalizer") return make_bert_normalizer(spec);
  if (type == "Precompiled") return make_precompiled_normalizer(spec);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(kBase | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(kBase | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(kBase | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(kBase | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Prepend") return std::make_unique<Prepend>(spec.at("prepend").get<std::string>());
  if (type == "Replace") {
    const json& pattern = spec.at("pattern");
    const std::string content = spec.at("content").get<std::string>();
    if (pattern.contains("String")) {
      return std::make_unique<Replace>(pattern["String"].get<std::string>(), content, false);
    }
    if (pattern.contains("Regex")) {
      return std::make_unique<Replace>(pattern["Regex"].get<std::string>(), content, true);
    }
    throw std::runtime_error("normalizer Replace: pattern must be String or Regex");
  }
  if (type == "Strip") {
    return std::make_unique<Strip>(spec.value("strip_left", true), spec.value("strip_right", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> items;
    for (const auto& sub : spec.at("normalizers")) {
      auto n = make_normalizer(sub);
      if (n) items.push_back(std::move(n));
    }
    return std::make_unique<Sequence>(std::move(items));
  }
  throw std::runtime_error("normalizer type '" + type + "' is not supported");
}

}  // namespace sable::tokenizer
