// JSON schema keywords with numbers in them that the regex front end cannot take as written:
// length and item counts past kMaxRepeatCount (chains of deferred blocks, repeat_text.h) and
// multipleOf (multiple_of.h). Expectations are what a JSON Schema validator answers (checked
// with Python's `jsonschema` when written).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "plugins/grammar/automaton/repeat_text.h"
#include "tests/unit/grammar_schema_check.h"

namespace sable::grammar {
namespace {

using testing::check;
using testing::error_of;
using testing::schema_dfa;

std::string quoted(size_t n, char c = 'a') { return "\"" + std::string(n, c) + "\""; }

std::string int_array(size_t n) {
  std::string out = "[";
  for (size_t i = 0; i < n; ++i) out += (i ? ",1" : "1");
  return out + "]";
}

TEST(GrammarSchemaBounds, RepeatTextKeepsSmallCountsAndChainsLargeOnes) {
  std::string defs;
  int next_id = 0;
  const DefineDeferred define = [&](const std::string& body) {
    const std::string id = std::to_string(next_id++);
    defs += "(?@" + id + "~=" + body + ")";
    return "(?@" + id + ")";
  };
  EXPECT_EQ(repeat_text("a", 2, 5, define), "a{2,5}");
  EXPECT_EQ(repeat_text("a", 3, -1, define), "a{3,}");
  EXPECT_EQ(next_id, 0);
  // Every count at the edges of the blocks and of the whole range, lower bounds past the limit.
  const int64_t lo = kMaxRepeatCount + 3, hi = lo + 3 * kRepeatBlock + 7;
  const std::string body = repeat_text("a", 0, hi, define) + "b" + repeat_text("c", lo, hi, define);
  // One link per block of the first; the second's exact part is unrolled, its rest chained.
  EXPECT_EQ(next_id, hi / kRepeatBlock + (hi - lo) / kRepeatBlock);
  const Dfa dfa = Dfa::compile(parse_regex(defs + body, RegexDialect::kInternal));
  for (int64_t n : {int64_t{0}, int64_t{1}, kRepeatBlock - 1, kRepeatBlock, kRepeatBlock + 1,
                    int64_t{kMaxRepeatCount}, hi - 1, hi, hi + 1}) {
    EXPECT_EQ(dfa.matches(std::string(n, 'a') + "b" + std::string(lo, 'c')), n <= hi) << n;
    EXPECT_EQ(dfa.matches("b" + std::string(n + lo - 2, 'c')), n >= 2 && n + lo - 2 <= hi) << n;
  }
}

TEST(GrammarSchemaBounds, LongStringsCountExactly) {
  const Dfa dfa = schema_dfa(R"({"type":"string","minLength":10500,"maxLength":32767})");
  EXPECT_FALSE(dfa.matches(quoted(10499)));
  EXPECT_TRUE(dfa.matches(quoted(10500)));
  EXPECT_TRUE(dfa.matches(quoted(12000, 'z')));
  // An escape is one character.
  EXPECT_FALSE(dfa.matches("\"" + std::string(10498, 'b') + "\\n\""));
  EXPECT_TRUE(dfa.matches("\"" + std::string(10499, 'b') + "\\n\""));
  const Dfa open = schema_dfa(R"({"type":"string","maxLength":65535})");
  EXPECT_TRUE(open.matches(quoted(0)));
  EXPECT_TRUE(open.matches(quoted(12000)));
  EXPECT_FALSE(open.matches(R"("a)"));
}

TEST(GrammarSchemaBounds, LongArraysCountExactly) {
  const Dfa dfa = schema_dfa(R"({"type":"array","items":{"type":"integer"},"maxItems":12000})");
  EXPECT_TRUE(dfa.matches("[]"));
  EXPECT_TRUE(dfa.matches(int_array(12000)));
  EXPECT_FALSE(dfa.matches(int_array(12001)));
  EXPECT_FALSE(dfa.matches("[1,\"x\"]"));
}

// Nested bounded arrays multiply when unrolled (100 x 100 x 255 characters): the outer counts
// become chains of one element per link, built as a text enters them. Each element a text writes
// still costs a copy of the element's automaton (the count is in the state), so the lazy DFA's
// NFA bound stops texts at ~60 such elements (a subset, exhausted()).
TEST(GrammarSchemaBounds, NestedBoundedArraysStayWithinTheAutomatonBounds) {
  const std::string schema = R"({"type":"array","maxItems":100,"items":{"type":"array",
      "maxItems":100,"items":{"type":"string","maxLength":255}}})";
  // Each long text on an automaton of its own (a grammar's automaton grows with what it has read).
  auto accepts = [&](const std::string& text) {
    const Dfa dfa = schema_dfa(schema);
    const bool ok = dfa.matches(text);
    EXPECT_FALSE(dfa.exhausted()) << text.substr(0, 40);
    return ok;
  };
  std::string outer = "[", inner = "[[";
  for (int i = 0; i < 25; ++i) outer += std::string(i ? "," : "") + R"(["x","yy"])";
  for (int i = 0; i < 100; ++i) inner += std::string(i ? "," : "") + R"("x")";
  EXPECT_TRUE(accepts(R"([[],["a","b"]])"));
  EXPECT_TRUE(accepts(outer + "]"));
  EXPECT_TRUE(accepts(inner + "]]"));
  EXPECT_FALSE(accepts(inner + R"(,"y"]])"));
  EXPECT_FALSE(accepts("[[" + quoted(256) + "]]"));
}

// A long string inside an object in any property order (JSONSchemaBench's Github objects with
// `maxLength: 32767` descriptions).
TEST(GrammarSchemaBounds, LongStringsInsideAnyOrderObjects) {
  check(R"({"type":"object","properties":{"a":{"type":"string","maxLength":32767},
            "b":{"type":"integer"},"c":{"type":"boolean"}},"required":["b"]})",
        {R"({"b":1})", R"({"a":"x","b":1})", R"({"c":true,"b":2,"a":""})",
         "{\"b\":1,\"a\":" + quoted(12000) + "}"},
        {R"({"a":"x"})", R"({"b":1,"a":1})", R"({"b":1,"a":"x","a":"y"})"});
}

// multipleOf 10^-f: at most f fraction digits (trailing zeros aside). Python's `jsonschema`
// divides in floating point and rejects some exact multiples (0.07 for 0.01); the values here
// are ones where it agrees with the exact decimal meaning.
TEST(GrammarSchemaBounds, MultipleOfFractionsCountDigits) {
  check(R"({"type":"number","multipleOf":0.01})",
        {"129.99", "0.05", "3", "-2.5", "1.1", "0.5", "12.34", "1.100"},
        {"129.991", "0.001", "1.0001", R"("1")"});
  check(R"({"type":"number","multipleOf":0.1})", {"0.5", "1.5", "2", "-3.5"}, {"0.25", "0.15"});
  check(R"({"type":["number","null"],"multipleOf":0.01})", {"99.99", "null"}, {"129.991"});
  // Every integer is a multiple of 0.1; enum values are filtered through the automaton.
  check(R"({"type":"integer","multipleOf":0.1,"minimum":1})", {"1", "20"}, {"0", "1.5"});
  check(R"({"enum":[0.25,0.5,7],"multipleOf":0.1})", {"0.5", "7"}, {"0.25"});
  EXPECT_NE(error_of(R"({"type":"number","multipleOf":0.25})").find("/multipleOf"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"number","multipleOf":0.1,"maximum":3})").find("beside"),
            std::string::npos);
}

// Integer k: listed inside bounds, by the last digits for k = 2^a 5^b, refused otherwise.
TEST(GrammarSchemaBounds, MultipleOfIntegers) {
  check(R"({"type":"integer","minimum":-2032,"maximum":2031,"multipleOf":16})",
        {"-2032", "-64", "0", "2016"}, {"2032", "-2048", "8", "-65", "2016.0"});
  check(R"({"type":"integer","multipleOf":16})", {"0", "16", "-32", "10000", "123456"},
        {"8", "24", "100", "-8"});
  check(R"({"type":"integer","multipleOf":3,"minimum":0,"maximum":10})", {"0", "3", "6", "9"},
        {"1", "12", "-3"});
  check(R"({"type":"number","multipleOf":4,"minimum":-5,"maximum":9.5})",
        {"-4", "0", "8", "8.0"}, {"-8", "12", "2", "8.5"});
  check(R"({"type":"integer","multipleOf":25})", {"0", "25", "75", "1050", "-100"},
        {"5", "30", "1010"});
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":3})").find("factor other than 2 and 5"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":7,"minimum":0,"maximum":100000})")
                .find("more than"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"integer","multipleOf":5,"minimum":1,"maximum":4})")
                .find("no multiple"),
            std::string::npos);
}

// uniqueItems over a finite set of item values: the set of values used is the state.
TEST(GrammarSchemaBounds, UniqueItemsOverListedValues) {
  check(R"({"type":"array","items":{"type":"string","enum":["GET","POST","PUT"]},
            "uniqueItems":true})",
        {"[]", R"(["GET"])", R"(["POST","GET"])", R"(["GET","POST","PUT"])", R"(["PUT", "GET"])"},
        {R"(["GET","GET"])", R"(["GET","POST","GET"])", R"(["DELETE"])"});
  // 1 and 1.0 are one value.
  check(R"({"type":"array","items":{"enum":[1,1.0,2,"a"]},"uniqueItems":true,"minItems":1,
            "maxItems":2})",
        {"[1]", "[1.0,2]", R"([2,"a"])"}, {"[1,1.0]", "[]", R"([1,2,"a"])"});
  // Objects are equal whatever their key order: the two texts below are one value.
  check(R"({"type":"array","uniqueItems":true,
            "items":{"enum":[{"a":1,"b":2},{"b":2,"a":1},3]}})",
        {R"([{"a":1,"b":2},3])", R"([3,{"b":2,"a":1}])", R"([{"b":2,"a":1}])"},
        {R"([{"a":1,"b":2},{"b":2,"a":1}])", R"([{"b":2,"a":1},3,{"a":1,"b":2}])"});
  check(R"({"type":"array","items":{"type":"boolean"},"uniqueItems":true})",
        {"[true,false]", "[false]"}, {"[true,true]", "[false,true,false]"});
  check(R"({"type":"array","items":{"$ref":"#/definitions/m"},"uniqueItems":true,
            "definitions":{"m":{"enum":["x",null]}}})",
        {R"(["x",null])"}, {"[null,null]"});
  const std::string free = error_of(R"({"type":"array","items":{"type":"string"},"uniqueItems":true})");
  EXPECT_NE(free.find("/uniqueItems"), std::string::npos) << free;
}

}  // namespace
}  // namespace sable::grammar
