// Allowed-token bitmasks: for a DFA state, bit i of word i/32 is set iff token i may come next.
// An ordinary token is allowed when its bytes lead from the state to a live (non-dead) state; EOS
// tokens are allowed iff the state is accepting; other special tokens and empty tokens never are.
//
// A mask is computed by one depth-first walk over the vocabulary trie that stops descending at the
// first dead state or, for states where most bytes lead to one same state (inside JSON strings),
// from the tokens precomputed for the state's unit set (loop_tokens.h), and cached per DFA state.
// States with equal masks share one stored copy: a lazy DFA is not minimised, and the states of
// one string at different depths of a recursion, or of keys and strings whose differences lie
// further ahead than any token reaches, allow the same tokens (on JSONSchemaBench 60 % of the
// masks a grammar fills equal one it already holds). The cache is shared by every matcher of a
// grammar and is thread-safe: lookups and inserts take a mutex, the walk itself runs outside it
// (two threads may compute the same mask once each; the first insert wins).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "dfa.h"
#include "vocabulary.h"

namespace sable::grammar {

using TokenMask = std::vector<uint32_t>;  // [ceil(vocab / 32)]

inline int32_t mask_words(int32_t vocab_size) {
  return (vocab_size + 31) / 32;
}

// Writes the mask of `state` into `words` (at least mask_words(vocab.size()) long; only those
// words are written). use_unit_tokens false: always the trie walk (tests compare the two).
void compute_token_mask(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                        std::span<uint32_t> words, bool use_unit_tokens = true);

// A hash of mask words (equal masks, equal hashes; TokenMaskCache finds stored copies by it).
uint64_t mask_hash(std::span<const uint32_t> words);

// Bytes of cached masks that all the grammars of one engine may hold together (clients choose the
// grammars, so the sum must be bounded, not just each grammar). Past it, masks are computed on
// every use instead of kept. Thread-safe.
class MaskBudget {
 public:
  explicit MaskBudget(int64_t bytes) : left_(bytes) {}
  // Reserves n bytes; false (nothing reserved) when fewer are left.
  bool take(int64_t n) {
    int64_t left = left_.load();
    while (left >= n)
      if (left_.compare_exchange_weak(left, left - n)) return true;
    return false;
  }
  void give(int64_t n) { left_.fetch_add(n); }
  int64_t left() const { return left_.load(); }

 private:
  std::atomic<int64_t> left_;
};

class TokenMaskCache {
 public:
  // Masks beyond this many cached states are computed each time instead of kept (memory bound:
  // with a 152k-token vocabulary a mask is 19 KB, so the default caps a grammar at ~320 MB).
  static constexpr size_t kMaxCachedStates = 16384;

  // budget: shared by the engine's grammars (nullptr: only kMaxCachedStates bounds this cache).
  TokenMaskCache(const Dfa& dfa, std::shared_ptr<const Vocabulary> vocab,
                 std::shared_ptr<MaskBudget> budget = nullptr)
      : dfa_(dfa), vocab_(std::move(vocab)), budget_(std::move(budget)) {}
  ~TokenMaskCache();
  TokenMaskCache(const TokenMaskCache&) = delete;
  TokenMaskCache& operator=(const TokenMaskCache&) = delete;

  size_t cached_states() const;
  // Distinct masks stored for them (each charged to the budget once).
  size_t stored_masks() const;

  // The mask of `state`; computed on first use. Safe to call from many threads.
  std::shared_ptr<const TokenMask> get(int32_t state) const;

 private:
  int64_t mask_bytes() const;

  const Dfa& dfa_;
  std::shared_ptr<const Vocabulary> vocab_;
  std::shared_ptr<MaskBudget> budget_;
  mutable std::mutex mu_;
  mutable std::unordered_map<int32_t, std::shared_ptr<const TokenMask>> masks_;
  // The distinct masks of masks_, by a hash of their words.
  mutable std::unordered_multimap<uint64_t, std::shared_ptr<const TokenMask>> by_content_;
};

}  // namespace sable::grammar
