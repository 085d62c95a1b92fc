// Tokens to the statement/expression tree (ast.h), following Jinja's grammar and operator
// precedence (jinja2/parser.py): `is` tests and `|` filters bind tightest, then ** , * / // %,
// ~, + -, comparisons and `in`, not, and, or, `x if c else y`.
#pragma once

#include <memory>
#include <vector>

#include "core/chat_template/ast.h"
#include "core/chat_template/lexer.h"

namespace sable::chat::detail {

// Throws TemplateError naming the line of the offending token (for an unclosed block: the line
// that opened it).
std::unique_ptr<Template> parse(std::vector<Token> tokens);

}  // namespace sable::chat::detail
