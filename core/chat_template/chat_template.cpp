// ChatTemplate: compile (lex, parse, check filter/test names) and render (context JSON to the
// value model, then the renderer). The only file of this folder that includes nlohmann/json.hpp.
#include "core/chat_template/chat_template.h"

#include <nlohmann/json.hpp>

#include "core/chat_template/ast.h"
#include "core/chat_template/builtins.h"
#include "core/chat_template/lexer.h"
#include "core/chat_template/parser.h"
#include "core/chat_template/renderer.h"

namespace sable::chat {

namespace {

using detail::Array;
using detail::Expr;
using detail::Object;
using detail::Stmt;
using detail::Value;

constexpr int kMaxContextDepth = 256;

std::string with_line(int line, const std::string& detail) {
  if (line <= 0) return "chat template: " + detail;
  return "chat template line " + std::to_string(line) + ": " + detail;
}

// Unknown filters and tests are template errors at compile time, as in Jinja.
void check_expr(const Expr* e) {
  if (e == nullptr) return;
  if (e->kind == detail::ExprKind::kFilter && !detail::is_known_filter(e->name))
    throw TemplateError(e->line, "no filter named '" + e->name + "'");
  if (e->kind == detail::ExprKind::kTest && !detail::is_known_test(e->name))
    throw TemplateError(e->line, "no test named '" + e->name + "'");
  for (const auto& a : e->args) check_expr(a.get());
  for (const auto& [k, a] : e->kwargs) check_expr(a.get());
}

void check_body(const detail::Body& body) {
  for (const Stmt& s : body) {
    for (const auto& e : s.exprs) check_expr(e.get());
    for (const auto& [k, e] : s.params) check_expr(e.get());
    for (const auto& b : s.bodies) check_body(b);
  }
}

template <typename Json>
Value to_value(const Json& j, int depth) {
  if (depth > kMaxContextDepth) throw TemplateError(0, "context JSON nested too deeply");
  switch (j.type()) {
    case nlohmann::detail::value_t::null: return Value(detail::None{});
    case nlohmann::detail::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::detail::value_t::number_integer:
      return Value(j.template get<std::int64_t>());
    case nlohmann::detail::value_t::number_unsigned: {
      auto u = j.template get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::detail::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::detail::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::detail::value_t::array: {
      Array a;
      a.reserve(j.size());
      for (const auto& x : j) a.push_back(to_value(x, depth + 1));
      return Value(std::move(a));
    }
    case nlohmann::detail::value_t::object: {
      auto o = std::make_shared<Object>();
      o->entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        o->entries.emplace_back(it.key(), to_value(it.value(), depth + 1));
      return Value(std::move(o));
    }
    default:
      return Value(detail::None{});  // binary / discarded: not produced by JSON parsing
  }
}

template <typename Json>
std::string render_json(const detail::Template& tree, const Json& context,
                        const RenderOptions& options) {
  if (!context.is_object()) throw TemplateError(0, "render context must be a JSON object");
  Value root = to_value(context, 0);
  detail::Renderer renderer(options, root.as_object());
  try {
    return renderer.render(tree);
  } catch (const detail::EvalError& e) {
    throw TemplateError(0, e.what());
  }
}

}  // namespace

TemplateError::TemplateError(int line, const std::string& detail)
    : std::runtime_error(with_line(line, detail)), line_(line), detail_(detail) {}

ChatTemplate::ChatTemplate(std::unique_ptr<detail::Template> tree) : tree_(std::move(tree)) {}
ChatTemplate::~ChatTemplate() = default;

std::shared_ptr<const ChatTemplate> ChatTemplate::compile(std::string_view source) {
  auto tree = detail::parse(detail::lex(source));
  check_body(tree->body);
  return std::make_shared<const ChatTemplate>(std::move(tree));
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return render_json(*tree_, context, RenderOptions{});
}
std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_json(*tree_, context, RenderOptions{});
}
std::string ChatTemplate::render(const nlohmann::json& context,
                                 const RenderOptions& options) const {
  return render_json(*tree_, context, options);
}
std::string ChatTemplate::render(const nlohmann::ordered_json& context,
                                 const RenderOptions& options) const {
  return render_json(*tree_, context, options);
}

}  // namespace sable::chat
