// The model step of a tokenizer.json ("model"): turns one pre-tokenized word into ids. BPE
// (bpe_model.h) and WordPiece (wordpiece_model.h) implement it; the tokenizer holds one.
// Thread-safety: tokenize() is const and may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sable::tokenizer {

// Transparent hashing so maps keyed by std::string can be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class TokenModel {
 public:
  virtual ~TokenModel() = default;
  // Appends the ids of one pre-tokenized word (raw bytes for a byte-level model, else UTF-8).
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  // Vocab strings exactly as tokenizer.json spells them, by id ("" for ids without a token).
  virtual const std::vector<std::string>& id_to_token() const = 0;
  virtual const StringMap& token_to_id() const = 0;
  virtual bool byte_level() const { return false; }
};

}  // namespace sable::tokenizer
