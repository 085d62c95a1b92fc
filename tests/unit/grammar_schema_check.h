// Helpers of the JSON-schema grammar tests (grammar_schema_test, grammar_schema_counts_test,
// grammar_object_order_test): a schema's DFA through the engine's own pipeline (schema -> regex ->
// DFA), the refusal message of a schema, and an accept/reject check of example texts.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar::testing {

inline Dfa schema_dfa(const std::string& schema) {
  return Dfa::compile(parse_regex(json_schema_to_regex(schema), RegexDialect::kInternal));
}

// The message a refused schema fails with (an invalid-argument error), or "(compiled)".
inline std::string error_of(const std::string& schema) {
  try {
    schema_dfa(schema);
  } catch (const sable::cpp::Error& e) {
    EXPECT_EQ(e.status(), SABLE_ERR_INVALID_ARGUMENT);
    return e.what();
  }
  return "(compiled)";
}

// Every text of `good` is JSON and accepted, every text of `bad` rejected.
inline void check(const std::string& schema, const std::vector<std::string>& good,
                  const std::vector<std::string>& bad) {
  SCOPED_TRACE(schema);
  const Dfa dfa = schema_dfa(schema);
  for (const std::string& s : good) {
    EXPECT_TRUE(dfa.matches(s)) << "should accept: " << s;
    EXPECT_TRUE(nlohmann::json::accept(s)) << "not JSON: " << s;
  }
  for (const std::string& s : bad) EXPECT_FALSE(dfa.matches(s)) << "should reject: " << s;
}

}  // namespace sable::grammar::testing
