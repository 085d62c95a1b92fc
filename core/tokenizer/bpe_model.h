// The BPE model of tokenizer.json ("model": {"type": "BPE"}): vocab, merges by rank, byte-level or
// character symbols, byte_fallback, unk/fuse_unk, ignore_merges, and a word cache.
//
// Byte-level mode: the vocab strings are mapped back to raw bytes at load, so words are raw bytes
// and the initial symbols are single bytes (no per-call translation to "Ġ" characters).
// Character mode (SentencePiece-style): symbols are UTF-8 characters, unknown characters become
// <0xXX> byte tokens (byte_fallback) or unk.
//
// Thread-safety: tokenize() is const and may run concurrently; the word cache is sharded and each
// shard is guarded by its own mutex.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/token_model.h"

namespace sable::tokenizer {

class BpeModel final : public TokenModel {
 public:
  // spec is the "model" object. Throws std::runtime_error on an unsupported type/option or a merge
  // that names an unknown token.
  BpeModel(const nlohmann::json& spec, bool byte_level);
  ~BpeModel() override;

  // Appends the ids of one pre-tokenized word (raw bytes in byte-level mode, else UTF-8 text).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;

  const std::vector<std::string>& id_to_token() const override { return id_to_token_; }
  const StringMap& token_to_id() const override { return token_to_id_; }
  bool byte_level() const override { return byte_level_; }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct MergeTable;
  class WordCache;

  void initial_symbols(std::string_view word, std::vector<Symbol>& syms) const;
  void merge(std::vector<Symbol>& syms) const;
  void tokenize_uncached(std::string_view word, std::vector<int32_t>& out) const;

  bool byte_level_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::optional<int32_t> unk_id_;
  std::vector<std::string> id_to_token_;
  StringMap token_to_id_;
  StringMap raw_to_id_;                    // byte-level mode: raw bytes -> id
  std::array<int32_t, 256> byte_ids_{};    // byte-level: byte -> id; char mode: <0xXX> -> id
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace sable::tokenizer
