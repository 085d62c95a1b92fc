// BERT's normalizer, pre-tokenizer and decoder (see bert_components.h).
#include "core/tokenizer/bert_components.h"

#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

utf8proc_category_t category(char32_t c) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

// Rust's char::is_whitespace (Unicode White_Space).
bool is_whitespace(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// HF's bert is_control: \t \n \r are whitespace; every other "Other" category is control.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

bool is_chinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

void append(std::string& out, char32_t c) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(const nlohmann::json& spec) {
    clean_text_ = spec.value("clean_text", true);
    chinese_ = spec.value("handle_chinese_chars", true);
    lowercase_ = spec.value("lowercase", true);
    const auto it = spec.find("strip_accents");
    strip_accents_ = (it == spec.end() || it->is_null()) ? lowercase_ : it->get<bool>();
  }
  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size() + 8);
    for (size_t i = 0; i < text.size();) {
      const char32_t c = utf8::next(text, i);
      if (clean_text_) {
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_whitespace(c)) {
          out.push_back(' ');
          continue;
        }
      }
      if (chinese_ && is_chinese(c)) {
        out.push_back(' ');
        append(out, c);
        out.push_back(' ');
        continue;
      }
      append(out, c);
    }
    if (strip_accents_) out = strip_accents(out);
    if (lowercase_) {
      std::string low;
      low.reserve(out.size());
      for (size_t i = 0; i < out.size();) {
        append(low, static_cast<char32_t>(
                        utf8proc_tolower(static_cast<utf8proc_int32_t>(utf8::next(out, i)))));
      }
      out.swap(low);
    }
    text.swap(out);
  }

 private:
  // NFD, then drop nonspacing marks (Mn).
  static std::string strip_accents(const std::string& s) {
    utf8proc_uint8_t* nfd = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &nfd,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
    if (n < 0) return s;
    const std::string decomposed(reinterpret_cast<const char*>(nfd), static_cast<size_t>(n));
    std::free(nfd);
    std::string out;
    out.reserve(decomposed.size());
    for (size_t i = 0; i < decomposed.size();) {
      const char32_t c = utf8::next(decomposed, i);
      if (category(c) != UTF8PROC_CATEGORY_MN) append(out, c);
    }
    return out;
  }

  bool clean_text_ = true, chinese_ = true, strip_accents_ = true, lowercase_ = true;
};

class BertPreTokenizer final : public PreTokenizer {
 public:
  void apply(Pieces& p, bool) const override {
    std::vector<std::string_view> words;
    for (std::string_view item : p.items) {
      size_t word_start = 0, i = 0;
      while (i < item.size()) {
        const size_t at = i;
        const char32_t c = utf8::next(item, i);
        if (is_whitespace(c) || is_punctuation(c)) {
          if (at > word_start) words.push_back(item.substr(word_start, at - word_start));
          if (!is_whitespace(c)) words.push_back(item.substr(at, i - at));
          word_start = i;
        }
      }
      if (item.size() > word_start) words.push_back(item.substr(word_start));
    }
    p.items.swap(words);
  }
};

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

class WordPieceDecoder final : public Decoder {
 public:
  explicit WordPieceDecoder(const nlohmann::json& spec)
      : prefix_(spec.value("prefix", std::string("##"))), cleanup_(spec.value("cleanup", true)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i > 0) {
        if (t.rfind(prefix_, 0) == 0) t.erase(0, prefix_.size());
        else t.insert(0, " ");
      }
      if (cleanup_) {
        // HF tokenizers' wordpiece::cleanup, in its order.
        static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
            {" .", "."},      {" ?", "?"},      {" !", "!"},   {" ,", ","},
            {" ' ", "'"},     {" n't", "n't"},  {" 'm", "'m"}, {" do not", " don't"},
            {" 's", "'s"},    {" 've", "'ve"},  {" 're", "'re"}};
        for (const auto& [from, to] : kRules) replace_all(t, from, to);
      }
    }
  }
  void token_bytes(std::string& token) const override {
    if (token.rfind(prefix_, 0) == 0) token.erase(0, prefix_.size());
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

}  // namespace

std::unique_ptr<Normalizer> make_bert_normalizer(const nlohmann::json& spec) {
  return std::make_unique<BertNormalizer>(spec);
}
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() {
  return std::make_unique<BertPreTokenizer>();
}
std::unique_ptr<Decoder> make_wordpiece_decoder(const nlohmann::json& spec) {
  return std::make_unique<WordPieceDecoder>(spec);
}

}  // namespace sable::tokenizer
