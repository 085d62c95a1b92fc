// Recursive-descent parser for the chat-template Jinja subset (see parser.h).
#include "core/chat_template/parser.h"

#include <string>
#include <string_view>

#include "core/chat_template/chat_template.h"

namespace sable::chat::detail {

namespace {

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::unique_ptr<Template> run() {
    auto tpl = std::make_unique<Template>();
    std::string end;
    tpl->body = parse_body({}, &end, 0, "");
    return tpl;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return t_[i_]; }
  const Token& peek(std::size_t k = 1) const {
    return t_[i_ + k < t_.size() ? i_ + k : t_.size() - 1];
  }
  void advance() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(const char* op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == Tok::kName && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kData: return "text";
      case Tok::kVarBegin: return "'{{'";
      case Tok::kVarEnd: return "'}}'";
      case Tok::kBlockBegin: return "'{%'";
      case Tok::kBlockEnd: return "'%}'";
      case Tok::kEof: return "end of template";
      case Tok::kString: return "string literal";
      default: return "'" + t.text + "'";
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw TemplateError(cur().line, what); }
  [[noreturn]] void unexpected(const char* expected) const {
    fail("unexpected " + describe(cur()) + ", expected " + expected);
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) unexpected((std::string("'") + op + "'").c_str());
  }
  std::string expect_name() {
    if (cur().type != Tok::kName) unexpected("a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != Tok::kBlockEnd) unexpected("'%}'");
    advance();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting) p_.fail("template nested too deeply");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag named in `ends`; leaves the tokens after that name unread and
  // returns the name in *found. At the end of the template with `ends` non-empty, the block
  // opened at open_line by open_name is unclosed.
  Body parse_body(std::vector<std::string_view> ends, std::string* found, int open_line,
                  const char* open_name) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& tok = cur();
      if (tok.type == Tok::kEof) {
        if (ends.empty()) return body;
        throw TemplateError(open_line, std::string("'") + open_name +
                                           "' block is never closed (expected '" +
                                           std::string(ends.back()) + "')");
      }
      if (tok.type == Tok::kData) {
        Stmt s;
        s.kind = StmtKind::kText;
        s.line = tok.line;
        s.text = tok.text;
        body.push_back(std::move(s));
        advance();
        continue;
      }
      if (tok.type == Tok::kVarBegin) {
        Stmt s;
        s.kind = StmtKind::kOutput;
        s.line = tok.line;
        advance();
        s.exprs.push_back(parse_expression());
        if (cur().type != Tok::kVarEnd) unexpected("'}}'");
        advance();
        body.push_back(std::move(s));
        continue;
      }
      if (tok.type != Tok::kBlockBegin) unexpected("text or a tag");
      advance();
      if (cur().type != Tok::kName) unexpected("a statement name");
      for (auto e : ends) {
        if (cur().text == e) {
          *found = cur().text;
          advance();
          return body;
        }
      }
      if (!ends.empty() && is_end_tag(cur().text))
        fail("unexpected '" + cur().text + "' tag: the '" + open_name + "' block opened at line " +
             std::to_string(open_line) + " must be closed first with '" +
             std::string(ends.back()) + "'");
      body.push_back(parse_statement());
    }
  }

  static bool is_end_tag(const std::string& name) {
    static const char* kEnds[] = {"endif", "endfor", "endset", "endmacro", "endcall",
                                  "endfilter", "endgeneration", "elif", "else", "endraw"};
    for (const char* e : kEnds)
      if (name == e) return true;
    return false;
  }

  Stmt parse_statement() {
    Stmt s;
    s.line = cur().line;
    std::string name = expect_name();
    if (name == "if") return parse_if(std::move(s));
    if (name == "for") return parse_for(std::move(s));
    if (name == "set") return parse_set(std::move(s));
    if (name == "macro") return parse_macro(std::move(s));
    if (name == "call") return parse_call_block(std::move(s));
    if (name == "filter") return parse_filter_block(std::move(s));
    if (name == "generation") {
      s.kind = StmtKind::kScope;
      expect_block_end();
      s.bodies.push_back(parse_closed_body(s.line, "generation", "endgeneration"));
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) throw TemplateError(s.line, "'" + name + "' outside of a loop");
      s.kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
      return s;
    }
    if (is_end_tag(name)) throw TemplateError(s.line, "unexpected '" + name + "' tag (no open block)");
    throw TemplateError(s.line, "unknown tag '" + name + "'");
  }

  Body parse_closed_body(int open_line, const char* open_name, const char* end) {
    std::string found;
    Body b = parse_body({end}, &found, open_line, open_name);
    expect_block_end();
    return b;
  }

  Stmt parse_if(Stmt s) {
    s.kind = StmtKind::kIf;
    s.exprs.push_back(parse_expression());
    expect_block_end();
    while (true) {
      std::string found;
      s.bodies.push_back(parse_body({"elif", "else", "endif"}, &found, s.line, "if"));
      if (found == "elif") {
        s.exprs.push_back(parse_expression());
        expect_block_end();
      } else if (found == "else") {
        expect_block_end();
        s.bodies.push_back(parse_closed_body(s.line, "if", "endif"));
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    do {
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  Stmt parse_for(Stmt s) {
    s.kind = StmtKind::kFor;
    s.targets = parse_targets();
    if (!skip_name("in")) unexpected("'in'");
    s.exprs.push_back(parse_tuple(/*with_cond=*/false));
    if (skip_name("if")) {
      s.has_filter = true;
      s.exprs.push_back(parse_expression());
    }
    if (is_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    std::string found;
    s.bodies.push_back(parse_body({"else", "endfor"}, &found, s.line, "for"));
    --loop_depth_;
    expect_block_end();
    if (found == "else") s.bodies.push_back(parse_closed_body(s.line, "for", "endfor"));
    return s;
  }

  Stmt parse_set(Stmt s) {
    s.targets.push_back(expect_name());
    if (skip_op(".")) {
      s.attr = expect_name();
    } else {
      while (skip_op(",")) s.targets.push_back(expect_name());
    }
    if (cur().type == Tok::kBlockEnd && s.targets.size() == 1 && s.attr.empty()) {
      advance();
      s.kind = StmtKind::kSetBlock;
      s.bodies.push_back(parse_closed_body(s.line, "set", "endset"));
      return s;
    }
    s.kind = StmtKind::kSet;
    expect_op("=");
    s.exprs.push_back(parse_tuple(/*with_cond=*/true));
    expect_block_end();
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string p = expect_name();
      ExprPtr def;
      if (skip_op("=")) def = parse_expression();
      s.params.emplace_back(std::move(p), std::move(def));
    }
    advance();
  }

  static void scan_names(const Expr* e, Stmt& m) {
    if (e == nullptr) return;
    if (e->kind == ExprKind::kName) {
      m.uses_varargs |= e->name == "varargs";
      m.uses_kwargs |= e->name == "kwargs";
    }
    for (const auto& a : e->args) scan_names(a.get(), m);
    for (const auto& [k, a] : e->kwargs) scan_names(a.get(), m);
  }
  static void scan_body(const Body& body, Stmt& m) {
    for (const auto& s : body) {
      for (const auto& e : s.exprs) scan_names(e.get(), m);
      for (const auto& [k, e] : s.params) scan_names(e.get(), m);
      for (const auto& b : s.bodies) scan_body(b, m);
    }
  }
  static void mark_catch_alls(Stmt& s) {
    for (const auto& [k, e] : s.params) scan_names(e.get(), s);
    scan_body(s.bodies[0], s);
  }

  Stmt parse_macro(Stmt s) {
    s.kind = StmtKind::kMacro;
    s.name = expect_name();
    parse_params(s);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s.bodies.push_back(parse_closed_body(s.line, "macro", "endmacro"));
    loop_depth_ = saved;
    mark_catch_alls(s);
    return s;
  }

  Stmt parse_call_block(Stmt s) {
    s.kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_params(s);
    auto call = parse_expression();
    if (call->kind != ExprKind::kCall) throw TemplateError(s.line, "'call' expects a macro call");
    s.exprs.push_back(std::move(call));
    expect_block_end();
    s.bodies.push_back(parse_closed_body(s.line, "call", "endcall"));
    mark_catch_alls(s);
    return s;
  }

  Stmt parse_filter_block(Stmt s) {
    s.kind = StmtKind::kFilterBlock;
    auto base = node(ExprKind::kName, s.line);
    base->name = "__block__";
    ExprPtr e = parse_filter(std::move(base));
    while (skip_op("|")) e = parse_filter(std::move(e));
    s.exprs.push_back(std::move(e));
    expect_block_end();
    s.bodies.push_back(parse_closed_body(s.line, "filter", "endfilter"));
    return s;
  }

  // ---- expressions ----

  // `a, b` (a tuple, held as a list) or one expression.
  ExprPtr parse_tuple(bool with_cond) {
    int line = cur().line;
    ExprPtr first = with_cond ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto list = node(ExprKind::kList, line);
    list->name = "tuple";
    list->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == Tok::kBlockEnd || cur().type == Tok::kVarEnd) break;
      list->args.push_back(with_cond ? parse_expression() : parse_or());
    }
    return list;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr e = parse_or();
    while (skip_name("if")) {
      auto c = node(ExprKind::kCond, line);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(e));
      c->args.push_back(skip_name("else") ? parse_expression() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      auto n = node(ExprKind::kOr, cur().line);
      advance();
      n->args.push_back(std::move(e));
      n->args.push_back(parse_and());
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      auto n = node(ExprKind::kAnd, cur().line);
      advance();
      n->args.push_back(std::move(e));
      n->args.push_back(parse_not());
      e = std::move(n);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = node(ExprKind::kUnary, cur().line);
      advance();
      n->name = "not";
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr e = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::kOp && (cur().text == "==" || cur().text == "!=" ||
                                     cur().text == "<" || cur().text == "<=" ||
                                     cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == Tok::kName && peek().text == "in") {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::kCompare, line);
        cmp->args.push_back(std::move(e));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(e);
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto n = node(ExprKind::kBinary, line);
    n->name = op;
    n->args.push_back(std::move(l));
    n->args.push_back(std::move(r));
    return n;
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      int line = cur().line;
      advance();
      e = binary(op, std::move(e), parse_concat(), line);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      int line = cur().line;
      advance();
      e = binary("~", std::move(e), parse_math2(), line);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      int line = cur().line;
      advance();
      e = binary(op, std::move(e), parse_pow(), line);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      int line = cur().line;
      advance();
      e = binary("**", std::move(e), parse_unary(true), line);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(ExprKind::kUnary, cur().line);
      e->name = cur().text;
      advance();
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    int line = tok.line;
    switch (tok.type) {
      case Tok::kName: {
        auto e = node(ExprKind::kLiteral, line);
        const std::string& n = tok.text;
        if (n == "true" || n == "True") e->literal = Value(true);
        else if (n == "false" || n == "False") e->literal = Value(false);
        else if (n == "none" || n == "None") e->literal = Value(None{});
        else {
          e->kind = ExprKind::kName;
          e->name = n;
        }
        advance();
        return e;
      }
      case Tok::kString: {
        auto e = node(ExprKind::kLiteral, line);
        std::string s;
        while (cur().type == Tok::kString) {  // adjacent literals concatenate
          s += cur().text;
          advance();
        }
        e->literal = Value(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = node(ExprKind::kLiteral, line);
        e->literal = Value(tok.int_value);
        advance();
        return e;
      }
      case Tok::kFloat: {
        auto e = node(ExprKind::kLiteral, line);
        e->literal = Value(tok.float_value);
        advance();
        return e;
      }
      case Tok::kOp:
        if (tok.text == "(") {
          advance();
          if (skip_op(")")) {
            auto empty = node(ExprKind::kList, line);
            empty->name = "tuple";
            return empty;
          }
          ExprPtr e = parse_expression();
          if (is_op(",")) {
            auto list = node(ExprKind::kList, line);
            list->name = "tuple";
            list->args.push_back(std::move(e));
            while (skip_op(",")) {
              if (is_op(")")) break;
              list->args.push_back(parse_expression());
            }
            e = std::move(list);
          }
          expect_op(")");
          return e;
        }
        if (tok.text == "[") {
          advance();
          auto list = node(ExprKind::kList, line);
          while (!is_op("]")) {
            if (!list->args.empty()) expect_op(",");
            if (is_op("]")) break;
            list->args.push_back(parse_expression());
          }
          advance();
          return list;
        }
        if (tok.text == "{") {
          advance();
          auto dict = node(ExprKind::kDict, line);
          while (!is_op("}")) {
            if (!dict->args.empty()) expect_op(",");
            if (is_op("}")) break;
            dict->args.push_back(parse_expression());
            expect_op(":");
            dict->args.push_back(parse_expression());
          }
          advance();
          return dict;
        }
        break;
      default:
        break;
    }
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      int line = cur().line;
      if (skip_op(".")) {
        if (cur().type == Tok::kInt) {
          auto idx = node(ExprKind::kIndex, line);
          auto lit = node(ExprKind::kLiteral, line);
          lit->literal = Value(cur().int_value);
          advance();
          idx->args.push_back(std::move(e));
          idx->args.push_back(std::move(lit));
          e = std::move(idx);
          continue;
        }
        auto a = node(ExprKind::kAttr, line);
        a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (skip_op("[")) {
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, int line) {
    ExprPtr parts[3];
    bool is_slice = false;
    if (!is_op(":")) parts[0] = parse_expression();
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op(":") && !is_op("]")) parts[1] = parse_expression();
      if (skip_op(":") && !is_op("]")) parts[2] = parse_expression();
    }
    expect_op("]");
    auto n = node(is_slice ? ExprKind::kSlice : ExprKind::kIndex, line);
    n->args.push_back(std::move(target));
    if (is_slice) {
      for (auto& p : parts) n->args.push_back(std::move(p));
    } else {
      n->args.push_back(std::move(parts[0]));
    }
    return n;
  }

  // Parses `(args, name=value)` into n's args/kwargs (after whatever n already holds).
  void parse_call_args(Expr& n) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args / **kwargs in calls are not supported");
      if (cur().type == Tok::kName && peek().type == Tok::kOp && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        n.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!n.kwargs.empty()) fail("positional argument after keyword argument");
        n.args.push_back(parse_expression());
      }
    }
    advance();
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto n = node(ExprKind::kCall, cur().line);
    n->args.push_back(std::move(callee));
    parse_call_args(*n);
    return n;
  }

  ExprPtr parse_filter(ExprPtr subject) {
    auto n = node(ExprKind::kFilter, cur().line);
    n->name = expect_name();
    while (skip_op(".")) n->name += "." + expect_name();
    n->args.push_back(std::move(subject));
    if (is_op("(")) parse_call_args(*n);
    return n;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (skip_op("|")) {
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        auto n = node(ExprKind::kTest, cur().line);
        advance();
        n->negated = skip_name("not");
        n->name = expect_name();
        n->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*n);
        } else if ((cur().type == Tok::kName || cur().type == Tok::kString ||
                    cur().type == Tok::kInt || cur().type == Tok::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") &&
                   !is_name("in") && !is_name("not") && !is_name("is")) {
          n->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(n);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::unique_ptr<Template> parse(std::vector<Token> tokens) {
  return Parser(std::move(tokens)).run();
}

}  // namespace sable::chat::detail
