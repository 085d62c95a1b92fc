// Encode and decode: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor, and
// ids -> token strings -> decoder chain (with a direct byte path for byte-level decoders).
#include "core/tokenizer/tokenizer.h"

#include <stdexcept>

#include "core/tokenizer/tokenizer_impl.h"
#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

void Tokenizer::Impl::encode_words(std::string_view text, bool at_start,
                                   std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (!pre_tokenizer) {
    model->tokenize(text, out);
    return;
  }
  Pieces p;
  p.items.push_back(text);
  pre_tokenizer->apply(p, at_start);
  for (std::string_view w : p.items) model->tokenize(w, out);
}

void Tokenizer::Impl::encode_segment(std::string_view text, bool at_start,
                                     std::vector<int32_t>& out) const {
  if (!normalizer) {
    encode_words(text, at_start, out);
    return;
  }
  std::string norm(text);
  normalizer->apply(norm);
  if (normalized_matcher.empty()) {
    encode_words(norm, at_start, out);
    return;
  }
  normalized_matcher.split(norm, [&](std::string_view seg, size_t offset, int32_t id) {
    if (id >= 0) out.push_back(id);
    else encode_words(seg, at_start && offset == 0, out);
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::make_valid(text);
    text = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 8);
  if (add_special_tokens) out.insert(out.end(), impl_->prefix.begin(), impl_->prefix.end());
  if (impl_->raw_matcher.empty()) {
    impl_->encode_segment(text, true, out);
  } else {
    impl_->raw_matcher.split(text, [&](std::string_view seg, size_t offset, int32_t id) {
      if (id >= 0) out.push_back(id);
      else impl_->encode_segment(seg, offset == 0, out);
    });
  }
  if (add_special_tokens) out.insert(out.end(), impl_->suffix.begin(), impl_->suffix.end());
  return out;
}

Tokenizer::PairEncoding Tokenizer::encode_pair(std::string_view first, std::string_view second,
                                               int64_t max_tokens) const {
  const std::vector<int32_t> texts[2] = {encode(first, false), encode(second, false)};
  std::vector<Impl::PairPiece> pieces = impl_->pair_template;
  if (pieces.empty()) pieces = {Impl::PairPiece{0, {}, 0}, Impl::PairPiece{1, {}, 1}};
  int64_t fixed = 0;  // everything but the second text
  for (const auto& p : pieces) {
    fixed += p.sequence < 0 ? static_cast<int64_t>(p.ids.size())
                            : p.sequence == 0 ? static_cast<int64_t>(texts[0].size()) : 0;
  }
  auto keep = static_cast<int64_t>(texts[1].size());
  if (max_tokens > 0 && fixed + keep > max_tokens) {
    if (fixed >= max_tokens) {
      throw std::invalid_argument(
          "the first text of the pair takes " + std::to_string(fixed) +
          " tokens with the special tokens, leaving none of the " + std::to_string(max_tokens) +
          " for the second");
    }
    keep = max_tokens - fixed;
  }
  PairEncoding out;
  out.truncated = static_cast<int64_t>(texts[1].size()) - keep;
  for (const auto& p : pieces) {
    auto append = [&](auto begin, auto end) {
      out.ids.insert(out.ids.end(), begin, end);
      out.type_ids.resize(out.ids.size(), p.type_id);
    };
    if (p.sequence < 0) append(p.ids.begin(), p.ids.end());
    else if (p.sequence == 0) append(texts[0].begin(), texts[0].end());
    else append(texts[1].begin(), texts[1].begin() + keep);
  }
  return out;
}

std::string Tokenizer::Impl::decode_tokens(std::vector<std::string> toks) const {
  std::string out;
  if (!decoder) {
    for (size_t i = 0; i < toks.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += toks[i];
    }
    return out;
  }
  decoder->apply(toks);
  for (const auto& t : toks) out += t;
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens,
                              bool spaces_between_special_tokens) const {
  const Impl& m = *impl_;
  const auto n = static_cast<int64_t>(m.tokens.size());
  auto known = [&](int32_t id) { return id >= 0 && id < n && !m.tokens[id].empty(); };
  bool has_special = false;
  if (!skip_special_tokens && spaces_between_special_tokens) {
    for (int32_t id : ids) has_special = has_special || (known(id) && m.special[id]);
  }
  if (!has_special) {
    if (m.pure_byte_level_decoder) {
      std::string raw;
      for (int32_t id : ids) {
        if (!known(id) || (skip_special_tokens && m.special[id])) continue;
        raw += m.bytes[id];
      }
      return utf8::is_valid(raw) ? raw : utf8::make_valid(raw);
    }
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (int32_t id : ids) {
      if (!known(id) || (skip_special_tokens && m.special[id])) continue;
      toks.push_back(m.tokens[id]);
    }
    return m.decode_tokens(std::move(toks));
  }
  // Special tokens kept and spaced: decode the runs between them separately, join with " ".
  std::string out;
  std::vector<std::string> run;
  auto add_part = [&](const std::string& part) {
    if (part.empty()) return;
    if (!out.empty()) out.push_back(' ');
    out += part;
  };
  for (int32_t id : ids) {
    if (!known(id)) continue;
    if (m.special[id]) {
      if (!run.empty()) add_part(m.decode_tokens(std::move(run)));
      run.clear();
      add_part(m.tokens[id]);
    } else {
      run.push_back(m.tokens[id]);
    }
  }
  if (!run.empty()) add_part(m.decode_tokens(std::move(run)));
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->tokens.size()); }

int32_t Tokenizer::model_vocab_size() const {
  return static_cast<int32_t>(impl_->model->token_to_id().size());
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->bytes[id];
}

std::string_view Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->tokens[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id] != 0;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_to_id.find(token); it != impl_->added_to_id.end()) return it->second;
  const auto& m = impl_->model->token_to_id();
  if (auto it = m.find(token); it != m.end()) return it->second;
  return std::nullopt;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad_id; }

std::vector<int32_t> Tokenizer::eos_ids() const {
  std::vector<int32_t> out;
  auto add = [&](int32_t id) {
    for (int32_t x : out) if (x == id) return;
    out.push_back(id);
  };
  if (impl_->eos_id) add(*impl_->eos_id);
  for (int32_t id : impl_->generation_eos) add(id);
  return out;
}

std::string Tokenizer::bos_token() const { return impl_->bos_token; }
std::string Tokenizer::eos_token() const { return impl_->eos_token; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

}  // namespace sable::tokenizer
