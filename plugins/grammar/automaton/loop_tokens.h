// Masks of states whose tokens mostly do not depend on the state (xgrammar's split of context-
// independent tokens). Inside a JSON string almost every byte and every complete UTF-8 character
// — a *unit* — leads from the state to one same successor: back to the state itself in a free
// string (a loop), to the next position in a string with maxLength (a chain ending where the
// units die). A trie walk would then set ~100k bits one by one. Instead the state's unit set
// keys precomputed token lists: the tokens made of units only (a word copy, less those with more
// units than the chain allows) and the few others (a `"`, a `\`, a split UTF-8 character), walked
// from the chain state their leading units reach: their bytes from the first non-unit on, in one
// trie per number of leading units, so tokens that share a rest share its walk (`",`, `x",`,
// `abc",` are one path) and a dead first byte skips all the tokens behind it. Exact: k units lead
// along the chain to its k-th state, so only the rest of a token can decide.
//
// The token lists depend on the vocabulary only, so one cache per vocabulary (engine) serves all
// grammars; it holds a bounded number of unit sets (clients choose patterns), the least recently
// used one making room for a new one.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "byte_trie.h"

namespace sable::grammar {

class Dfa;
class Vocabulary;

// Bit b: ASCII byte b (< 0x80), or every character led by UTF-8 lead byte b (0xC2..0xF4), is a
// unit of the state.
using UnitSet = std::array<uint64_t, 4>;

struct UnitTokens {
  static constexpr int32_t kShortUnits = 16;
  // A unit set with more exceptions than 1/kMaxExceptionShare of the vocabulary is not used (the
  // trie walk, 1.0-1.4 ms on llama3): building the tries of 60-100k rests costs 10-20 ms a set.
  // JSONSchemaBench every 10th case, thread CPU at load ~10 (bench/NOTES.md): a sixth, mask avg
  // 42-44 us / p99 0.91 ms; a third 39-41 us / 0.61-0.62 ms; no limit 54-55 us / 0.50-0.51 ms.
  static constexpr size_t kMaxExceptionShare = 3;
  bool usable = true;  // false: too many exceptions, nothing else is kept
  std::vector<uint32_t> inside;                // [mask words] tokens made of units only
  std::vector<std::vector<uint32_t>> at_most;  // [k < kShortUnits] those of at most k units
  std::vector<int32_t> long_ids;               // those of kShortUnits units or more, most first
  std::vector<uint16_t> long_units;
  // [k] the other trie tokens with k units before their first non-unit: their bytes from it on.
  std::vector<ByteTrie> exceptions;
  size_t num_exceptions = 0;
  int32_t max_units = 0;  // the most units before a non-unit or the end of any token
};

// A state's units, the state they all lead to, and the units of the positions after the first:
// `set` again, except where the successor loops on units of its own (`rest`). That is the key
// written against a list of declared names: after `"`, every letter but the names' first ones
// leads to the free key, where every letter loops; one set for all positions would make each
// token holding such a first letter anywhere an exception (60-90k of 128k on llama3).
struct StateUnits {
  UnitSet set{};
  UnitSet rest{};
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

// Where each token's units stop when its first unit may be anything and the rest are units of one
// set: what UnitTokens of every first set with that rest share (token bytes are read once per rest
// set, not once per pair: a pair then costs ~1 ms on 128k tokens instead of ~4).
struct RestScan {
  std::vector<uint8_t> first_len;  // [vocab] bytes of the first character, 0 if no valid one
  std::vector<uint16_t> units;     // [vocab] rest units after it
  std::vector<uint16_t> end;       // [vocab] byte offset where they stop
};

class UnitTokenCache {
 public:
  // Unit sets kept per vocabulary (each ~0.4-0.6 MB for a 128k vocabulary, a rest scan 0.6 MB);
  // past it the least recently used one is dropped (its users keep their reference).
  static constexpr size_t kMaxSets = 64;
  static constexpr size_t kMaxRestScans = 16;

  // The tokens of units `first` then `rest` (StateUnits; computed on first use, ~1-3 ms).
  std::shared_ptr<const UnitTokens> get(const Vocabulary& vocab, const UnitSet& first,
                                        const UnitSet& rest) const;
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const UnitTokens> tokens;
    uint64_t last_use = 0;
  };
  struct ScanEntry {
    std::shared_ptr<const RestScan> scan;
    uint64_t last_use = 0;
  };
  std::shared_ptr<const RestScan> rest_scan(const Vocabulary& vocab, const UnitSet& rest) const;

  mutable std::mutex mu_;
  mutable std::map<std::pair<UnitSet, UnitSet>, Entry> sets_;
  mutable std::map<UnitSet, ScanEntry> scans_;
  mutable uint64_t uses_ = 0;
};

}  // namespace sable::grammar
