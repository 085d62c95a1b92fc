// The "ebnf" grammar kind: GBNF/EBNF as llama.cpp and xgrammar (SGLang's default backend) accept
// it, translated to one regex by inlining every rule into `root`. That covers the regular subset
// exactly; a rule that refers to itself, directly or through others, is unrolled 4 levels deep
// (the 5th nesting is not generated: `root ::= "(" root ")" | "x"` allows up to 4 parentheses),
// and a grammar whose unrolled language is empty is refused.
//
// Syntax: rules `name ::= alt | alt` (a rule runs until the next `name ::=`, so bodies may span
// lines), string literals "..." or '...' with escapes (\n \r \t \\ \" \' \xHH \uHHHH \UHHHHHHHH),
// character classes [...] with ranges, negation and the same escapes, `.` (any character),
// grouping ( ), postfix * + ? {m} {m,} {m,n}, rule references, comments from # to end of line.
// The grammar must define `root`.
#pragma once

#include <string>
#include <string_view>

namespace sable::grammar {

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) with the line and column of a syntax error,
// or naming an undefined / recursive rule.
std::string ebnf_to_regex(std::string_view grammar);

}  // namespace sable::grammar
