// The decoder components. Each follows the HF tokenizers implementation step for step, because
// decode() must reproduce HF's text exactly (e.g. ByteFallback turns an invalid byte run into one
// U+FFFD per byte, while ByteLevel repairs UTF-8 per maximal invalid subpart).
#include "core/tokenizer/decoder.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/tokenizer/bert_components.h"
#include "core/tokenizer/byte_level.h"
#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

using nlohmann::json;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  size_t last = 0, pos = 0;
  while ((pos = s.find(from, last)) != std::string::npos) {
    out.append(s, last, pos - last);
    out.append(to);
    last = pos + from.size();
  }
  out.append(s, last, std::string::npos);
  s.swap(out);
}

class ByteLevelDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (std::string& t : tokens) {
      token_bytes(t);
      bytes += t;
    }
    tokens.assign(1, utf8::make_valid(bytes));
  }
  void token_bytes(std::string& token) const override {
    if (auto raw = byte_level::to_bytes(token)) token = std::move(*raw);
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) replace_all(t, from_, to_);
  }
  void token_bytes(std::string& token) const override { replace_all(token, from_, to_); }

 private:
  std::string from_, to_;
};

// "<0xAB>" -> 0xAB, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = t[i];
    int d = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (utf8::is_valid(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(utf8::kReplacement);
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      int b = parse_byte_token(t);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
  void token_bytes(std::string& token) const override {
    int b = parse_byte_token(token);
    if (b >= 0) token.assign(1, static_cast<char>(b));
  }
};

class FuseDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
  void token_bytes(std::string&) const override {}
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t b = 0;
      for (size_t k = 0; k < start_ && t.compare(b, content_.size(), content_) == 0; ++k) {
        b += content_.size();
      }
      size_t e = t.size();
      for (size_t k = 0; k < stop_ && e >= b + content_.size() &&
                         t.compare(e - content_.size(), content_.size(), content_) == 0;
           ++k) {
        e -= content_.size();
      }
      t = t.substr(b, e - b);
    }
  }
  void token_bytes(std::string&) const override {}

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i == 0 && strip_first_ && t.compare(0, replacement_.size(), replacement_) == 0) {
        t.erase(0, replacement_.size());
      }
      replace_all(t, replacement_, " ");
    }
  }
  void token_bytes(std::string& token) const override { replace_all(token, replacement_, " "); }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->apply(tokens);
  }
  void token_bytes(std::string& token) const override {
    for (const auto& d : items_) d->token_bytes(token);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

std::unique_ptr<Decoder> make_one(const json& spec) {
  if (!spec.is_object() || !spec.contains("type")) {
    throw std::runtime_error("decoder: expected an object with a \"type\"");
  }
  const std::string type = spec.at("type").get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "WordPiece") return make_wordpiece_decoder(spec);
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    const json& pattern = spec.at("pattern");
    if (!pattern.contains("String")) {
      throw std::runtime_error("decoder Replace: only String patterns are supported");
    }
    return std::make_unique<ReplaceDecoder>(pattern["String"].get<std::string>(),
                                            spec.at("content").get<std::string>());
  }
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(spec.at("content").get<std::string>(),
                                          spec.value("start", size_t{0}), spec.value("stop", size_t{0}));
  }
  if (type == "Metaspace") {
    bool strip_first = true;
    if (spec.contains("prepend_scheme")) {
      strip_first = spec["prepend_scheme"].get<std::string>() != "never";
    } else {
      strip_first = spec.value("add_prefix_space", true);
    }
    return std::make_unique<MetaspaceDecoder>(spec.value("replacement", std::string("\u2581")),
                                              strip_first);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> items;
    for (const auto& sub : spec.at("decoders")) items.push_back(make_one(sub));
    return std::make_unique<SequenceDecoder>(std::move(items));
  }
  throw std::runtime_error("decoder type '" + type + "' is not supported");
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& spec, bool& pure_byte_level) {
  pure_byte_level = false;
  if (spec.is_null()) return nullptr;
  auto d = make_one(spec);
  pure_byte_level = spec.at("type").get<std::string>() == "ByteLevel";
  return d;
}

}  // namespace sable::tokenizer
