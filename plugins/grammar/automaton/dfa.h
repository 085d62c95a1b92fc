// The deterministic byte automaton every grammar runs on: matchers step it per token byte, the
// token-mask walk steps it per trie node, jump-forward follows its forced bytes.
//
// Dfa::build constructs it EAGERLY by subset construction, then minimises it (Hopcroft), with a
// cap on the number of states: a pattern that would need more is refused (a clear compile error).
// Dfa::compile, what grammars use, builds eagerly when the NFA has no deferred parts and the DFA
// fits kMaxDfaStates, else LAZILY (lazy_dfa.h: states built as matches reach them, bounded memory):
// deep recursion and long bounded repetitions compile without their full automaton. An eager Dfa
// is immutable, a lazy one grows under its own lock; either may be read by any number of threads.
// Bytes are grouped into equivalence classes (bytes no NFA edge distinguishes) to keep the
// transition table at [states, classes] int32.
//
// State 0 is the dead state (no way to reach acceptance); every transition into a state from which
// no accepting state is reachable is redirected to it, so "not dead" means "can still complete".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "lazy_dfa.h"
#include "nfa.h"

namespace sable::grammar {

inline constexpr int32_t kMaxDfaStates = 100'000;

class Dfa {
 public:
  static constexpr int32_t kDead = 0;

  // Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) when more than max_states states are
  // needed, when the pattern is so ambiguous that the construction exceeds its work budget (about
  // a second), or when the language is empty.
  static Dfa build(const Nfa& nfa, int32_t max_states = kMaxDfaStates);
  // A grammar's automaton (see above): eager when `ast` has no deferred parts and the DFA fits
  // max_eager_states, lazy otherwise. Throws like build() for an ambiguous or empty language.
  static Dfa compile(RegexAst ast, int32_t max_eager_states = kMaxDfaStates,
                     LazyDfa::Limits limits = {});

  bool lazy() const { return lazy_ != nullptr; }
  // Lazy: whether it stopped adding states at its limits (some texts are then rejected).
  bool exhausted() const { return lazy_ && lazy_->exhausted(); }
  int32_t start() const { return start_; }
  // Lazy: the states built so far.
  int32_t num_states() const {
    return lazy_ ? lazy_->num_states() : static_cast<int32_t>(accepting_.size());
  }
  int32_t num_classes() const { return num_classes_; }
  // Bytes of one class have the same transitions everywhere; classes are runs of bytes.
  uint8_t byte_class(uint8_t byte) const { return byte_class_[byte]; }
  int32_t next(int32_t state, uint8_t byte) const {
    if (lazy_) [[unlikely]]
      return lazy_->next_class(state, byte_class_[byte]);
    return trans_[static_cast<size_t>(state) * num_classes_ + byte_class_[byte]];
  }
  // The successor on class `cls` of `state`, whose row() is `row` (lazy: filled when needed).
  int32_t step(const int32_t* row, int32_t state, int32_t cls) const {
    if (lazy_) [[unlikely]]
      return lazy_->step(row, state, cls);
    return row[cls];
  }
  // The successors of `state` by byte class, [num_classes()]; lazy: entries are
  // LazyDfa::kUnbuilt until step() fills them. Walks that step many bytes from one state (the
  // token trie) look the row up once.
  const int32_t* row(int32_t state) const {
    return lazy_ ? lazy_->row(state)
                 : trans_.data() + static_cast<size_t>(state) * static_cast<size_t>(num_classes_);
  }
  const std::array<uint8_t, 256>& byte_classes() const { return byte_class_; }
  // Eager: the whole table, [num_states(), num_classes()] (hot loops index it with no lazy check).
  const int32_t* eager_table() const { return trans_.data(); }
  bool accepting(int32_t state) const {
    return lazy_ ? lazy_->accepting(state) : accepting_[state] != 0;
  }
  // The only byte that leads to a live state, or -1 when there are none or several.
  int32_t forced_byte(int32_t state) const {
    return lazy_ ? lazy_->forced_byte(state) : forced_[state];
  }

  // Runs `text` from `state`; kDead when it falls out.
  int32_t walk(int32_t state, std::string_view text) const;
  bool matches(std::string_view text) const { return accepting(walk(start_, text)); }

 private:
  // nullopt when more than max_states states are needed.
  static std::optional<Dfa> build_capped(const Nfa& nfa, int32_t max_states);
  void prune_dead_ends();
  // Merges equivalent states and drops unreachable ones (dfa_minimize.cpp).
  void minimize();
  void compute_forced_bytes();

  std::array<uint8_t, 256> byte_class_{};
  int32_t num_classes_ = 0;
  int32_t start_ = kDead;
  std::vector<int32_t> trans_;  // [states, classes]
  std::vector<uint8_t> accepting_;
  std::vector<int16_t> forced_;
  std::shared_ptr<const LazyDfa> lazy_;  // set: the tables above are unused
};

}  // namespace sable::grammar
