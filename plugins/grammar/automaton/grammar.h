// A compiled grammar: the spec of any kind translated to a regex, its DFA, and the per-state token
// mask cache. Immutable after compile apart from the (internally locked) mask cache, so one
// grammar is shared by every matcher that uses it, on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "dfa.h"
#include "token_mask.h"
#include "vocabulary.h"

namespace sable::grammar {

class CompiledGrammar {
 public:
  CompiledGrammar(std::string regex, Dfa dfa, std::shared_ptr<const Vocabulary> vocab,
                  std::shared_ptr<MaskBudget> budget = nullptr)
      : regex_(std::move(regex)),
        dfa_(std::move(dfa)),
        vocab_(std::move(vocab)),
        masks_(dfa_, vocab_, std::move(budget)) {}
  CompiledGrammar(const CompiledGrammar&) = delete;  // masks_ refers to dfa_
  CompiledGrammar& operator=(const CompiledGrammar&) = delete;

  const std::string& regex() const { return regex_; }
  const Dfa& dfa() const { return dfa_; }
  const Vocabulary& vocab() const { return *vocab_; }
  std::shared_ptr<const TokenMask> mask(int32_t state) const { return masks_.get(state); }
  size_t cached_masks() const { return masks_.cached_states(); }

 private:
  std::string regex_;
  Dfa dfa_;
  std::shared_ptr<const Vocabulary> vocab_;
  TokenMaskCache masks_;
};

// The kind's name as errors spell it: "regex", "json_schema", "ebnf", "choices".
const char* grammar_kind_name(int32_t kind);

// Translates a spec of `kind` (SableGrammarKind) to a regex. Errors name the kind:
// "json_schema: recursive $ref '#/$defs/node' is not supported (at /properties/next)".
std::string grammar_to_regex(int32_t kind, std::string_view spec);

// Spec -> regex -> NFA -> DFA. Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) with a message
// that starts with the kind's name. The grammar's cached masks draw on `budget` (see MaskBudget).
std::shared_ptr<const CompiledGrammar> compile_grammar(int32_t kind, std::string_view spec,
                                                       std::shared_ptr<const Vocabulary> vocab,
                                                       int32_t max_states = kMaxDfaStates,
                                                       std::shared_ptr<MaskBudget> budget = nullptr);

}  // namespace sable::grammar
