// Recursive-descent parser for the regex subset described in regex.h.
#include "regex.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>
#include <utility>

#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

using sable::cpp::fail;

// Groups may nest this deep (the parser and the NFA builder recurse per level).
constexpr int kMaxNesting = 500;

class Parser {
 public:
  Parser(std::string_view pattern, RegexDialect dialect)
      : p_(pattern),
        internal_(dialect != RegexDialect::kUser),
        fragment_(dialect == RegexDialect::kFragment) {}

  RegexAst run() {
    const int32_t root = parse_alternation(0);
    if (pos_ < p_.size()) error("unbalanced ')'", pos_);  // the only way to stop early
    ast_.root = root;
    return std::move(ast_);
  }

 private:
  [[noreturn]] void error(const std::string& what, size_t offset) const {
    fail(SABLE_ERR_INVALID_ARGUMENT, what + " at offset " + std::to_string(offset));
  }
  [[noreturn]] void unsupported(std::string_view construct, size_t offset, const char* why) const {
    fail(SABLE_ERR_INVALID_ARGUMENT, "unsupported construct '" + std::string(construct) +
                                         "' at offset " + std::to_string(offset) + " (" + why +
                                         ")");
  }

  bool at_end() const { return pos_ >= p_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : '\0'; }

  // Hash-consed: a subtree equal to an earlier one gets that one's index, so text the grammar
  // front ends repeat (JSON schema's optional properties) becomes one node the NFA can share.
  int32_t add(RegexNode node) {
    uint64_t h = 1469598103934665603ull;
    auto put = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    put(static_cast<uint64_t>(node.op));
    put(static_cast<uint32_t>(node.min));
    put(static_cast<uint32_t>(node.max));
    for (int32_t c : node.children) put(static_cast<uint32_t>(c));
    put(~uint64_t{0});
    for (const CodePointRange& r : node.set.ranges()) put((uint64_t{r.lo} << 32) | r.hi);
    for (auto [it, end] = unique_.equal_range(h); it != end; ++it)
      if (same(ast_.nodes[it->second], node)) return it->second;
    const auto index = static_cast<int32_t>(ast_.nodes.size());
    unique_.emplace(h, index);
    ast_.nodes.push_back(std::move(node));
    return index;
  }
  static bool same(const RegexNode& a, const RegexNode& b) {
    if (a.op != b.op || a.min != b.min || a.max != b.max || a.children != b.children) return false;
    const auto& ra = a.set.ranges();
    const auto& rb = b.set.ranges();
    return ra.size() == rb.size() && std::equal(ra.begin(), ra.end(), rb.begin(), [](auto x, auto y) {
             return x.lo == y.lo && x.hi == y.hi;
           });
  }
  int32_t add_set(CodePointSet set) {
    RegexNode n;
    n.op = RegexOp::kSet;
    n.set = std::move(set);
    return add(std::move(n));
  }

  int32_t parse_alternation(int depth) {
    if (depth > kMaxNesting) error("groups nested too deeply", pos_);
    std::vector<int32_t> alts{parse_concat(depth)};
    while (!at_end() && peek() == '|') {
      ++pos_;
      alts.push_back(parse_concat(depth));
    }
    if (alts.size() == 1) return alts[0];
    RegexNode n;
    n.op = RegexOp::kAlternate;
    n.children = std::move(alts);
    return add(std::move(n));
  }

  int32_t parse_concat(int depth) {
    std::vector<int32_t> items;
    while (!at_end() && peek() != '|' && peek() != ')') {
      // Anchors that start or end a top-level alternative only restate "match the whole output".
      if (depth == 0 && items.empty() && peek() == '^') {
        ++pos_;
        continue;
      }
      if (depth == 0 && peek() == '$' && (pos_ + 1 == p_.size() || p_[pos_ + 1] == '|')) {
        ++pos_;
        break;
      }
      items.push_back(parse_repeat(depth));
    }
    if (items.size() == 1) return items[0];
    RegexNode n;
    n.op = items.empty() ? RegexOp::kEmpty : RegexOp::kConcat;
    n.children = std::move(items);
    return add(std::move(n));
  }

  // Parses {m}, {m,}, {m,n}, {,n} at pos_ without consuming; false if `{` is not a quantifier.
  bool scan_braces(size_t* end, int32_t* min, int32_t* max) const {
    size_t i = pos_ + 1;
    auto number = [&](int64_t* v) {
      const size_t start = i;
      *v = 0;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') {
        *v = std::min<int64_t>(*v * 10 + (p_[i] - '0'), int64_t{1} << 40);
        ++i;
      }
      return i > start;
    };
    int64_t lo = 0, hi = -1;
    const bool has_lo = number(&lo);
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(&hi)) hi = -1;
      if (!has_lo && hi < 0) return false;  // "{,}" is a literal
    } else {
      if (!has_lo) return false;
      hi = lo;
    }
    if (i >= p_.size() || p_[i] != '}') return false;
    if (lo > kMaxRepeatCount || hi > kMaxRepeatCount)
      error("repetition count above " + std::to_string(kMaxRepeatCount), pos_);
    if (hi >= 0 && hi < lo) error("bad repetition range (max < min)", pos_);
    *end = i + 1;
    *min = static_cast<int32_t>(lo);
    *max = static_cast<int32_t>(hi);
    return true;
  }

  bool at_quantifier() const {
    if (at_end()) return false;
    const char c = peek();
    if (c == '*' || c == '+' || c == '?') return true;
    size_t end = 0;
    int32_t lo = 0, hi = 0;
    return c == '{' && scan_braces(&end, &lo, &hi);
  }

  int32_t parse_repeat(int depth) {
    if (at_quantifier()) error("nothing to repeat", pos_);
    int32_t node = parse_atom(depth);
    bool repeated = false;
    while (at_quantifier()) {
      if (repeated) error("multiple repeat", pos_);
      repeated = true;
      int32_t lo = 0, hi = -1;
      const char c = peek();
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        lo = 1, ++pos_;
      } else if (c == '?') {
        hi = 1, ++pos_;
      } else {
        size_t end = pos_ + 1;
        scan_braces(&end, &lo, &hi);
        pos_ = end;
      }
      if (!at_end() && peek() == '?') ++pos_;  // lazy: same language
      if (!at_end() && peek() == '+') unsupported("+", pos_, "possessive quantifier");
      RegexNode n;
      n.op = RegexOp::kRepeat;
      n.children = {node};
      n.min = lo;
      n.max = hi;
      node = add(std::move(n));
    }
    return node;
  }

  int32_t parse_atom(int depth) {
    const size_t start = pos_;
    const char c = peek();
    switch (c) {
      case '(':
        return parse_group(depth);
      case '[':
        return add_set(parse_class());
      case '.':
        ++pos_;
        return add_set(CodePointSet::single('\n').complement());
      case '\\':
        return parse_escape_atom();
      case '^':
        unsupported("^", start, "'^' is only accepted at the start of the pattern");
      case '$':
        unsupported("$", start, "'$' is only accepted at the end of the pattern");
      default:
        return add_set(CodePointSet::single(next_code_point()));
    }
  }

  int32_t parse_group(int depth) {
    const size_t open = pos_;
    ++pos_;  // (
    if (peek() == '?') {
      const std::string_view rest = p_.substr(pos_);
      if (internal_ && rest.starts_with("?@")) return parse_definition(depth, open);
      if (internal_ && rest.starts_with("?&")) return parse_product(depth, open);
      if (rest.starts_with("?:")) {
        pos_ += 2;
      } else if (rest.starts_with("?P<") ||
                 (rest.starts_with("?<") && !rest.starts_with("?<=") && !rest.starts_with("?<!"))) {
        pos_ += rest[1] == 'P' ? 3 : 2;
        const size_t name_start = pos_;
        while (!at_end() && peek() != '>') {
          const char ch = peek();
          const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '_';
          if (!ok) error("bad character in group name", pos_);
          ++pos_;
        }
        if (at_end() || pos_ == name_start) error("bad group name", name_start);
        ++pos_;  // >
      } else if (rest.starts_with("?P=")) {
        unsupported("(?P=", open, "backreferences are not supported");
      } else if (rest.starts_with("?=") || rest.starts_with("?!")) {
        unsupported(p_.substr(open, 3), open, "lookahead is not supported");
      } else if (rest.starts_with("?<=") || rest.starts_with("?<!")) {
        unsupported(p_.substr(open, 4), open, "lookbehind is not supported");
      } else if (rest.starts_with("?>")) {
        unsupported("(?>", open, "atomic groups are not supported");
      } else if (rest.starts_with("?#")) {
        unsupported("(?#", open, "comments are not supported");
      } else if (rest.starts_with("?(")) {
        unsupported("(?(", open, "conditionals are not supported");
      } else {
        unsupported(p_.substr(open, 3), open, "inline flags are not supported");
      }
    }
    const int32_t inner = parse_alternation(depth + 1);
    if (at_end() || peek() != ')') error("missing ')' for the group opened", open);
    ++pos_;
    return inner;
  }

  // The internal dialect's shared subexpressions: `(?@N=X)` (or `(?@N~=X)`, deferred) defines N
  // as X and matches the empty string; `(?@N)` matches X. A definition repeated with the same text is the same node (the AST
  // is hash-consed), so copied text may define N again.
  int32_t parse_definition(int depth, size_t open) {
    pos_ += 2;  // ?@
    int64_t id = 0;
    const size_t digits = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9' && id < (int64_t{1} << 40))
      id = id * 10 + (p_[pos_++] - '0');
    if (pos_ == digits) error("bad definition name", open);
    const bool deferred = !at_end() && peek() == '~';
    if (deferred) ++pos_;
    if (!deferred && !at_end() && peek() == ')') {
      ++pos_;
      auto it = defs_.find(id);
      if (it == defs_.end() && fragment_) {  // a stand-in of its own: an empty node tagged by id
        RegexNode stand_in;
        stand_in.min = static_cast<int32_t>(id & 0x7fffffff);
        stand_in.max = static_cast<int32_t>(id >> 31);
        const int32_t node = add(std::move(stand_in));
        ast_.deferred.push_back(node);
        it = defs_.emplace(id, node).first;
      }
      if (it == defs_.end()) error("reference to an undefined subexpression", open);
      return it->second;
    }
    if (at_end() || peek() != '=') error("bad definition", open);
    ++pos_;
    const int32_t body = parse_alternation(depth + 1);
    if (at_end() || peek() != ')') error("missing ')' for the definition opened", open);
    ++pos_;
    auto [it, inserted] = defs_.emplace(id, body);
    if (!inserted && it->second != body) error("subexpression defined twice differently", open);
    if (deferred && std::find(ast_.deferred.begin(), ast_.deferred.end(), body) == ast_.deferred.end())
      ast_.deferred.push_back(body);
    return add(RegexNode{});
  }

  // `(?&R(X)(Y)...)`: R one of `a`, `1`, `-`, `s`, then at least one parenthesized operand.
  int32_t parse_product(int depth, size_t open) {
    pos_ += 2;  // ?&
    RegexNode n;
    n.op = RegexOp::kProduct;
    const char rule = peek();
    if (rule == 'a') n.min = static_cast<int32_t>(ProductRule::kAll);
    else if (rule == '1') n.min = static_cast<int32_t>(ProductRule::kExactlyOne);
    else if (rule == '-') n.min = static_cast<int32_t>(ProductRule::kFirstOnly);
    else if (rule == 's') n.min = static_cast<int32_t>(ProductRule::kAllInStep);
    else error("bad combination rule", open);
    ++pos_;
    while (!at_end() && peek() == '(') n.children.push_back(parse_group(depth + 1));
    if (n.children.empty() || at_end() || peek() != ')')
      error("missing ')' for the combination opened", open);
    ++pos_;
    n.max = 0;
    return add(std::move(n));
  }

  uint32_t next_code_point() {
    uint32_t cp = 0;
    if (!decode_utf8(p_, &pos_, &cp)) error("invalid UTF-8 in the pattern", pos_);
    return cp;
  }

  uint32_t parse_hex(size_t digits, size_t escape_start) {
    uint32_t v = 0;
    for (size_t k = 0; k < digits; ++k) {
      const char h = peek();
      int d = -1;
      if (h >= '0' && h <= '9') d = h - '0';
      if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      if (d < 0) error("bad hex escape", escape_start);
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  // After a backslash: either a class (\d ...) in *set, or one code point. Returns true for a set.
  bool parse_escape(bool in_class, CodePointSet* set, uint32_t* cp) {
    const size_t start = pos_ - 1;
    if (at_end()) error("pattern ends with a backslash", start);
    const char c = peek();
    const auto single = [&](uint32_t v) {
      ++pos_;
      *cp = v;
      return false;
    };
    switch (c) {
      case 'd':
        ++pos_, *set = digit_set();
        return true;
      case 'D':
        ++pos_, *set = digit_set().complement();
        return true;
      case 'w':
        ++pos_, *set = word_set();
        return true;
      case 'W':
        ++pos_, *set = word_set().complement();
        return true;
      case 's':
        ++pos_, *set = space_set();
        return true;
      case 'S':
        ++pos_, *set = space_set().complement();
        return true;
      case 'n':
        return single('\n');
      case 'r':
        return single('\r');
      case 't':
        return single('\t');
      case 'f':
        return single('\f');
      case 'v':
        return single('\v');
      case 'a':
        return single('\a');
      case '0':
        return single('\0');
      case 'b':
        if (in_class) return single('\b');
        unsupported("\\b", start, "word boundaries are not supported");
      case 'x': {
        ++pos_;
        if (peek() == '{') {
          ++pos_;
          uint32_t v = 0;
          size_t n = 0;
          while (!at_end() && peek() != '}') {
            if (++n > 6) error("bad hex escape", start);
            v = v * 16 + parse_hex(1, start);
          }
          if (at_end() || n == 0) error("bad hex escape", start);
          ++pos_;
          *cp = v;
        } else {
          *cp = parse_hex(2, start);
        }
        break;
      }
      case 'u':
        ++pos_, *cp = parse_hex(4, start);
        break;
      case 'U':
        ++pos_, *cp = parse_hex(8, start);
        break;
      default:
        if (c >= '1' && c <= '9')
          unsupported(p_.substr(start, 2), start, "backreferences are not supported");
        if (c == 'k') unsupported("\\k", start, "backreferences are not supported");
        if (c == 'B' || c == 'A' || c == 'Z' || c == 'z' || c == 'G')
          unsupported(p_.substr(start, 2), start, "anchors are not supported");
        if (c == 'p' || c == 'P')
          unsupported(p_.substr(start, 2), start, "Unicode properties are not supported");
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
          error("unknown escape '\\" + std::string(1, c) + "'", start);
        *cp = next_code_point();  // escaped punctuation or any other character: itself
        return false;
    }
    if (*cp > kMaxCodePoint || (*cp >= 0xD800 && *cp <= 0xDFFF))
      error("escape names no valid code point", start);
    return false;
  }

  int32_t parse_escape_atom() {
    ++pos_;  // backslash
    CodePointSet set;
    uint32_t cp = 0;
    if (parse_escape(false, &set, &cp)) return add_set(std::move(set));
    return add_set(CodePointSet::single(cp));
  }

  CodePointSet parse_class() {
    const size_t open = pos_;
    ++pos_;  // [
    bool negate = false;
    if (peek() == '^') negate = true, ++pos_;
    CodePointSet set;
    bool first = true;
    while (true) {
      if (at_end()) error("missing ']' for the class opened", open);
      if (peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      CodePointSet item;
      uint32_t lo = 0;
      const size_t item_start = pos_;
      if (!parse_class_atom(&item, &lo)) {
        set.add(item);
        continue;
      }
      if (peek() == '-' && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t hi = 0;
        if (!parse_class_atom(&item, &hi)) error("bad character range", item_start);
        if (hi < lo) error("bad character range", item_start);
        set.add(lo, hi);
      } else {
        set.add(lo, lo);
      }
    }
    return negate ? set.complement() : set;
  }

  // One class member: returns true with *cp for a single code point, false with *set for \d etc.
  bool parse_class_atom(CodePointSet* set, uint32_t* cp) {
    if (peek() == '\\') {
      ++pos_;
      return !parse_escape(true, set, cp);
    }
    *cp = next_code_point();
    return true;
  }

  std::string_view p_;
  size_t pos_ = 0;
  RegexAst ast_;
  std::unordered_multimap<uint64_t, int32_t> unique_;  // hash of node content -> index
  bool internal_;
  bool fragment_;
  std::unordered_map<int64_t, int32_t> defs_;  // internal dialect: definition -> node
};

void append_escaped_code_point(uint32_t cp, std::string* out) {
  const bool alnum = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                     (cp >= 'A' && cp <= 'Z') || cp == '_' || cp == ' ';
  if (alnum || cp >= 0x80) {
    append_utf8(cp, out);
  } else if (cp >= 0x21 && cp < 0x7F) {
    out->push_back('\\');
    out->push_back(static_cast<char>(cp));
  } else {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", cp);
    out->append(buf);
  }
}

}  // namespace

RegexAst parse_regex(std::string_view pattern, RegexDialect dialect) {
  return Parser(pattern, dialect).run();
}

std::string escape_regex_literal(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    if (!decode_utf8(text, &pos, &cp))
      fail(SABLE_ERR_INVALID_ARGUMENT, "invalid UTF-8 in a literal");
    append_escaped_code_point(cp, &out);
  }
  return out;
}

std::string regex_class_for(const CodePointSet& set) {
  if (set.empty()) return "[^\\x00-\\x{10FFFF}]";
  std::string out = "[";
  for (const CodePointRange& r : set.ranges()) {
    append_escaped_code_point(r.lo, &out);
    if (r.hi == r.lo) continue;
    out.push_back('-');
    append_escaped_code_point(r.hi, &out);
  }
  out.push_back(']');
  return out;
}

}  // namespace sable::grammar
