// Added tokens (tokenizer.json "added_tokens"): found in the text before pre-tokenization, each
// match becoming its own id. Leftmost match wins, the longest at that position; lstrip/rstrip
// swallow the whitespace around a match, single_word requires word boundaries. Tokens with
// normalized=false are matched on the raw text, normalized=true ones on the normalized text.
// Immutable after construction; split() is const and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sable::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class AddedTokenMatcher {
 public:
  // patterns[i] is the text to look for (content, or its normalized form) for tokens[i].
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);
  AddedTokenMatcher() = default;

  bool empty() const { return tokens_.empty(); }

  // Calls emit(segment, begin_offset, id) in order over text: id >= 0 for a matched token (the
  // segment is the matched text), id == -1 for text between matches (never empty).
  void split(std::string_view text,
             const std::function<void(std::string_view, size_t, int32_t)>& emit) const;

 private:
  bool find(std::string_view text, size_t from, size_t& b, size_t& e, int32_t& id) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // token indices, longest first
};

}  // namespace sable::tokenizer
