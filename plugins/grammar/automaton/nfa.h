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
//
// Boolean combinations (RegexOp::kProduct, product.h) are placeholders too, always: a product
// state is a tuple of the operands' DFA states, built when a closure reaches it; its byte edges
// step every operand, its epsilon edge to the continuation exists when the rule accepts the tuple.
// Only tuples from which the rule can still accept are created, so the invariant above holds.
// A regex whose only placeholders are products is expanded whole at once when that stays small
// (then eager DFAs and minimisation apply as to any regex).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "flat_map.h"
#include "regex.h"
#include "small_vector.h"

namespace sable::grammar {

struct NfaEdge {
  uint8_t lo;  // byte range, inclusive
  uint8_t hi;
  int32_t to;
};

struct NfaState {
  SmallVector<NfaEdge, 2> edges;    // byte transitions
  SmallVector<int32_t, 2> epsilon;  // empty transitions
};

struct Nfa {
  std::vector<NfaState> states;
  int32_t start = 0;
  int32_t accept = 0;  // the single accepting state (no outgoing edges)
};

// Refuses patterns whose expansion ({m,n} copies) needs more states, with an error saying so.
inline constexpr int32_t kMaxNfaStates = 1'000'000;

// What the builders of one AST share (product.h): the AST, which nodes match something, the
// byte classes, each product node's operand automata.
struct NfaContext;

// Hash of a sorted NFA state set or of a product's tuple of DFA states.
struct StateVectorHash {
  size_t operator()(const std::vector<int32_t>& v) const noexcept;
};

class NfaBuilder {
 public:
  // Builds the NFA of `ast` (deferred definitions as placeholders when `defer`). Throws
  // sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) when it would exceed max_states, or when a
  // boolean combination's emptiness cannot be decided within its search bound (product.h).
  NfaBuilder(RegexAst ast, bool defer, int32_t max_states = kMaxNfaStates);
  // The NFA of node `root` of an existing context (a product's operand), deferred parts deferred.
  NfaBuilder(NfaContext* context, int32_t root, int32_t max_states = kMaxNfaStates);
  ~NfaBuilder();
  NfaBuilder(NfaBuilder&&) noexcept;
  NfaBuilder& operator=(NfaBuilder&&) = delete;

  const Nfa& nfa() const { return nfa_; }
  Nfa take_nfa() { return std::move(nfa_); }
  const RegexAst& ast() const;
  // Placeholders not built yet.
  bool has_pending() const { return !pending_.empty() || !product_pending_.empty(); }
  bool pending(int32_t state) const {
    return static_cast<size_t>(state) < placeholder_.size() && placeholder_[state] != 0;
  }
  // Builds the part behind placeholder `state` and links it by an epsilon edge (a no-op for other
  // states). Throws like the constructor when the NFA would pass max_states; the placeholder then
  // stays without edges (nothing matches through it).
  void expand(int32_t state);

 private:
  // One occurrence (product node, continuation) and its tuples' states.
  struct ProductInstance {
    int32_t node;
    int32_t next;
    std::unordered_map<std::vector<int32_t>, int32_t, StateVectorHash> states;
  };

  void init_context(RegexAst ast);
  // Expands product placeholders while nothing else is pending and the NFA stays under `budget`
  // states (all of them when budget < 0).
  void complete_products(int64_t budget);
  int32_t product_state(int32_t instance, const std::vector<int32_t>& tuple);
  void expand_product(int32_t state, int32_t instance, const std::vector<int32_t>& tuple);
  int32_t new_state();
  int32_t build(int32_t node_index, int32_t next);
  int32_t build_new(int32_t node_index, int32_t next);
  int32_t build_set(int32_t node_index, int32_t next);
  int32_t step(ByteRange range, int32_t to);
  int32_t build_repeat(const RegexNode& node, int32_t next);

  std::shared_ptr<NfaContext> owned_;  // the builder made from a RegexAst owns the context
  NfaContext* ctx_ = nullptr;
  bool defer_ = false;
  int32_t max_states_;
  Nfa nfa_;
  FlatMap64 built_;  // (node, next) -> start
  FlatMap64 steps_;  // (byte range, next) -> state
  // set node -> offset in set_bytes_ of its UTF-8 sequences (utf8_sequences() once per node, not
  // once per continuation): per sequence its length n (1-4) and n (lo, hi) pairs, then a 0.
  FlatMap64 set_offsets_;
  std::vector<uint8_t> set_bytes_;
  std::unordered_map<int32_t, uint64_t> pending_;  // placeholder -> (node, next)
  std::vector<uint8_t> placeholder_;  // [state] an unbuilt placeholder (pending_ or products)
  std::vector<ProductInstance> instances_;
  // product placeholder -> (instance, its tuple: a key of the instance's states)
  std::unordered_map<int32_t, std::pair<int32_t, const std::vector<int32_t>*>> product_pending_;
  // expand_product()'s scratch: a successor tuple, the distinct successors and their states.
  std::vector<int32_t> product_succ_;
  std::vector<std::pair<std::vector<int32_t>, int32_t>> product_seen_;
};

// The whole NFA, nothing deferred. Throws like NfaBuilder.
Nfa build_nfa(const RegexAst& ast, int32_t max_states = kMaxNfaStates);

}  // namespace sable::grammar
