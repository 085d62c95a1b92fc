// Loop sets of DFA states and the tokens made of their units (see loop_tokens.h).
#include "loop_tokens.h"

#include "dfa.h"
#include "token_mask.h"
#include "vocabulary.h"

namespace sable::grammar {
namespace {

bool has(const LoopSet& set, uint8_t b) { return (set[b >> 6] >> (b & 63)) & 1; }
void add(LoopSet& set, uint8_t b) { set[b >> 6] |= uint64_t{1} << (b & 63); }

// The valid second byte range of a UTF-8 sequence led by `lead` (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF); later continuation bytes are 0x80..0xBF.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
  if (lead == 0xE0) return {0xA0, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0x80, 0xBF};
}

int sequence_length(uint8_t lead) {
  return lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
}

// Whether every sequence of `left` continuation bytes (the first within [lo, hi]) leads from
// `from` to `home`.
bool all_return(const Dfa& dfa, int32_t from, int left, uint8_t lo, uint8_t hi, int32_t home) {
  if (from == Dfa::kDead) return false;
  int32_t seen = -1;  // consecutive bytes mostly share their target: check each target once
  for (int c = lo; c <= hi; ++c) {
    const int32_t to = dfa.next(from, static_cast<uint8_t>(c));
    if (left == 1) {
      if (to != home) return false;
      continue;
    }
    if (to == seen) continue;
    if (!all_return(dfa, to, left - 1, 0x80, 0xBF, home)) return false;
    seen = to;
  }
  return true;
}

// The length of the loop unit at text[i] (an ASCII byte or a whole UTF-8 character), 0 if the
// unit there is not in `set`.
size_t unit_in(const LoopSet& set, std::string_view text, size_t i) {
  const auto b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return has(set, b) ? 1 : 0;
  const int n = sequence_length(b);
  if (n == 0 || !has(set, b) || i + n > text.size()) return 0;
  const auto [lo, hi] = second_byte_range(b);
  const auto second = static_cast<uint8_t>(text[i + 1]);
  if (second < lo || second > hi) return 0;
  for (int k = 2; k < n; ++k) {
    const auto c = static_cast<uint8_t>(text[i + k]);
    if (c < 0x80 || c > 0xBF) return 0;
  }
  return static_cast<size_t>(n);
}

std::shared_ptr<const LoopTokens> compute(const Vocabulary& vocab, const LoopSet& set) {
  auto out = std::make_shared<LoopTokens>();
  out->inside.assign(mask_words(vocab.size()), 0u);
  for (int32_t id : vocab.trie_token_ids()) {
    const std::string_view t = vocab.token(id);
    size_t i = 0;
    for (size_t n; i < t.size() && (n = unit_in(set, t, i)) > 0;) i += n;
    if (i == t.size()) {
      out->inside[id >> 5] |= 1u << (id & 31);
    } else {
      out->exceptions.push_back(id);
      out->first_other.push_back(static_cast<uint16_t>(i));
    }
  }
  return out;
}

}  // namespace

std::optional<LoopSet> loop_set(const Dfa& dfa, int32_t state, int min_ascii) {
  LoopSet set{};
  int ascii = 0;
  for (int b = 0; b < 0x80; ++b)
    if (dfa.next(state, static_cast<uint8_t>(b)) == state) add(set, static_cast<uint8_t>(b)), ++ascii;
  if (ascii < min_ascii) return std::nullopt;
  for (int b = 0xC2; b <= 0xF4; ++b) {
    const auto [lo, hi] = second_byte_range(static_cast<uint8_t>(b));
    if (all_return(dfa, dfa.next(state, static_cast<uint8_t>(b)), sequence_length(b) - 1, lo, hi,
                   state))
      add(set, static_cast<uint8_t>(b));
  }
  return set;
}

std::shared_ptr<const LoopTokens> LoopTokenCache::get(const Vocabulary& vocab,
                                                      const LoopSet& set) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(set);
    if (it != sets_.end()) return it->second;
    if (sets_.size() >= kMaxSets) return nullptr;
  }
  std::shared_ptr<const LoopTokens> tokens = compute(vocab, set);
  std::lock_guard<std::mutex> lock(mu_);
  if (sets_.size() >= kMaxSets) return tokens;
  return sets_.emplace(set, std::move(tokens)).first->second;
}

}  // namespace sable::grammar
