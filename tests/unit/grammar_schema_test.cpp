// JSON schema -> regex in the automaton grammar engine: each supported construct accepts the JSON
// texts it should (in the fixed layout: one optional space after `,` and `:`) and rejects the rest;
// unsupported schemas fail with a message naming the schema path.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/json_schema_converter.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"
#include "tests/unit/grammar_schema_check.h"
#include "tests/unit/time_budget.h"

namespace sable::grammar {
namespace {

using testing::check;
using testing::error_of;
using testing::schema_dfa;

// `inner` inside n arrays, and in n objects (members "k").
std::string in_arrays(int n, const std::string& inner = "1") {
  return std::string(n, '[') + inner + std::string(n, ']');
}
std::string in_objects(int n, const std::string& inner = "1") {
  std::string out = inner;
  for (int i = 0; i < n; ++i) out = R"({"k":)" + out + "}";
  return out;
}

TEST(GrammarSchema, Scalars) {
  check(R"({"type":"string"})", {R"("abc")", R"("")", R"("a\"b")", R"("\u00e9\n")", R"("é😀")"},
        {"abc", "\"a\nb\"", R"("\x")", R"("\ud800")", R"("a)"});
  check(R"({"type":"integer"})", {"0", "-12", "42"}, {"01", "1.5", "-", "+1", "\"1\""});
  check(R"({"type":"number"})", {"1.5", "-0.25e10", "3E+2", "7"}, {".5", "1.", "1e", "--1"});
  check(R"({"type":"boolean"})", {"true", "false"}, {"True", "1"});
  check(R"({"type":"null"})", {"null"}, {"nul", "None"});
  check(R"({"type":["integer","null"]})", {"1", "null"}, {"\"1\"", "true"});
  // Bounds: exact digit ranges (more in grammar_numeric_range_test.cpp).
  check(R"({"type":"integer","minimum":0,"maximum":150})", {"0", "7", "99", "100", "150"},
        {"-1", "151", "007", "-0", "1000", "1.5", "1e2"});
  check(R"({"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":3})", {"-2", "0", "2"},
        {"-3", "3", "-10"});
  check(R"({"type":"integer","minimum":5,"exclusiveMinimum":true})", {"6", "123456"}, {"5", "-6"});
  check(R"({"type":"integer","maximum":-10})", {"-10", "-11", "-99999"}, {"-9", "0", "10"});
  check(R"({"type":"integer","format":"int32"})", {"2147483647", "-2147483648"},
        {"2147483648", "-2147483649"});
  check(R"({"type":"number","minimum":-1.5,"exclusiveMaximum":2.25})",
        {"-1.5", "-1.25", "0", "2", "2.2499", "2.24"}, {"-1.51", "2.25", "2.250", "3", "1e0"});
  check(R"({"type":"number","exclusiveMinimum":0})", {"0.001", "5", "12.5"}, {"0", "0.0", "-1"});
}

// Declared order when the schema asks for it (any order: grammar_object_order_test.cpp).
TEST(GrammarSchema, ObjectPropertiesInDeclaredOrderWithRequired) {
  const std::string schema = R"({"type":"object","properties":{
      "a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"],
      "x-sable":{"property_order":"declared"}})";
  // Without additionalProperties further members may follow (JSON Schema's default), never
  // under a declared name; "strict" (xgrammar's strict_mode) allows none.
  check(schema,
        {R"({"b":"x"})", R"({"a":1,"b":"x"})", R"({"a": 1, "b": "x", "c": true})",
         R"({"b":"x","c":false})", R"({"b":"x","d":1})", R"({"b":"x","c":true,"d":[1,{}]})"},
        {"{}", R"({"a":1})", R"({"b":"x","a":1})", R"({"d":1,"b":"x"})", R"({"b":"x","b":"y"})",
         R"({"a":1 ,"b":"x"})", R"({ "b":"x"})", R"({"b":  "x"})", R"({"b":"x" })",
         "{\"b\":\n\"x\"}"});
  std::string strict = schema;
  strict.replace(strict.find("\"property_order\""), 0, "\"strict\":true,");
  check(strict, {R"({"a":1,"b":"x"})"}, {R"({"b":"x","d":1})"});
  check(R"({"properties":{"a":{"type":"integer"},"c":{"type":"boolean"}},
           "x-sable":{"property_order":"declared"}})",
        {"{}", R"({"c":true})", R"({"a":1,"c":true})", R"({"a":1})"},
        {R"({,"c":true})", R"({"a":1,})", R"({"c":true,"a":1})"});
  check(R"({"type":"object","properties":{"x":{"type":"object","properties":{"y":{"const":1}},
           "required":["y"]}},"required":["x"]})",
        {R"({"x":{"y":1}})", R"({"x": {"y": 1}})"}, {R"({"x":{}})"});
}

// In declared order, optional properties repeat each other's regexes (any one may come first);
// the NFA builder shares the repeats, so 40 of them stay far below the DFA state cap.
TEST(GrammarSchema, ManyOptionalPropertiesInDeclaredOrderStayLinear) {
  std::string schema = R"({"type":"object","x-sable":{"property_order":"declared"},"properties":{)";
  for (int i = 0; i < 40; ++i)
    schema += (i ? "," : "") + std::string("\"p") + std::to_string(i) +
              R"(":{"type":"string","maxLength":20})";
  schema += "}}";
  const Dfa dfa = schema_dfa(schema);
  EXPECT_LT(dfa.num_states(), 20000);
  EXPECT_TRUE(dfa.matches(R"({"p3":"x", "p39":"y"})"));
  EXPECT_TRUE(dfa.matches(R"({"p39":"y"})"));
  EXPECT_FALSE(dfa.matches(R"({"p39":"y","p3":"x"})"));
}

TEST(GrammarSchema, GenericObjectsAndValues) {
  // Generic values nest schema::kAnyDepth containers deep (built lazily: only the levels a text
  // enters), objects and arrays mixed.
  const int deep = schema::kAnyDepth;
  check("{}",
        {"\"x\"", "1", R"([1,{"a":[true]}])", R"({"a":{"b":{"c":1}}})", "null", in_arrays(deep),
         in_objects(deep), in_objects(deep / 2, in_arrays(deep - deep / 2))},
        {in_arrays(deep + 1), in_objects(deep + 1), in_objects(deep / 2, in_arrays(deep - deep / 2, "{}")),
         "", "[1,]", in_arrays(deep, "1]")});
  check(R"({"type":"object"})", {R"({"x":[1,2]})", "{}", R"({"k": "v", "j": null})",
                                 in_objects(deep)},
        {"1", "[]", in_objects(deep + 1), R"({"x":)" + in_arrays(deep) + "}"});
  check(R"({"type":"object","additionalProperties":{"type":"integer"}})",
        {R"({"k":1,"j":2})", "{}"}, {R"({"k":"v"})"});
  check(R"({"type":"object","additionalProperties":false})", {"{}"}, {R"({"k":1})"});
}

TEST(GrammarSchema, EnumConstAndCombinators) {
  check(R"({"enum":["red",1,null,{"a":[1,2]}]})", {R"("red")", "1", "null", R"({"a":[1,2]})"},
        {R"("blue")", "2", R"({"a": [1,2]})"});
  check(R"({"const":"x\"y"})", {R"("x\"y")"}, {R"("x")"});
  check(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]})", {"3", R"("a")"},
        {R"("ab")", "true"});
  check(R"({"oneOf":[{"const":true},{"type":"null"}]})", {"true", "null"}, {"false"});
  // oneOf: only branches that no value can satisfy together (else refused by name).
  check(R"({"oneOf":[{"type":"integer"},{"type":"string"},{"enum":[true,null]}]})",
        {"3", R"("a")", "null"}, {"false", "1.5"});
  check(R"({"type":"object","oneOf":[
           {"properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"]},
           {"properties":{"kind":{"enum":["b","c"]},"y":{"type":"string"}},"required":["kind"]}]})",
        {R"({"kind":"a","x":1})", R"({"kind":"c"})"}, {R"({"kind":"a"})", R"({"kind":"d"})"});
  check(R"({"$defs":{"p":{"type":"object","properties":{"a":{"type":"integer"}},
           "required":["a"],"additionalProperties":false}},
           "oneOf":[{"$ref":"#/$defs/p"},{"type":"object","properties":{"b":{"type":"integer"}},
           "required":["b"],"additionalProperties":false}]})",
        {R"({"a":1})", R"({"b":2})"}, {R"({"a":1,"b":2})"});
  // "a or b, not both": each branch drops the property the other requires.
  check(R"({"type":"object","properties":{"shape":{"enum":["r","c"]},"r":{"type":"integer"},
           "c":{"type":"integer"}},"required":["shape"],
           "oneOf":[{"required":["r"]},{"required":["c"]}]})",
        {R"({"shape":"r","r":1})", R"({"c":2,"shape":"c"})"},
        {R"({"shape":"r","r":1,"c":2})", R"({"shape":"r"})"});
  // Overlapping branches written exactly: "exactly one" of their automata.
  check(R"({"oneOf":[{"type":"number"},{"type":"integer"}]})", {"1.5"}, {"1", "1.0"});
  check(R"({"oneOf":[{"properties":{"a":{"type":"integer"}}},{"type":"object"}]})",
        {R"({"a":"x"})", "1", R"("s")"}, {"{}", R"({"a":1})", R"({"b":2})"});
  // ... and refused by name where a part is not (a format's automaton is a subset).
  const std::string e =
      error_of(R"({"oneOf":[{"type":"string","format":"email"},{"type":"string","maxLength":5}]})");
  EXPECT_NE(e.find("oneOf branches 0 and 1 may both match"), std::string::npos) << e;
  EXPECT_NE(e.find("(at /oneOf)"), std::string::npos) << e;
  // Branches that list their values: the values in exactly one list (schema_eval.h).
  check(R"({"oneOf":[{"enum":[1,2]},{"enum":[2,3]}]})", {"1", "3"}, {"2"});
  check(R"({"allOf":[{"type":"boolean"}]})", {"true"}, {"1"});
  // allOf merges keyword by keyword; sibling keywords of anyOf apply to every branch.
  check(R"({"allOf":[{"type":"boolean"},{"const":true}]})", {"true"}, {"false"});
  check(R"({"allOf":[{"type":"integer","minimum":0},{"maximum":10},{"minimum":3}]})",
        {"3", "10"}, {"2", "11"});
  check(R"({"allOf":[{"properties":{"a":{"type":"integer"}},"required":["a"]},
                     {"properties":{"b":{"type":"string"}},"required":["b"]}]})",
        {R"({"a":1,"b":"x"})"}, {R"({"a":1})", R"({"b":"x"})"});
  check(R"({"type":"integer","anyOf":[{"maximum":-5},{"minimum":5}]})", {"-5", "5", "70"},
        {"0", "4", "\"5\""});
  check(R"({"enum":[1,"a",2.5,null],"type":["integer","null"]})", {"1", "null"}, {R"("a")", "2.5"});
  // Keywords that do not merge: the items' automata intersected (grammar_schema_bool_test).
  check(R"({"allOf":[{"pattern":"a"},{"pattern":"b"}]})", {R"("ab")", R"("xbya")", "1"},
        {R"("a")", R"("b")"});
  // Beside enum: length and numeric bounds filter the values, unknown keys are annotations, other
  // keywords filter them through their automaton (a keyword of another type keeps the value).
  check(R"({"enum":["a","bb","é",3,7],"maxLength":1,"exclusiveMaximum":5,"readonly":true})",
        {R"("a")", R"("é")", "3"}, {R"("bb")", "7"});
  check(R"({"enum":["a","bb",1,[1,2],[1,1,1]],"pattern":"a","maxItems":2})",
        {R"("a")", "1", "[1,2]"}, {R"("bb")", "[1,1,1]"});
  EXPECT_NE(error_of(R"({"enum":[1],"multipleOf":3})").find("multipleOf"), std::string::npos);
}

TEST(GrammarSchema, References) {
  check(R"({"$defs":{"p":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}},
           "type":"array","items":{"$ref":"#/$defs/p"}})",
        {R"([{"n":1},{"n":2}])", "[]"}, {R"([{"m":1}])"});
  check(R"({"definitions":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/definitions/s"}},
           "required":["a"]})",
        {R"({"a":"x"})"}, {R"({"a":1})"});
  // A recursive $ref is unrolled kMaxRefNesting levels (the root's $ref is the first): the
  // optional member through the next one drops out.
  auto nexts = [](size_t n) {
    std::string out = "{}";
    for (size_t i = 0; i < n; ++i) out = R"({"next":)" + out + "}";
    return out;
  };
  check(R"({"$defs":{"node":{"type":"object","properties":{
      "next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"})",
        {"{}", R"({"next":{}})", nexts(4), nexts(schema::kMaxRefNesting - 1)},
        {nexts(schema::kMaxRefNesting), R"({"next":1})"});
  // A tree: children arrays through the cut can only be empty.
  check(R"({"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array",
           "items":{"$ref":"#"}}},"required":["v","kids"]})",
        {R"({"v":1,"kids":[]})", R"({"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[]}]})"},
        {R"({"v":1})"});
  // With no way out (the recursive member is required) nothing matches: refused.
  const std::string endless = error_of(R"({"$defs":{"n":{"type":"object","properties":{
      "next":{"$ref":"#/$defs/n"}},"required":["next"]}},"$ref":"#/$defs/n"})");
  EXPECT_NE(endless.find("matches no string"), std::string::npos) << endless;
  EXPECT_NE(error_of(R"({"$ref":"#/$defs/missing"})").find("names nothing"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref":"https://x/y.json"})").find("only local $ref"), std::string::npos);
}

TEST(GrammarSchema, StringConstraintsAndFormats) {
  check(R"({"type":"string","minLength":2,"maxLength":3})",
        {R"("ab")", R"("abc")", R"("a\n")", R"("éé")"}, {R"("a")", R"("abcd")"});
  check(R"({"type":"string","pattern":"^[a-z]+\\d$"})", {R"("abc1")"}, {R"("abc")", R"(abc1)"});
  const std::string bad =
      error_of(R"J({"properties":{"p":{"type":"string","pattern":"a(?=b)"}}})J");
  EXPECT_NE(bad.find("/properties/p/pattern"), std::string::npos) << bad;
  EXPECT_NE(bad.find("'(?='"), std::string::npos) << bad;
  check(R"({"type":"string","format":"date"})", {R"("2024-01-31")"},
        {R"("2024-13-01")", R"("24-01-01")"});
  check(R"({"type":"string","format":"date-time"})",
        {R"("2024-01-31T12:30:00Z")", R"("2024-01-31T12:30:00.123+02:00")"},
        {R"("2024-01-31 12:30:00")"});
  check(R"({"type":"string","format":"time"})", {R"("12:30:00Z")", R"("23:59:59.5-01:30")"},
        {R"("25:00:00Z")", R"("12:30:00")"});
  check(R"({"type":"string","format":"date"})", {R"("2024-02-29")", R"("2000-02-29")"},
        {R"("2023-02-29")", R"("1900-02-29")", R"("2024-04-31")", R"("0000-01-01")"});
  check(R"({"type":"string","format":"email"})", {R"("a.b@c.io")"}, {R"("a@b")", R"("ab.io")"});
  check(R"({"type":"string","format":"uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"},
        {R"("123e4567e89b12d3a456426614174000")"});
  check(R"({"type":"string","format":"ipv4"})", {R"("192.168.0.1")", R"("0.0.0.0")"},
        {R"("256.1.1.1")", R"("01.2.3.4")", R"("1.2.3")"});
  check(R"({"type":"string","format":"ipv6"})",
        {R"("::1")", R"("::")", R"("fe80::1:2")", R"("2001:db8:0:0:0:0:2:1")"},
        {R"("1:2:3:4:5:6:7:8:9")", R"("1::2::3")", R"("12345::")", R"(":1")"});
  check(R"({"type":"string","format":"uri"})",
        {R"("https://example.com/a/b?x=1#top")", R"("mailto:a@b.c")", R"("urn:isbn:123")"},
        {R"("example.com")", R"("/relative")", R"("http://a b")"});
  // A format JSON Schema defines but the engine does not enforce is refused; any other name is
  // an annotation (every string).
  const std::string unknown = error_of(R"({"type":"string","format":"duration"})");
  EXPECT_NE(unknown.find("format 'duration' is not supported"), std::string::npos);
  EXPECT_NE(unknown.find("ipv6"), std::string::npos) << unknown;
  check(R"({"type":"string","format":"no-such-format"})", {R"("")", R"("any thing")"}, {"1"});
  check(R"({"type":"integer","format":"utc-millisec"})", {"0", "-5"}, {R"("1")", "1.5"});
}

// A pattern speaks of the decoded string: quotes, backslashes and controls it allows are written
// as JSON escapes, never raw.
TEST(GrammarSchema, PatternsAreJsonEscaped) {
  check(R"({"type":"string","pattern":"^a.b$"})",
        {R"("axb")", R"("a\"b")", R"("a\\b")", R"("a\tb")", R"("a\u0001b")", R"("aéb")"},
        {"\"a\"b\"", "\"a\tb\"", R"("a\nb")"});
  check(R"({"type":"string","pattern":"[\"\\\\]+"})", {R"("\"\\")"}, {R"("a")"});
  // JSON Schema searches: an end without its anchor matches anything (exact when the length
  // bounds allow it, else the full match, a subset).
  check(R"({"type":"string","pattern":"\\.kmx$"})", {R"("example.kmx")", R"(".kmx")"},
        {R"("example.kmz")", R"("example.kmx ")"});
  check(R"({"type":"string","pattern":"^#!"})", {R"("#! echo 'x'")", R"("#!")"}, {R"("x#!")"});
  check(R"({"type":"string","pattern":"[0-9]{3}"})", {R"("a123b")", R"("123")"}, {R"("a12b3")"});
  // With maxLength the searched form is intersected with the length (product.h).
  check(R"({"type":"string","pattern":"b","maxLength":3})", {R"("b")", R"("ab")", R"("abc")"},
        {R"("abcd")", R"("ac")"});
  check(R"({"type":"string","pattern":"[a-z]{2,4}","minLength":1,"maxLength":4})", {R"("ab")"},
        {R"("a")"});
  check(R"({"type":"string","format":"uuid","minLength":36,"maxLength":36})",
        {R"("123e4567-e89b-12d3-a456-426614174000")"}, {});
}

TEST(GrammarSchema, Arrays) {
  check(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})",
        {"[1]", "[1,2,3]", "[1, 2]"}, {"[]", "[1,2,3,4]", "[1 ,2]", "[ 1]", "[\"a\"]"});
  check(R"({"type":"array","items":{"type":"integer"}})", {"[]", "[1,2,3,4,5]"}, {"[1,]"});
  check(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]})",
        {R"(["a",1])", R"(["a", 1])"}, {R"(["a"])", R"(["a",1,2])"});
  check(R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}})",
        {R"(["a"])", R"(["a",1,2,3])"}, {R"([1])"});
  check(R"({"type":"array"})", {"[]", R"([1,"a",[2,{"b":null}]])", in_arrays(schema::kAnyDepth)},
        {in_arrays(schema::kAnyDepth + 1)});
  check(R"({"type":"array","maxItems":0})", {"[]"}, {"[1]"});
  // prefixItems with count bounds: a shorter tuple when minItems allows it, never a longer one
  // than maxItems; `items: false` closes the tuple.
  check(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"},{"type":"null"}],
           "minItems":1,"maxItems":2})",
        {R"(["a"])", R"(["a",1])"}, {"[]", R"(["a",1,null])"});
  check(R"({"type":"array","prefixItems":[{"const":1}],"items":{"const":2},"minItems":3,
           "maxItems":4})",
        {"[1,2,2]", "[1,2,2,2]"}, {"[1,2]", "[1,2,2,2,2]"});
  check(R"({"type":"array","prefixItems":[{"const":1}],"items":false})", {"[1]"}, {"[1,1]"});
  EXPECT_NE(error_of(R"({"type":"array","prefixItems":[{}],"items":false,"minItems":2})")
                .find("maxItems is below minItems"),
            std::string::npos);
  check(R"({"type":"array","uniqueItems":true,"maxItems":1})", {"[]", "[3]"}, {"[1,2]"});
}

TEST(GrammarSchema, AdditionalProperties) {
  // Beside properties: the declared ones in order, then others whose keys are none of them.
  const std::string schema = R"({"type":"object","properties":{"id":{"type":"integer"},
      "idx":{"type":"string"}},"required":["id"],"additionalProperties":{"type":"boolean"}})";
  check(schema,
        {R"({"id":1})", R"({"id":1,"idx":"a"})", R"({"id":1,"x":true})",
         R"({"id":1,"idx":"a","i":false,"idxy":true,"":true})"},
        {R"({"id":1,"x":2})", R"({"id":1,"id":true})", R"({"id":1,"idx":true})",
         R"({"id":1,"i\u0064":true})"});
  check(R"({"properties":{"a":{"const":1}},"additionalProperties":true})",
        {R"({"a":1,"b":[1,{"c":null}]})", R"({"zz":"y"})", "{}"}, {R"({"a":2})"});
  check(R"({"properties":{"a":{"const":1}},"additionalProperties":false})", {R"({"a":1})", "{}"},
        {R"({"b":1})"});
  check(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],
           "minProperties":1,"maxProperties":1})",
        {R"({"a":1})"}, {"{}"});
}

// patternProperties: keys matching a pattern (search semantics) carry its schema's values; keys
// matching none are further members; keys two patterns (or a pattern and a declared property)
// match take both schemas.
TEST(GrammarSchema, PatternProperties) {
  check(R"({"type":"object","patternProperties":{"^x_":{"type":"integer"},"_s$":{"type":"integer"}},
           "additionalProperties":false})",
        {"{}", R"({"x_a":1})", R"({"x_a":1, "b_s":2})", R"({"a_s":-3,"x_":4})"},
        {R"({"x_a":"1"})", R"({"y":1})", R"({"ax_":1})", R"({"a_sx":1})"});
  check(R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],
           "patternProperties":{"^[0-9]+$":{"type":"string"}}})",
        {R"({"id":1})", R"({"id":1,"12":"a","7":"b"})", R"({"id":1,"a":"b"})"},
        {R"({"id":1,"12":3})", R"({"id":1,"id":"x"})"});
  check(R"({"patternProperties":{"^a":false,"^b":{}},"additionalProperties":false})",
        {R"({"b":[1]})"}, {R"({"a":1})"});
  check(R"({"patternProperties":{"a":{"type":"integer"},"^ab":{"type":"string"}}})",
        {R"({"a":1})", R"({"xa":2})", R"({"b":null})"},
        {R"({"ab":1})", R"({"ab":"x"})", R"({"abc":"s"})", R"({"xa":"s"})"});
  check(R"({"properties":{"abc":{}},"patternProperties":{"b":{"type":"string"}}})",
        {R"({"abc":"x"})", R"({"abc":"z","b":"y"})"}, {R"({"abc":1})", R"({"abc":"x","abc":"y"})"});
  // Disjoint patterns of different schemas are fine.
  check(R"({"patternProperties":{"^a":{"type":"integer"},"^b":{"type":"string"}},
           "additionalProperties":false})",
        {R"({"a1":1,"b1":"x"})"}, {R"({"a1":"x"})", R"({"b1":1})"});
}

// not: rewritten into positive keywords where exact, refused otherwise.
TEST(GrammarSchema, Negation) {
  check(R"({"not":{"type":"string"}})", {"1", "null", "[]", "{}", "true"}, {R"("a")"});
  check(R"({"type":["integer","string"],"not":{"type":"integer"}})", {R"("a")"}, {"1"});
  check(R"({"not":{"type":["number","object"]}})", {R"("a")", "null"}, {"1", "1.5", "{}"});
  check(R"({"not":{"not":{"type":"boolean"}}})", {"true"}, {"1"});
  check(R"({"anyOf":[{"not":{}},{"type":"null"}]})", {"null"}, {"1"});
  check(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},
           "not":{"required":["a"]}})",
        {"{}", R"({"b":1})", R"({"b":1,"c":2})"}, {R"({"a":1})", R"({"b":1,"a":2})", "1"});
  check(R"({"type":"object","not":{"anyOf":[{"required":["a"]},{"required":["b"]}]}})",
        {"{}", R"({"c":1})"}, {R"({"a":1})", R"({"c":1,"b":2})"});
  EXPECT_NE(error_of(R"({"not":{}})").find("allows nothing"), std::string::npos);
  // Numbers with a fraction: a difference whose integers are written with zero fractions too.
  check(R"({"type":"number","not":{"type":"integer"}})", {"1.5", "-0.5"}, {"1", "1.0", "-0"});
  // Other forms: a difference of automata where the negated part is exact (grammar_schema_bool_test).
  check(R"({"properties":{"p":{"not":{"pattern":"a"}}}})", {R"({"p":"bcd"})", "{}"},
        {R"({"p":"xay"})", R"({"p":1})"});
  EXPECT_NE(error_of(R"({"properties":{"p":{"not":{"minimum":3}}}})")
                .find("'not' (negation) is supported only over"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"object","properties":{"a":{}},"required":["a"],
                        "not":{"required":["a"]}})").find("allows no value"),
            std::string::npos);
  // ... and an anyOf branch requiring an excluded name drops out.
  check(R"({"type":"object","properties":{"a":{},"b":{}},
            "anyOf":[{"required":["a"]},{"required":["b"]}],"not":{"required":["a"]}})",
        {R"({"b":1})"}, {R"({"a":1})", R"({"a":1,"b":1})", "{}"});
}

TEST(GrammarSchema, UnenforceableKeywordsAreRefusedByName) {
  for (const char* keyword :
       {"contains", "$dynamicRef"}) {
    const std::string schema =
        std::string(R"({"type":"object","properties":{"p":{")") + keyword + R"(":{}}}})";
    const std::string e = error_of(schema);
    EXPECT_NE(e.find(std::string("'") + keyword + "'"), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("/properties/p/") + keyword), std::string::npos) << e;
  }
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":3})").find("multipleOf"), std::string::npos);
  check(R"({"type":"integer","multipleOf":1,"maximum":2})", {"2"}, {"3"});
  EXPECT_NE(error_of(R"({"type":"array","uniqueItems":true})").find("uniqueItems"),
            std::string::npos);
  // A dependency holding a schema: grammar_schema_bool_test.
  check(R"({"type":"object","dependencies":{"a":{"properties":{}}}})", {R"({"a":1})", "{}"}, {"1"});
  EXPECT_NE(error_of(R"({"type":"integer","minimum":5,"maximum":4})").find("no integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","minimum":"1"})").find("minimum must be a number"),
            std::string::npos);
  // Annotations and unknown keys constrain nothing and pass.
  check(R"({"type":"integer","title":"t","description":"d","default":3,"examples":[1],
           "x-extra":true})",
        {"3"}, {"a"});
}

// Each (target, depth) of a $ref is one shared definition, so a schema whose values are 3^16
// copies of one string compiles quickly to a small text and a lazy automaton, exact on what it
// reads; copies the text would still make (sibling keywords beside $ref, anyOf) are refused by a
// budget on the text produced, before it takes long or much memory.
TEST(GrammarSchema, ExponentialSchemasCompileOrAreRefusedQuickly) {
  nlohmann::json defs;
  defs["d0"] = {{"type", "string"}, {"maxLength", 5}};
  for (int i = 1; i <= 16; ++i) {
    const nlohmann::json ref = {{"$ref", "#/$defs/d" + std::to_string(i - 1)}};
    defs["d" + std::to_string(i)] = {{"properties", {{"a", ref}, {"b", ref}, {"c", ref}}},
                                     {"required", {"a", "b", "c"}}};
  }
  const nlohmann::json schema = {{"$defs", defs}, {"$ref", "#/$defs/d16"}};
  auto start = std::chrono::steady_clock::now();
  const std::string regex = json_schema_to_regex(schema.dump());
  EXPECT_LT(regex.size(), 30000u);
  const Dfa dfa = schema_dfa(schema.dump());
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            sable::test_support::time_budget(std::chrono::seconds(5)));
  std::string deepest;
  for (int i = 0; i < 16; ++i) deepest += R"({"a":)";
  EXPECT_NE(dfa.walk(dfa.start(), deepest + R"("abcde","b":"")"), Dfa::kDead);
  EXPECT_EQ(dfa.walk(dfa.start(), deepest + R"("abcdef")"), Dfa::kDead);  // maxLength 5
  EXPECT_NE(dfa.walk(dfa.start(), deepest + R"("a","c")"), Dfa::kDead);  // any order
  EXPECT_EQ(dfa.walk(dfa.start(), deepest + R"("a","a")"), Dfa::kDead);  // not twice
  // The same through a sibling keyword beside each $ref: copied text, refused by its budget.
  for (int i = 1; i <= 16; ++i) {
    const nlohmann::json ref = {{"$ref", "#/$defs/d" + std::to_string(i - 1)},
                                {"minProperties", 0}};
    defs["d" + std::to_string(i)]["properties"] = {{"a", ref}, {"b", ref}, {"c", ref}};
  }
  start = std::chrono::steady_clock::now();
  EXPECT_NE(error_of(nlohmann::json{{"$defs", defs}, {"$ref", "#/$defs/d16"}}.dump()).find("too large"),
            std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            sable::test_support::time_budget(std::chrono::seconds(5)));
}

TEST(GrammarSchema, MalformedSchemasAreRefused) {
  EXPECT_NE(error_of("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"properties":{"a":{}},"required":["b"],"x-sable":{"strict":true}})")
                .find("'b'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"tuple"})").find("unknown type 'tuple'"), std::string::npos);
  EXPECT_NE(error_of("false").find("allows nothing"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","minLength":3,"maxLength":2})").find("maxLength"),
            std::string::npos);
}

}  // namespace
}  // namespace sable::grammar
