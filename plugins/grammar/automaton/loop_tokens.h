// Masks of states whose tokens mostly do not depend on the state (xgrammar's split of context-
// independent tokens). Inside a JSON string almost every byte and every complete UTF-8 character
// — a *unit* — leads from the state to one same successor: back to the state itself in a free
// string (a loop), to the next position in a string with maxLength (a chain ending where the
// units die). A trie walk would then set ~100k bits one by one. Instead the state's unit set
// keys precomputed token lists: the tokens made of units only (a word copy, less those with more
// units than the chain allows) and the few others, walked from the state their leading units
// reach: tokens whose first byte is no unit (a `"`, a `\`, a name's first letter in a key) in the
// vocabulary trie's own subtrees of those bytes, the others (`x",`, a split UTF-8 character) by
// their bytes from the first non-unit on, in one trie per number of leading units, so tokens that
// share a rest share its walk and a dead first byte skips all the tokens behind it. Exact: k units
// lead along the chain to its k-th state, so only the rest of a token can decide.
//
// The token lists depend on the vocabulary only, so one cache per vocabulary (engine) serves all
// grammars. Everything costly (scanning 128k tokens, building the rest tries) depends only on the
// units after the first (RestTokens, one per rest set); a state's first units only select tokens
// by their first byte (UnitTokens: two bitmask operations and a list of trie ranges, ~0.1 ms), so
// the many first sets of keys written against different name lists share a few rest sets. Both
// are bounded (clients choose patterns), the least recently used one making room for a new one.
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

// Where each token's first character ends, for the whole vocabulary (computed once): what the
// masks need to split tokens by their first byte without a per-state scan.
struct FirstChars {
  std::vector<uint32_t> valid;                      // [mask words] trie tokens whose first character is whole
  std::array<std::vector<int32_t>, 256> ids;        // those tokens, by first byte
  std::vector<uint8_t> length;                      // [vocab] bytes of that character, 0 if none
  std::array<std::pair<int32_t, int32_t>, 256> subtree{};  // nodes of the vocabulary trie under each first byte
  ByteTrie cut;  // trie tokens led by a UTF-8 lead byte whose first character is cut or invalid
  std::array<std::pair<int32_t, int32_t>, 256> cut_subtree{};  // its nodes under each lead byte
};

// What the tokens are made of when every unit after the first is one of a *rest* set (whatever
// the first one is): shared by every first set with that rest, since the first unit only decides
// which tokens take part (UnitTokens::first_ok).
struct RestTokens {
  static constexpr int32_t kShortUnits = 16;
  // A rest set with more exceptions than 1/kMaxExceptionShare of the vocabulary is not used (the
  // trie walk, 1.0-1.4 ms on llama3): building the tries of 60-100k rests costs 10-20 ms a set.
  static constexpr size_t kMaxExceptionShare = 3;
  bool usable = true;  // false: too many exceptions, nothing else is kept
  // Tokens with a whole first character and rest units only after it.
  std::vector<uint32_t> whole;                 // [mask words]
  std::vector<std::vector<uint32_t>> at_most;  // [k < kShortUnits] those of at most k units
  std::vector<int32_t> long_ids;               // those of kShortUnits units or more, most first
  std::vector<uint16_t> long_units;
  // [k >= 1] tokens with a whole first character and k - 1 rest units after it, then a non-unit:
  // their bytes from the non-unit on.
  std::vector<ByteTrie> exceptions;
  size_t num_exceptions = 0;
  int32_t max_units = 0;  // the most units before a non-unit or the end of any token
};

// The tokens of a state whose first unit is one of `first` and later ones of `rest`: those made of
// units (`inside`), the vocabulary trie's subtrees of the first bytes that are no unit (walked
// whole from the state), the rests of the tokens whose units stop early (RestTokens::exceptions,
// kept only for tokens in `first_ok`).
struct UnitTokens {
  bool usable = true;  // false: the rest set has too many exceptions (the trie walk is used)
  std::shared_ptr<const RestTokens> rest;
  std::vector<uint32_t> first_ok;  // [mask words] tokens whose first character is a unit of `first`
  std::vector<uint32_t> inside;    // [mask words] tokens made of units only
  // Node ranges walked whole from the state: of the vocabulary trie (first bytes that are no
  // unit) and of FirstChars::cut (cut first characters under lead bytes that are units).
  std::vector<std::pair<int32_t, int32_t>> no_unit_ranges;
  std::vector<std::pair<int32_t, int32_t>> cut_ranges;
  size_t num_exceptions = 0;  // tokens those walks and the rest tries hold
  int32_t max_units = 0;
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

class UnitTokenCache {
 public:
  // Unit sets kept per vocabulary (each ~40 KB for a 128k vocabulary, computed in ~0.1 ms from
  // their rest set), rest sets (each ~0.4-0.8 MB, ~2-4 ms); past them the least recently used one
  // is dropped (its users keep their reference).
  static constexpr size_t kMaxSets = 256;
  static constexpr size_t kMaxRestSets = 32;

  // The tokens of units `first` then `rest` (StateUnits; computed on first use).
  std::shared_ptr<const UnitTokens> get(const Vocabulary& vocab, const UnitSet& first,
                                        const UnitSet& rest) const;
  size_t size() const;
  size_t rest_sets() const;
  // The vocabulary's first characters (computed on first use, ~5 ms on 128k tokens).
  const FirstChars& first_chars(const Vocabulary& vocab) const;

 private:
  template <class T>
  struct Entry {
    std::shared_ptr<const T> value;
    uint64_t last_use = 0;
  };
  template <class K, class T>
  std::shared_ptr<const T> lookup(std::map<K, Entry<T>>& entries, const K& key) const;
  template <class K, class T>
  std::shared_ptr<const T> insert(std::map<K, Entry<T>>& entries, const K& key,
                                  std::shared_ptr<const T> value, size_t max_entries) const;
  std::shared_ptr<const RestTokens> rest_tokens(const Vocabulary& vocab, const UnitSet& rest) const;

  mutable std::mutex mu_;
  mutable std::map<std::pair<UnitSet, UnitSet>, Entry<UnitTokens>> sets_;
  mutable std::map<UnitSet, Entry<RestTokens>> rests_;
  mutable std::shared_ptr<const FirstChars> first_chars_;
  mutable uint64_t uses_ = 0;
};

}  // namespace sable::grammar
