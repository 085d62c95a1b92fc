// JSON schema keywords with numbers in them that the regex front end cannot take as written:
// length and item counts past kMaxRepeatCount (chains of deferred blocks, repeat_text.h) and
// multipleOf (numeric_range.h). Expectations are what a JSON Schema validator answers (checked
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
  EXPECT_EQ(next_id, hi / kRepeatBlock);  // the second count fits the parser after its exact part
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

// A long string inside an object in any property order (JSONSchemaBench's Github objects with
// `maxLength: 32767` descriptions).
TEST(GrammarSchemaBounds, LongStringsInsideAnyOrderObjects) {
  check(R"({"type":"object","properties":{"a":{"type":"string","maxLength":32767},
            "b":{"type":"integer"},"c":{"type":"boolean"}},"required":["b"]})",
        {R"({"b":1})", R"({"a":"x","b":1})", R"({"c":true,"b":2,"a":""})",
         "{\"b\":1,\"a\":" + quoted(12000) + "}"},
        {R"({"a":"x"})", R"({"b":1,"a":1})", R"({"b":1,"a":"x","a":"y"})"});
}

}  // namespace
}  // namespace sable::grammar
