// Random regexes over {a, b, c} and every short input string: the property tests of the DFA
// builders (grammar_dfa_minimize_test, grammar_lazy_dfa_test) check their automata against
// std::regex on the same patterns and texts.
#pragma once

#include <random>
#include <string>
#include <vector>

namespace sable::grammar::test_util {

// Every string over `alphabet` of length <= max_len.
inline std::vector<std::string> all_strings(const std::string& alphabet, int max_len) {
  std::vector<std::string> out = {""};
  for (size_t i = 0; i < out.size(); ++i)
    if (static_cast<int>(out[i].size()) < max_len)
      for (char c : alphabet) out.push_back(out[i] + c);
  return out;
}

// A regex of literals, a class, concatenation, alternation, *, ? and {1,3}, nested `depth` deep,
// in the syntax both our parser and std::regex (ECMAScript) read alike.
inline std::string random_regex(std::mt19937& rng, int depth) {
  const int pick = depth <= 0 ? static_cast<int>(rng() % 2) : static_cast<int>(rng() % 7);
  switch (pick) {
    case 0: return std::string(1, "abc"[rng() % 3]);
    case 1: return "[ab]";
    case 2: return random_regex(rng, depth - 1) + random_regex(rng, depth - 1);
    case 3: return "(?:" + random_regex(rng, depth - 1) + "|" + random_regex(rng, depth - 1) + ")";
    case 4: return "(?:" + random_regex(rng, depth - 1) + ")*";
    case 5: return "(?:" + random_regex(rng, depth - 1) + ")?";
    default: return "(?:" + random_regex(rng, depth - 1) + "){1,3}";
  }
}

}  // namespace sable::grammar::test_util
