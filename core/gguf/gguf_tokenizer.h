// The tokenizer of a GGUF file, built from its vocabulary as the equivalent Hugging Face
// tokenizer.json + tokenizer_config.json (core/tokenizer then loads them as usual).
//
// tokenizer.ggml.model "gpt2": byte-level BPE with tokenizer.ggml.merges; tokenizer.ggml.pre names
// the pre-tokenizer (llama-bpe/llama3 -> Llama 3's split regex, qwen2 -> Qwen2's with NFC,
// smollm -> single digits + GPT-2's regex, gpt-2/default -> GPT-2's regex), as llama.cpp maps them.
// "llama": SentencePiece-style BPE whose merges come from tokenizer.ggml.scores (each pair of
// vocabulary pieces that forms a piece, ranked by that piece's score), with byte fallback and a
// leading "▁" (tokenizer.ggml.add_space_prefix). Control tokens become special added tokens,
// user-defined ones plain added tokens. Special ids (bos/eos/unk/pad, eot/eom as extra EOS),
// add_bos_token / add_eos_token and tokenizer.chat_template are carried over.
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <string>

#include "core/gguf/gguf_file.h"

namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::gguf {

struct TokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  std::string generation_config_json;
};

// Throws GgufError naming the metadata field that is missing, mistyped or unsupported.
TokenizerFiles tokenizer_files(const GgufFile& file);
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const GgufFile& file);

}  // namespace sable::gguf
