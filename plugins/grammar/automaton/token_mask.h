// Allowed-token bitmasks: for a DFA state, bit i of word i/32 is set iff token i may come next.
// An ordinary token is allowed when its bytes lead from the state to a live (non-dead) state; EOS
// tokens are allowed iff the state is accepting; other special tokens and empty tokens never are.
//
// A mask is computed by one depth-first walk over the vocabulary trie that stops descending at the
// first dead state, and cached per DFA state. The cache is shared by every matcher of a grammar and
// is thread-safe: lookups and inserts take a mutex, the walk itself runs outside it (two threads
// may compute the same mask once each; the first insert wins).
#pragma once

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
// words are written).
void compute_token_mask(const Dfa& dfa, const Vocabulary& vocab, int32_t state,
                        std::span<uint32_t> words);

class TokenMaskCache {
 public:
  // Masks beyond this many cached states are computed each time instead of kept (memory bound:
  // with a 152k-token vocabulary a mask is 19 KB, so the default caps a grammar at ~320 MB).
  static constexpr size_t kMaxCachedStates = 16384;

  TokenMaskCache(const Dfa& dfa, std::shared_ptr<const Vocabulary> vocab)
      : dfa_(dfa), vocab_(std::move(vocab)) {}

  // The mask of `state`; computed on first use. Safe to call from many threads.
  std::shared_ptr<const TokenMask> get(int32_t state) const;

 private:
  const Dfa& dfa_;
  std::shared_ptr<const Vocabulary> vocab_;
  mutable std::mutex mu_;
  mutable std::unordered_map<int32_t, std::shared_ptr<const TokenMask>> masks_;
};

}  // namespace sable::grammar
