// The lazy DFA of the automaton grammar engine (lazy_dfa.h) and deferred NFA parts (nfa.h): built
// on demand it must accept exactly what the eager, minimised DFA accepts and die exactly where it
// dies (every prefix, random regexes against std::regex); deferred definitions change no language;
// several threads walking one lazy DFA see the same automaton; past its limits it only rejects
// more (never accepts a text outside the language); deep unrolled recursion builds only what a
// text enters.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "tests/unit/grammar_random_regex.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/json_schema_converter.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

using test_util::all_strings;
using test_util::random_regex;

// max_eager_states 0: always lazy.
Dfa lazy_of(const std::string& regex, RegexDialect dialect = RegexDialect::kUser,
            LazyDfa::Limits limits = {}) {
  return Dfa::compile(parse_regex(regex, dialect), 0, limits);
}

// Same acceptance and same dead prefixes on every input.
void expect_same_automaton(const Dfa& lazy, const Dfa& eager, const std::vector<std::string>& inputs) {
  ASSERT_TRUE(lazy.lazy());
  ASSERT_FALSE(eager.lazy());
  for (const std::string& text : inputs) {
    ASSERT_EQ(lazy.matches(text), eager.matches(text)) << "on '" << text << "'";
    ASSERT_EQ(lazy.walk(lazy.start(), text) == Dfa::kDead,
              eager.walk(eager.start(), text) == Dfa::kDead)
        << "on '" << text << "'";
  }
}

TEST(GrammarLazyDfa, RandomRegexesMatchTheEagerDfaAndStdRegex) {
  std::mt19937 rng(7);
  const std::vector<std::string> inputs = all_strings("abc", 6);
  for (int i = 0; i < 60; ++i) {
    const std::string pattern = random_regex(rng, 3);
    SCOPED_TRACE(pattern);
    const Dfa lazy = lazy_of(pattern);
    const std::regex reference(pattern);
    for (const std::string& text : inputs)
      ASSERT_EQ(lazy.matches(text), std::regex_match(text, reference)) << "on '" << text << "'";
    expect_same_automaton(lazy, Dfa::build(build_nfa(parse_regex(pattern))), inputs);
  }
}

TEST(GrammarLazyDfa, ForcedBytesAndEmptyBranches) {
  const Dfa d = lazy_of("ab(?:c|d)|[^\\s\\S]x");  // the second branch matches nothing
  EXPECT_EQ(d.forced_byte(d.start()), 'a');
  const int32_t s = d.walk(d.start(), "ab");
  EXPECT_EQ(d.forced_byte(s), -1);
  EXPECT_EQ(d.next(d.start(), 'x'), Dfa::kDead);  // not a live state that cannot finish
  EXPECT_TRUE(d.matches("abd"));
  EXPECT_THROW(lazy_of("[^\\s\\S]"), sable::cpp::Error);  // the language is empty
}

// `(?@N~=X)` builds X where a text reaches it; the language is the one of `(?@N=X)`.
TEST(GrammarLazyDfa, DeferredDefinitionsKeepTheLanguage) {
  const std::vector<std::string> inputs = all_strings("abcx", 6);
  for (const char* pattern : {"(?@1~=ab|c)x(?@1)(?@1)", "(?@1~=a|b)(?@2~=(?@1)c|x)(?@2)*(?@1)?",
                              "(?@1~=a?)(?@2~=(?:(?@1)b)*)c(?@2)x?(?@2)"}) {
    SCOPED_TRACE(pattern);
    std::string plain = pattern;
    for (size_t at; (at = plain.find("~=")) != std::string::npos;) plain.erase(at, 1);
    const Dfa lazy = lazy_of(pattern, RegexDialect::kInternal);
    const Dfa eager = Dfa::build(build_nfa(parse_regex(plain, RegexDialect::kInternal)));
    expect_same_automaton(lazy, eager, inputs);
    NfaBuilder deferred(parse_regex(pattern, RegexDialect::kInternal), /*defer=*/true);
    EXPECT_TRUE(deferred.has_pending());
  }
}

// An eager DFA of this language needs 2^18 states: it compiles lazily, exact on what it reads.
TEST(GrammarLazyDfa, PastTheEagerCapItCompilesLazily) {
  const Dfa d = Dfa::compile(parse_regex("(a|b)*a(a|b){17}"));
  EXPECT_TRUE(d.lazy());
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::string text;
    for (int n = 0; n < 40; ++n) text += "ab"[rng() % 2];
    EXPECT_EQ(d.matches(text), text[text.size() - 18] == 'a') << text;
  }
  EXPECT_FALSE(d.exhausted());
}

// Limits: states past them are dead, so the language only shrinks.
TEST(GrammarLazyDfa, PastItsLimitsItOnlyRejects) {
  const Dfa small = lazy_of("(a|b)*a(a|b){17}", RegexDialect::kUser, {.max_states = 64});
  std::mt19937 rng(5);
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    std::string text;
    for (int n = 0; n < 30; ++n) text += "ab"[rng() % 2];
    if (small.matches(text)) {
      ++accepted;
      EXPECT_EQ(text[text.size() - 18], 'a') << text;
    }
  }
  EXPECT_TRUE(small.exhausted());
  EXPECT_LE(small.num_states(), 64);
}

// Matchers on several threads walk (and grow) one lazy DFA: each sees what one thread alone sees.
TEST(GrammarLazyDfa, ThreadsShareOneLazyDfa) {
  const std::string pattern = "(?:(a|b)*a(a|b){9}|c[abc]*c)x?";
  const Dfa eager = Dfa::build(build_nfa(parse_regex(pattern)));
  const Dfa lazy = lazy_of(pattern);
  std::vector<std::string> texts;
  std::mt19937 rng(11);
  for (int i = 0; i < 400; ++i) {
    std::string t;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) t += "abcx"[rng() % 4];
    texts.push_back(t);
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < texts.size() * 4; i += 3) {
        const std::string& text = texts[i % texts.size()];
        int32_t s = lazy.start(), e = eager.start();
        for (char c : text) {
          s = lazy.next(s, static_cast<uint8_t>(c));
          e = eager.next(e, static_cast<uint8_t>(c));
          if ((s == Dfa::kDead) != (e == Dfa::kDead) || lazy.accepting(s) != eager.accepting(e) ||
              (lazy.forced_byte(s) < 0) != (eager.forced_byte(e) < 0))
            ++mismatches[t];
          if (s == Dfa::kDead || e == Dfa::kDead) break;
        }
      }
    });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

std::string nest(int n) { return std::string(n, '[') + "1" + std::string(n, ']'); }

// A generic JSON value kAnyDepth containers deep: deferred levels keep the NFA and the DFA to what
// the text enters (eagerly this would be 2^kAnyDepth copies of the inner levels).
TEST(GrammarLazyDfa, DeepGenericValuesBuildOnlyWhatTextsEnter) {
  const std::string regex = json_schema_to_regex("{}");
  NfaBuilder builder(parse_regex(regex, RegexDialect::kInternal), /*defer=*/true);
  EXPECT_LT(builder.nfa().states.size(), 200u);
  const Dfa d = Dfa::compile(parse_regex(regex, RegexDialect::kInternal));
  ASSERT_TRUE(d.lazy());
  EXPECT_TRUE(d.matches(nest(schema::kAnyDepth)));
  EXPECT_FALSE(d.matches(nest(schema::kAnyDepth + 1)));
  EXPECT_TRUE(d.matches(R"({"a":[{"b":[{"c":[{"d":{"e":[1,2,{"f":null}]}}]}]}]})"));
  EXPECT_LT(d.num_states(), 2000);
  EXPECT_FALSE(d.exhausted());
}

}  // namespace
}  // namespace sable::grammar
