// The Unigram model of tokenizer.json ("model": {"type": "Unigram"}), SentencePiece's (XLM-R,
// T5, ...): each word is cut into the pieces whose summed log-probability ("vocab": [[piece,
// score], ...]) is highest (Viterbi over the word's characters); a character no piece covers is
// unk (score: the lowest piece score - 10), consecutive unk characters fuse into one unk token,
// and with byte_fallback an unk piece becomes its <0xXX> byte tokens. Follows HF tokenizers'
// Unigram::encode_optimized. Thread-safety: immutable after load.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/token_model.h"

namespace sable::tokenizer {

class UnigramModel final : public TokenModel {
 public:
  // spec is the "model" object. Throws std::runtime_error when the vocab or unk_id is malformed.
  explicit UnigramModel(const nlohmann::json& spec);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  const std::vector<std::string>& id_to_token() const override { return id_to_token_; }
  const StringMap& token_to_id() const override { return token_to_id_; }

 private:
  std::vector<std::string> id_to_token_;
  std::vector<double> scores_;
  StringMap token_to_id_;
  size_t max_piece_bytes_ = 0;
  int32_t unk_id_ = -1;  // -1: no unk (a word with an uncovered character is an error)
  double unk_score_ = 0.0;
  bool byte_fallback_ = false;
  int32_t byte_ids_[256] = {};  // <0xXX> pieces, -1 when absent
};

}  // namespace sable::tokenizer
