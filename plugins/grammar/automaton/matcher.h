// One request's position in a grammar: the current DFA state plus the states before each accepted
// token, so the engine can roll back tokens (speculative decoding, retraction). Used by one thread
// at a time; holds its grammar alive.
//
// Invariant: accept_token(t) succeeds exactly when bit t of fill_bitmask's mask is set. Once an EOS
// token is accepted (only in an accepting state) the matcher is terminated: the mask then allows
// the EOS tokens alone, and accepting one again keeps it terminated.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "grammar.h"

namespace sable::grammar {

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const CompiledGrammar> grammar)
      : grammar_(std::move(grammar)), state_(grammar_->dfa().start()) {}

  // Writes all of `words` (bits past the vocabulary zero). Throws sable::cpp::Error when `words`
  // is shorter than ceil(vocab / 32).
  void fill_bitmask(std::span<uint32_t> words) const;
  // False (and nothing changes) when the token is not allowed here.
  bool accept_token(int32_t token);
  bool is_terminated() const { return terminated_; }
  // Undoes the last `n` accepted tokens; throws sable::cpp::Error when fewer were accepted.
  void rollback(int32_t n);
  // The bytes every continuation must start with, cut at the last complete UTF-8 character.
  std::string jump_forward() const;

  int32_t state() const { return state_; }

 private:
  struct Step {
    int32_t state;
    bool terminated;
  };

  std::shared_ptr<const CompiledGrammar> grammar_;
  int32_t state_;
  bool terminated_ = false;
  std::vector<Step> history_;  // before each accepted token
};

}  // namespace sable::grammar
