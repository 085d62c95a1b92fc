// The two ways to a token mask, the trie walk and the loop-set tokens (see token_mask.h).
#include "token_mask.h"

#include <algorithm>

namespace sable::grammar {

namespace {

// ASCII bytes that must loop on a state before its mask is taken from its loop set's tokens.
constexpr int kMinLoopBytes = 32;

// The mask from the state's loop set (loop_tokens.h): the precomputed tokens, then the others
// walked from their first non-loop unit. False when the state has no large loop set (or the
// vocabulary's cache of them is full): the caller walks the trie.
bool fill_from_loop_tokens(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                           std::span<uint32_t> words) {
  const std::optional<LoopSet> set = loop_set(dfa, state, kMinLoopBytes);
  if (!set) return false;
  const std::shared_ptr<const LoopTokens> loop = vocab.loop_tokens().get(vocab, *set);
  if (!loop) return false;
  for (size_t w = 0; w < loop->inside.size(); ++w) words[w] |= loop->inside[w];
  for (size_t k = 0; k < loop->exceptions.size(); ++k) {
    const int32_t id = loop->exceptions[k];
    if (dfa.walk(state, vocab.token(id).substr(loop->first_other[k])) != Dfa::kDead)
      words[id >> 5] |= 1u << (id & 31);
  }
  return true;
}

}  // namespace

void compute_token_mask(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                        std::span<uint32_t> words, bool use_loop_sets) {
  const int32_t num_words = mask_words(vocab.size());
  std::fill(words.begin(), words.begin() + num_words, 0u);
  if (state == Dfa::kDead) return;
  if (dfa.accepting(state))
    for (int32_t id : vocab.eos_ids()) words[id >> 5] |= 1u << (id & 31);
  if (use_loop_sets && fill_from_loop_tokens(dfa, vocab, state, words)) return;

  const std::vector<TrieNode>& trie = vocab.trie();
  const int32_t* token_ids = vocab.trie_token_ids().data();
  // states[d] = the DFA state after the first d bytes of the current trie path.
  std::vector<int32_t> states(static_cast<size_t>(vocab.max_token_length()) + 1);
  states[0] = state;
  const auto n = static_cast<int32_t>(trie.size());
  int32_t i = 0;
  while (i < n) {
    const TrieNode& node = trie[i];
    const int32_t s = dfa.next(states[node.depth - 1], node.byte);
    if (s == Dfa::kDead) {
      i = node.skip;  // no token below this node can be allowed
      continue;
    }
    states[node.depth] = s;
    for (int32_t k = 0; k < node.num_tokens; ++k) {
      const int32_t id = token_ids[node.first_token + k];
      words[id >> 5] |= 1u << (id & 31);
    }
    ++i;
  }
}

std::shared_ptr<const TokenMask> TokenMaskCache::get(int32_t state) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = masks_.find(state);
    if (it != masks_.end()) return it->second;
  }
  auto mask = std::make_shared<TokenMask>(mask_words(vocab_->size()));
  compute_token_mask(dfa_, *vocab_, state, *mask);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = masks_.find(state); it != masks_.end()) return it->second;  // another thread won
  if (masks_.size() >= kMaxCachedStates) return mask;
  if (budget_ && !budget_->take(mask_bytes())) return mask;
  return masks_.emplace(state, std::move(mask)).first->second;
}

TokenMaskCache::~TokenMaskCache() {
  if (budget_) budget_->give(static_cast<int64_t>(masks_.size()) * mask_bytes());
}

size_t TokenMaskCache::cached_states() const {
  std::lock_guard<std::mutex> lock(mu_);
  return masks_.size();
}

int64_t TokenMaskCache::mask_bytes() const {
  return static_cast<int64_t>(mask_words(vocab_->size())) * static_cast<int64_t>(sizeof(uint32_t));
}

}  // namespace sable::grammar
