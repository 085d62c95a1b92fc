// The tokenizer's vocabulary as the grammar engine needs it: each token's bytes, which ids are
// special or EOS, and a byte trie of the ordinary tokens laid out for a fast depth-first walk.
// Built once per engine (one per tokenizer) and shared, read-only, by all its grammars.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "byte_trie.h"
#include "loop_tokens.h"
#include "sable/grammar.h"

namespace sable::grammar {

class Vocabulary {
 public:
  // Copies what it needs from `info`; throws sable::cpp::Error on malformed input.
  explicit Vocabulary(const SableTokenizerInfo& info);

  int32_t size() const { return static_cast<int32_t>(special_.size()); }
  std::string_view token(int32_t id) const {
    return std::string_view(bytes_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  bool is_special(int32_t id) const { return special_[id] != 0; }
  bool is_eos(int32_t id) const { return eos_[id] != 0; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }

  // The trie of every non-special, non-EOS token with at least one byte.
  const ByteTrie& byte_trie() const { return trie_; }
  const std::vector<TrieNode>& trie() const { return trie_.nodes; }
  const std::vector<int32_t>& trie_token_ids() const { return trie_.token_ids; }
  int32_t max_token_length() const { return trie_.max_depth; }
  // Tokens by unit set, shared by every grammar on this vocabulary (thread-safe).
  const UnitTokenCache& unit_tokens() const { return units_; }

 private:
  std::string bytes_;             // all tokens' bytes, concatenated
  std::vector<size_t> offsets_;   // [size + 1]
  std::vector<uint8_t> special_;  // [size]
  std::vector<uint8_t> eos_;      // [size]
  std::vector<int32_t> eos_ids_;
  ByteTrie trie_;
  UnitTokenCache units_;
};

}  // namespace sable::grammar
