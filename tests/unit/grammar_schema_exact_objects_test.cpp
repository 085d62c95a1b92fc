// Objects with further members written exactly inside `not` and overlapping oneOf
// (json_schema_any_object.cpp): declared members in any order, further members anywhere, their
// keys every JSON string but the declared names; arrays of exact items; oneOf of `required` lists
// (one_of.h); allOf items intersected apart (json_schema_refs.cpp); the liveness search that finds
// such objects' texts (product.cpp). Every expectation is what Python's `jsonschema` (4.26,
// Draft 2020-12) answers.
#include <gtest/gtest.h>

#include <string>

#include "tests/unit/grammar_schema_check.h"

namespace sable::grammar {
namespace {

using testing::check;
using testing::error_of;

TEST(GrammarSchemaExactObjects, NotOfAnObjectWithFurtherMembers) {
  check(R"({"type":"object","not":{"type":"object","properties":{"ab":{"type":"string"}},
                                   "additionalProperties":true}})",
        {R"({"ab":1})", R"({"x":1,"ab":1})", R"({"ab":1,"x":1})"},
        {"{}", R"({"x":"1"})", R"({"ab":"s"})", R"({"x":"1","ab":"s"})"});
  // Further keys with escapes, and a declared name holding one.
  check(R"({"type":"object","not":{"type":"object","properties":{"a\"b":{"type":"string"}},
                                   "additionalProperties":true}})",
        {R"({"a\"b":1})", R"({"x\n":1,"a\"b":2})"}, {R"({"a\"b":"s"})", R"({"x\n":1})", "{}"});
}

TEST(GrammarSchemaExactObjects, OverlappingOneOfOfObjects) {
  // Values both branches allow (an object with x and no string ab, {} is only the second's).
  const char* schema = R"({"oneOf":[{"type":"object","required":["x"]},
                                    {"type":"object","properties":{"ab":{"type":"string"}}}]})";
  check(schema, {R"({"ab":"s"})", R"({"x":1,"ab":1})", R"({"ab":1,"x":1})", "{}"},
        {R"({"x":"1"})", R"({"x":"1","ab":"s"})", R"({"ab":1})"});
  // A branch narrowed against another (no x) that is not narrowed against it: the other's values
  // still match both (this used to accept {"x":1}).
  check(R"({"oneOf":[{"type":"object","properties":{"ab":{"type":"string"}}},
                     {"type":"object","required":["x"]}]})",
        {R"({"ab":"s"})"}, {R"({"x":1})", R"({"x":1,"ab":"s"})"});
  // Arrays of exact items; values of other types match both branches.
  check(R"({"oneOf":[{"additionalProperties":false,"properties":{"key":{"type":"string","maxLength":3}}},
                     {"additionalProperties":false,"properties":{"keys":{"type":"array",
                                                                  "items":{"type":"string"}}}}]})",
        {R"({"key":"a"})", R"({"keys":["a"]})"},
        {"{}", R"({"key":"a","keys":[]})", R"({"key":"abcd"})", R"({"keys":[1]})", "1"});
}

TEST(GrammarSchemaExactObjects, OneOfOfRequiredLists) {
  // Branch 1 requires what branch 0 does and more: its values match both, so it never is the one.
  check(R"({"type":"object","properties":{"a":{},"b":{},"c":{}},
            "oneOf":[{"required":["a","b"]},{"required":["a","b","c"]},{"required":["b","c"]}]})",
        {R"({"a":1,"b":1})", R"({"b":1,"c":1})", R"({"c":1,"b":1,"x":2})"},
        {R"({"a":1,"b":1,"c":1})", R"({"a":1})"});
}

TEST(GrammarSchemaExactObjects, AllOfItemsKeptApartInEveryOrder) {
  // Two `if`s do not merge: the second item's automaton is intersected with the object's, and
  // written in every order so that it does not lose the object's texts (`a` before `b`).
  check(R"({"type":"object","properties":{"a":{},"b":{},"s":{"type":"boolean"}},
            "additionalProperties":false,
            "allOf":[{"if":{"properties":{"s":{"const":true}}},"then":{"required":["a"]}},
                     {"if":{"properties":{"s":{"const":false}}},"then":{"required":["b"]}}]})",
        {R"({"a":1,"b":2})", R"({"b":1,"a":2})", R"({"s":true,"a":1})", R"({"a":1,"s":true})",
         R"({"b":1,"s":false})"},
        {R"({"a":1})", R"({"s":false,"a":1})"});
}

TEST(GrammarSchemaExactObjects, IntegersInsideCombinations) {
  // Unbounded integers are written with zero fractions inside a part (1.0 is an integer).
  check(R"({"oneOf":[{"type":"integer"},{"type":"number"},{"type":"string"}]})",
        {"1.5", "2.50", R"("a")"}, {"1", "1.0", "-0", "-0.0", "1e5"});
  // More than 8 branches that may hold one object: refused by name (each is a product operand).
  std::string many = R"({"oneOf":[)";
  for (int i = 0; i < 9; ++i)
    many += (i ? "," : "") + std::string(R"({"properties":{"k":{"enum":["v)") + std::to_string(i) +
            R"(","w"]}}})";
  many += "]}";
  EXPECT_NE(error_of(many).find("more than 8 branches"), std::string::npos) << error_of(many);
}

TEST(GrammarSchemaExactObjects, TextsNarrowedToOneWriting) {
  // Inside a combination containers nest at most 16 deep and numbers have no exponent (subsets:
  // the parts are exact only for these texts).
  const char* schema = R"({"not":{"type":"string","pattern":"^a"}})";
  check(schema, {"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", "1.5", "true", R"("e")"},
        {"[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", "1e5", R"("ab")"});
  // Too many properties to write in every order beside further members: refused by name.
  std::string big = R"({"not":{"type":"object","properties":{)";
  for (int i = 0; i < 13; ++i) big += (i ? "," : "") + std::string("\"p") + std::to_string(i) + "\":{}";
  big += R"(},"additionalProperties":{"type":"string","pattern":"^a"}}})";
  EXPECT_NE(error_of(big).find("'not'"), std::string::npos) << error_of(big);
}

}  // namespace
}  // namespace sable::grammar
