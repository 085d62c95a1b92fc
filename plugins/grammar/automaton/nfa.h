// From the regex AST to a byte-level NFA: every code point set becomes the UTF-8 byte-range
// sequences that encode it, so the automata (and the token trie walk) never decode UTF-8. The NFA
// is a build-time intermediate; only the DFA built from it is kept.
//
// Built back to front (each node is compiled knowing the state that follows it) and memoized on
// (node, next state): a subtree that occurs twice with the same continuation - as the regexes of
// JSON objects with optional properties are full of - is built once, which keeps both the NFA and
// the DFA made from it linear in the schema rather than quadratic or worse.
#pragma once

#include <cstdint>
#include <vector>

#include "regex.h"

namespace sable::grammar {

struct NfaEdge {
  uint8_t lo;  // byte range, inclusive
  uint8_t hi;
  int32_t to;
};

struct NfaState {
  std::vector<NfaEdge> edges;    // byte transitions
  std::vector<int32_t> epsilon;  // empty transitions
};

struct Nfa {
  std::vector<NfaState> states;
  int32_t start = 0;
  int32_t accept = 0;  // the single accepting state (no outgoing edges)
};

// Refuses patterns whose expansion ({m,n} copies) needs more states, with an error saying so.
inline constexpr int32_t kMaxNfaStates = 1'000'000;

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) when the NFA would exceed max_states.
Nfa build_nfa(const RegexAst& ast, int32_t max_states = kMaxNfaStates);

}  // namespace sable::grammar
