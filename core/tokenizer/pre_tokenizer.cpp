// The pre-tokenizer components and HF's split behaviours (Isolated, Removed, MergedWithPrevious,
// MergedWithNext, Contiguous), implemented over string views so that splitting copies no text.
#include "core/tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/tokenizer/bert_components.h"
#include "core/tokenizer/regex.h"

namespace sable::tokenizer {
namespace {

using nlohmann::json;

// GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::kRemoved;
  if (s == "Isolated") return Behavior::kIsolated;
  if (s == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::kMergedWithNext;
  if (s == "Contiguous") return Behavior::kContiguous;
  throw std::runtime_error("pre_tokenizer Split: unknown behavior '" + s + "'");
}

std::string quote_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Splits every piece by regex matches according to behavior (invert swaps match/non-match).
void split_pieces(Pieces& p, const Regex& re, Behavior behavior, bool invert) {
  struct Span {
    size_t b, e;
    bool match;
  };
  std::vector<std::string_view> out;
  out.reserve(p.items.size() * 4);
  std::vector<Regex::Match> matches;
  std::vector<Span> spans;
  for (std::string_view piece : p.items) {
    matches.clear();
    spans.clear();
    re.find_all(piece, matches);
    size_t last = 0;
    for (const auto& m : matches) {
      if (m.begin > last) spans.push_back({last, m.begin, invert});
      spans.push_back({m.begin, m.end, !invert});
      last = m.end;
    }
    if (last < piece.size()) spans.push_back({last, piece.size(), invert});
    auto emit = [&](size_t b, size_t e) {
      if (e > b) out.push_back(piece.substr(b, e - b));
    };
    switch (behavior) {
      case Behavior::kRemoved:
        for (const auto& s : spans) if (!s.match) emit(s.b, s.e);
        break;
      case Behavior::kIsolated:
        for (const auto& s : spans) emit(s.b, s.e);
        break;
      case Behavior::kMergedWithPrevious: {
        size_t start = 0;
        for (const auto& s : spans) {
          if (s.match) {
            emit(start, s.e);
            start = s.e;
          }
        }
        emit(start, piece.size());
        break;
      }
      case Behavior::kMergedWithNext: {
        size_t start = 0;
        for (const auto& s : spans) {
          if (s.match && s.b > start) {
            emit(start, s.b);
            start = s.b;
          }
        }
        emit(start, piece.size());
        break;
      }
      case Behavior::kContiguous: {
        size_t i = 0;
        while (i < spans.size()) {
          size_t j = i + 1;
          if (spans[i].match) {
            while (j < spans.size() && spans[j].match) ++j;
          }
          emit(spans[i].b, spans[j - 1].e);
          i = j;
        }
        break;
      }
    }
  }
  p.items.swap(out);
}

class Split final : public PreTokenizer {
 public:
  Split(const std::string& pattern, Behavior behavior, bool invert)
      : regex_(pattern), behavior_(behavior), invert_(invert) {}
  void apply(Pieces& p, bool) const override { split_pieces(p, regex_, behavior_, invert_); }

 private:
  Regex regex_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern);
  }
  void apply(Pieces& p, bool) const override {
    if (add_prefix_space_) {
      for (auto& piece : p.items) {
        if (piece.empty() || piece.front() != ' ') piece = p.own(" " + std::string(piece));
      }
    }
    if (regex_) split_pieces(p, *regex_, Behavior::kIsolated, false);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class Metaspace final : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  Metaspace(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split),
        split_regex_(quote_literal(replacement_)) {}
  void apply(Pieces& p, bool at_start) const override {
    for (size_t i = 0; i < p.items.size(); ++i) {
      std::string s;
      s.reserve(p.items[i].size() + 8);
      for (char c : p.items[i]) {
        if (c == ' ') s += replacement_;
        else s.push_back(c);
      }
      bool want = prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && at_start && i == 0);
      if (want && s.rfind(replacement_, 0) != 0) s.insert(0, replacement_);
      p.items[i] = p.own(std::move(s));
    }
    if (split_) split_pieces(p, split_regex_, Behavior::kMergedWithNext, false);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
  Regex split_regex_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void apply(Pieces& p, bool at_start) const override {
    for (const auto& t : items_) t->apply(p, at_start);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

std::unique_ptr<PreTokenizer> make_one(const json& spec, bool& byte_level) {
  if (!spec.is_object() || !spec.contains("type")) {
    throw std::runtime_error("pre_tokenizer: expected an object with a \"type\"");
  }
  if (byte_level) {
    throw std::runtime_error("pre_tokenizer: a step after ByteLevel is not supported");
  }
  const std::string type = spec.at("type").get<std::string>();
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "Split") {
    const json& pattern = spec.at("pattern");
    std::string regex;
    if (pattern.contains("Regex")) regex = pattern["Regex"].get<std::string>();
    else if (pattern.contains("String")) regex = quote_literal(pattern["String"].get<std::string>());
    else throw std::runtime_error("pre_tokenizer Split: pattern must be String or Regex");
    return std::make_unique<Split>(regex, parse_behavior(spec.at("behavior").get<std::string>()),
                                   spec.value("invert", false));
  }
  if (type == "ByteLevel") {
    byte_level = true;
    return std::make_unique<ByteLevel>(spec.value("add_prefix_space", false),
                                       spec.value("use_regex", true));
  }
  if (type == "Metaspace") {
    Metaspace::Prepend prepend = Metaspace::Prepend::kAlways;
    if (spec.contains("prepend_scheme")) {
      const std::string s = spec["prepend_scheme"].get<std::string>();
      if (s == "first") prepend = Metaspace::Prepend::kFirst;
      else if (s == "never") prepend = Metaspace::Prepend::kNever;
      else if (s != "always") throw std::runtime_error("Metaspace: unknown prepend_scheme " + s);
    } else if (!spec.value("add_prefix_space", true)) {
      prepend = Metaspace::Prepend::kNever;
    }
    return std::make_unique<Metaspace>(spec.value("replacement", std::string("\u2581")), prepend,
                                       spec.value("split", true));
  }
  if (type == "Digits") {
    return std::make_unique<Split>(spec.value("individual_digits", false) ? R"(\p{N})"
                                                                          : R"(\p{N}+)",
                                   Behavior::kIsolated, false);
  }
  if (type == "Whitespace") {
    return std::make_unique<Split>(R"(\w+|[^\w\s]+)", Behavior::kRemoved, true);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<Split>(R"(\s+)", Behavior::kRemoved, false);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (const auto& sub : spec.at("pretokenizers")) items.push_back(make_one(sub, byte_level));
    return std::make_unique<Sequence>(std::move(items));
  }
  throw std::runtime_error("pre_tokenizer type '" + type + "' is not supported");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, bool& byte_level) {
  byte_level = false;
  if (spec.is_null()) return nullptr;
  return make_one(spec, byte_level);
}

}  // namespace sable::tokenizer
