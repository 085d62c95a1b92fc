// GBNF -> regex (see ebnf.h): a recursive-descent parser builds a small expression tree per rule,
// then `root` is emitted as regex text with every rule reference expanded in place.
#include "ebnf.h"

#include <algorithm>
#include <map>
#include <vector>

#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

// How deep a recursive rule nests: deeper occurrences are the empty language.
constexpr int kMaxRecursion = 4;
// A regex that matches nothing (a class with no member).
constexpr const char* kNothing = "[^\\s\\S]";


using sable::cpp::fail;

// Inlining can multiply text (a rule used many times by rules used many times): cap it.
constexpr size_t kMaxRegexSize = 4 << 20;
constexpr int kMaxNesting = 500;

enum class ExprOp { kRegex, kRef, kSequence, kAlternate, kRepeat };

struct Expr {
  ExprOp op;
  std::string text;  // kRegex: a regex atom; kRef: the rule name
  std::vector<int32_t> children;
  int32_t min = 0;
  int32_t max = -1;
  size_t offset = 0;  // where a kRef appears, for errors
};

class Parser {
 public:
  explicit Parser(std::string_view g) : g_(g) {}

  void run() {
    skip_space();
    while (!at_end()) {
      const size_t at = pos_;
      const std::string name = identifier();
      if (name.empty()) error("expected a rule name", at);
      skip_space();
      if (!g_.substr(pos_).starts_with("::=")) error("expected '::=' after '" + name + "'", pos_);
      pos_ += 3;
      if (rules_.count(name)) error("rule '" + name + "' is defined twice", at);
      rules_[name] = parse_alternation(0);
      skip_space();
    }
  }

  std::string emit_root() {
    if (!rules_.count("root")) fail(SABLE_ERR_INVALID_ARGUMENT, "the grammar has no 'root' rule");
    return emit_rule("root");
  }

 private:
  [[noreturn]] void error(const std::string& what, size_t offset) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < g_.size(); ++i) {
      if (g_[i] == '\n') ++line, col = 0;
      ++col;
    }
    fail(SABLE_ERR_INVALID_ARGUMENT,
         what + " at line " + std::to_string(line) + " column " + std::to_string(col));
  }

  bool at_end() const { return pos_ >= g_.size(); }
  char peek() const { return at_end() ? '\0' : g_[pos_]; }
  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  }

  void skip_space() {
    while (!at_end()) {
      const char c = peek();
      if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string identifier() {
    const size_t start = pos_;
    while (!at_end() && name_char(peek())) ++pos_;
    return std::string(g_.substr(start, pos_ - start));
  }

  // True when an identifier followed by ::= starts here (the next rule).
  bool at_rule_start() {
    const size_t save = pos_;
    const bool is_rule =
        !identifier().empty() && (skip_space(), g_.substr(pos_).starts_with("::="));
    pos_ = save;
    return is_rule;
  }

  int32_t add(Expr e) {
    exprs_.push_back(std::move(e));
    return static_cast<int32_t>(exprs_.size() - 1);
  }

  int32_t add_regex(std::string text) { return add({ExprOp::kRegex, std::move(text), {}}); }

  int32_t parse_alternation(int depth) {
    if (depth > kMaxNesting) error("groups nested too deeply", pos_);
    std::vector<int32_t> alts{parse_sequence(depth)};
    while (peek() == '|') {
      ++pos_;
      alts.push_back(parse_sequence(depth));
    }
    if (alts.size() == 1) return alts[0];
    return add({ExprOp::kAlternate, "", std::move(alts)});
  }

  int32_t parse_sequence(int depth) {
    std::vector<int32_t> items;
    while (true) {
      skip_space();
      if (at_end() || peek() == '|' || peek() == ')' || at_rule_start()) break;
      items.push_back(parse_postfix(depth));
    }
    return add({ExprOp::kSequence, "", std::move(items)});
  }

  int32_t parse_postfix(int depth) {
    int32_t e = parse_atom(depth);
    while (true) {
      const char c = peek();
      int32_t lo = 0, hi = -1;
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        lo = 1, ++pos_;
      } else if (c == '?') {
        hi = 1, ++pos_;
      } else if (c == '{') {
        parse_braces(&lo, &hi);
      } else {
        return e;
      }
      Expr r{ExprOp::kRepeat, "", {e}};
      r.min = lo;
      r.max = hi;
      e = add(std::move(r));
    }
  }

  void parse_braces(int32_t* lo, int32_t* hi) {
    const size_t open = pos_++;
    auto number = [&](int32_t* v) {
      skip_space();
      const size_t start = pos_;
      int64_t n = 0;
      while (peek() >= '0' && peek() <= '9')
        n = std::min<int64_t>(n * 10 + (g_[pos_++] - '0'), 1 << 30);
      if (pos_ == start) return false;
      if (n > kMaxRepeatCount)
        error("repetition count above " + std::to_string(kMaxRepeatCount), open);
      *v = static_cast<int32_t>(n);
      return true;
    };
    if (!number(lo)) error("expected a repetition count", open);
    skip_space();
    *hi = *lo;
    if (peek() == ',') {
      ++pos_;
      if (!number(hi)) *hi = -1;
      skip_space();
    }
    if (peek() != '}') error("expected '}'", pos_);
    ++pos_;
    if (*hi >= 0 && *hi < *lo) error("bad repetition range (max < min)", open);
  }

  int32_t parse_atom(int depth) {
    const size_t start = pos_;
    const char c = peek();
    if (c == '"' || c == '\'') return add_regex(escape_regex_literal(parse_literal()));
    if (c == '[') return add_regex(regex_class_for(parse_class()));
    if (c == '.') {
      ++pos_;
      return add_regex(regex_class_for(CodePointSet::all()));  // any character
    }
    if (c == '(') {
      ++pos_;
      skip_space();
      if (peek() == '=') error("lookahead assertions are not supported", pos_);
      const int32_t inner = parse_alternation(depth + 1);
      if (peek() != ')') error("missing ')' for the group opened", start);
      ++pos_;
      return inner;
    }
    const std::string name = identifier();
    if (name.empty()) error(std::string("unexpected character '") + c + "'", start);
    Expr ref{ExprOp::kRef, name, {}};
    ref.offset = start;
    return add(std::move(ref));
  }

  uint32_t parse_hex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t k = 0; k < digits; ++k, ++pos_) {
      const char h = peek();
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) error("bad hex escape", at);
      v = v * 16 + static_cast<uint32_t>(d);
    }
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) error("escape names no code point", at);
    return v;
  }

  // One (possibly escaped) character of a literal or class.
  uint32_t parse_char() {
    const size_t at = pos_;
    uint32_t cp = 0;
    if (peek() != '\\') {
      if (!decode_utf8(g_, &pos_, &cp)) error("invalid UTF-8", at);
      return cp;
    }
    ++pos_;
    if (at_end()) error("the grammar ends inside an escape", at);
    const char c = g_[pos_++];
    switch (c) {
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'f':
        return '\f';
      case 'v':
        return '\v';
      case '0':
        return '\0';
      case 'x':
        return parse_hex(2, at);
      case 'u':
        return parse_hex(4, at);
      case 'U':
        return parse_hex(8, at);
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
          error(std::string("unknown escape '\\") + c + "'", at);
        --pos_;
        if (!decode_utf8(g_, &pos_, &cp)) error("invalid UTF-8", at);
        return cp;
    }
  }

  std::string parse_literal() {
    const size_t open = pos_;
    const char quote = g_[pos_++];
    std::string text;
    while (true) {
      if (at_end() || peek() == '\n') error("unterminated string literal", open);
      if (peek() == quote) break;
      append_utf8(parse_char(), &text);
    }
    ++pos_;
    return text;
  }

  CodePointSet parse_class() {
    const size_t open = pos_++;
    bool negate = false;
    if (peek() == '^') negate = true, ++pos_;
    CodePointSet set;
    while (true) {
      if (at_end()) error("missing ']' for the class opened", open);
      if (peek() == ']') break;
      const uint32_t lo = parse_char();
      if (peek() == '-' && pos_ + 1 < g_.size() && g_[pos_ + 1] != ']') {
        ++pos_;
        const uint32_t hi = parse_char();
        if (hi < lo) error("bad character range", open);
        set.add(lo, hi);
      } else {
        set.add(lo, lo);
      }
    }
    ++pos_;
    return negate ? set.complement() : set;
  }

  std::string emit(int32_t index) {
    const Expr& e = exprs_[index];
    switch (e.op) {
      case ExprOp::kRegex:
        return e.text;
      case ExprOp::kRef: {
        if (!rules_.count(e.text)) error("undefined rule '" + e.text + "'", e.offset);
        return "(?:" + emit_rule(e.text) + ")";
      }
      case ExprOp::kSequence: {
        std::string out;
        for (int32_t c : e.children) out += emit(c);
        return e.children.size() == 1 ? out : std::string("(?:").append(out).append(")");
      }
      case ExprOp::kAlternate: {
        std::string out = "(?:";
        for (size_t i = 0; i < e.children.size(); ++i) {
          if (i) out += '|';
          out += emit(e.children[i]);
        }
        return out + ")";
      }
      case ExprOp::kRepeat: {
        std::string out = "(?:";
        out += emit(e.children[0]);
        out += "){" + std::to_string(e.min) + ",";
        if (e.max >= 0) out += std::to_string(e.max);
        return out + "}";
      }
    }
    return "";
  }

  // A rule's regex. Recursion is unrolled: a rule already open 1 + kMaxRecursion times on the stack
  // becomes the empty language, so alternatives through it drop out and nesting stops at that
  // depth. Only rules whose expansion never reached that cut are context-free text and cached.
  std::string emit_rule(const std::string& name) {
    auto done = emitted_.find(name);
    if (done != emitted_.end()) return done->second;
    if (std::count(stack_.begin(), stack_.end(), name) > kMaxRecursion) {
      ++cuts_;
      return kNothing;
    }
    const int64_t cuts_before = cuts_;
    stack_.push_back(name);
    std::string out = emit(rules_.at(name));
    stack_.pop_back();
    if (out.size() > kMaxRegexSize)
      fail(SABLE_ERR_INVALID_ARGUMENT,
           "the grammar is too large once its rules are inlined (recursive rules are unrolled " +
               std::to_string(kMaxRecursion) + " levels deep)");
    if (cuts_ == cuts_before) emitted_[name] = out;
    return out;
  }

  std::string_view g_;
  size_t pos_ = 0;
  std::vector<Expr> exprs_;
  std::map<std::string, int32_t> rules_;
  std::map<std::string, std::string> emitted_;
  std::vector<std::string> stack_;  // rules being emitted, to bound recursion
  int64_t cuts_ = 0;                // recursions cut so far
};

}  // namespace

std::string ebnf_to_regex(std::string_view grammar) {
  Parser p(grammar);
  p.run();
  return p.emit_root();
}

}  // namespace sable::grammar
