// Dispatch from a grammar kind to its front end, and the regex -> DFA pipeline (see grammar.h).
#include "grammar.h"

#include "choices.h"
#include "ebnf.h"
#include "json_schema.h"
#include "nfa.h"
#include "regex.h"
#include "sable/cpp/error.h"
#include "sable/grammar.h"

namespace sable::grammar {
namespace {

// Runs `step`, prefixing the message of any sable::cpp::Error it throws with the kind's name.
template <class F>
auto with_kind(int32_t kind, F&& step) {
  try {
    return step();
  } catch (const sable::cpp::Error& e) {
    throw sable::cpp::Error(e.status(), std::string(grammar_kind_name(kind)) + ": " + e.what());
  }
}

}  // namespace

const char* grammar_kind_name(int32_t kind) {
  switch (kind) {
    case SABLE_GRAMMAR_REGEX:
      return "regex";
    case SABLE_GRAMMAR_JSON_SCHEMA:
      return "json_schema";
    case SABLE_GRAMMAR_EBNF:
      return "ebnf";
    case SABLE_GRAMMAR_CHOICES:
      return "choices";
  }
  return "unknown";
}

std::string grammar_to_regex(int32_t kind, std::string_view spec) {
  return with_kind(kind, [&]() -> std::string {
    switch (kind) {
      case SABLE_GRAMMAR_REGEX:
        return std::string(spec);
      case SABLE_GRAMMAR_JSON_SCHEMA:
        return json_schema_to_regex(spec);
      case SABLE_GRAMMAR_EBNF:
        return ebnf_to_regex(spec);
      case SABLE_GRAMMAR_CHOICES:
        return choices_to_regex(spec);
    }
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "unknown grammar kind " + std::to_string(kind));
  });
}

std::shared_ptr<const CompiledGrammar> compile_grammar(int32_t kind, std::string_view spec,
                                                       std::shared_ptr<const Vocabulary> vocab,
                                                       int32_t max_states,
                                                       std::shared_ptr<MaskBudget> budget) {
  std::string regex = grammar_to_regex(kind, spec);
  const RegexDialect dialect =
      kind == SABLE_GRAMMAR_JSON_SCHEMA ? RegexDialect::kInternal : RegexDialect::kUser;
  Dfa dfa = with_kind(kind, [&] {
    try {
      return Dfa::compile(parse_regex(regex, dialect), max_states);
    } catch (const sable::cpp::Error& e) {
      // Objects in any property order multiply the automaton; say what makes it smaller.
      if (dialect != RegexDialect::kInternal || regex.find("(?@") == std::string::npos) throw;
      throw sable::cpp::Error(e.status(), std::string(e.what()) +
                                              "; objects in any property order multiply its "
                                              "size: \"x-sable\": {\"property_order\": "
                                              "\"declared\"} in the schema keeps declared order");
    }
  });
  return std::make_shared<const CompiledGrammar>(std::move(regex), std::move(dfa),
                                                 std::move(vocab), std::move(budget));
}

}  // namespace sable::grammar
