// The automaton grammar engine's regex front end and DFA: for many ASCII patterns the DFA accepts a
// string iff std::regex_match (ECMAScript) does; Unicode classes and multibyte literals are matched
// by code point over UTF-8; refused constructs name themselves and their offset; the state cap.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/code_points.h"
#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

Dfa compile(const std::string& pattern, int32_t max_states = kMaxDfaStates) {
  return Dfa::build(build_nfa(parse_regex(pattern)), max_states);
}

std::string error_of(const std::string& pattern, int32_t max_states = kMaxDfaStates) {
  try {
    compile(pattern, max_states);
  } catch (const sable::cpp::Error& e) {
    EXPECT_EQ(e.status(), SABLE_ERR_INVALID_ARGUMENT);
    return e.what();
  }
  return "(compiled)";
}

// Patterns whose meaning is the same in ECMAScript and in the Python-style syntax we accept.
const char* const kOraclePatterns[] = {"",
                                       "abc",
                                       "a|b|c",
                                       "a*",
                                       "a+b?",
                                       "(ab)*c",
                                       "[a-c]+",
                                       "[^ab]*",
                                       "a{2}",
                                       "a{2,}",
                                       "a{1,3}b",
                                       "(a|b)*abb",
                                       "\\d+",
                                       "\\w*",
                                       "\\s?x",
                                       "[\\d\\s]+",
                                       "[^\\d]+",
                                       ".*",
                                       "a.c",
                                       "(?:ab|a)(?:bc|c)",
                                       "x*?y",
                                       "a{0,2}?",
                                       "(a|)b",
                                       "[-a]+",
                                       "[a-]+",
                                       "\\.\\*",
                                       "[.]",
                                       "a(b(c|d)*)+",
                                       "\\D\\W\\S",
                                       "[\\w-]+",
                                       "(a*)*",
                                       "^abc$",
                                       "^ab$|^c$|d",
                                       "a+?b",
                                       "(a|b|c|d){2,4}",
                                       "[^\\s]+ [^\\s]+",
                                       "((a|b)c)*|d",
                                       "\\x61\\u0062",
                                       "[\\x30-\\x39]{1,2}",
                                       "(?:xy?)+z",
                                       "[\\]\\[]+",
                                       "\\-\\.",
                                       "(\\d{1,2}\\.){1,2}\\d",
                                       "(a|b)*(c|d)+(a|)",
                                       "[^-]*-",
                                       "\\n|\\t"};

const char kAlphabet[] = {'a', 'b',  'c',  'd', 'x', 'y', 'z', '0', '1', '9',
                          ' ', '\n', '\t', '.', '-', '_', '*', '[', ']'};

TEST(GrammarRegex, MatchesLikeStdRegexOnRandomAndHandPickedStrings) {
  std::mt19937 rng(1234);
  std::vector<std::string> inputs = {"",    "a",   "abc",   "aab",  "abb",   "abbb",  "ab",
                                     "c",   "xyz", "xz",    "0",    "12",    "1.2",   "12.3.4",
                                     "a-b", ".*",  "-",     "-_.",  "[]",    "ab cd", "a\nb",
                                     "\n",  "\t",  "aaaaa", "abcd", "abcdab"};
  for (int i = 0; i < 250; ++i) {
    std::string s;
    const int len = static_cast<int>(rng() % 9);
    for (int k = 0; k < len; ++k) s.push_back(kAlphabet[rng() % sizeof kAlphabet]);
    inputs.push_back(s);
  }
  int matched = 0, checked = 0;
  for (const char* pattern : kOraclePatterns) {
    const Dfa dfa = compile(pattern);
    const std::regex oracle(pattern, std::regex::ECMAScript);
    for (const std::string& s : inputs) {
      const bool expected = std::regex_match(s, oracle);
      EXPECT_EQ(dfa.matches(s), expected) << "pattern /" << pattern << "/ on \"" << s << "\"";
      matched += expected;
      ++checked;
    }
  }
  EXPECT_GT(matched, checked / 20);  // the inputs exercise both outcomes
  EXPECT_LT(matched, checked / 2);
}

TEST(GrammarRegex, NamedAndNonCapturingGroupsAreGroups) {
  for (const char* p : {"(?P<word>ab)+c", "(?<word>ab)+c", "(?:ab)+c", "(ab)+c"}) {
    const Dfa dfa = compile(p);
    EXPECT_TRUE(dfa.matches("ababc")) << p;
    EXPECT_FALSE(dfa.matches("abac")) << p;
  }
}

TEST(GrammarRegex, UnicodeClassesAndMultibyteLiterals) {
  const Dfa greek = compile("[α-ω]+");
  EXPECT_TRUE(greek.matches("αβγω"));
  EXPECT_FALSE(greek.matches("abc"));
  EXPECT_FALSE(greek.matches("α\xCE"));  // a truncated character

  const Dfa literal = compile("café|日本語");
  EXPECT_TRUE(literal.matches("café"));
  EXPECT_TRUE(literal.matches("日本語"));
  EXPECT_FALSE(literal.matches("cafe"));

  EXPECT_TRUE(compile("\\u00e9\\x41").matches("éA"));
  EXPECT_TRUE(compile("\\U0001F600").matches("😀"));
  EXPECT_TRUE(compile("[\\u4e00-\\u9fff]{2}").matches("中文"));
  EXPECT_FALSE(compile("[\\u4e00-\\u9fff]{2}").matches("中"));

  const Dfa not_a = compile("[^a]");
  EXPECT_TRUE(not_a.matches("é"));
  EXPECT_TRUE(not_a.matches("😀"));
  EXPECT_TRUE(not_a.matches("\n"));
  EXPECT_FALSE(not_a.matches("a"));
  EXPECT_FALSE(not_a.matches("\xED\xA0\x80"));  // an encoded surrogate is not UTF-8
  EXPECT_FALSE(not_a.matches("\xC0\x80"));      // overlong

  const Dfa any = compile(".");
  EXPECT_TRUE(any.matches("😀"));
  EXPECT_FALSE(any.matches("\n"));
  EXPECT_TRUE(compile("[^\\u0000-\\u007f]+").matches("üïøé"));
  EXPECT_TRUE(compile("\\W").matches("ж"));
}

// Every code point (and nothing else) of a class encodes to a byte string the DFA accepts.
TEST(GrammarRegex, ClassesCoverExactlyTheirCodePoints) {
  struct Case {
    const char* pattern;
    CodePointSet set;
  };
  CodePointSet mixed = CodePointSet::range(0x7F, 0x801);
  mixed.add(0xFFF0, 0x10010);
  mixed.add(0x10FFF0, kMaxCodePoint);
  const Case cases[] = {{".", CodePointSet::single('\n').complement()},
                        {"[\\x7f-\\u0801\\ufff0-\\U00010010\\U0010fff0-\\U0010ffff]", mixed},
                        {"[^\\u00e0-\\u00ff\\d]", [] {
                           CodePointSet s = CodePointSet::range(0xE0, 0xFF);
                           s.add(digit_set());
                           return s.complement();
                         }()}};
  for (const Case& c : cases) {
    const Dfa dfa = compile(c.pattern);
    for (uint32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      std::string bytes;
      append_utf8(cp, &bytes);
      ASSERT_EQ(dfa.matches(bytes), c.set.contains(cp)) << c.pattern << " U+" << std::hex << cp;
    }
  }
}

TEST(GrammarRegex, EscapedLiteralsMatchThemselves) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"a", "Z", "0",  " ",  "\\", "(",    ")", "[", "]",
                                           "{", "}", "*",  "+",  "?",  ".",    "|", "^", "$",
                                           "-", "/", "\"", "\n", "\t", "\x01", "é", "😀", "中"};
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int k = static_cast<int>(rng() % 10); k > 0; --k) s += pieces[rng() % pieces.size()];
    const Dfa dfa = compile(escape_regex_literal(s));
    EXPECT_TRUE(dfa.matches(s)) << s;
    EXPECT_FALSE(dfa.matches(s + "a")) << s;
  }
}

TEST(GrammarRegex, RefusedConstructsNameThemselvesAndTheirOffset) {
  EXPECT_EQ(error_of("abc(?=d)").rfind("unsupported construct '(?=' at offset 3", 0), 0u)
      << error_of("abc(?=d)");
  EXPECT_NE(error_of("ab(?!c)").find("'(?!' at offset 2"), std::string::npos);
  EXPECT_NE(error_of("(?<=a)b").find("'(?<=' at offset 0"), std::string::npos);
  EXPECT_NE(error_of("x(?<!a)b").find("'(?<!' at offset 1"), std::string::npos);
  EXPECT_NE(error_of("(a)\\1").find("'\\1' at offset 3"), std::string::npos);
  EXPECT_NE(error_of("(?P<n>a)(?P=n)").find("'(?P=' at offset 8"), std::string::npos);
  EXPECT_NE(error_of("a\\bc").find("'\\b' at offset 1"), std::string::npos);
  EXPECT_NE(error_of("(?i)abc").find("'(?i' at offset 0"), std::string::npos);
  EXPECT_NE(error_of("a^b").find("'^' at offset 1"), std::string::npos);
  EXPECT_NE(error_of("(^a)").find("'^' at offset 1"), std::string::npos);
  EXPECT_NE(error_of("a$b").find("'$' at offset 1"), std::string::npos);
  EXPECT_NE(error_of("a**").find("multiple repeat at offset 2"), std::string::npos);
  EXPECT_NE(error_of("*a").find("nothing to repeat at offset 0"), std::string::npos);
  EXPECT_NE(error_of("(ab").find("missing ')'"), std::string::npos);
  EXPECT_NE(error_of("ab)").find("unbalanced ')' at offset 2"), std::string::npos);
  EXPECT_NE(error_of("[ab").find("missing ']'"), std::string::npos);
  EXPECT_NE(error_of("[b-a]").find("bad character range"), std::string::npos);
  EXPECT_NE(error_of("\\q").find("unknown escape '\\q'"), std::string::npos);
  EXPECT_NE(error_of("a{3,2}").find("max < min"), std::string::npos);
  EXPECT_NE(error_of("[^\\x00-\\x{10FFFF}]").find("matches no string"), std::string::npos);
}

TEST(GrammarRegex, BraceThatIsNoQuantifierIsALiteral) {
  EXPECT_TRUE(compile("a{b}").matches("a{b}"));
  EXPECT_TRUE(compile("a{,2}").matches("aa"));  // {,n} is {0,n}
  EXPECT_TRUE(compile("x{}").matches("x{}"));
}

TEST(GrammarRegex, DeadEndsArePrunedAndForcedBytesFound) {
  const Dfa dfa = compile("ab[^\\x00-\\x{10FFFF}]|abc|abd");
  EXPECT_TRUE(dfa.matches("abc"));
  const int32_t s = dfa.walk(dfa.start(), "ab");
  EXPECT_EQ(dfa.forced_byte(s), -1);  // c or d
  EXPECT_EQ(dfa.forced_byte(dfa.start()), 'a');
  EXPECT_EQ(dfa.next(s, 'e'), Dfa::kDead);
}

TEST(GrammarRegex, StateCapRefusesLargeAutomata) {
  // (a|b)*a(a|b){n} needs 2^(n+1) states: the classic subset-construction blow-up.
  EXPECT_NO_THROW(compile("(a|b)*a(a|b){6}", 1000));
  EXPECT_NE(error_of("(a|b)*a(a|b){6}", 100).find("more than 100 DFA states"), std::string::npos);
  EXPECT_NE(error_of("(a|b)*a(a|b){17}").find("more than 100000 DFA states"), std::string::npos);
}

// kFragment sizes a piece of the JSON schema converter's regex without the definitions in front of
// it: each undefined reference is a deferred stand-in of its own (one NFA placeholder state, as a
// deferred definition is), while kInternal still refuses it.
TEST(GrammarRegex, FragmentDialectStandsInForUndefinedReferences) {
  EXPECT_THROW(parse_regex("a(?@3)b", RegexDialect::kInternal), sable::cpp::Error);
  const RegexAst one = parse_regex("a(?@3)b", RegexDialect::kFragment);
  EXPECT_EQ(one.deferred.size(), 1u);
  const RegexAst two = parse_regex("a(?@3)b(?@4)(?@3)", RegexDialect::kFragment);
  EXPECT_EQ(two.deferred.size(), 2u);  // one per id, the same for a repeated id
  const RegexAst defined = parse_regex("(?@3~=xyz)a(?@3)b", RegexDialect::kInternal);
  // The same placeholder count as with the definition in front (deferred: a placeholder too).
  EXPECT_EQ(NfaBuilder(RegexAst(one), true).nfa().states.size(),
            NfaBuilder(RegexAst(defined), true).nfa().states.size());
}

}  // namespace
}  // namespace sable::grammar
