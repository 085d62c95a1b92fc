// GBNF/EBNF -> regex in the automaton grammar engine: rules are inlined into root; literals,
// classes, groups, postfix operators and comments mean what they mean in llama.cpp/xgrammar;
// recursive rules, undefined rules and syntax errors are refused with a message that says where.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/ebnf.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

Dfa ebnf_dfa(const std::string& grammar) {
  return Dfa::build(build_nfa(parse_regex(ebnf_to_regex(grammar))));
}

void check(const std::string& grammar, const std::vector<std::string>& good,
           const std::vector<std::string>& bad) {
  SCOPED_TRACE(grammar);
  const Dfa dfa = ebnf_dfa(grammar);
  for (const std::string& s : good) EXPECT_TRUE(dfa.matches(s)) << "should accept: " << s;
  for (const std::string& s : bad) EXPECT_FALSE(dfa.matches(s)) << "should reject: " << s;
}

std::string error_of(const std::string& grammar) {
  try {
    ebnf_dfa(grammar);
  } catch (const sable::cpp::Error& e) {
    EXPECT_EQ(e.status(), SABLE_ERR_INVALID_ARGUMENT);
    return e.what();
  }
  return "(compiled)";
}

TEST(GrammarEbnf, AlternativesRulesAndComments) {
  check(R"(root ::= "yes" | "no")", {"yes", "no"}, {"", "yesno", "maybe"});
  check(R"(# a greeting
root ::= greeting " " name   # then a name
greeting ::= "hello" | "hi"
name ::= [A-Z] [a-z]*
)",
        {"hello Ann", "hi B"}, {"hello ann", "hey Ann", "hi  Bo"});
  // A rule body may span lines; it ends where the next `name ::=` starts.
  check("root ::= item\n  (\",\" item)*\nitem ::= [a-z]+\n", {"a", "ab,c,def"}, {"a,", ",a"});
}

TEST(GrammarEbnf, LiteralsClassesAndOperators) {
  check(R"(root ::= "\"" [^"\\\n]* "\"")", {R"("")", R"("abc é")"}, {R"("a"b")", "\"a\nb\""});
  check(R"(root ::= ("a" | "b")+ "c"?)", {"a", "abba", "abc"}, {"", "c", "abcc"});
  check(R"(root ::= [0-9]{2,3} "-" [a-f]{2} [x]{1,})", {"12-abx", "123-ffxxx"},
        {"1-ab", "1234-ab", "12-abc"});
  check(R"(root ::= "\x41\u00e9\n\t" 'single')", {"Aé\n\tsingle"}, {"A\\u00e9"});
  check(R"(root ::= [α-ω]+ . [\-\]]?)", {"αβ!", "ω😀-", "αx]"}, {"a!", "α"});
}

TEST(GrammarEbnf, NonRecursiveJsonLikeGrammar) {
  check(R"(
root   ::= "{" ws pair (ws "," ws pair)* ws "}"
pair   ::= string ws ":" ws value
value  ::= string | number | "true" | "false" | "null"
string ::= "\"" ([^"\\] | "\\" ["\\/bfnrt])* "\""
number ::= "-"? [0-9]+ ("." [0-9]+)?
ws     ::= [ \t\n]*
)",
        {R"({"a": 1})", R"({ "a":"x" , "b" : -2.5 })", "{\"k\":\ntrue}"},
        {"{}", R"({"a": [1]})", R"({"a" 1})"});
}

TEST(GrammarEbnf, RecursiveRulesAreUnrolledFourLevels) {
  check(R"G(root ::= "(" root ")" | "x")G", {"x", "(x)", "((((x))))"},
        {"(((((x)))))", "((x)", "()"});
  check("root ::= a\na ::= \"x\" b?\nb ::= \"y\" a\n", {"x", "xyx", "xyxyxyxyx"},
        {"xy", "xyxyxyxyxyx"});
  // An arithmetic grammar: mutual recursion through parentheses.
  check(R"G(root ::= expr
expr ::= term (("+" | "-") term)*
term ::= num | "(" expr ")"
num ::= [0-9]+)G",
        {"1", "1+2-3", "(1+2)-(3)", "((1))+2"}, {"1+", "(1", "1++2"});
  // A recursion with no way out matches nothing: refused.
  const std::string endless = error_of(R"G(root ::= "(" root ")")G");
  EXPECT_NE(endless.find("matches no string"), std::string::npos) << endless;
}

TEST(GrammarEbnf, MalformedGrammarsAreRefused) {
  EXPECT_NE(error_of(R"(root ::= "a" foo)").find("undefined rule 'foo' at line 1 column 14"),
            std::string::npos)
      << error_of(R"(root ::= "a" foo)");
  EXPECT_NE(error_of(R"(start ::= "a")").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"abc\n").find("unterminated string literal at line 1"),
            std::string::npos);
  EXPECT_NE(error_of("root ::= [abc").find("missing ']'"), std::string::npos);
  EXPECT_NE(error_of("root ::= (\"a\"").find("missing ')'"), std::string::npos);
  EXPECT_NE(error_of("root = \"a\"").find("expected '::='"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"").find("defined twice"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\" (= \"b\")").find("lookahead"), std::string::npos);
}

}  // namespace
}  // namespace sable::grammar
