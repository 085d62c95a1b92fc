// Masks of states whose tokens mostly do not depend on the state (xgrammar's split of context-
// independent tokens): inside a free JSON string almost every byte and every complete UTF-8
// character leads from the state back to itself, so almost the whole vocabulary is allowed and a
// trie walk would set ~100k bits one by one. Instead the state's *loop set* (the ASCII bytes and
// the UTF-8 lead bytes whose characters all return to the state) keys a precomputed bitset of the
// tokens made only of such units, copied word by word, plus the few tokens that are not (a `"`,
// a `\`, a split UTF-8 character), each walked from its first non-loop unit. Exact: a token's
// loop units bring the walk back to the state, so only the rest can decide.
//
// The precomputed sets depend on the vocabulary only, so one cache per vocabulary (engine) serves
// all grammars; it holds a bounded number of loop sets (clients choose patterns), past which the
// caller falls back to the trie walk.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace sable::grammar {

class Dfa;
class Vocabulary;

// Bit b: ASCII byte b (< 0x80) loops on the state, or UTF-8 lead byte b (0xC2..0xF4) starts only
// characters that all lead back to it.
using LoopSet = std::array<uint64_t, 4>;

struct LoopTokens {
  std::vector<uint32_t> inside;       // [mask words] tokens made of loop units only
  std::vector<int32_t> exceptions;    // the other trie tokens
  std::vector<uint16_t> first_other;  // [exceptions] offset of each one's first non-loop unit
};

// The loop set of `state`, or nullopt when fewer than `min_ascii` ASCII bytes loop on it (then
// few tokens are allowed and the trie walk, which stops at dead bytes, is as fast).
std::optional<LoopSet> loop_set(const Dfa& dfa, int32_t state, int min_ascii);

class LoopTokenCache {
 public:
  // Loop sets kept per vocabulary (each ~16 KB for a 128k vocabulary plus its exceptions).
  static constexpr size_t kMaxSets = 64;

  // The tokens of `set` (computed on first use, ~1 ms); nullptr when the cache is full.
  std::shared_ptr<const LoopTokens> get(const Vocabulary& vocab, const LoopSet& set) const;

 private:
  mutable std::mutex mu_;
  mutable std::map<LoopSet, std::shared_ptr<const LoopTokens>> sets_;
};

}  // namespace sable::grammar
