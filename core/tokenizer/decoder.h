// Decoders of tokenizer.json ("decoder"): ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip
// and Sequence, with HF tokenizers' semantics over the list of token strings. Built once at load;
// apply() is const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sable::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings (the result is their concatenation).
  virtual void apply(std::vector<std::string>& tokens) const = 0;
  // The raw bytes one token stands for on its own, ignoring context-dependent steps (Strip,
  // Metaspace's first-token space) and without UTF-8 repair. Used for token_bytes().
  virtual void token_bytes(std::string& token) const = 0;
};

// Builds from a tokenizer.json "decoder" object (nullptr for JSON null). pure_byte_level is set
// when the decoder is exactly ByteLevel (decoding is then concatenating token bytes). Throws
// std::runtime_error naming the component when it is not supported.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec, bool& pure_byte_level);

}  // namespace sable::tokenizer
