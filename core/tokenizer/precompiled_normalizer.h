// The "Precompiled" normalizer of SentencePiece tokenizers (XLM-R, T5, ...): a normalization table
// compiled into tokenizer.json as base64 (`precompiled_charsmap`): a darts-clone double-array trie
// over UTF-8 byte strings whose values index NUL-terminated replacements (NFKC plus
// SentencePiece's own rules). Text is rewritten grapheme by grapheme (a whole grapheme of fewer
// than 6 bytes when the table has it, else character by character), as HF tokenizers'
// spm_precompiled does. Thread-safety: immutable after load.
#pragma once

#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/normalizer.h"

namespace sable::tokenizer {

// spec is the normalizer object. Throws std::runtime_error for a malformed charsmap.
std::unique_ptr<Normalizer> make_precompiled_normalizer(const nlohmann::json& spec);

}  // namespace sable::tokenizer
