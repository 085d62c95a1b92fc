// The WordPiece model of tokenizer.json ("model": {"type": "WordPiece"}), BERT's: each word is cut
// greedily into the longest vocabulary pieces from the left, pieces after the first carrying the
// continuing_subword_prefix ("##"); a word with a part no piece matches, or longer than
// max_input_chars_per_word characters, becomes unk_token. Thread-safety: immutable after load.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/token_model.h"

namespace sable::tokenizer {

class WordPieceModel final : public TokenModel {
 public:
  // spec is the "model" object. Throws std::runtime_error when the vocab or unk_token is missing.
  explicit WordPieceModel(const nlohmann::json& spec);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  const std::vector<std::string>& id_to_token() const override { return id_to_token_; }
  const StringMap& token_to_id() const override { return token_to_id_; }

 private:
  std::vector<std::string> id_to_token_;
  StringMap token_to_id_;
  std::string prefix_ = "##";
  size_t max_chars_ = 100;
  int32_t unk_id_ = 0;
};

}  // namespace sable::tokenizer
