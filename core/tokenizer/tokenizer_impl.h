// The parts of a loaded Tokenizer (private to core/tokenizer): the pipeline components built from
// tokenizer.json and the metadata from tokenizer_config.json / generation_config.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/tokenizer/added_vocab.h"
#include "core/tokenizer/bpe_model.h"
#include "core/tokenizer/decoder.h"
#include "core/tokenizer/normalizer.h"
#include "core/tokenizer/pre_tokenizer.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::tokenizer {

struct Tokenizer::Impl {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<TokenModel> model;  // BpeModel, WordPieceModel or UnigramModel
  std::unique_ptr<Decoder> decoder;
  bool pure_byte_level_decoder = false;

  std::vector<AddedToken> added;
  AddedTokenMatcher raw_matcher;         // normalized == false
  AddedTokenMatcher normalized_matcher;  // normalized == true, matched after normalization
  StringMap added_to_id;

  // By id, size vocab_size: token string, its standalone bytes, special flag.
  std::vector<std::string> tokens;
  std::vector<std::string> bytes;
  std::vector<uint8_t> special;

  // Post-processor for a single sequence: ids around the encoded text.
  std::vector<int32_t> prefix, suffix;
  // Post-processor for a pair (cross-encoders): pieces in order, each special ids or one of the
  // two texts, with its token type. Empty: the two texts concatenated, types 0 and 1.
  struct PairPiece {
    int32_t sequence = -1;  // 0 (A), 1 (B), or -1 for `ids`
    std::vector<int32_t> ids;
    int32_t type_id = 0;
  };
  std::vector<PairPiece> pair_template;

  std::string bos_token, eos_token, pad_token, chat_template;
  std::optional<int32_t> bos_id, eos_id, pad_id;
  std::vector<int32_t> generation_eos;

  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  void encode_words(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  std::string decode_tokens(std::vector<std::string> toks) const;
};

// Builds the pipeline from parsed file contents (tokenizer_load.cpp).
std::unique_ptr<Tokenizer::Impl> build_impl(std::string_view tokenizer_json,
                                             std::string_view config_json,
                                             std::string_view generation_json);

}  // namespace sable::tokenizer
