// The deterministic byte automaton every grammar runs on: matchers step it per token byte, the
// token-mask walk steps it per trie node, jump-forward follows its forced bytes.
//
// Built EAGERLY by subset construction at compile time, then minimised (Hopcroft), with a cap on the number of states: a
// grammar that would need more is refused then (a clear compile error, a 400 for the client)
// rather than failing in the middle of a request. Once built a Dfa is immutable, so any number of
// threads may read it without locks. Bytes are grouped into equivalence classes (bytes no NFA edge
// distinguishes) to keep the transition table at [states, classes] int32.
//
// State 0 is the dead state (no way to reach acceptance); every transition into a state from which
// no accepting state is reachable is redirected to it, so "not dead" means "can still complete".
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

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

  int32_t start() const { return start_; }
  int32_t num_states() const { return static_cast<int32_t>(accepting_.size()); }
  int32_t num_classes() const { return num_classes_; }
  // Bytes of one class have the same transitions everywhere; classes are runs of bytes.
  uint8_t byte_class(uint8_t byte) const { return byte_class_[byte]; }
  int32_t next(int32_t state, uint8_t byte) const {
    return trans_[static_cast<size_t>(state) * num_classes_ + byte_class_[byte]];
  }
  bool accepting(int32_t state) const { return accepting_[state] != 0; }
  // The only byte that leads to a live state, or -1 when there are none or several.
  int32_t forced_byte(int32_t state) const { return forced_[state]; }

  // Runs `text` from `state`; kDead when it falls out.
  int32_t walk(int32_t state, std::string_view text) const;
  bool matches(std::string_view text) const { return accepting(walk(start_, text)); }

 private:
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
};

}  // namespace sable::grammar
