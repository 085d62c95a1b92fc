// Splits template source into tokens the way Jinja's lexer does under transformers' settings:
// trim_blocks and lstrip_blocks on, whitespace control by `-`/`+` in tags, `{% raw %}`, CRLF
// normalised, one trailing newline dropped. Whitespace is removed here, so the parser sees text
// exactly as it will be printed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sable::chat::detail {

enum class Tok {
  kData,        // literal template text
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // text holds the decoded value
  kInt,
  kFloat,
  kOp,          // text holds the operator: + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }
  kEof,
};

struct Token {
  Tok type = Tok::kEof;
  std::string text;
  int line = 1;
  std::int64_t int_value = 0;
  double float_value = 0;
};

// Throws TemplateError (unclosed tag or comment, bad character, bad number or string).
std::vector<Token> lex(std::string_view source);

}  // namespace sable::chat::detail
