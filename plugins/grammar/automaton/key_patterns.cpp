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

// The top-level pieces of `pattern` split at `sep` ('|'), outside groups and classes.
std::vector<std::string> split_top_level(std::string_view pattern) {
  std::vector<std::string> out(1);
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (!escaped(pattern, i)) {
      if (in_class) in_class = c != ']';
      else if (c == '[') in_class = true;
      else if (c == '(') ++depth;
      else if (c == ')') --depth;
      else if (c == '|' && depth == 0) {
        out.emplace_back();
        continue;
      }
    }
    out.back() += c;
  }
  return out;
}

// Whether `body` has a ^ or $ outside classes.
bool has_anchor(std::string_view body) {
  int anchors = 0;
  top_level_alternation(body, &anchors);
  return anchors > 0;
}

// The end of the group opened at body[open] (the index of its ')'), or npos.
size_t group_end(std::string_view body, size_t open) {
  int depth = 0;
  bool in_class = false;
  for (size_t i = open; i < body.size(); ++i) {
    const char c = body[i];
    if (escaped(body, i)) continue;
    if (in_class) in_class = c != ']';
    else if (c == '[') in_class = true;
    else if (c == '(') ++depth;
    else if (c == ')' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// The content of a plain group `(`, `(?:`, `(?P<n>`, `(?<n>` spanning text[0..end]; nullopt for
// lookaround and other special groups.
std::optional<std::string> group_content(std::string_view text, size_t end) {
  std::string_view inner = text.substr(1, end - 1);
  if (inner.rfind("?:", 0) == 0) return std::string(inner.substr(2));
  if (inner.rfind("?P<", 0) == 0 || (inner.rfind("?<", 0) == 0 && inner.size() > 2 &&
                                     inner[2] != '=' && inner[2] != '!')) {
    const size_t close = inner.find('>');
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(inner.substr(close + 1));
  }
  if (!inner.empty() && inner[0] == '?') return std::nullopt;
  return std::string(inner);
}

struct Anchored {
  bool start = false;
  bool end = false;
  std::string body;  // no anchor in it
};

// `alt` (one alternative, its anchors included) as alternatives whose anchors are at their ends:
// a group that starts or ends the alternative is opened, its branches distributed
// (`^(a|$)` -> `^a`, `^$`). False when an anchor stays elsewhere or past `budget` pieces.
bool open_anchors(const std::string& alt, std::vector<Anchored>* out, int* budget) {
  if (--*budget < 0) return false;
  Anchored a;
  a.body = alt;
  a.start = !a.body.empty() && a.body.front() == '^';
  if (a.start) a.body.erase(0, 1);
  a.end = !a.body.empty() && a.body.back() == '$' && !escaped(a.body, a.body.size() - 1);
  if (a.end) a.body.pop_back();
  if (!has_anchor(a.body)) {
    out->push_back(std::move(a));
    return true;
  }
  const std::string head = a.start ? "^" : "", tail = a.end ? "$" : "";
  // A group at the end (nothing after it, so no quantifier), else one at the start.
  std::optional<std::string> inner;
  std::string before, after;
  if (!a.body.empty() && a.body.back() == ')' && !escaped(a.body, a.body.size() - 1)) {
    for (size_t open = a.body.size(); open-- > 0;) {
      if (a.body[open] != '(' || escaped(a.body, open) ||
          group_end(a.body, open) != a.body.size() - 1)
        continue;
      inner = group_content(std::string_view(a.body).substr(open), a.body.size() - 1 - open);
      before = a.body.substr(0, open);
      break;
    }
  }
  if (!inner && !a.body.empty() && a.body.front() == '(') {
    const size_t close = group_end(a.body, 0);
    const bool quantified =
        close != std::string::npos && close + 1 < a.body.size() &&
        std::string_view("*+?{").find(a.body[close + 1]) != std::string_view::npos;
    if (close != std::string::npos && !quantified) {
      inner = group_content(a.body, close);
      after = a.body.substr(close + 1);
    }
  }
  if (!inner) return false;
  for (const std::string& branch : split_top_level(*inner))
    if (!open_anchors(head + before + branch + after + tail, out, budget)) return false;
  return true;
}

}  // namespace

std::string whole_key_regex(std::string_view pattern) {
  std::vector<Anchored> alts;
  int budget = 64;
  for (const std::string& alt : split_top_level(pattern))
    if (!open_anchors(alt, &alts, &budget))
      sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                       "anchors other than at the ends of the pattern or of a top-level "
                       "alternative (or of a group there) are not supported");
  const std::string any = R"([\s\S]*)";
  std::string out;
  for (const Anchored& a : alts)
    out += (out.empty() ? "" : "|") + (a.start ? "" : any) + "(?:" + a.body + ")" +
           (a.end ? "" : any);
  if (alts.size() > 1) out = "(?:" + out + ")";
  parse_regex(out);  // throws naming what does not parse
  return out;
}

bool anchors_inside(std::string_view pattern) {
  std::string body(pattern);
  if (!body.empty() && body.front() == '^') body.erase(0, 1);
  if (!body.empty() && body.back() == '$' && !escaped(body, body.size() - 1)) body.pop_back();
  return has_anchor(body);
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
