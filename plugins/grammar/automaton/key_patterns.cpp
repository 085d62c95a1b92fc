// Search semantics of patternProperties patterns restated as whole-key regexes, and the two
// language questions the converter asks of them (see key_patterns.h), answered on byte DFAs.
#include "key_patterns.h"

#include <optional>
#include <unordered_set>
#include <vector>

#include "dfa.h"
#include "nfa.h"
#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

// Pairs of states the overlap search may visit before it answers "may overlap".
constexpr size_t kMaxProductStates = 200'000;
// Pattern automata are small; a pattern that needs more states is refused.
constexpr int32_t kMaxPatternStates = 20'000;

Dfa key_dfa(std::string_view whole) {
  return Dfa::build(build_nfa(parse_regex(whole)), kMaxPatternStates);
}

// Whether pattern[i] is escaped by the backslashes before it.
bool escaped(std::string_view pattern, size_t i) {
  size_t slashes = 0;
  while (i > slashes && pattern[i - 1 - slashes] == '\\') ++slashes;
  return slashes % 2 == 1;
}

// Whether `pattern` has a `|` outside groups and classes, or a `^`/`$` anchor anywhere outside
// classes (counted in *anchors).
bool top_level_alternation(std::string_view pattern, int* anchors) {
  int depth = 0;
  bool in_class = false, bar = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (escaped(pattern, i)) continue;
    if (in_class) {
      in_class = c != ']';
      continue;
    }
    if (c == '[') in_class = true;
    else if (c == '(') ++depth;
    else if (c == ')') --depth;
    else if (c == '|' && depth == 0) bar = true;
    else if (c == '^' || c == '$') ++*anchors;
  }
  return bar;
}

}  // namespace

std::string whole_key_regex(std::string_view pattern) {
  int anchors = 0;
  const bool bar = top_level_alternation(pattern, &anchors);
  if (bar && anchors > 0)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     "anchors inside a top-level alternation are not supported");
  std::string body(pattern);
  const bool start = !body.empty() && body.front() == '^';
  if (start) body.erase(0, 1);
  const bool end = !body.empty() && body.back() == '$' && !escaped(body, body.size() - 1);
  if (end) body.pop_back();
  const std::string any = R"([\s\S]*)";
  std::string out = (start ? "" : any) + "(?:" + body + ")" + (end ? "" : any);
  parse_regex(out);  // throws naming what does not parse
  return out;
}

std::optional<std::string> key_complement_regex(std::string_view pattern) {
  int anchors = 0;
  if (top_level_alternation(pattern, &anchors)) return std::nullopt;
  std::string body(pattern);
  const bool start = !body.empty() && body.front() == '^';
  if (start) body.erase(0, 1);
  const bool end = !body.empty() && body.back() == '$' && !escaped(body, body.size() - 1);
  if (end) body.pop_back();
  const RegexAst ast = parse_regex(body);
  const RegexNode* n = &ast.nodes[ast.root];
  while (n->op == RegexOp::kConcat && n->children.size() == 1) n = &ast.nodes[n->children[0]];
  const std::string any = R"([\s\S])";
  const std::string nothing = R"([^\s\S])";
  if (n->op == RegexOp::kEmpty) return start && end ? any + "+" : nothing;
  // One code point of C (min_count 1) or a run of them (C* or C+).
  int32_t min_count = 1;
  bool run = false;
  if (n->op == RegexOp::kRepeat && n->max < 0 && n->min <= 1 &&
      ast.nodes[n->children[0]].op == RegexOp::kSet) {
    min_count = n->min;
    run = true;
    n = &ast.nodes[n->children[0]];
  }
  if (n->op != RegexOp::kSet) return std::nullopt;
  const CodePointSet other = n->set.complement();
  const std::string nc = other.empty() ? nothing : regex_class_for(other);
  if (min_count == 0) return start && end ? any + "*" + nc + any + "*" : nothing;
  // Keys without a match: empty ones, and (search) those with no C at all, (^) not starting with
  // C, ($) not ending with C, (^...$) with a character outside C (or, for one C, other lengths).
  if (!start && !end) return nc + "*";
  if (start && !end) return "(?:|" + nc + any + "*)";
  if (!start && end) return "(?:|" + any + "*" + nc + ")";
  if (run) return "(?:|" + any + "*" + nc + any + "*)";
  return "(?:|" + any + "{2,}|" + nc + ")";
}

bool key_matches(std::string_view whole_regex, std::string_view key) {
  return key_dfa(whole_regex).matches(key);
}

bool keys_may_overlap(std::string_view whole_a, std::string_view whole_b) {
  const Dfa a = key_dfa(whole_a), b = key_dfa(whole_b);
  std::unordered_set<uint64_t> seen;
  std::vector<std::pair<int32_t, int32_t>> stack = {{a.start(), b.start()}};
  auto key = [](int32_t x, int32_t y) { return (static_cast<uint64_t>(x) << 32) | uint32_t(y); };
  seen.insert(key(a.start(), b.start()));
  while (!stack.empty()) {
    const auto [x, y] = stack.back();
    stack.pop_back();
    if (a.accepting(x) && b.accepting(y)) return true;
    for (int byte = 0; byte < 256; ++byte) {
      const int32_t nx = a.next(x, static_cast<uint8_t>(byte));
      const int32_t ny = b.next(y, static_cast<uint8_t>(byte));
      if (nx == Dfa::kDead || ny == Dfa::kDead || !seen.insert(key(nx, ny)).second) continue;
      if (seen.size() > kMaxProductStates) return true;
      stack.emplace_back(nx, ny);
    }
  }
  return false;
}

}  // namespace sable::grammar
