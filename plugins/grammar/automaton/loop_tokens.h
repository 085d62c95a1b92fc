// Masks of states whose tokens mostly do not depend on the state (xgrammar's split of context-
// independent tokens). Inside a JSON string almost every byte and every complete UTF-8 character
// — a *unit* — leads from the state to one same successor: back to the state itself in a free
// string (a loop), to the next position in a string with maxLength (a chain ending where the
// units die). A trie walk would then set ~100k bits one by one. Instead the state's unit set
// keys precomputed token lists: the tokens made of units only (a word copy, less those with more
// units than the chain allows) and the few others (a `"`, a `\`, a split UTF-8 character), each
// walked from the chain state its leading units reach. Exact: k units lead along the chain to its
// k-th state, so only the rest of a token can decide.
//
// The token lists depend on the vocabulary only, so one cache per vocabulary (engine) serves all
// grammars; it holds a bounded number of unit sets (clients choose patterns), past which the
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

// Bit b: ASCII byte b (< 0x80), or every character led by UTF-8 lead byte b (0xC2..0xF4), is a
// unit of the state.
using UnitSet = std::array<uint64_t, 4>;

struct UnitTokens {
  static constexpr int32_t kShortUnits = 16;
  std::vector<uint32_t> inside;                // [mask words] tokens made of units only
  std::vector<std::vector<uint32_t>> at_most;  // [k < kShortUnits] those of at most k units
  std::vector<int32_t> long_ids;               // those of kShortUnits units or more, most first
  std::vector<uint16_t> long_units;
  std::vector<int32_t> exceptions;             // the other trie tokens
  std::vector<uint16_t> first_other;           // [exceptions] byte offset of the first non-unit
  std::vector<uint16_t> units_before;          // [exceptions] units before it
  int32_t max_units = 0;  // the most units before a non-unit or the end of any token
};

// A state's units and the state they all lead to.
struct StateUnits {
  UnitSet set{};
  int32_t successor = 0;
};

// The units of `state`: the most frequent live successor of its ASCII bytes, when at least
// `min_ascii` bytes lead there, those bytes, and the lead bytes all of whose characters lead there
// too; nullopt when there is no such successor (few tokens are allowed: the trie walk is fast).
std::optional<StateUnits> state_units(const Dfa& dfa, int32_t state, int min_ascii);

// Where k units lead from `state`: states[k]. Past the last one the units either keep returning
// to it (loop) or all die there. Followed for at most `max_units` units (then loop: no token has
// more); nullopt when the units part ways along the chain (the caller walks the trie).
struct UnitChain {
  std::vector<int32_t> states;
  bool loop = false;
};
std::optional<UnitChain> unit_chain(const Dfa& dfa, int32_t state, const StateUnits& units,
                                    int32_t max_units);

class UnitTokenCache {
 public:
  // Unit sets kept per vocabulary (each ~0.3 MB for a 128k vocabulary).
  static constexpr size_t kMaxSets = 64;

  // The tokens of `set` (computed on first use, ~1 ms); nullptr when the cache is full.
  std::shared_ptr<const UnitTokens> get(const Vocabulary& vocab, const UnitSet& set) const;

 private:
  mutable std::mutex mu_;
  mutable std::map<UnitSet, std::shared_ptr<const UnitTokens>> sets_;
};

}  // namespace sable::grammar
