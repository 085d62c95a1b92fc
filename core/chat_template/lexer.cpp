// Template source to tokens (see lexer.h). Mirrors jinja2/lexer.py's rules for whitespace:
// `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after it;
// trim_blocks drops the first newline after `%}`/`#}` (not after `+%}`); lstrip_blocks drops the
// spaces and tabs between a line start and `{%`/`{#` (not before `{%+`).
#include "core/chat_template/lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "core/chat_template/chat_template.h"
#include "core/chat_template/text.h"

namespace sable::chat::detail {

namespace {

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

std::string normalize(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      std::size_t start = find_tag(pos_);
      if (start == std::string::npos) {
        emit_data(src_.substr(pos_), line_);
        break;
      }
      lex_tag(start);
    }
    Token eof;
    eof.type = Tok::kEof;
    eof.line = line_;
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) { throw TemplateError(line, what); }

  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  void count_lines(std::string_view s) {
    for (char c : s) line_ += c == '\n';
  }

  void emit_data(std::string text, int line) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::kData;
    t.text = std::move(text);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  void emit(Tok type, std::string text, int line) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  // Text before a tag, with the tag's leading whitespace control applied.
  std::string strip_before(std::string text, char kind, char sign) const {
    if (sign == '-') {
      std::size_t e = text.size();
      while (e > 0 && is_ws(text[e - 1])) --e;
      text.resize(e);
    } else if (sign != '+' && kind != '{') {
      std::size_t nl = text.rfind('\n');
      std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        bool only_ws = l_pos < text.size();
        for (std::size_t i = l_pos; i < text.size() && only_ws; ++i) only_ws = is_ws(text[i]);
        if (only_ws) text.resize(l_pos);
      }
    }
    return text;
  }

  // Whitespace after a tag end at pos_: `-` strips all, trim_blocks one newline after %} / #}.
  void strip_after(char end_kind, char sign) {
    if (sign == '-') {
      std::size_t e = pos_;
      while (e < src_.size() && is_ws(src_[e])) ++e;
      count_lines(std::string_view(src_).substr(pos_, e - pos_));
      line_starting_ = e > pos_ && src_[e - 1] == '\n';
      pos_ = e;
      return;
    }
    line_starting_ = false;
    if (end_kind != '}' && sign != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
      line_starting_ = true;
    }
  }

  void lex_tag(std::size_t start) {
    char kind = src_[start + 1];
    char sign = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+')
                    ? src_[start + 2] : 0;
    int text_line = line_;
    std::string text = src_.substr(pos_, start - pos_);
    count_lines(text);
    emit_data(strip_before(std::move(text), kind, sign), text_line);
    int tag_line = line_;
    pos_ = start + 2 + (sign != 0 ? 1 : 0);
    if (kind == '#') {
      lex_comment(tag_line);
      return;
    }
    emit(kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, {}, tag_line);
    std::size_t first_token = tokens_.size();
    lex_inside(kind, tag_line);
    // {% raw %}: everything up to {% endraw %} is text.
    if (kind == '%' && tokens_.size() == first_token + 2 && tokens_[first_token].type == Tok::kName &&
        tokens_[first_token].text == "raw") {
      tokens_.resize(first_token - 1);
      lex_raw(tag_line);
    }
  }

  void lex_comment(int tag_line) {
    std::size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail(tag_line, "unclosed comment '{#' (no matching '#}')");
    char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    count_lines(std::string_view(src_).substr(pos_, end + 2 - pos_));
    pos_ = end + 2;
    strip_after('#', sign);
  }

  void lex_raw(int tag_line) {
    std::size_t search = pos_;
    while (true) {
      std::size_t b = src_.find("{%", search);
      if (b == std::string::npos) fail(tag_line, "'raw' block is never closed (expected 'endraw')");
      std::size_t i = b + 2;
      char sign = i < src_.size() && (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
      if (sign) ++i;
      while (i < src_.size() && is_ws(src_[i])) ++i;
      if (src_.compare(i, 6, "endraw") != 0) {
        search = b + 2;
        continue;
      }
      i += 6;
      while (i < src_.size() && is_ws(src_[i])) ++i;
      char end_sign = i < src_.size() && (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
      if (end_sign) ++i;
      if (src_.compare(i, 2, "%}") != 0) {
        search = b + 2;
        continue;
      }
      int text_line = line_;
      std::string text = src_.substr(pos_, b - pos_);
      count_lines(std::string_view(src_).substr(pos_, i + 2 - pos_));
      emit_data(strip_before(std::move(text), '%', sign), text_line);
      pos_ = i + 2;
      strip_after('%', end_sign);
      return;
    }
  }

  void lex_inside(char kind, int tag_line) {
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_ws(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size())
        fail(tag_line, std::string("unclosed tag '") + (kind == '{' ? "{{" : "{%") +
                           "' (no matching '" + (kind == '{' ? "}}" : "%}") + "')");
      if (depth == 0 && try_end(kind)) return;
      lex_token(depth);
    }
  }

  bool try_end(char kind) {
    std::string_view rest = std::string_view(src_).substr(pos_);
    const char* close = kind == '{' ? "}}" : "%}";
    char sign = 0;
    if (rest.size() >= 3 && (rest[0] == '-' || (rest[0] == '+' && kind == '%')) &&
        rest.substr(1, 2) == close) {
      sign = rest[0];
    } else if (rest.substr(0, 2) != close) {
      return false;
    }
    emit(kind == '{' ? Tok::kVarEnd : Tok::kBlockEnd, {}, line_);
    pos_ += sign ? 3 : 2;
    strip_after(kind == '{' ? '}' : '%', sign);
    return true;
  }

  void lex_token(int& depth) {
    char c = src_[pos_];
    int line = line_;
    if (is_name_start(c)) {
      std::size_t e = pos_;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      emit(Tok::kName, src_.substr(pos_, e - pos_), line);
      pos_ = e;
      return;
    }
    if (is_digit(c)) return lex_number(line);
    if (c == '\'' || c == '"') return lex_string(line);
    static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        emit(Tok::kOp, op, line);
        pos_ += 2;
        return;
      }
    }
    static const std::string kOne = "+-*/%~<>=.,:|()[]{}";
    if (kOne.find(c) == std::string::npos)
      fail(line, std::string("unexpected character '") + c + "' in tag");
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) fail(line, std::string("unexpected '") + c + "'");
      --depth;
    }
    emit(Tok::kOp, std::string(1, c), line);
    ++pos_;
  }

  void lex_number(int line) {
    std::size_t e = pos_;
    std::string digits;
    auto take_digits = [&] {
      while (e < src_.size() && (is_digit(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() &&
                                                        is_digit(src_[e + 1])))) {
        if (src_[e] != '_') digits.push_back(src_[e]);
        ++e;
      }
    };
    take_digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      is_float = true;
      digits.push_back('.');
      ++e;
      take_digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      std::size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        is_float = true;
        digits.push_back('e');
        digits.append(src_, e + 1, k - e - 1);
        e = k;
        take_digits();
      }
    }
    Token t;
    t.line = line;
    t.text = digits;
    if (is_float) {
      t.type = Tok::kFloat;
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      t.type = Tok::kInt;
      errno = 0;
      t.int_value = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) fail(line, "integer literal too large: " + digits);
    }
    tokens_.push_back(std::move(t));
    pos_ = e;
  }

  void lex_string(int line) {
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail(line, "unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= src_.size()) fail(line, "unterminated string literal");
      char e = src_[pos_++];
      switch (e) {
        case '\n': ++line_; break;  // line continuation
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case 'a': out.push_back('\a'); break;
        case 'x': case 'u': case 'U': {
          int n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          char32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
              fail(line, std::string("bad \\") + e + " escape in string literal");
            char h = src_[pos_++];
            cp = cp * 16 + static_cast<char32_t>(is_digit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF) fail(line, "bad \\U escape in string literal");
          utf8_append(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k)
              cp = cp * 8 + static_cast<char32_t>(src_[pos_++] - '0');
            utf8_append(out, cp);
          } else {
            out.push_back('\\');  // Python keeps unknown escapes as written
            out.push_back(e);
          }
      }
    }
    emit(Tok::kString, std::move(out), line);
  }

  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace sable::chat::detail
