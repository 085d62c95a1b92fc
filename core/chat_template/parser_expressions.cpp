// The expression half of the chat-template Parser (parser_impl.h): Jinja's precedence levels
// from `x if c else y` down to literals, then postfix access, calls, slicing, filters and tests.
#include <string>
#include <utility>

#include "core/chat_template/parser_impl.h"

namespace sable::chat::detail {

// `a, b` (a tuple, held as a list) or one expression.
ExprPtr Parser::parse_tuple(bool with_cond) {
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

ExprPtr Parser::parse_expression() {
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

ExprPtr Parser::parse_or() {
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

ExprPtr Parser::parse_and() {
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

ExprPtr Parser::parse_not() {
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

ExprPtr Parser::parse_compare() {
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

ExprPtr Parser::binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
  auto n = node(ExprKind::kBinary, line);
  n->name = op;
  n->args.push_back(std::move(l));
  n->args.push_back(std::move(r));
  return n;
}

ExprPtr Parser::parse_math1() {
  ExprPtr e = parse_concat();
  while (is_op("+") || is_op("-")) {
    std::string op = cur().text;
    int line = cur().line;
    advance();
    e = binary(op, std::move(e), parse_concat(), line);
  }
  return e;
}

ExprPtr Parser::parse_concat() {
  ExprPtr e = parse_math2();
  while (is_op("~")) {
    int line = cur().line;
    advance();
    e = binary("~", std::move(e), parse_math2(), line);
  }
  return e;
}

ExprPtr Parser::parse_math2() {
  ExprPtr e = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    std::string op = cur().text;
    int line = cur().line;
    advance();
    e = binary(op, std::move(e), parse_pow(), line);
  }
  return e;
}

ExprPtr Parser::parse_pow() {
  ExprPtr e = parse_unary(true);
  while (is_op("**")) {
    int line = cur().line;
    advance();
    e = binary("**", std::move(e), parse_unary(true), line);
  }
  return e;
}

ExprPtr Parser::parse_unary(bool with_filter) {
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

ExprPtr Parser::parse_primary() {
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

ExprPtr Parser::parse_postfix(ExprPtr e) {
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

ExprPtr Parser::parse_subscript(ExprPtr target, int line) {
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
void Parser::parse_call_args(Expr& n) {
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

ExprPtr Parser::parse_call(ExprPtr callee) {
  auto n = node(ExprKind::kCall, cur().line);
  n->args.push_back(std::move(callee));
  parse_call_args(*n);
  return n;
}

ExprPtr Parser::parse_filter(ExprPtr subject) {
  auto n = node(ExprKind::kFilter, cur().line);
  n->name = expect_name();
  while (skip_op(".")) n->name += "." + expect_name();
  n->args.push_back(std::move(subject));
  if (is_op("(")) parse_call_args(*n);
  return n;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
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

}  // namespace sable::chat::detail
