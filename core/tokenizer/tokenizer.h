// Hugging Face tokenizers in C++: loads a model folder's tokenizer.json (BPE models, byte-level
// like Qwen2/3, Llama 3, GPT-2, or SentencePiece-style like Llama 2, Mistral, Gemma; WordPiece
// models with BERT's normalizer and pre-tokenizer; SentencePiece Unigram models with their
// Precompiled normalizer, like XLM-RoBERTa) plus
// tokenizer_config.json and generation_config.json, and encodes/decodes exactly as HF does.
//
// Thread-safety: a loaded Tokenizer is immutable apart from internal caches that are guarded by
// locks; every method is const and may be called from many request threads at once.
// Token ids are int32_t; an id without a token (e.g. the padding rows of a model's vocab) decodes
// to nothing, as in HF tokenizers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sable::tokenizer {

class Tokenizer {
 public:
  // dir holds tokenizer.json, optional tokenizer_config.json, generation_config.json (and
  // chat_template.jinja when tokenizer_config.json has no template). Throws std::runtime_error
  // naming the file/component on unsupported or malformed input.
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& dir);
  // The same from file contents; config_json / generation_json may be empty (absent).
  static std::unique_ptr<Tokenizer> from_json(std::string_view tokenizer_json,
                                              std::string_view config_json = {},
                                              std::string_view generation_json = {});
  // A tokenizer without a vocabulary, for serving with skip_tokenizer_init (clients send and get
  // token ids): encode gives no ids, every id decodes to nothing, vocab_size() is 0, and eos_ids()
  // are the eos_token_id(s) of model_dir's generation_config.json and config.json (either may be
  // absent). Throws std::runtime_error naming a malformed file.
  static std::unique_ptr<Tokenizer> ids_only(const std::filesystem::path& model_dir);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Encodes text (invalid UTF-8 is first repaired with U+FFFD, as Python's errors="replace").
  // Added/special tokens in the text are always recognised; add_special_tokens applies the
  // post-processor (e.g. BOS insertion).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;

  // A text pair for a cross-encoder, laid out by the post-processor's pair template (RoBERTa
  // `<s> A </s></s> B </s>`, BERT `[CLS] A [SEP] B [SEP]` with token types 0 then 1); without a
  // template the two texts follow each other (types 0 and 1).
  // Truncation: with max_tokens > 0 the second text loses tokens from its end until the pair fits;
  // when even an empty second text would not fit, std::invalid_argument says how long the first
  // text is.
  struct PairEncoding {
    std::vector<int32_t> ids;
    std::vector<int32_t> type_ids;  // one per id
    int64_t truncated = 0;          // tokens cut from the second text
  };
  PairEncoding encode_pair(std::string_view first, std::string_view second,
                           int64_t max_tokens = 0) const;

  // HF's decode. With skip_special_tokens false and spaces_between_special_tokens true, special
  // tokens and the text runs between them are joined by one space (the convention of HF's slow
  // tokenizers and vLLM/SGLang); with it false the result is exactly HF tokenizers' decode.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens,
                     bool spaces_between_special_tokens = true) const;

  int32_t vocab_size() const;                      // max id + 1 over vocab and added tokens
  int32_t model_vocab_size() const;  // entries of the model's vocab, no added tokens (HF vocab_size)
  std::string_view token_bytes(int32_t id) const;  // raw bytes the token decodes to ("" if none)
  bool is_special(int32_t id) const;
  // The token as tokenizer.json spells it (e.g. "Ġhello", "<|im_end|>").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string_view id_to_token(int32_t id) const;  // "" if none
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> pad_id() const;
  // tokenizer_config eos + generation_config eos_token_id(s), deduplicated, in that order.
  std::vector<int32_t> eos_ids() const;
  std::string bos_token() const;  // "" if none
  std::string eos_token() const;  // "" if none
  // From tokenizer_config.json ("" if none; for a list of named templates, the "default" one).
  const std::string& chat_template() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sable::tokenizer
