// WordPiece (see wordpiece_model.h), following HF tokenizers' WordPiece::tokenize.
#include "core/tokenizer/wordpiece_model.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {

WordPieceModel::WordPieceModel(const nlohmann::json& spec) {
  if (!spec.contains("vocab") || !spec["vocab"].is_object())
    throw std::runtime_error("WordPiece model: \"vocab\" must be an object of token -> id");
  for (const auto& [token, id] : spec["vocab"].items()) {
    const auto i = id.get<int32_t>();
    if (i < 0) throw std::runtime_error("WordPiece model: negative id for '" + token + "'");
    if (static_cast<size_t>(i) >= id_to_token_.size()) id_to_token_.resize(i + 1);
    id_to_token_[static_cast<size_t>(i)] = token;
    token_to_id_.emplace(token, i);
  }
  prefix_ = spec.value("continuing_subword_prefix", std::string("##"));
  max_chars_ = spec.value("max_input_chars_per_word", size_t{100});
  const std::string unk = spec.value("unk_token", std::string("[UNK]"));
  const auto it = token_to_id_.find(unk);
  if (it == token_to_id_.end())
    throw std::runtime_error("WordPiece model: unk_token '" + unk + "' is not in the vocab");
  unk_id_ = it->second;
}

void WordPieceModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  // Character boundaries (byte offsets) of the word.
  std::vector<size_t> bounds;
  for (size_t i = 0; i < word.size();) {
    bounds.push_back(i);
    utf8::next(word, i);
  }
  if (bounds.size() > max_chars_) {
    out.push_back(unk_id_);
    return;
  }
  bounds.push_back(word.size());
  const size_t first_out = out.size();
  std::string piece;
  size_t start = 0;  // index into bounds
  while (start + 1 < bounds.size()) {
    size_t end = bounds.size() - 1;
    int32_t found = -1;
    for (; end > start; --end) {
      piece.assign(start > 0 ? prefix_ : std::string());
      piece.append(word.substr(bounds[start], bounds[end] - bounds[start]));
      const auto it = token_to_id_.find(piece);
      if (it != token_to_id_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {  // the whole word is unknown
      out.resize(first_out);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

}  // namespace sable::tokenizer
