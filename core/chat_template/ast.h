// The parsed template: a tree of statements and expressions. Built once by the parser, then only
// read (renders on many threads share it). Every node keeps its template line for errors.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/chat_template/value.h"

namespace sable::chat::detail {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // args = items; name "tuple" for (a, b) / a, b
  kDict,     // args = key0, value0, key1, value1, ...
  kAttr,     // args[0].name
  kIndex,    // args[0][args[1]]
  kSlice,    // args[0][args[1]:args[2]:args[3]], absent parts are null
  kCall,     // args[0](args[1..], kwargs)
  kFilter,   // args[0] | name(args[1..], kwargs)
  kTest,     // args[0] is [not] name(args[1..])
  kUnary,    // op args[0]: "-", "+", "not"
  kBinary,   // args[0] op args[1]: + - * / // % ** ~
  kAnd,
  kOr,
  kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ...: == != < <= > >= in notin
  kCond,     // args[1] if args[0] else args[2] (args[2] null: undefined)
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  std::string name;  // name, attribute, filter or test name, unary/binary operator
  Value literal;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare
  bool negated = false;          // kTest: `is not`
};

struct Stmt;
using Body = std::vector<Stmt>;

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ exprs[0] }}
  kIf,           // exprs[i] guards bodies[i]; one extra body is the else branch
  kFor,          // for targets in exprs[0] [if exprs[1]]: bodies[0], else bodies[1]
  kSet,          // targets (or targets[0].attr) = exprs[0]
  kSetBlock,     // {% set targets[0] %} bodies[0] {% endset %}
  kMacro,        // macro name(params): bodies[0]
  kCallBlock,    // {% call(params) exprs[0] %} bodies[0] {% endcall %}
  kFilterBlock,  // {% filter %}: exprs[0] is a filter chain over a kName "__block__"
  kBreak,
  kContinue,
  kScope,        // bodies[0] rendered as is ({% generation %})
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;  // kText
  std::string name;  // kMacro name
  std::string attr;  // kSet on a namespace attribute
  std::vector<std::string> targets;
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro / kCallBlock; default may be null
  bool has_filter = false;                              // kFor with `if`
  // kMacro / kCallBlock: whether the body names varargs / kwargs (Jinja accepts extra arguments
  // only then).
  bool uses_varargs = false;
  bool uses_kwargs = false;
};

struct Template {
  Body body;
};

}  // namespace sable::chat::detail
