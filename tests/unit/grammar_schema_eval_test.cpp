// Listed values evaluated against their schema (plugins/grammar/automaton/schema_eval.h): the
// three-valued validator on its own, and schemas whose enum/const sits beside keywords without an
// exact automaton (`not` of objects, overlapping oneOf, `if`, `contains`), compiled to the values
// that satisfy them. Every expectation is what Python's `jsonschema` (4.26, the validator of the
// schema's $schema, else Draft 2020-12) answers.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "plugins/grammar/automaton/schema_eval.h"
#include "tests/unit/grammar_schema_check.h"

namespace sable::grammar {
namespace {

using schema::Evaluator;
using schema::Json;
using testing::check;
using testing::error_of;

// Each (value, verdict) of `cases` against `schema_text`.
void expect_verdicts(const std::string& schema_text,
                     const std::vector<std::pair<std::string, std::optional<bool>>>& cases) {
  SCOPED_TRACE(schema_text);
  const Json root = Json::parse(schema_text);
  Evaluator evaluator(root);
  for (const auto& [value, verdict] : cases)
    EXPECT_EQ(evaluator.valid(root, Json::parse(value)), verdict) << value;
}

TEST(GrammarSchemaEval, Combinators) {
  expect_verdicts(R"({"not":{"properties":{"foo":{"not":{}}}}})",
                  {{R"({"bar":2,"foo":1})", true}, {R"({"bar":2})", false}});
  expect_verdicts(R"({"oneOf":[{"type":"integer"},{"minimum":2}]})",
                  {{"3", false}, {"2.5", true}, {"1", true}, {"1.0", true}, {R"("x")", true}});
  expect_verdicts(R"({"if":{"maximum":4},"then":{"minimum":4},"else":{"minimum":6}})",
                  {{"4", true}, {"3", false}, {"5", false}, {"7", true}});
  expect_verdicts(R"({"$defs":{"n":{"anyOf":[{"type":"integer"},
                                             {"type":"array","items":{"$ref":"#/$defs/n"}}]}},
                      "$ref":"#/$defs/n"})",
                  {{"[[1,[2]]]", true}, {R"([["a"]])", false}});
  expect_verdicts(R"({"const":1})", {{"1.0", true}, {"true", false}});
}

TEST(GrammarSchemaEval, Objects) {
  expect_verdicts(R"({"patternProperties":{"f.*o":{"type":"integer"}}})",
                  {{R"({"foo":"bar","fooooo":2})", false}, {R"({"fooooo":2})", true},
                   {R"({"fa":"x"})", true}});
  expect_verdicts(R"({"additionalProperties":false,"patternProperties":{"^v":{}},
                      "properties":{"bar":{},"foo":{}}})",
                  {{R"({"bar":2,"foo":1,"quux":"boom"})", false}, {R"({"bar":2,"vroom":1})", true}});
  expect_verdicts(R"({"$schema":"http://json-schema.org/draft-07/schema#",
                      "dependencies":{"a":["b"],"c":{"required":["d"]}}})",
                  {{R"({"a":1})", false}, {R"({"a":1,"b":2})", true}, {R"({"c":1})", false},
                   {R"({"c":1,"d":1})", true}});
  expect_verdicts(R"({"propertyNames":{"maxLength":2}})",
                  {{R"({"abc":1})", false}, {R"({"ab":1})", true}});
  expect_verdicts(R"({"type":"object","required":["a"],"minProperties":2,"maxProperties":2})",
                  {{R"({"a":1})", false}, {R"({"a":1,"b":2})", true}, {R"({"b":1,"c":2})", false}});
}

TEST(GrammarSchemaEval, ArraysStringsNumbers) {
  expect_verdicts(R"({"contains":{"const":2},"minContains":2,"maxContains":3})",
                  {{"[2,2]", true}, {"[2]", false}, {"[2,2,2,2]", false}, {"[]", false},
                   {"[2,1,2]", true}});
  expect_verdicts(R"({"uniqueItems":true})",
                  {{"[1,1.0]", false}, {R"([{"a":1,"b":2},{"b":2,"a":1}])", false},
                   {R"([1,"1"])", true}});
  expect_verdicts(R"({"$schema":"http://json-schema.org/draft-04/schema#",
                      "items":[{"type":"integer"}],"additionalItems":false})",
                  {{"[1]", true}, {"[1,2]", false}, {R"(["a"])", false}});
  expect_verdicts(R"({"prefixItems":[{"type":"integer"}],"items":{"type":"string"}})",
                  {{R"([1,"a"])", true}, {"[1,2]", false}, {R"(["a"])", false}});
  expect_verdicts(R"({"type":"string","pattern":"^a.c$","minLength":3})",
                  {{R"("abc")", true}, {R"("abd")", false}, {R"("a\nc")", false}});
  expect_verdicts(R"({"multipleOf":1.5})", {{"4.5", true}, {"4", false}, {"0", true}});
  expect_verdicts(R"({"multipleOf":0.0001})", {{"0.0075", true}});
  expect_verdicts(R"({"exclusiveMinimum":0,"maximum":10})",
                  {{"0", false}, {"10", true}, {"10.5", false}, {"0.001", true}});
}

TEST(GrammarSchemaEval, UndecidedWhereAnAutomatonIsASubset) {
  // A format's automaton accepting a string decides it; rejecting it does not (it is a subset).
  expect_verdicts(R"({"type":"string","format":"email"})",
                  {{R"("a@b.co")", true}, {R"("not an email")", std::nullopt}});
  // Draft 3 keywords the converter does not evaluate.
  expect_verdicts(R"({"divisibleBy":2})", {{"4", std::nullopt}});
  // A false verdict elsewhere still decides.
  expect_verdicts(R"({"type":"integer","divisibleBy":2})", {{R"("x")", false}});
}

TEST(GrammarSchemaEval, ListedValuesCompileToTheOnesThatSatisfy) {
  check(R"({"allOf":[{"enum":[{"bar":2,"foo":1},{"bar":3}]},
                     {"not":{"properties":{"foo":{"not":{}}}}}]})",
        {R"({"bar":2,"foo":1})"}, {R"({"bar":3})", R"({"bar":2})"});
  check(R"({"type":"number","if":{"maximum":4},"then":{"minimum":4},"else":{"minimum":6},
            "enum":[1,2,4,5,7]})",
        {"4", "7"}, {"1", "2", "5", "6"});
  // oneOf whose branches list their values: those in exactly one list.
  check(R"({"oneOf":[{"enum":[[1],[3,4]]},{"enum":[[1],[1,2]]}]})", {"[3,4]", "[1,2]"},
        {"[1]", "[3]"});
  check(R"({"enum":[[2,2],[2],[1,2,3,2]],"contains":{"const":2},"minContains":2})",
        {"[2,2]", "[1,2,3,2]"}, {"[2]"});
  // Nothing listed satisfies the rest: refused by name, not compiled to an empty grammar.
  EXPECT_NE(error_of(R"({"enum":[1,2],"not":{"type":"integer"}})").find("allows no value"),
            std::string::npos);
  // A value the evaluation cannot decide leaves the schema to the automata, here refused.
  EXPECT_NE(error_of(R"({"enum":["a@b.co","nope"],"not":{"format":"email"}})").find("not"),
            std::string::npos);
}

}  // namespace
}  // namespace sable::grammar
