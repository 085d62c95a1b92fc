// Walks a parsed template with one context and produces the text. One Renderer per render call
// (it holds that render's scopes and counters); the Template it reads is shared and const.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/chat_template/ast.h"
#include "core/chat_template/chat_template.h"
#include "core/chat_template/value.h"

namespace sable::chat::detail {

// Variables visible at one point: a frame per loop iteration / macro call, chained to its parent.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value v);
};
using ScopePtr = std::shared_ptr<Scope>;

class Renderer {
 public:
  // `root` is the context object (messages, tools, ...).
  Renderer(const RenderOptions& options, const Object& root);

  std::string render(const Template& tpl);

  const RenderOptions& options() const { return options_; }
  // Counts one unit of work (loop iteration, macro call); throws past max_steps.
  void step();
  // Throws when a string being built would pass max_output_bytes.
  void check_size(std::size_t bytes) const;

  // Calls a macro (or a call block's caller) with bound arguments; returns its rendered text.
  Value call_macro(const Stmt& def, const ScopePtr& closure, const CallArgs& args,
                   const Value& caller);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, std::string& out, const ScopePtr& scope);
  Flow exec(const Stmt& s, std::string& out, const ScopePtr& scope);
  Flow exec_for(const Stmt& s, std::string& out, const ScopePtr& scope);
  void exec_set(const Stmt& s, const ScopePtr& scope);
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
  CallArgs eval_args(const Expr& e, std::size_t first, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope) const;

  const RenderOptions& options_;
  ScopePtr root_;
  std::vector<ScopePtr> pinned_;  // scopes macros close over, alive until the render ends
  std::uint64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace sable::chat::detail
