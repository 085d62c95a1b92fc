// Listed values (enum/const) checked against the rest of their schema by evaluating it, for the
// JSON schema front end. A schema that lists its values (`enum`, `const`, in itself, in an allOf
// item, or in every branch of an anyOf/oneOf) allows at most those values, so where it also holds
// keywords without an exact automaton (`not` of objects, overlapping oneOf, `if`, `contains`) the
// values it allows can be found by validating each listed value directly, as a validator would,
// and written as a plain list. Evaluation is three-valued: a keyword it does not know, or a
// string check whose automaton is a subset and rejects the string, leaves the answer undecided
// and the schema goes the usual way (automata, or a refusal naming the keyword).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfa.h"

namespace sable::grammar::schema {

using Json = nlohmann::ordered_json;

class Evaluator {
 public:
  // Local $refs resolve against `root` (already given its draft's meaning, apply_draft_semantics).
  explicit Evaluator(const Json& root) : root_(root) {}

  // Whether `value` satisfies `schema`: true, false, or nullopt when this cannot tell.
  std::optional<bool> valid(const Json& schema, const Json& value) { return check(schema, value, 0); }

 private:
  std::optional<bool> check(const Json& s, const Json& v, int depth);
  std::optional<bool> keyword(const Json& s, const std::string& key, const Json& v, int depth);
  std::optional<bool> object_keyword(const Json& s, const std::string& key, const Json& v,
                                     int depth);
  std::optional<bool> array_keyword(const Json& s, const std::string& key, const Json& v,
                                    int depth);
  // A string against {"type": "string", key: value} through the converter's own automaton:
  // accepted is valid; rejected is invalid only where that automaton is exact (`exact`).
  std::optional<bool> string_automaton(const std::string& key, const Json& value,
                                       const std::string& text, bool exact);

  const Json& root_;
  std::map<std::string, Dfa> automata_;  // by the dump of the one-keyword string schema
};

// The values a schema lists, which hold every value it allows (a superset): its enum/const, an
// allOf item's, or, when every branch lists some, the union of its anyOf/oneOf branches' (local
// $refs followed); duplicates by JSON equality dropped. nullopt when it lists none.
std::optional<std::vector<Json>> listed_values(const Json& s, const Json& root);

// JSON equality as JSON Schema means it: key order does not matter, 1 equals 1.0.
bool json_equal(const Json& a, const Json& b);

}  // namespace sable::grammar::schema
