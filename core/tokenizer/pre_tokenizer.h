// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): Split (PCRE2 regex or literal), ByteLevel,
// Metaspace, Digits, Whitespace, WhitespaceSplit and Sequence. They cut one normalized segment into
// the words the BPE model sees. Built once at load; apply() is const and thread-safe.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sable::tokenizer {

// The words of one segment. items view either the caller's segment text or strings owned by
// arena (pre-tokenizers that rewrite text, like Metaspace, store their output there).
struct Pieces {
  std::vector<std::string_view> items;
  std::deque<std::string> arena;
  std::string_view own(std::string s) { return arena.emplace_back(std::move(s)); }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Rewrites/splits p.items. at_start: the segment begins at offset 0 of the encoded text
  // (Metaspace's prepend_scheme "first" prepends only there).
  virtual void apply(Pieces& p, bool at_start) const = 0;
};

// Builds from a tokenizer.json "pre_tokenizer" object (nullptr for JSON null). byte_level is set
// when a ByteLevel step is present: the model then works on raw bytes. Throws std::runtime_error
// naming the component when it is not supported.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec, bool& byte_level);

}  // namespace sable::tokenizer
