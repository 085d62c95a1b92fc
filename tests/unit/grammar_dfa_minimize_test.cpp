// DFA minimisation in the automaton grammar engine (dfa_minimize.cpp): the minimised DFA must
// accept exactly the regex's language and have no two equivalent states. The language is checked
// against std::regex on every string over a small alphabet up to a length; minimality by an
// independent Moore refinement (signature rounds until stable) that must find as many classes as
// the DFA has states; and known minimal sizes pin the merging itself.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "tests/unit/grammar_random_regex.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"

namespace sable::grammar {
namespace {

using test_util::all_strings;
using test_util::random_regex;

Dfa dfa_of(const std::string& regex) {
  return Dfa::build(build_nfa(parse_regex(regex)));
}

// Equivalence classes of the DFA's states by Moore's algorithm (over all 256 bytes, no shared
// code with Hopcroft's in the engine).
int32_t moore_classes(const Dfa& d) {
  std::vector<int32_t> cls(d.num_states());
  for (int32_t s = 0; s < d.num_states(); ++s) cls[s] = s == Dfa::kDead ? 0 : d.accepting(s) ? 1 : 2;
  for (int32_t classes = -1;;) {
    std::map<std::vector<int32_t>, int32_t> ids;
    std::vector<int32_t> next(d.num_states());
    for (int32_t s = 0; s < d.num_states(); ++s) {
      std::vector<int32_t> sig = {cls[s]};
      for (int b = 0; b < 256; ++b) sig.push_back(cls[d.next(s, static_cast<uint8_t>(b))]);
      next[s] = ids.emplace(sig, static_cast<int32_t>(ids.size())).first->second;
    }
    cls = next;
    if (static_cast<int32_t>(ids.size()) == classes) return classes;
    classes = static_cast<int32_t>(ids.size());
  }
}

TEST(GrammarDfaMinimize, KnownMinimalSizes) {
  // (a|b)*abb: the textbook minimal DFA has 4 states, plus kDead here.
  EXPECT_EQ(dfa_of("(a|b)*abb").num_states(), 5);
  // Two alternatives with the same tail collapse onto it: start, after x|y, after z, plus kDead.
  EXPECT_EQ(dfa_of("(?:xz|yz)").num_states(), 4);
  // a{0,5}: six counts of a, every one accepting, and kDead.
  EXPECT_EQ(dfa_of("a{0,5}").num_states(), 7);
  // Equal suffix automata after different prefixes are one (the subset construction keeps three).
  EXPECT_EQ(dfa_of("(?:ab|cb|db)[0-9]+").num_states(), dfa_of("[acd]b[0-9]+").num_states());
}

TEST(GrammarDfaMinimize, SameLanguageAndNoEquivalentStates) {
  const std::vector<std::string> patterns = {
      "(a|b)*abb", "a*b*a*", "(ab|a)(bc|c)", "(a|ab)(c|bcd)*", "(?:a{2,4}|b{1,3}c)*",
      "[ab]{0,6}c?", "(aa|aab)*b", "((a|b)(a|b))*", "(a*ba*ba*)*", "a(b|c){2}d?|ab+c",
      "(?:\"[ab]*\"|[0-9]+)(?:,(?:\"[ab]*\"|[0-9]+))*", "(?:c|d)(?:ab)*(?:ab|b)?"};
  for (const std::string& pattern : patterns) {
    SCOPED_TRACE(pattern);
    std::string alphabet;  // the pattern's literal characters
    for (char c : std::string("abcd\"0,"))
      if (pattern.find(c) != std::string::npos || (c == '0' && pattern.find("[0-9]") != std::string::npos))
        alphabet += c;
    const std::vector<std::string> inputs = all_strings(alphabet, 6);
    const Dfa d = dfa_of(pattern);
    const std::regex reference(pattern);
    for (const std::string& text : inputs)
      ASSERT_EQ(d.matches(text), std::regex_match(text, reference)) << "on '" << text << "'";
    EXPECT_EQ(moore_classes(d), d.num_states());
  }
}

// Random regexes over {a, b, c}: the language against std::regex, minimality against Moore.
TEST(GrammarDfaMinimize, RandomRegexes) {
  std::mt19937 rng(20);
  const std::vector<std::string> inputs = all_strings("abc", 6);
  for (int i = 0; i < 60; ++i) {
    const std::string pattern = random_regex(rng, 3);
    SCOPED_TRACE(pattern);
    const Dfa d = dfa_of(pattern);
    const std::regex reference(pattern);
    for (const std::string& text : inputs)
      ASSERT_EQ(d.matches(text), std::regex_match(text, reference)) << "on '" << text << "'";
    EXPECT_EQ(moore_classes(d), d.num_states());
  }
}

}  // namespace
}  // namespace sable::grammar
