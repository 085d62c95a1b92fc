// Boolean combinations of regexes (product.h, the internal `(?&R(X)(Y))` syntax): intersection,
// exactly-one and difference must accept exactly what std::regex says of the operands (random
// regexes, every short string), built whole or lazily behind a deferred definition; no state a
// text can reach may be a dead end (the liveness search); a combination whose emptiness the
// search cannot decide is refused at compile time; one used twice keeps both continuations.
#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"
#include "tests/unit/grammar_random_regex.h"

namespace sable::grammar {
namespace {

using test_util::all_strings;
using test_util::random_regex;

bool combined(char rule, bool a, bool b, bool c) {
  switch (rule) {
    case 'a': return a && b && c;
    case '1': return (a ? 1 : 0) + (b ? 1 : 0) + (c ? 1 : 0) == 1;
    default: return a && !b && !c;
  }
}

// Every state reachable from the start can still reach an accepting one (bytes of `alphabet`
// only: the others lead nowhere in these regexes).
void expect_no_dead_ends(const Dfa& dfa, const std::string& alphabet) {
  std::vector<int32_t> states;
  std::set<int32_t> seen{dfa.start()};
  std::deque<int32_t> queue{dfa.start()};
  std::vector<std::pair<int32_t, int32_t>> edges;
  while (!queue.empty()) {
    const int32_t s = queue.front();
    queue.pop_front();
    states.push_back(s);
    for (char ch : alphabet) {
      const int32_t t = dfa.next(s, static_cast<uint8_t>(ch));
      if (t == Dfa::kDead) continue;
      edges.push_back({s, t});
      if (seen.insert(t).second) queue.push_back(t);
    }
  }
  std::set<int32_t> live;
  for (int32_t s : states)
    if (dfa.accepting(s)) live.insert(s);
  for (bool grew = true; grew;) {
    grew = false;
    for (auto [from, to] : edges)
      if (live.count(to) && live.insert(from).second) grew = true;
  }
  for (int32_t s : states) EXPECT_TRUE(live.count(s)) << "dead end: state " << s;
}

TEST(GrammarProduct, RandomCombinationsMatchStdRegex) {
  std::mt19937 rng(20);
  const std::vector<std::string> inputs = all_strings("abc", 5);
  for (int i = 0; i < 40; ++i) {
    const std::string x = random_regex(rng, 3), y = random_regex(rng, 3), z = random_regex(rng, 2);
    const std::regex rx(x), ry(y), rz(z);
    for (char rule : {'a', '1', '-'}) {
      const std::string product = std::string("(?&") + rule + "(" + x + ")(" + y + ")(" + z + "))";
      SCOPED_TRACE(product);
      bool any = false;
      for (const std::string& t : inputs)
        any = any || combined(rule, std::regex_match(t, rx), std::regex_match(t, ry),
                              std::regex_match(t, rz));
      // Built whole (eager when small), and lazily: behind a deferred definition, prefixed.
      for (const std::string& regex : {product, "(?@1~=" + product + ")c?(?@1)"}) {
        Dfa dfa;
        try {
          dfa = Dfa::compile(parse_regex(regex, RegexDialect::kInternal));
        } catch (const sable::cpp::Error& e) {
          // Only an empty language may fail (every input is in the languages' reach).
          EXPECT_FALSE(any) << e.what();
          continue;
        }
        const bool prefixed = regex != product;
        for (const std::string& t : inputs) {
          const std::string u = prefixed ? (t.starts_with('c') ? t.substr(1) : t) : t;
          bool want = combined(rule, std::regex_match(t, rx), std::regex_match(t, ry),
                               std::regex_match(t, rz));
          if (prefixed && t.starts_with('c'))
            want = want || combined(rule, std::regex_match(u, rx), std::regex_match(u, ry),
                                    std::regex_match(u, rz));
          ASSERT_EQ(dfa.matches(t), want) << "on '" << t << "'";
        }
        expect_no_dead_ends(dfa, "abc");
      }
    }
  }
}

// One combination reached twice with different continuations (a deferred definition used twice):
// each occurrence is its own set of tuple states in the builder, and its successor lists (the
// builder's scratch, reused from tuple to tuple) must not hand one occurrence the other's states
// (the text would continue as after the other occurrence).
TEST(GrammarProduct, CombinationUsedTwiceKeepsEachContinuation) {
  std::mt19937 rng(7);
  const std::vector<std::string> inputs = all_strings("abc-", 6);
  for (int i = 0; i < 20; ++i) {
    const std::string x = random_regex(rng, 2), y = random_regex(rng, 2);
    const std::regex rx(x), ry(y);
    for (char rule : {'a', '1', '-'}) {
      auto in = [&](const std::string& t) {
        const bool a = std::regex_match(t, rx), b = std::regex_match(t, ry);
        return rule == 'a' ? a && b : rule == '1' ? a != b : a && !b;
      };
      const std::string regex =
          std::string("(?@1~=(?&") + rule + "(" + x + ")(" + y + ")))(?@1)-(?@1)";
      SCOPED_TRACE(regex);
      Dfa dfa;
      try {
        dfa = Dfa::compile(parse_regex(regex, RegexDialect::kInternal), 0);  // lazy
      } catch (const sable::cpp::Error&) {
        continue;  // an empty combination
      }
      for (const std::string& t : inputs) {
        const size_t dash = t.find('-');
        const bool want = dash != std::string::npos && t.find('-', dash + 1) == std::string::npos &&
                          in(t.substr(0, dash)) && in(t.substr(dash + 1));
        ASSERT_EQ(dfa.matches(t), want) << "on '" << t << "'";
      }
    }
  }
}

TEST(GrammarProduct, DisjointFuturesAreNotStates) {
  // Both operands accept "a" then more, but one wants b's and the other c's: after "a" only the
  // empty continuation is common.
  const Dfa all = Dfa::compile(parse_regex("(?@1~=(?&a(ab*|xy)(ac*|xz)))(?@1)",
                                           RegexDialect::kInternal));
  EXPECT_TRUE(all.matches("a"));
  EXPECT_EQ(all.walk(all.start(), "ab"), Dfa::kDead);
  // "x" is alive in both operands, yet nothing after it is in both: no state for it.
  EXPECT_EQ(all.walk(all.start(), "x"), Dfa::kDead);
  expect_no_dead_ends(all, "abcxyz");
  // A difference whose subtracted part covers every future: after "q", every text of the first
  // operand is also in the second.
  const Dfa diff = Dfa::compile(parse_regex("(?@1~=(?&-([a-z]+)(q[a-z]*)))(?@1)",
                                            RegexDialect::kInternal));
  EXPECT_TRUE(diff.matches("abc"));
  EXPECT_EQ(diff.walk(diff.start(), "q"), Dfa::kDead);
  EXPECT_TRUE(diff.matches("aq"));
  expect_no_dead_ends(diff, "abcq");
}

// `s`: an intersection whose operands move in step (here: the same sequence of letters, each
// operand requiring one of them), decided without a liveness search: the same language as `a`
// on every short string, no dead ends, and an operand matching nothing leaves nothing.
TEST(GrammarProduct, InStepIntersectionEqualsIntersection) {
  const std::string x = R"(\{[abc]*a[abc]*\})", y = R"(\{[abc]*b[abc]*\})";
  for (const char* wrap : {"(?&R(X)(Y))", "(?@1~=(?&R(X)(Y)))(?@1)"}) {
    auto text = [&](char rule) {
      std::string t = wrap;
      t.replace(t.find('R'), 1, 1, rule);
      t.replace(t.find('X'), 1, x);
      t.replace(t.find('Y'), 1, y);
      return t;
    };
    const Dfa in_step = Dfa::compile(parse_regex(text('s'), RegexDialect::kInternal));
    const Dfa all = Dfa::compile(parse_regex(text('a'), RegexDialect::kInternal));
    int accepted = 0;
    for (const std::string& t : all_strings("{}abc", 6)) {
      ASSERT_EQ(in_step.matches(t), all.matches(t)) << t;
      accepted += in_step.matches(t);
    }
    EXPECT_EQ(accepted, 2 + 12 + 50);  // 2, 3 or 4 letters holding an a and a b
    expect_no_dead_ends(in_step, "{}abc");
  }
  EXPECT_THROW(Dfa::compile(parse_regex(R"((?&s(\{a\})(\{[^\s\S]\})))", RegexDialect::kInternal)),
               sable::cpp::Error);
}

TEST(GrammarProduct, EmptyCombinationAndUndecidableOneAreRefused) {
  EXPECT_THROW(Dfa::compile(parse_regex("(?&a(a+)(b+))", RegexDialect::kInternal)),
               sable::cpp::Error);
  // The only common text is 30,000 a's: further than the liveness search looks.
  try {
    Dfa::compile(parse_regex("(?&a((?:a{10000}){3})((?:a{10000}){3}|b))", RegexDialect::kInternal));
    ADD_FAILURE() << "compiled";
  } catch (const sable::cpp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("boolean combination"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_regex("(?&a(a)(b))"), sable::cpp::Error);  // clients cannot write one
  EXPECT_THROW(parse_regex("(?&x(a)(b))", RegexDialect::kInternal), sable::cpp::Error);
  EXPECT_THROW(parse_regex("(?&a)", RegexDialect::kInternal), sable::cpp::Error);
}

}  // namespace
}  // namespace sable::grammar
