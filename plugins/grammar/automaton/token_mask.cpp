// The two ways to a token mask, the trie walk and the unit tokens (see token_mask.h).
#include "token_mask.h"

#include <algorithm>

namespace sable::grammar {

namespace {

// ASCII bytes that must share a successor before a state's mask is taken from its unit tokens.
constexpr int kMinUnitBytes = 32;

// Sets the bits of the tokens of `trie`'s nodes [begin, end) (whole subtrees of first bytes)
// whose bytes lead from `state` to a live state: a depth-first walk that skips the subtree below
// the first dead state. `states`/`rows`: scratch of at least trie.max_depth + 1 entries.
void walk_trie(const Dfa& dfa, const ByteTrie& trie, int32_t begin, int32_t end, int32_t state,
               std::span<uint32_t> words, std::span<int32_t> states,
               std::span<const int32_t*> rows) {
  const TrieNode* nodes = trie.nodes.data();
  const int32_t* token_ids = trie.token_ids.data();
  auto set_tokens = [&](const TrieNode& node) {
    for (int32_t k = 0; k < node.num_tokens; ++k) {
      const int32_t id = token_ids[node.first_token + k];
      words[id >> 5] |= 1u << (id & 31);
    }
  };
  states[0] = state;
  const std::array<uint8_t, 256>& byte_class = dfa.byte_classes();
  if (!dfa.lazy()) {
    const int32_t* table = dfa.eager_table();
    const auto nc = static_cast<size_t>(dfa.num_classes());
    for (int32_t i = begin; i < end;) {
      const TrieNode& node = nodes[i];
      const int32_t s = table[static_cast<size_t>(states[node.depth - 1]) * nc + byte_class[node.byte]];
      if (s == Dfa::kDead) {
        i = node.skip;  // no token below this node can be allowed
        continue;
      }
      states[node.depth] = s;
      set_tokens(node);
      ++i;
    }
    return;
  }
  // Lazy: rows[d] = the transitions of states[d], looked up once per node with children (a
  // lazy row lookup costs more than an eager table index).
  rows[0] = dfa.row(state);
  for (int32_t i = begin; i < end;) {
    const TrieNode& node = nodes[i];
    const int32_t d = node.depth - 1;
    const int32_t s = dfa.step(rows[d], states[d], byte_class[node.byte]);
    if (s == Dfa::kDead) {
      i = node.skip;
      continue;
    }
    if (node.skip != i + 1) {  // children: their walk starts from s
      states[d + 1] = s;
      rows[d + 1] = dfa.row(s);
    }
    set_tokens(node);
    ++i;
  }
}

void walk_trie(const Dfa& dfa, const ByteTrie& trie, int32_t state, std::span<uint32_t> words,
               std::span<int32_t> states, std::span<const int32_t*> rows) {
  walk_trie(dfa, trie, 0, static_cast<int32_t>(trie.nodes.size()), state, words, states, rows);
}

// The mask from the state's unit chain (loop_tokens.h): the tokens made of units that the chain
// allows (all in a loop, those of at most R units where the units die after R); the subtrees of
// the first bytes that are no unit, walked from the state; then the tokens whose units stop
// early: the trie of the rests of those with j leading units walked from the chain state j units
// reach, kept for the tokens whose first character is a unit of the state.
// False when the state has no units, the chain is irregular or the set has too many exceptions:
// the caller walks the trie.
bool fill_from_unit_tokens(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                           std::span<uint32_t> words, std::span<int32_t> states,
                           std::span<const int32_t*> rows) {
  const std::optional<StateUnits> units = state_units(dfa, state, kMinUnitBytes);
  if (!units) return false;
  const UnitTokenCache& cache = vocab.unit_tokens();
  const std::shared_ptr<const UnitTokens> tokens = cache.get(vocab, units->set, units->rest);
  if (!tokens->usable) return false;
  const std::optional<UnitChain> chain = unit_chain(dfa, state, *units, tokens->max_units);
  if (!chain) return false;
  const RestTokens& rest = *tokens->rest;
  const std::vector<uint32_t>& first_ok = tokens->first_ok;
  const auto last = static_cast<int32_t>(chain->states.size()) - 1;  // units the chain allows
  const bool all = chain->loop || last >= tokens->max_units;
  if (!all && last < RestTokens::kShortUnits) {
    const std::vector<uint32_t>& at_most = rest.at_most[last];
    for (size_t w = 0; w < at_most.size(); ++w) words[w] |= at_most[w] & first_ok[w];
  } else {
    for (size_t w = 0; w < tokens->inside.size(); ++w) words[w] |= tokens->inside[w];
    for (size_t k = 0; !all && k < rest.long_ids.size() && rest.long_units[k] > last; ++k)
      words[rest.long_ids[k] >> 5] &= ~(1u << (rest.long_ids[k] & 31));
  }
  for (const auto& [begin, end] : tokens->no_unit_ranges)
    walk_trie(dfa, vocab.byte_trie(), begin, end, state, words, states, rows);
  const FirstChars& chars = cache.first_chars(vocab);
  for (const auto& [begin, end] : tokens->cut_ranges)
    walk_trie(dfa, chars.cut, begin, end, state, words, states, rows);
  // The rest tries hold tokens of every first character: walked into their own words, kept for
  // those whose first character is a unit here.
  std::vector<uint32_t> rests(first_ok.size(), 0u);  // mask words
  bool any = false;
  for (size_t j = 1; j < rest.exceptions.size(); ++j) {
    if (static_cast<int32_t>(j) > last && !chain->loop) break;  // the unit after the last dies
    const ByteTrie& rests_j = rest.exceptions[j];
    if (rests_j.nodes.empty()) continue;
    walk_trie(dfa, rests_j, chain->states[std::min(static_cast<int32_t>(j), last)], rests, states,
              rows);
    any = true;
  }
  if (any)
    for (size_t w = 0; w < rests.size(); ++w) words[w] |= rests[w] & first_ok[w];
  return true;
}

}  // namespace

// Four independent multiply chains over 64-bit words (a single FNV chain over 32-bit words waited
// on its multiply at every word: ~9 us of each 16 KB mask, 6 % of JSONSchemaBench mask time).
// Only equal masks need equal hashes (lookups compare the words).
uint64_t mask_hash(std::span<const uint32_t> words) {
  constexpr uint64_t kPrime = 0x100000001B3ull;
  uint64_t lane[4] = {0xCBF29CE484222325ull, 0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full,
                      0x165667B19E3779F9ull};
  const size_t n = words.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 4; ++j) {
      const uint64_t w = words[i + 2 * j] | (uint64_t{words[i + 2 * j + 1]} << 32);
      lane[j] = (lane[j] ^ w) * kPrime;
    }
  for (; i < n; ++i) lane[0] = (lane[0] ^ words[i]) * kPrime;
  uint64_t h = n;
  for (uint64_t l : lane) h = (h ^ (l ^ (l >> 29))) * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

void compute_token_mask(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                        std::span<uint32_t> words, bool use_unit_tokens) {
  const int32_t num_words = mask_words(vocab.size());
  std::fill(words.begin(), words.begin() + num_words, 0u);
  if (state == Dfa::kDead) return;
  if (dfa.accepting(state))
    for (int32_t id : vocab.eos_ids()) words[id >> 5] |= 1u << (id & 31);
  // states[d] = the DFA state after the first d bytes of the current trie path.
  const size_t depth = static_cast<size_t>(vocab.max_token_length()) + 1;
  std::vector<int32_t> states(depth);
  std::vector<const int32_t*> rows(depth);
  if (use_unit_tokens && fill_from_unit_tokens(dfa, vocab, state, words, states, rows)) return;
  walk_trie(dfa, vocab.byte_trie(), state, words, states, rows);
}

std::shared_ptr<const TokenMask> TokenMaskCache::get(int32_t state) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = masks_.find(state);
    if (it != masks_.end()) return it->second;
  }
  auto mask = std::make_shared<TokenMask>(mask_words(vocab_->size()));
  compute_token_mask(dfa_, *vocab_, state, *mask);
  const uint64_t hash = mask_hash(*mask);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = masks_.find(state); it != masks_.end()) return it->second;  // another thread won
  if (masks_.size() >= kMaxCachedStates) return mask;
  for (auto [it, end] = by_content_.equal_range(hash); it != end; ++it)
    if (*it->second == *mask) return masks_.emplace(state, it->second).first->second;
  if (budget_ && !budget_->take(mask_bytes())) return mask;
  by_content_.emplace(hash, mask);
  return masks_.emplace(state, std::move(mask)).first->second;
}

TokenMaskCache::~TokenMaskCache() {
  if (budget_) budget_->give(static_cast<int64_t>(by_content_.size()) * mask_bytes());
}

size_t TokenMaskCache::cached_states() const {
  std::lock_guard<std::mutex> lock(mu_);
  return masks_.size();
}

size_t TokenMaskCache::stored_masks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_content_.size();
}

int64_t TokenMaskCache::mask_bytes() const {
  return static_cast<int64_t>(mask_words(vocab_->size())) * static_cast<int64_t>(sizeof(uint32_t));
}

}  // namespace sable::grammar
