// Statement execution and expression evaluation (see renderer.h). Value-level failures are
// EvalError without a line; eval()/exec() turn them into TemplateError with the node's line.
#include "core/chat_template/renderer.h"

#include "core/chat_template/builtins.h"

namespace sable::chat::detail {

namespace {

// A macro defined in the template, closing over the scope it was defined in.
class MacroCallable : public Callable {
 public:
  // The closure is weak: the scope usually holds this macro (a cycle otherwise); the renderer
  // pins the scope until the render ends.
  MacroCallable(const Stmt& def, const ScopePtr& closure) : def_(def), closure_(closure) {}
  Value call(Renderer& r, const CallArgs& args) override {
    return r.call_macro(def_, closure(), args, Value());
  }
  std::string name() const override { return def_.name; }
  const Stmt& def() const { return def_; }
  ScopePtr closure() const {
    auto s = closure_.lock();
    if (!s) throw EvalError("macro '" + def_.name + "' outlived its scope");
    return s;
  }

 private:
  const Stmt& def_;
  std::weak_ptr<Scope> closure_;
};

// `caller()` inside a macro invoked by {% call %}: renders the call block's body.
class CallerCallable : public Callable {
 public:
  CallerCallable(const Stmt& block, ScopePtr scope) : block_(block), scope_(std::move(scope)) {}
  Value call(Renderer& r, const CallArgs& args) override {
    return r.call_macro(block_, scope_, args, Value());
  }
  std::string name() const override { return "caller"; }

 private:
  const Stmt& block_;
  ScopePtr scope_;
};

// loop.cycle(a, b, ...): the argument at loop.index0 modulo their count.
class CycleCallable : public Callable {
 public:
  explicit CycleCallable(std::size_t index0) : index0_(index0) {}
  Value call(Renderer&, const CallArgs& args) override {
    if (args.positional.empty()) throw EvalError("loop.cycle() needs at least one argument");
    return args.positional[index0_ % args.positional.size()];
  }
  std::string name() const override { return "cycle"; }

 private:
  std::size_t index0_;
};

Value make_loop(const Array& items, std::size_t i) {
  auto loop = std::make_shared<Object>();
  auto n = static_cast<std::int64_t>(items.size());
  auto k = static_cast<std::int64_t>(i);
  loop->entries = {
      {"index", Value(k + 1)},         {"index0", Value(k)},
      {"revindex", Value(n - k)},      {"revindex0", Value(n - k - 1)},
      {"first", Value(i == 0)},        {"last", Value(k == n - 1)},
      {"length", Value(n)},            {"depth", Value(1)},
      {"depth0", Value(0)},
      {"previtem", i > 0 ? items[i - 1] : Value::undefined("loop.previtem")},
      {"nextitem", k + 1 < n ? items[i + 1] : Value::undefined("loop.nextitem")},
      {"cycle", Value(std::shared_ptr<Callable>(std::make_shared<CycleCallable>(i)))},
  };
  return Value(std::move(loop));
}

constexpr int kMaxValueDepth = 512;

// Values can only grow deep through namespaces (loops) and macro arguments (recursion); both are
// checked, so printing, comparing and freeing values never recurses without bound.
void check_depth(const Value& v, int depth) {
  if (depth > kMaxValueDepth) throw EvalError("value nested too deeply");
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object().entries) check_depth(x, depth + 1);
  } else if (v.is_array()) {
    for (const auto& x : v.as_array()) check_depth(x, depth + 1);
  }
}

// True when v contains `target` (namespaces are the only mutable values, so refusing to store a
// namespace inside itself keeps every value a tree: no reference cycles, no endless printing).
bool reaches(const Value& v, const Object* target, int depth) {
  if (depth > kMaxValueDepth) throw EvalError("value nested too deeply");
  if (v.is_object()) {
    if (&v.as_object() == target) return true;
    for (const auto& [k, x] : v.as_object().entries)
      if (reaches(x, target, depth + 1)) return true;
  } else if (v.is_array()) {
    for (const auto& x : v.as_array())
      if (reaches(x, target, depth + 1)) return true;
  }
  return false;
}

void bind_targets(Scope& scope, const std::vector<std::string>& targets, const Value& v) {
  if (targets.size() == 1) {
    scope.set(targets[0], v);
    return;
  }
  if (!v.is_array()) throw EvalError(std::string("cannot unpack '") + type_name(v) + "' into " +
                                     std::to_string(targets.size()) + " names");
  const auto& a = v.as_array();
  if (a.size() != targets.size())
    throw EvalError("cannot unpack " + std::to_string(a.size()) + " values into " +
                    std::to_string(targets.size()) + " names");
  for (std::size_t i = 0; i < a.size(); ++i) scope.set(targets[i], a[i]);
}

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars) {
    if (k == name) {
      old = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

Renderer::Renderer(const RenderOptions& options, const Object& root)
    : options_(options), root_(std::make_shared<Scope>()) {
  root_->vars = root.entries;
}

std::string Renderer::render(const Template& tpl) {
  std::string out;
  exec_body(tpl.body, out, std::make_shared<Scope>(Scope{root_, {}}));
  return out;
}

void Renderer::step() {
  if (++steps_ > options_.max_steps)
    throw EvalError("render exceeds the step limit (" + std::to_string(options_.max_steps) +
                    " loop iterations and calls)");
}

void Renderer::check_size(std::size_t bytes) const {
  if (bytes > options_.max_output_bytes)
    throw EvalError("render output exceeds the size limit (" +
                    std::to_string(options_.max_output_bytes) + " bytes)");
}

Value Renderer::call_macro(const Stmt& def, const ScopePtr& closure, const CallArgs& args,
                           const Value& caller) {
  step();
  if (call_depth_ >= options_.max_call_depth)
    throw EvalError("macro calls nested deeper than " + std::to_string(options_.max_call_depth));
  for (const auto& a : args.positional) check_depth(a, 0);
  for (const auto& [k, a] : args.named) check_depth(a, 0);
  auto scope = std::make_shared<Scope>(Scope{closure, {}});
  std::size_t n = def.params.size();
  std::string what = def.name.empty() ? std::string("caller") : "macro '" + def.name + "'";
  if (args.positional.size() > n && !def.uses_varargs)
    throw EvalError(what + " takes not more than " + std::to_string(n) + " argument(s)");
  for (const auto& [k, v] : args.named) {
    std::size_t idx = n;
    for (std::size_t i = 0; i < n; ++i)
      if (def.params[i].first == k) idx = i;
    if (idx == n && !def.uses_kwargs) throw EvalError(what + " takes no keyword argument '" + k + "'");
    if (idx < n && idx < args.positional.size())
      throw EvalError(what + " got multiple values for argument '" + k + "'");
  }
  Array varargs;
  for (std::size_t i = n; i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
  auto kwargs = std::make_shared<Object>();
  for (const auto& [k, v] : args.named) {
    bool is_param = false;
    for (const auto& p : def.params) is_param |= p.first == k;
    if (!is_param) kwargs->set(k, v);
  }
  scope->set("varargs", Value::tuple(std::move(varargs)));
  scope->set("kwargs", Value(kwargs));
  if (!caller.is_undefined()) scope->set("caller", caller);
  ++call_depth_;
  struct Restore {
    int& d;
    ~Restore() { --d; }
  } restore{call_depth_};
  for (std::size_t i = 0; i < n; ++i) {
    const auto& [pname, pdefault] = def.params[i];
    const Value* v = args.get(i, pname);
    if (v != nullptr) scope->set(pname, *v);
    else if (pdefault) scope->set(pname, eval(*pdefault, scope));
    else scope->set(pname, Value::undefined(pname));
  }
  std::string out;
  exec_body(def.bodies[0], out, scope);
  return Value(std::move(out));
}

Renderer::Flow Renderer::exec_body(const Body& body, std::string& out, const ScopePtr& scope) {
  for (const auto& s : body) {
    Flow f = exec(s, out, scope);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec(const Stmt& s, std::string& out, const ScopePtr& scope) {
  try {
    switch (s.kind) {
      case StmtKind::kText:
        out += s.text;
        check_size(out.size());
        return Flow::kNormal;
      case StmtKind::kOutput:
        out += to_str(eval(*s.exprs[0], scope));
        check_size(out.size());
        return Flow::kNormal;
      case StmtKind::kIf:
        for (std::size_t i = 0; i < s.exprs.size(); ++i)
          if (truthy(eval(*s.exprs[i], scope))) return exec_body(s.bodies[i], out, scope);
        if (s.bodies.size() > s.exprs.size()) return exec_body(s.bodies.back(), out, scope);
        return Flow::kNormal;
      case StmtKind::kFor:
        return exec_for(s, out, scope);
      case StmtKind::kSet:
        exec_set(s, scope);
        return Flow::kNormal;
      case StmtKind::kSetBlock: {
        std::string text;
        exec_body(s.bodies[0], text, scope);
        scope->set(s.targets[0], Value(std::move(text)));
        return Flow::kNormal;
      }
      case StmtKind::kMacro:
        pinned_.push_back(scope);
        scope->set(s.name, Value(std::shared_ptr<Callable>(std::make_shared<MacroCallable>(s, scope))));
        return Flow::kNormal;
      case StmtKind::kCallBlock: {
        Value caller(std::shared_ptr<Callable>(std::make_shared<CallerCallable>(s, scope)));
        out += to_str(eval_call(*s.exprs[0], scope, &caller));
        check_size(out.size());
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        std::string text;
        exec_body(s.bodies[0], text, scope);
        auto inner = std::make_shared<Scope>(Scope{scope, {}});
        inner->set("__block__", Value(std::move(text)));
        out += to_str(eval(*s.exprs[0], inner));
        check_size(out.size());
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kScope:
        return exec_body(s.bodies[0], out, scope);
    }
  } catch (const EvalError& e) {
    throw TemplateError(s.line, e.what());
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec_for(const Stmt& s, std::string& out, const ScopePtr& scope) {
  Array items = iterate(eval(*s.exprs[0], scope));
  if (s.has_filter) {
    Array kept;
    for (auto& item : items) {
      step();
      auto probe = std::make_shared<Scope>(Scope{scope, {}});
      bind_targets(*probe, s.targets, item);
      if (truthy(eval(*s.exprs[1], probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    step();
    auto iter_scope = std::make_shared<Scope>(Scope{scope, {}});
    bind_targets(*iter_scope, s.targets, items[i]);
    iter_scope->set("loop", make_loop(items, i));
    if (exec_body(s.bodies[0], out, iter_scope) == Flow::kBreak) break;
  }
  if (items.empty() && s.bodies.size() > 1) return exec_body(s.bodies[1], out, scope);
  return Flow::kNormal;
}

void Renderer::exec_set(const Stmt& s, const ScopePtr& scope) {
  Value v = eval(*s.exprs[0], scope);
  if (!s.attr.empty()) {
    Value target = lookup(s.targets[0], scope);
    if (!target.is_object() || !target.as_object().is_namespace)
      throw EvalError("cannot assign attribute '" + s.attr + "' on '" + s.targets[0] +
                      "': it is not a namespace() object");
    if (reaches(v, &target.as_object(), 0))
      throw EvalError("cannot store namespace '" + s.targets[0] + "' inside itself");
    target.mutable_object().set(s.attr, std::move(v));
    return;
  }
  bind_targets(*scope, s.targets, v);
}

Value Renderer::lookup(const std::string& name, const ScopePtr& scope) const {
  if (const Value* v = scope->find(name)) return *v;
  Value g = lookup_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined(name);
}

Value Renderer::eval(const Expr& e, const ScopePtr& scope) {
  try {
    return eval_inner(e, scope);
  } catch (const EvalError& err) {
    throw TemplateError(e.line, err.what());
  }
}

CallArgs Renderer::eval_args(const Expr& e, std::size_t first, const ScopePtr& scope) {
  CallArgs args;
  for (std::size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
  for (const auto& [k, v] : e.kwargs) args.named.emplace_back(k, eval(*v, scope));
  return args;
}

Value Renderer::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
  Value callee = eval(*e.args[0], scope);
  CallArgs args = eval_args(e, 1, scope);
  if (callee.is_undefined()) {
    throw EvalError(callee.undefined_name().empty() ? "call of an undefined value"
                                                    : "'" + callee.undefined_name() + "' is undefined");
  }
  if (!callee.is_callable())
    throw EvalError(std::string("'") + type_name(callee) + "' object is not callable");
  if (caller != nullptr) {
    auto* macro = dynamic_cast<MacroCallable*>(&callee.as_callable());
    if (macro == nullptr) throw EvalError("{% call %} needs a macro");
    return call_macro(macro->def(), macro->closure(), args, *caller);
  }
  return callee.as_callable().call(*this, args);
}

Value Renderer::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name, scope);
    case ExprKind::kList: {
      Array a;
      a.reserve(e.args.size());
      for (const auto& x : e.args) a.push_back(eval(*x, scope));
      return e.name == "tuple" ? Value::tuple(std::move(a)) : Value(std::move(a));
    }
    case ExprKind::kDict: {
      auto o = std::make_shared<Object>();
      for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (!k.is_string()) throw EvalError(std::string("dict keys must be strings, not ") + type_name(k));
        o->set(k.as_string(), eval(*e.args[i + 1], scope));
      }
      return Value(std::move(o));
    }
    case ExprKind::kAttr:
      return get_attribute(eval(*e.args[0], scope), e.name);
    case ExprKind::kIndex: {
      Value obj = eval(*e.args[0], scope);
      return get_item(obj, eval(*e.args[1], scope));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        parts[i] = e.args[i + 1] ? eval(*e.args[i + 1], scope) : Value(None{});
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall:
      return eval_call(e, scope, nullptr);
    case ExprKind::kFilter: {
      Value subject = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return apply_filter(*this, e.name, subject, args);
    }
    case ExprKind::kTest: {
      Value subject = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return Value(apply_test(*this, e.name, subject, args) != e.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.args[0], scope);
      if (e.name == "not") return Value(!truthy(v));
      return unary_op(e.name, v);
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.args[0], scope);
      Value b = eval(*e.args[1], scope);
      return binary_op(e.name, a, b, options_.max_output_bytes);
    }
    case ExprKind::kAnd: {
      Value a = eval(*e.args[0], scope);
      return truthy(a) ? eval(*e.args[1], scope) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*e.args[0], scope);
      return truthy(a) ? a : eval(*e.args[1], scope);
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.args[0], scope);
      for (std::size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], scope);
        const std::string& op = e.ops[i];
        bool ok;
        if (op == "==") ok = equals(left, right);
        else if (op == "!=") ok = !equals(left, right);
        else if (op == "in") ok = contains(right, left);
        else if (op == "notin") ok = !contains(right, left);
        else {
          int c = compare(left, right);
          ok = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
        }
        if (!ok) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCond:
      if (truthy(eval(*e.args[0], scope))) return eval(*e.args[1], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined();
  }
  return Value::undefined();
}

}  // namespace sable::chat::detail
