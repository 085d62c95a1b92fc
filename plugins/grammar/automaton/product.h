// Exact boolean combinations of regular languages: intersection (JSON Schema's allOf, a length
// beside a pattern), exactly one (oneOf), difference (not, if/else). A regex cannot say "this but
// not that", but a product of automata can: a state is a tuple of the operands' DFA states, a byte
// steps every operand, and a rule over the operands' accepting flags says whether the tuple
// accepts. The operands are lazy DFAs over the same AST (lazy_dfa.h), so each is built only as far
// as texts go, and the tuples are NFA placeholders the builder expands on demand (nfa.h).
//
// No dead ends: a tuple can be alive in every operand and still have no accepted future (two
// intersected languages that part ways, a difference whose subtracted operand covers the rest).
// Such a tuple must never become a state, or a model constrained into it could never finish. Each
// tuple's liveness is decided by a depth-first search over the product (cached; a found path marks
// every tuple on it live, an exhausted search marks everything it saw dead). The search is bounded:
// past it the tuple counts as dead (a subset: texts through it are rejected, never a wrong accept),
// and a combination whose start cannot be decided is refused at compile time. Operands the
// generator declares in step (ProductRule::kAllInStep: a text alive in each has a common
// continuation) skip the search: a tuple is live when no operand is dead.
//
// Limits of the operands: an operand that stops growing at its limits (LazyDfa::exhausted) makes
// its language a subset; subtracting a subset would over-accept, so a rule that negates operands
// creates no new tuple once any operand is exhausted.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "nfa.h"
#include "regex.h"

namespace sable::grammar {

class LazyDfa;
class ProductOperands;

// Tuples visited by one liveness search before it gives up (the tuple then counts as dead).
inline constexpr int64_t kMaxLivenessSearch = 20'000;
// Containers the first liveness search may open on its path (product.cpp).
inline constexpr int32_t kFirstSearchOpenings = 3;
// A regex whose only placeholders are products of operands without deferred parts is expanded
// whole up to this many NFA states (then built eagerly and minimised like any small regex).
inline constexpr int64_t kMaxEagerProductStates = 5'000;

struct NfaContext {
  RegexAst ast;
  std::vector<uint8_t> nonempty;  // [node] its language has a string
  std::vector<uint8_t> deferred;  // [node] a deferred definition's body
  std::array<uint8_t, 256> byte_class{};
  int32_t num_classes = 0;
  std::vector<std::pair<uint8_t, uint8_t>> class_range;  // [class] its first and last byte
  std::unordered_map<int32_t, std::unique_ptr<ProductOperands>> products;  // by product node
  ~NfaContext();
};

enum class Liveness : uint8_t { kDead, kLive, kUnknown };

// One product node's operands (shared by every builder of the context; thread-safe).
class ProductOperands {
 public:
  using Tuple = std::vector<int32_t>;
  // Builds the operands' lazy DFAs (their start states).
  ProductOperands(NfaContext* context, int32_t node);
  ~ProductOperands();

  const Tuple& start() const { return start_; }
  // No operand has deferred parts (nor products that stayed lazy): small enough to expand whole.
  bool simple() const { return simple_; }
  // The tuple after one byte of class `cls`: false when the rule can no longer accept from it
  // (or operands it negates stopped growing at their limits).
  bool step(const Tuple& t, int32_t cls, Tuple* out) const;
  bool accepts(const Tuple& t) const;
  // Whether some text leads from `t` to an accepted tuple (cached; kUnknown past the bound).
  Liveness liveness(const Tuple& t);

 private:
  bool viable(const Tuple& t) const;

  ProductRule rule_;
  int32_t num_classes_;
  std::vector<std::unique_ptr<LazyDfa>> operands_;
  Tuple start_;
  // The order the liveness search tries byte classes in: the classes of `"`, `}` and `]` first,
  // those of `[` and `{` last (see liveness()).
  std::vector<int32_t> search_order_;
  std::vector<uint8_t> opening_;  // [class] holds `[` or `{`
  bool simple_ = true;
  std::mutex mu_;  // known_
  std::unordered_map<Tuple, Liveness, StateVectorHash> known_;
};

}  // namespace sable::grammar
