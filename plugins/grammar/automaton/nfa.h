// From the regex AST to a byte-level NFA: every code point set becomes the UTF-8 byte-range
// sequences that encode it, so the automata (and the token trie walk) never decode UTF-8. The NFA
// is a build-time intermediate of eager DFAs; a lazy DFA (lazy_dfa.h) keeps its builder and grows
// the NFA as matches reach deferred parts.
//
// Built back to front (each node is compiled knowing the state that follows it) and memoized on
// (node, next state): a subtree that occurs twice with the same continuation - as the regexes of
// JSON objects with optional properties are full of - is built once, which keeps both the NFA and
// the DFA made from it linear in the schema rather than quadratic or worse. Subtrees whose
// language is empty are not built at all, so every NFA state can reach the accepting one (a DFA
// state is live exactly when its set of NFA states is not empty).
//
// Deferred definitions (RegexAst::deferred): with `defer` set, an occurrence (node, next) of one
// becomes a placeholder state with no edges, built by expand() when an epsilon closure reaches it.
// Recursion unrolled D levels deep would otherwise need 2^D copies of the inner levels (one per
// continuation); deferred, only the levels a text actually enters are built.
#pragma once

#include <cstdint>
#include <unordered_map>
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

class NfaBuilder {
 public:
  // Builds the NFA of `ast` (deferred definitions as placeholders when `defer`). Throws
  // sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) when it would exceed max_states.
  NfaBuilder(RegexAst ast, bool defer, int32_t max_states = kMaxNfaStates);

  const Nfa& nfa() const { return nfa_; }
  Nfa take_nfa() { return std::move(nfa_); }
  const RegexAst& ast() const { return ast_; }
  // Placeholders not built yet.
  bool has_pending() const { return !pending_.empty(); }
  bool pending(int32_t state) const { return !pending_.empty() && pending_.count(state) != 0; }
  // Builds the part behind placeholder `state` and links it by an epsilon edge (a no-op for other
  // states). Throws like the constructor when the NFA would pass max_states; the placeholder then
  // stays without edges (nothing matches through it).
  void expand(int32_t state);

 private:
  int32_t new_state();
  int32_t build(int32_t node_index, int32_t next);
  int32_t build_new(const RegexNode& node, int32_t next);
  int32_t build_set(const CodePointSet& set, int32_t next);
  int32_t step(ByteRange range, int32_t to);
  int32_t build_repeat(const RegexNode& node, int32_t next);

  RegexAst ast_;
  int32_t max_states_;
  Nfa nfa_;
  std::vector<uint8_t> nonempty_;   // [node] its language has a string
  std::vector<uint8_t> deferred_;   // [node] built behind a placeholder
  std::unordered_map<uint64_t, int32_t> built_;  // (node, next) -> start
  std::unordered_map<uint64_t, int32_t> steps_;  // (byte range, next) -> state
  std::unordered_map<int32_t, uint64_t> pending_;  // placeholder -> (node, next)
};

// The whole NFA, nothing deferred. Throws like NfaBuilder.
Nfa build_nfa(const RegexAst& ast, int32_t max_states = kMaxNfaStates);

}  // namespace sable::grammar
