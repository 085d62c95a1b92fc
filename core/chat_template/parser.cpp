// Recursive-descent parser for the chat-template Jinja subset (see parser.h): the template body
// and its statements (if/for/set/macro/call/filter/...). Expressions are parsed in
// parser_expressions.cpp; the Parser class is declared in parser_impl.h.
#include "core/chat_template/parser.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/chat_template/chat_template.h"
#include "core/chat_template/parser_impl.h"

namespace sable::chat::detail {

// Parses until a block tag named in `ends`; leaves the tokens after that name unread and
// returns the name in *found. At the end of the template with `ends` non-empty, the block
// opened at open_line by open_name is unclosed.
Body Parser::parse_body(std::vector<std::string_view> ends, std::string* found,
                        int open_line, const char* open_name) {
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

bool Parser::is_end_tag(const std::string& name) {
  static const char* kEnds[] = {"endif", "endfor", "endset", "endmacro", "endcall",
                                "endfilter", "endgeneration", "elif", "else", "endraw"};
  for (const char* e : kEnds)
    if (name == e) return true;
  return false;
}

Stmt Parser::parse_statement() {
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

Body Parser::parse_closed_body(int open_line, const char* open_name, const char* end) {
  std::string found;
  Body b = parse_body({end}, &found, open_line, open_name);
  expect_block_end();
  return b;
}

Stmt Parser::parse_if(Stmt s) {
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

std::vector<std::string> Parser::parse_targets() {
  std::vector<std::string> names;
  bool paren = skip_op("(");
  do {
    names.push_back(expect_name());
  } while (skip_op(","));
  if (paren) expect_op(")");
  return names;
}

Stmt Parser::parse_for(Stmt s) {
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

Stmt Parser::parse_set(Stmt s) {
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

void Parser::parse_params(Stmt& s) {
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

void Parser::scan_names(const Expr* e, Stmt& m) {
  if (e == nullptr) return;
  if (e->kind == ExprKind::kName) {
    m.uses_varargs |= e->name == "varargs";
    m.uses_kwargs |= e->name == "kwargs";
  }
  for (const auto& a : e->args) scan_names(a.get(), m);
  for (const auto& [k, a] : e->kwargs) scan_names(a.get(), m);
}

void Parser::scan_body(const Body& body, Stmt& m) {
  for (const auto& s : body) {
    for (const auto& e : s.exprs) scan_names(e.get(), m);
    for (const auto& [k, e] : s.params) scan_names(e.get(), m);
    for (const auto& b : s.bodies) scan_body(b, m);
  }
}

void Parser::mark_catch_alls(Stmt& s) {
  for (const auto& [k, e] : s.params) scan_names(e.get(), s);
  scan_body(s.bodies[0], s);
}

Stmt Parser::parse_macro(Stmt s) {
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

Stmt Parser::parse_call_block(Stmt s) {
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

Stmt Parser::parse_filter_block(Stmt s) {
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

std::unique_ptr<Template> parse(std::vector<Token> tokens) {
  return Parser(std::move(tokens)).run();
}

}  // namespace sable::chat::detail
