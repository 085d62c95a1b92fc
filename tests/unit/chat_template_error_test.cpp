// Every way a template can fail says what went wrong and on which template line: parse errors at
// compile(), render errors (raise_exception, undefined values, type errors, limits) at render().
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"

namespace {

using sable::chat::ChatTemplate;
using sable::chat::RenderOptions;
using sable::chat::TemplateError;

// The TemplateError compile() throws; fails the test when it does not throw.
TemplateError compile_error(const std::string& src) {
  try {
    ChatTemplate::compile(src);
  } catch (const TemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "compiled without error: " << src;
  return TemplateError(0, "");
}

TemplateError render_error(const std::string& src, const nlohmann::json& ctx = nlohmann::json::object(),
                           const RenderOptions& options = {}) {
  auto tpl = ChatTemplate::compile(src);
  try {
    tpl->render(ctx, options);
  } catch (const TemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "rendered without error: " << src;
  return TemplateError(0, "");
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << text << "' lacks '" << part << "'";
}

TEST(ChatTemplateErrors, UnknownFilterNamesItAndItsLine) {
  auto e = compile_error("line one\n{{ 'x' | trim }}\n{{ 'x' | shout }}");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.detail(), "no filter named 'shout'");
  EXPECT_STREQ(e.what(), "chat template line 3: no filter named 'shout'");
}

TEST(ChatTemplateErrors, UnknownTest) {
  auto e = compile_error("{% if x is shiny %}{% endif %}");
  EXPECT_EQ(e.line(), 1);
  expect_contains(e.what(), "no test named 'shiny'");
}

TEST(ChatTemplateErrors, UnclosedBlockNamesTheOpeningLine) {
  auto e = compile_error("a\n{% for m in messages %}\n{% if m %}x{% endif %}\n");
  EXPECT_EQ(e.line(), 2);
  expect_contains(e.what(), "'for' block is never closed (expected 'endfor')");
  EXPECT_EQ(compile_error("{% if a %}\n{% elif b %}\n").line(), 1);
  expect_contains(compile_error("{% macro f() %}").what(), "expected 'endmacro'");
}

TEST(ChatTemplateErrors, MismatchedEndTag) {
  auto e = compile_error("{% for x in y %}\n{% if x %}\n{% endfor %}");
  EXPECT_EQ(e.line(), 3);
  expect_contains(e.what(), "'if' block opened at line 2 must be closed first with 'endif'");
  auto stray = compile_error("x\n{% endif %}");
  EXPECT_EQ(stray.line(), 2);
  expect_contains(stray.what(), "unexpected 'endif'");
}

TEST(ChatTemplateErrors, UnclosedTagsAndComments) {
  EXPECT_EQ(compile_error("a\n\n{{ x ").line(), 3);
  expect_contains(compile_error("{{ x ").what(), "unclosed tag '{{'");
  expect_contains(compile_error("\n{% if x ").what(), "unclosed tag '{%'");
  auto c = compile_error("a\n{# never closed");
  EXPECT_EQ(c.line(), 2);
  expect_contains(c.what(), "unclosed comment");
  expect_contains(compile_error("{% raw %}abc").what(), "expected 'endraw'");
}

TEST(ChatTemplateErrors, SyntaxErrors) {
  auto e = compile_error("ok\n{{ 1 + }}");
  EXPECT_EQ(e.line(), 2);
  expect_contains(e.what(), "unexpected '}}', expected an expression");
  expect_contains(compile_error("{{ 'abc }}").what(), "unterminated string literal");
  expect_contains(compile_error("{{ a $ b }}").what(), "unexpected character '$'");
  expect_contains(compile_error("{% include 'x' %}").what(), "unknown tag 'include'");
  expect_contains(compile_error("{% break %}").what(), "'break' outside of a loop");
  expect_contains(compile_error("{{ f(a=1, 2) }}").what(), "positional argument after keyword");
  expect_contains(compile_error("{{ x ) }}").what(), "unexpected ')'");
  expect_contains(compile_error("{% for in x %}{% endfor %}").what(), "expected 'in'");
  expect_contains(compile_error("{{ 99999999999999999999 }}").what(), "integer literal too large");
}

TEST(ChatTemplateErrors, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  expect_contains(compile_error(deep).what(), "nested too deeply");
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  expect_contains(compile_error(ifs).what(), "nested too deeply");
}

TEST(ChatTemplateErrors, RaiseExceptionCarriesTheMessageAndLine) {
  auto e = render_error(
      "{% for m in messages %}\n"
      "{% if m.role not in ['user', 'assistant'] %}\n"
      "{{ raise_exception('Only user and assistant roles are supported!') }}\n"
      "{% endif %}\n"
      "{% endfor %}",
      {{"messages", {{{"role", "tool"}, {"content", "x"}}}}});
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.detail(), "Only user and assistant roles are supported!");
  EXPECT_STREQ(e.what(), "chat template line 3: Only user and assistant roles are supported!");
}

TEST(ChatTemplateErrors, UndefinedValues) {
  // Printing or testing an undefined name is fine; using it is not.
  auto tpl = ChatTemplate::compile("[{{ nope }}]{{ nope is defined }}{{ nope|default('d') }}");
  EXPECT_EQ(tpl->render(nlohmann::json::object()), "[]Falsed");
  auto e = render_error("\n{{ nope.field }}");
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.detail(), "'nope' is undefined");
  EXPECT_EQ(render_error("{{ nope + 'x' }}").detail(), "'nope' is undefined");
  EXPECT_EQ(render_error("{{ nope() }}").detail(), "'nope' is undefined");
  // A missing key of a defined dict is undefined (no error) until used.
  EXPECT_EQ(render_error("{{ m.missing.deeper }}", {{"m", nlohmann::json::object()}}).detail(),
            "'missing' is undefined");
}

TEST(ChatTemplateErrors, TypeErrors) {
  expect_contains(render_error("{{ 'a' + 1 }}").what(),
                  "unsupported operand type(s) for +: 'str' and 'int'");
  expect_contains(render_error("{{ 1 / 0 }}").what(), "division by zero");
  expect_contains(render_error("{{ 1 < 'a' }}").what(), "cannot compare 'int' with 'str'");
  expect_contains(render_error("{{ 1 in 'abc' }}").what(), "requires string as left operand");
  expect_contains(render_error("{% for x in 5 %}{% endfor %}").what(), "'int' object is not iterable");
  expect_contains(render_error("{{ 5|length }}").what(), "object of type 'int' has no len()");
  expect_contains(render_error("{{ 3() }}").what(), "'int' object is not callable");
  expect_contains(render_error("{% set x = 1 %}{% set x.y = 2 %}").what(), "not a namespace");
  expect_contains(render_error("{{ 9223372036854775807 + 1 }}").what(), "integer overflow");
  expect_contains(render_error("{{ 'x'.split('') }}").what(), "empty separator");
  expect_contains(render_error("{% set a, b = [1] %}").what(), "cannot unpack 1 values into 2");
  expect_contains(render_error("{{ [1][::0] }}").what(), "slice step cannot be zero");
  expect_contains(render_error("{{ x|tojson }}").what(), "Undefined is not JSON serializable");
}

TEST(ChatTemplateErrors, ErrorLineIsTheExpressionsLine) {
  auto e = render_error("{{ 'ok' }}\n{% set x = [\n  1,\n  'a' + 2\n] %}");
  EXPECT_EQ(e.line(), 4);
}

TEST(ChatTemplateErrors, LimitsStopRunawayTemplates) {
  RenderOptions small;
  small.max_steps = 1000;
  expect_contains(render_error("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}",
                               nlohmann::json::object(), small)
                      .what(),
                  "step limit");
  expect_contains(render_error("{{ range(100000000) }}").what(), "range() too large");
  RenderOptions tiny;
  tiny.max_output_bytes = 100;
  expect_contains(render_error("{{ 'x' * 1000 }}", nlohmann::json::object(), tiny).what(),
                  "size limit");
  expect_contains(render_error("{% for i in range(50) %}abc{% endfor %}", nlohmann::json::object(), tiny)
                      .what(),
                  "size limit");
  expect_contains(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").what(),
                  "macro calls nested deeper than");
}

TEST(ChatTemplateErrors, MacroArgumentsAreCheckedAsJinjaDoes) {
  EXPECT_EQ(render_error("{% macro f(a) %}{{ a }}{% endmacro %}\n{{ f(1, k=2) }}").detail(),
            "macro 'f' takes no keyword argument 'k'");
  EXPECT_EQ(render_error("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}").detail(),
            "macro 'f' takes not more than 1 argument(s)");
  EXPECT_EQ(render_error("{% macro f(a) %}{% endmacro %}{{ f(1, a=2) }}").detail(),
            "macro 'f' got multiple values for argument 'a'");
  // Naming varargs / kwargs in the body accepts the extra arguments.
  auto tpl = ChatTemplate::compile("{% macro f(a) %}{{ varargs|length }}{{ kwargs.k }}{% endmacro %}{{ f(1, 2, k=3) }}");
  EXPECT_EQ(tpl->render(nlohmann::json::object()), "13");
}

TEST(ChatTemplateErrors, TransformersExtensions) {
  // {% generation %} (transformers' AssistantTracker) renders its body; strftime_now uses the
  // clock given in RenderOptions.
  auto tpl = ChatTemplate::compile("{% generation %}a{{ 1 }}{% endgeneration %}|{{ strftime_now('%Y') }}");
  RenderOptions at;
  at.now = 1722000309;
  EXPECT_EQ(tpl->render(nlohmann::json::object(), at), "a1|2024");
  EXPECT_EQ(tpl->render(nlohmann::json::object()).size(), 7u);  // "a1|" + the current year
}

TEST(ChatTemplateErrors, ContextMustBeAnObject) {
  auto tpl = ChatTemplate::compile("x");
  EXPECT_THROW(tpl->render(nlohmann::json::array()), TemplateError);
}

}  // namespace
