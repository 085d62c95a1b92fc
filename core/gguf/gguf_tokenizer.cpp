// GGUF vocabulary -> tokenizer.json / tokenizer_config.json / generation_config.json text (see
// gguf_tokenizer.h). The regexes are the ones the Hugging Face tokenizers of those families use,
// which llama.cpp's pre-tokenizer types reproduce.
#include "core/gguf/gguf_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/tokenizer/tokenizer.h"

namespace sable::gguf {
namespace {

using nlohmann::json;

// llama.cpp's token types (llama_token_type).
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
                           kByte = 6 };

constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kMeta = "\xe2\x96\x81";  // "▁"

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
          {"use_regex", use_regex}};
}
json split(const char* regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"},
          {"invert", false}};
}

// normalizer, pre_tokenizer and ignore_merges for a tokenizer.ggml.pre name.
struct PreSpec {
  json normalizer;
  json pre_tokenizer;
  bool ignore_merges = false;
};
std::optional<PreSpec> pre_spec(const std::string& pre) {
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe")
    return PreSpec{json(), {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3Regex),
                                                                    byte_level(false)}}},
                   true};
  if (pre == "qwen2" || pre == "deepseek-r1-qwen")
    return PreSpec{{{"type", "NFC"}},
                   {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2Regex), byte_level(false)}}},
                   false};
  if (pre == "smollm")
    return PreSpec{json(),
                   {{"type", "Sequence"},
                    {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                       byte_level(true)}}},
                   false};
  if (pre == "gpt2" || pre == "gpt-2" || pre == "default") return PreSpec{json(), byte_level(true), false};
  return std::nullopt;
}

size_t utf8_len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

// SentencePiece BPE as ranked merges (transformers' generate_merges with scores): every split of a
// piece into two pieces of the vocabulary, ordered by the piece's score (highest first), then by
// the left and right lengths in characters (longest first); ties keep vocabulary order.
json merges_from_scores(const std::vector<std::string>& tokens, const std::vector<double>& scores,
                        const std::vector<bool>& mergeable) {
  std::unordered_map<std::string_view, int64_t> id;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (mergeable[i]) id.emplace(tokens[i], static_cast<int64_t>(i));
  struct Merge {
    int64_t left, right;
    double score;
    size_t left_chars, right_chars;
  };
  std::vector<Merge> merges;
  std::vector<Merge> local;
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (!mergeable[t]) continue;
    const std::string_view piece = tokens[t];
    local.clear();
    size_t chars_left = 0;
    size_t total_chars = 0;
    for (size_t p = 0; p < piece.size(); p += utf8_len(static_cast<unsigned char>(piece[p])))
      ++total_chars;
    for (size_t p = utf8_len(static_cast<unsigned char>(piece[0])); p < piece.size();
         p += utf8_len(static_cast<unsigned char>(piece[p]))) {
      ++chars_left;
      auto l = id.find(piece.substr(0, p));
      auto r = id.find(piece.substr(p));
      if (l != id.end() && r != id.end())
        local.push_back({l->second, r->second, scores[t], chars_left, total_chars - chars_left});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.left_chars != b.left_chars) return a.left_chars > b.left_chars;
    return a.right_chars > b.right_chars;
  });
  json out = json::array();
  for (const Merge& m : merges) out.push_back({tokens[m.left], tokens[m.right]});
  return out;
}

}  // namespace

TokenizerFiles tokenizer_files(const GgufFile& f) {
  const std::string src = f.path().string();
  const std::string model = f.require_string("tokenizer.ggml.model");
  const std::vector<std::string>* tokens = f.get_strings("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->empty())
    throw GgufError(src + ": metadata 'tokenizer.ggml.tokens' is missing or empty");
  const size_t n = tokens->size();
  std::vector<int64_t> types(n, kNormal);
  if (const auto* t = f.get_ints("tokenizer.ggml.token_type")) {
    if (t->size() != n)
      throw GgufError(fmt::format("{}: metadata 'tokenizer.ggml.token_type' has {} entries for {} "
                                  "tokens", src, t->size(), n));
    types = *t;
  }
  const auto token_id = [&](const char* key) -> std::optional<int64_t> {
    const auto v = f.get_int(key);
    if (v && (*v < 0 || static_cast<size_t>(*v) >= n)) {
      // llama.cpp writes -1 or an out-of-vocabulary id for "none" in some files: treat as absent.
      return std::nullopt;
    }
    return v;
  };
  const auto bos = token_id("tokenizer.ggml.bos_token_id");
  const auto eos = token_id("tokenizer.ggml.eos_token_id");
  const auto unk = token_id("tokenizer.ggml.unknown_token_id");
  const auto pad = token_id("tokenizer.ggml.padding_token_id");

  json tj;
  tj["version"] = "1.0";
  json added = json::array();
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = types[i];
    if (t != kControl && t != kUserDefined && t != kUnknown) continue;
    added.push_back({{"id", i}, {"content", (*tokens)[i]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", t != kUserDefined}});
  }
  tj["added_tokens"] = added;
  json vocab = json::object();
  for (size_t i = 0; i < n; ++i) vocab[(*tokens)[i]] = i;
  json bpe = {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", std::move(vocab)}};
  bool add_bos_default = false;
  if (model == "gpt2") {
    const std::string pre = f.get_string("tokenizer.ggml.pre").value_or("default");
    auto spec = pre_spec(pre);
    if (!spec)
      throw GgufError(fmt::format("{}: metadata 'tokenizer.ggml.pre' = '{}' is not a supported "
                                  "pre-tokenizer (llama-bpe, qwen2, smollm, gpt-2, default)",
                                  src, pre));
    const auto* merges = f.get_strings("tokenizer.ggml.merges");
    if (merges == nullptr)
      throw GgufError(src + ": metadata 'tokenizer.ggml.merges' is missing (a gpt2 vocabulary "
                            "needs its merges)");
    tj["normalizer"] = spec->normalizer;
    tj["pre_tokenizer"] = spec->pre_tokenizer;
    tj["decoder"] = byte_level(true);
    bpe["merges"] = *merges;
    bpe["ignore_merges"] = spec->ignore_merges;
    bpe["byte_fallback"] = false;
  } else if (model == "llama") {
    const auto* scores = f.get_floats("tokenizer.ggml.scores");
    if (scores == nullptr || scores->size() != n)
      throw GgufError(src + ": metadata 'tokenizer.ggml.scores' is missing or does not have one "
                            "score per token");
    std::vector<bool> mergeable(n);
    for (size_t i = 0; i < n; ++i) mergeable[i] = types[i] == kNormal;
    const bool space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kMeta},
                           {"prepend_scheme", space_prefix ? "first" : "never"}, {"split", false}};
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (space_prefix)
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tj["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    bpe["merges"] = merges_from_scores(*tokens, *scores, mergeable);
    bpe["byte_fallback"] = true;
    bpe["fuse_unk"] = true;
    if (unk) bpe["unk_token"] = (*tokens)[static_cast<size_t>(*unk)];
    add_bos_default = true;
  } else {
    throw GgufError(fmt::format("{}: metadata 'tokenizer.ggml.model' = '{}' is not supported "
                                "(gpt2: byte-level BPE, llama: SentencePiece)", src, model));
  }
  tj["post_processor"] = nullptr;
  tj["model"] = std::move(bpe);

  json cfg = json::object();
  const auto name = [&](std::optional<int64_t> id) -> json {
    return id ? json((*tokens)[static_cast<size_t>(*id)]) : json();
  };
  cfg["bos_token"] = name(bos);
  cfg["eos_token"] = name(eos);
  cfg["unk_token"] = name(unk);
  cfg["pad_token"] = name(pad);
  cfg["add_bos_token"] = f.get_bool("tokenizer.ggml.add_bos_token").value_or(add_bos_default);
  cfg["add_eos_token"] = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  if (const auto tmpl = f.get_string("tokenizer.chat_template")) cfg["chat_template"] = *tmpl;

  json eos_ids = json::array();
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    const auto id = token_id(key);
    if (id && std::find(eos_ids.begin(), eos_ids.end(), json(*id)) == eos_ids.end())
      eos_ids.push_back(*id);
  }
  json gen = json::object();
  if (!eos_ids.empty()) gen["eos_token_id"] = eos_ids;
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  return {dump(tj), dump(cfg), dump(gen)};
}

std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const GgufFile& file) {
  const TokenizerFiles files = tokenizer_files(file);
  try {
    return tokenizer::Tokenizer::from_json(files.tokenizer_json, files.tokenizer_config_json,
                                           files.generation_config_json);
  } catch (const std::exception& e) {
    throw GgufError(fmt::format("{}: the tokenizer built from its vocabulary: {}",
                                file.path().string(), e.what()));
  }
}

}  // namespace sable::gguf
