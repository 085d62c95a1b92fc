// The BERT parts of a tokenizer.json besides the WordPiece model (wordpiece_model.h), following
// HF tokenizers: the BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase),
// the BertPreTokenizer (split on whitespace, punctuation isolated) and the WordPiece decoder
// ("##" pieces glued to the previous token, spaces elsewhere, optional cleanup). The factories in
// normalizer.cpp, pre_tokenizer.cpp and decoder.cpp call these for their types.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/decoder.h"
#include "core/tokenizer/normalizer.h"
#include "core/tokenizer/pre_tokenizer.h"

namespace sable::tokenizer {

std::unique_ptr<Normalizer> make_bert_normalizer(const nlohmann::json& spec);
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
std::unique_ptr<Decoder> make_wordpiece_decoder(const nlohmann::json& spec);

}  // namespace sable::tokenizer
