// The regex front end: parses the pattern syntax LLM clients send for constrained decoding (the
// Python `re` subset SGLang and outlines accept) into a small AST over code point sets. Every other
// grammar kind (JSON schema, choices, EBNF) is first translated to this syntax, so this parser is
// the one place that decides what a pattern means.
//
// Supported: literals (UTF-8), escapes \d \w \s \D \W \S (ASCII classes), \n \r \t \f \v \0,
// escaped punctuation, \xHH, \x{H...}, \uXXXX, \UXXXXXXXX; classes [...] with ranges, negation and
// escapes; `.` (any code point but \n); groups ( ), (?: ), (?P<n> ), (?<n> ); `|`; quantifiers
// * + ? {m} {m,} {m,n} {,n} with an optional lazy `?` (same language). `^` at the very start and
// `$` at the very end (also of a top-level alternative: ^a$|^b$) are ignored, the whole output
// must match anyway. Refused with an error naming
// the construct and its byte offset: backreferences, lookaround, inline flags, atomic groups, word
// boundaries and other anchors, \p properties.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "code_points.h"

namespace sable::grammar {

enum class RegexOp {
  kEmpty,      // matches the empty string
  kSet,        // one code point of `set`
  kConcat,     // children in order
  kAlternate,  // any one child
  kRepeat,     // children[0] repeated min..max times (max < 0: unbounded)
  kProduct     // a boolean combination of the children's languages, `min` its ProductRule
};

// How a kProduct node combines its operands' languages (internal dialect only, product.h):
// kAll their intersection, kExactlyOne the strings exactly one operand matches, kFirstOnly the
// strings of the first that no other operand matches (a difference). kAllInStep is kAll where the
// generator guarantees that the operands move in step: a text every operand can still continue
// has a continuation all of them accept (the same members in the same places, each operand
// checking something else about them), so a tuple is live when no operand is dead and no search
// is needed (json_schema_members.cpp's large objects).
enum class ProductRule : int32_t { kAll = 0, kExactlyOne = 1, kFirstOnly = 2, kAllInStep = 3 };

struct RegexNode {
  RegexOp op = RegexOp::kEmpty;
  CodePointSet set;
  std::vector<int32_t> children;  // indices into RegexAst::nodes
  int32_t min = 0;
  int32_t max = -1;
};

// Nodes live in one vector; children refer to them by index. Equal subtrees are one node (the
// AST is a DAG). Immutable once parsed.
struct RegexAst {
  std::vector<RegexNode> nodes;
  int32_t root = 0;
  // Bodies of deferred definitions (`(?@N~=X)`): the NFA builds each occurrence only when a match
  // reaches it (nfa.h), so deep recursion unrolled into many levels costs nothing until used.
  std::vector<int32_t> deferred;
};

// Largest count a {m,n} quantifier may name.
inline constexpr int32_t kMaxRepeatCount = 10000;

// kUser: the syntax above, what clients send. kInternal adds, for the regexes the grammar front
// ends generate (never for client text), shared subexpressions: `(?@N=X)` defines N (digits) as X
// and matches the empty string, `(?@N)` later matches X. A shared subexpression is one AST node,
// so text that would otherwise repeat it (JSON objects with properties in any order) stays small.
// `(?@N~=X)` defines a deferred one: its automaton is built lazily (RegexAst::deferred).
// `(?&R(X)(Y)...)` is a boolean combination of the groups' languages (kProduct): R is `a` (all of
// them), `1` (exactly one), `-` (the first and none of the others) or `s` (all of them, operands
// in step: ProductRule::kAllInStep); built lazily as a product of the operands' automata
// (product.h).
// kFragment is kInternal where a reference to a subexpression the text does not define stands for
// an opaque deferred part (one placeholder state in the NFA, as a deferred definition is): a
// fragment's NFA is sized without parsing the definitions it will be placed after.
enum class RegexDialect { kUser, kInternal, kFragment };

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) with a message such as
// "unsupported construct '(?=' at offset 3 (lookahead)".
RegexAst parse_regex(std::string_view pattern, RegexDialect dialect = RegexDialect::kUser);

// Escapes `text` (UTF-8) so that it matches itself literally.
std::string escape_regex_literal(std::string_view text);

// Writes a code point set as a regex character class, e.g. "[a-z\"]" (for the EBNF front end).
std::string regex_class_for(const CodePointSet& set);

}  // namespace sable::grammar
