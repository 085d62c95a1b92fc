// JSON schema keywords over an object's set of members (minProperties, maxProperties,
// dependencies/dependentRequired, required names outside `properties`) and the schema rewrites
// that keep a schema exact instead of refusing it (allOf of several $refs, additionalProperties
// of merged schemas, enum values none of which fits, unknown formats, hostnames). Expectations
// are what a JSON Schema validator answers (checked with Python's `jsonschema` when written).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"
#include "tests/unit/grammar_schema_check.h"

namespace sable::grammar {
namespace {

using testing::check;
using testing::error_of;
using testing::schema_dfa;

const std::vector<std::string> kNames = {"a", "b", "c", "d"};
const std::vector<std::string> kValues = {"1", "\"s\"", "true", "null"};
const std::vector<std::string> kExtras = {R"("x":true)", R"("y":false)"};

// Every subset of {a,b,c,d} in every order, then 0-2 further members: accepted exactly when the
// member count is 2..3, a brings c and b brings d.
TEST(GrammarSchemaCounts, MinMaxPropertiesAndDependenciesOverEveryOrder) {
  const Dfa dfa = schema_dfa(R"({"type":"object","properties":{"a":{"type":"integer"},
      "b":{"type":"string"},"c":{"type":"boolean"},"d":{"type":"null"}},
      "additionalProperties":{"type":"boolean"},"minProperties":2,"maxProperties":3,
      "dependencies":{"a":["c"]},"dependentRequired":{"b":["d"]}})");
  int accepted = 0;
  for (int set = 0; set < 16; ++set) {
    std::vector<int> order;
    for (int i = 0; i < 4; ++i)
      if (set & (1 << i)) order.push_back(i);
    const bool deps = (!(set & 1) || (set & 4)) && (!(set & 2) || (set & 8));
    do {
      for (size_t extras = 0; extras <= kExtras.size(); ++extras) {
        std::string text = "{";
        for (int i : order)
          text += (text.size() > 1 ? "," : "") + ("\"" + kNames[i] + "\":") + kValues[i];
        for (size_t e = 0; e < extras; ++e) text += (text.size() > 1 ? "," : "") + kExtras[e];
        text += "}";
        const size_t count = order.size() + extras;
        const bool valid = deps && count >= 2 && count <= 3;
        EXPECT_EQ(dfa.matches(text), valid) << text;
        accepted += valid;
      }
    } while (std::next_permutation(order.begin(), order.end()));
  }
  EXPECT_GT(accepted, 20);
  // Values, duplicates and further members' values are still checked.
  for (const char* bad : {R"({"c":true,"c":false})", R"({"c":1,"d":null})", R"({"c":true,"x":1})"})
    EXPECT_FALSE(dfa.matches(bad)) << bad;
}

TEST(GrammarSchemaCounts, MapsWithMinAndMaxProperties) {
  check(R"({"type":"object","additionalProperties":{"type":"integer"},"minProperties":1})",
        {R"({"k":1})", R"({"k":1,"j":2})", R"({"k":1,"j":2,"i":3})"}, {"{}", R"({"k":"1"})"});
  check(R"({"type":"object","patternProperties":{"^x":{"type":"integer"}},
            "additionalProperties":false,"minProperties":1,"maxProperties":2})",
        {R"({"x1":1})", R"({"x1":1,"xy":2})"}, {"{}", R"({"x1":1,"x2":2,"x3":3})", R"({"y":1})"});
  check(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],
            "additionalProperties":{"type":"string"},"maxProperties":2})",
        {R"({"a":1})", R"({"a":1,"s":"t"})"}, {R"({"a":1,"s":"t","u":"v"})", R"({"s":"t"})"});
  check(R"({"type":"object","maxProperties":0})", {"{}"}, {R"({"a":1})"});
  EXPECT_NE(error_of(R"({"type":"object","minProperties":3,"maxProperties":2})")
                .find("maxProperties is below minProperties"),
            std::string::npos);
}

// Past the any-order limits (13 properties) members may repeat; dependencies and minProperties 1
// still hold, larger counts are refused.
TEST(GrammarSchemaCounts, LargeObjectsWithDependencies) {
  std::string props;
  for (int i = 0; i < 13; ++i)
    props += (i ? "," : "") + std::string("\"p") + std::to_string(i) + R"(":{"type":"integer"})";
  const std::string object = R"({"type":"object","properties":{)" + props + "}";
  check(object + R"(,"dependencies":{"p12":["p0","p3"]},"minProperties":1})",
        {R"({"p1":1})", R"({"p3":1,"p12":2,"p0":3})", R"({"p12":2,"p3":1,"p12":4,"p0":3,"x":[]})"},
        {"{}", R"({"p12":2,"p3":1})", R"({"p12":2,"p0":1})", R"({"p3":1,"p12":"2","p0":3})"});
  EXPECT_NE(error_of(object + R"(,"minProperties":2})").find("minProperties"), std::string::npos);
  EXPECT_NE(error_of(object + R"(,"maxProperties":5})").find("maxProperties"), std::string::npos);
}

TEST(GrammarSchemaCounts, DependenciesOnUndeclaredNames) {
  // A name `properties` does not declare is declared as an optional further member, so the set
  // of members written shows it.
  const std::string draft7 = R"("$schema":"http://json-schema.org/draft-07/schema#",)";
  check("{" + draft7 + R"("type":"object","properties":{"a":{}},"dependencies":{"a":["z"]}})",
        {"{}", R"({"a":1,"z":2})", R"({"z":1})", R"({"z":1,"a":3,"y":2})"},
        {R"({"a":1})", R"({"a":1,"y":2})"});
  check("{" + draft7 + R"("type":"object","properties":{"a":{}},"dependencies":{"z":["a"]}})",
        {"{}", R"({"z":1,"a":2})", R"({"a":1})", R"({"y":1})"}, {R"({"z":1})", R"({"z":1,"y":2})"});
  // Beside patternProperties (which may govern the name) they are refused by name.
  EXPECT_NE(error_of(R"({"type":"object","properties":{"a":{}},"patternProperties":{"^x":{}},
                        "dependencies":{"a":["z"]}})")
                .find("'z'"),
            std::string::npos);
  // ... but a trigger that can never be written constrains nothing, and {"required": [...]} is the
  // list form.
  check(R"({"type":"object","properties":{"a":{},"b":{}},"additionalProperties":false,
            "dependencies":{"z":["a"],"a":{"required":["b"]}}})",
        {"{}", R"({"b":1})", R"({"a":1,"b":2})", R"({"b":2,"a":1})"}, {R"({"a":1})", R"({"z":1})"});
  // In declared order (explicitly, or past the any-order limits) they are refused by name.
  const std::string declared = error_of(R"({"type":"object","properties":{"a":{},"b":{}},
      "dependencies":{"a":["b"]},"x-sable":{"property_order":"declared"}})");
  EXPECT_NE(declared.find("declared property order"), std::string::npos) << declared;
}

TEST(GrammarSchemaCounts, RequiredNamesOutsidePropertiesAreFurtherMembers) {
  check(R"({"properties":{"a":{}},"required":["b"],"additionalProperties":{"type":"integer"}})",
        {R"({"b":1})", R"({"a":"x","b":2})", R"({"b":2,"a":true})", R"({"b":2,"c":3})"},
        {R"({"a":1})", R"({"b":"s"})", R"({"b":1,"b":2})", "{}"});
  check(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a","id"]})",
        {R"({"a":1,"id":"x"})", R"({"id":[1],"a":2})"}, {R"({"a":1})", R"({"id":1})"});
  // No further member may hold it: no object is valid (values of other types are, without type).
  EXPECT_NE(error_of(R"({"type":"object","properties":{"a":{}},"required":["b"],
                        "additionalProperties":false})")
                .find("allows no value"),
            std::string::npos);
  check(R"({"properties":{"a":{}},"required":["b"],"additionalProperties":false})",
        {"1", R"("s")", "[]", "null"}, {R"({"b":1})", "{}"});
  check(
      R"({"properties":{"o":{"properties":{"a":{}},"required":["b"],"additionalProperties":false}},
            "additionalProperties":false})",
      {"{}"}, {R"({"o":{"b":1}})", R"({"o":{}})"});
}

// A property whose schema allows nothing (an allOf holding `not {}`) may not appear; required,
// no object is valid, and an anyOf branch requiring it drops out.
TEST(GrammarSchemaCounts, PropertiesThatAllowNothing) {
  const std::string props = R"("properties":{"a":{"allOf":[{"type":"string"},{"not":{}}]},"b":{}})";
  check(R"({"type":"object",)" + props + "}", {"{}", R"({"b":1})"}, {R"({"a":"x"})"});
  check(R"({"type":"object",)" + props + R"(,"anyOf":[{"required":["a"]},{"required":["b"]}]})",
        {R"({"b":1})"}, {"{}", R"({"a":"x"})", R"({"a":"x","b":1})"});
}

// Keys that match no patternProperties pattern are further members (additionalProperties), for
// one pattern of a simple shape and no declared properties.
TEST(GrammarSchemaCounts, KeysMatchingNoPattern) {
  check(R"({"type":"object","patternProperties":{"^w+":{"type":"integer"}}})",
        {R"({"height":"x"})", R"({"w":1,"h":[]})", R"({"":"s"})", R"({"é":1})"},
        {R"({"width":"x"})", R"({"w":"1"})"});
  check(R"({"type":"object","patternProperties":{"^[a-z_]+$":{"type":"integer"}},
            "additionalProperties":{"type":"string"}})",
        {R"({"ab":1,"Ab":"s","":"t","a-b":"u"})"}, {R"({"ab":"s"})", R"({"A":1})"});
  check(R"({"type":"object","patternProperties":{"[0-9]+":{"type":"integer"}}})",
        {R"({"a1b":1,"ab":"s"})"}, {R"({"a1b":"s"})"});
  check(R"({"type":"object","patternProperties":{"x$":{"type":"integer"}}})",
        {R"({"ax":1,"xa":"s","":"t"})"}, {R"({"ax":"s"})"});
  check(R"({"type":"object","patternProperties":{"^.$":{"type":"integer"}}})",
        {R"({"a":1,"ab":"s","":"t","\n":"u"})"}, {R"({"a":"s"})"});
  // Every key matches ".*": nothing further.
  check(R"({"type":"object","patternProperties":{".*":{"type":"integer"}}})", {R"({"a":1})"},
        {R"({"a":"s"})"});
}

// A pattern every key matches beside declared properties: their values satisfy both schemas,
// every other key is a further member with the pattern's schema.
TEST(GrammarSchemaCounts, PatternMatchingEveryKey) {
  check(R"({"type":"object","properties":{"basic":{"type":"integer"}},"required":["basic"],
            "patternProperties":{".*":{"minimum":0}},"additionalProperties":false})",
        {R"({"basic":3})", R"({"x":1,"basic":0,"y":"s"})"},
        {R"({"basic":-1})", R"({"basic":1,"x":-1})", R"({"basic":1.5})", R"({"x":1})"});
  check(R"({"type":"object","properties":{"a":{"maximum":5}},
            "patternProperties":{"^[a-z]*":{"type":"integer"}}})",
        {R"({"B":1})", "{}", R"({"a":3,"b":9})"}, {R"({"a":"s"})", R"({"a":6})", R"({"B":"s"})"});
}

// A property whose enum keeps no value of its type is never written; a schema with none is refused.
TEST(GrammarSchemaCounts, EnumWithoutAValueOfItsType) {
  check(R"({"type":"object","properties":{"p":{"type":"object","enum":["A","B"]},
            "q":{"type":"integer"}}})",
        {R"({"q":1})", "{}"}, {R"({"p":"A"})", R"({"p":{}})"});
  EXPECT_NE(error_of(R"({"type":"integer","enum":["1"]})").find("allows no value"),
            std::string::npos);
}

TEST(GrammarSchemaCounts, AllOfOfSeveralRefs) {
  const std::string defs = R"("$defs":{"A":{"type":"object","properties":{"a":{"type":"integer"}},
      "required":["a"]},"B":{"properties":{"b":{"type":"string"}},"required":["b"]},
      "C":{"$ref":"#/$defs/B"}})";
  check("{" + defs + R"(,"allOf":[{"$ref":"#/$defs/A"},{"$ref":"#/$defs/C"}]})",
        {R"({"a":1,"b":"s"})", R"({"b":"s","a":1})"},
        {R"({"a":1})", R"({"b":"s"})", R"({"a":"1","b":"s"})"});
  check("{" + defs + R"(,"$ref":"#/$defs/A","allOf":[{"$ref":"#/$defs/B"}]})",
        {R"({"a":1,"b":"s"})"}, {R"({"a":1})"});
  // A cycle through allOf ends (at the $ref nesting bound or refused), not followed forever.
  for (const char* cycle : {R"({"$defs":{"A":{"allOf":[{"$ref":"#/$defs/B"},{"$ref":"#/$defs/A"}]},
                                "B":{"type":"object"}},"$ref":"#/$defs/A"})",
                            R"({"$defs":{"A":{"allOf":[{"$ref":"#/$defs/B"},{"$ref":"#/$defs/A"}]},
                                "B":{"type":"object"}},"allOf":[{"$ref":"#/$defs/B"},
                                {"$ref":"#/$defs/A"}]})"})
    EXPECT_FALSE(error_of(cycle).empty());
}

TEST(GrammarSchemaCounts, AdditionalPropertiesOfMergedSchemas) {
  check(R"({"allOf":[{"properties":{"a":{}},"additionalProperties":{"type":"integer"}},
            {"properties":{"a":{}},"additionalProperties":{"minimum":0}}]})",
        {R"({"a":"s","x":3})", R"({"x":0})"}, {R"({"x":-1})", R"({"x":"s"})", R"({"x":1.5})"});
  check(R"({"allOf":[{"additionalProperties":true},{"additionalProperties":false}],
            "type":"object"})",
        {"{}"}, {R"({"x":1})"});
  // One side's patternProperties keys are the other side's further members: the two automata
  // intersected.
  check(R"({"allOf":[{"patternProperties":{"^x":{}}},{"additionalProperties":false}]})",
        {"{}", "1"}, {R"({"x":1})", R"({"y":1})"});
  // Extension keys (x-...) are annotations, also when merged schemas disagree on them.
  check(R"({"allOf":[{"type":"integer","x-doc":"a"},{"x-doc":"b","minimum":1}]})", {"1"}, {"0"});
}

// Drafts 3-7 ignore the keywords beside $ref; later drafts (and no $schema) apply them.
TEST(GrammarSchemaCounts, RefSiblingsPerDraft) {
  const std::string body = R"("definitions":{"flags":{"type":"object","properties":{
      "cache":{"type":"boolean"}}}},"type":"object","properties":{"out":{
      "$ref":"#/definitions/flags","additionalProperties":false}}})";
  check(R"({"$schema":"http://json-schema.org/draft-07/schema#",)" + body,
        {R"({"out":{"cache":true}})", R"({"out":{}})"}, {R"({"out":{"cache":1}})"});
  check(R"({"$schema":"https://json-schema.org/draft/2020-12/schema",)" + body, {R"({"out":{}})"},
        {R"({"out":{"cache":true}})"});
  check("{" + body, {R"({"out":{}})"}, {R"({"out":{"cache":true}})"});
}

TEST(GrammarSchemaCounts, MultipleOfShownByTheLastDigit) {
  check(R"({"type":"integer","multipleOf":2})", {"0", "4", "-12", "100"}, {"3", "-7", "4.0"});
  check(R"({"multipleOf":5})", {"0", "15", "-20", "15.0", R"("s")"}, {"7", "15.5"});
  check(R"({"type":"number","multipleOf":10})", {"0", "120", "-30.00"}, {"5", "12", "10.5"});
  check(R"({"type":"number","multipleOf":1.0,"minimum":2.5})", {"3", "3.0", "100"},
        {"2", "3.5", "2.5"});
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":2,"maximum":9})").find("one-sided"),
            std::string::npos);
}

// Listed values beside `not` of listed values keep those it misses, by JSON equality.
TEST(GrammarSchemaCounts, EnumBesideNotEnum) {
  check(R"({"allOf":[{"enum":[5,2,"a",{"x":1,"y":2}]},{"not":{"enum":[2.0,{"y":2,"x":1}]}}]})",
        {"5", R"("a")"}, {"2", R"({"x":1,"y":2})"});
  check(R"({"const":[1,2],"not":{"const":[1,2,3]}})", {"[1,2]"}, {"[1,2,3]"});
  EXPECT_NE(error_of(R"({"enum":[5],"not":{"enum":[5]}})").find("allows no"),
            std::string::npos);
  // A `not` of other keywords beside enum: each value evaluated against it (schema_eval.h).
  check(R"({"enum":[5,1],"not":{"minimum":3}})", {"1"}, {"5"});
}

// minLength/maxLength beside a pattern of fixed parts around one repeated set: the repetition
// takes the bounds in.
TEST(GrammarSchemaCounts, LengthBoundsIntoAPatternsRepetition) {
  check(R"({"type":"string","pattern":"^[a-z0-9-]*$","minLength":4,"maxLength":6})",
        {R"("abcd")", R"("a-b-c1")"}, {R"("abc")", R"("abcdefg")", R"("ABCD")"});
  check(R"({"type":"string","pattern":"^[A-Z][a-z\"]*$","maxLength":3})",
        {R"("A")", R"("Abc")", R"("A\"")"}, {R"("Abcd")", R"("abc")", R"("")"});
  // Other patterns are intersected with the length (grammar_schema_bool_test); none left: refused.
  EXPECT_NE(error_of(R"({"type":"string","pattern":"^[a-z]{2,3}$","minLength":5})"), "(compiled)");
}

TEST(GrammarSchemaCounts, HostnameFormat) {
  const std::string label63(63, 'a'), label64(64, 'a');
  check(R"({"type":"string","format":"hostname"})",
        {R"("localhost")", R"("ns1.example.com")", R"("a-b.c")", R"("example.com.")", R"("123")",
         "\"" + label63 + ".com\"", R"("a.b.c.d.e.f.g.h")"},
        {R"("-a.com")", R"("a-.com")", R"("a..b")", R"("Invalid Hostname")", R"("a_b.com")",
         R"("")", R"(".a")", "\"" + label64 + ".com\"", R"("localhost:8080")"});
  check(R"({"type":"string","format":"host-name"})", {R"("x.y")"}, {R"("x y")"});
}

}  // namespace
}  // namespace sable::grammar
