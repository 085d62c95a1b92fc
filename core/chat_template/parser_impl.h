// The recursive-descent Parser class behind parse() (parser.h), shared by its two halves:
// statements and the template body in parser.cpp, expressions in parser_expressions.cpp.
// Internal to the chat-template module; nothing outside parser*.cpp includes it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/chat_template/ast.h"
#include "core/chat_template/chat_template.h"
#include "core/chat_template/lexer.h"

namespace sable::chat::detail {

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

  // ---- statements (parser.cpp) ----

  Body parse_body(std::vector<std::string_view> ends, std::string* found, int open_line,
                  const char* open_name);
  static bool is_end_tag(const std::string& name);
  Stmt parse_statement();
  Body parse_closed_body(int open_line, const char* open_name, const char* end);
  Stmt parse_if(Stmt s);
  std::vector<std::string> parse_targets();
  Stmt parse_for(Stmt s);
  Stmt parse_set(Stmt s);
  void parse_params(Stmt& s);
  static void scan_names(const Expr* e, Stmt& m);
  static void scan_body(const Body& body, Stmt& m);
  static void mark_catch_alls(Stmt& s);
  Stmt parse_macro(Stmt s);
  Stmt parse_call_block(Stmt s);
  Stmt parse_filter_block(Stmt s);

  // ---- expressions (parser_expressions.cpp) ----

  ExprPtr parse_tuple(bool with_cond);
  ExprPtr parse_expression();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line);
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr target, int line);
  void parse_call_args(Expr& n);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_filter(ExprPtr subject);
  ExprPtr parse_filter_expr(ExprPtr e);

  std::vector<Token> t_;
  std::size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace sable::chat::detail
