// Jinja's filters and tests as chat templates use them (see builtins.h). `tojson` follows
// transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), so non-ASCII text stays as is and keys keep their order.
#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/chat_template/builtins.h"
#include "core/chat_template/renderer.h"
#include "core/chat_template/text.h"

namespace sable::chat::detail {

namespace {

const char* const kFilters[] = {
    "trim", "tojson", "length", "count", "list", "join", "default", "d", "upper", "lower",
    "items", "capitalize", "title", "first", "last", "map", "select", "reject", "selectattr",
    "rejectattr", "replace", "string", "int", "float", "abs", "round", "sum", "min", "max",
    "unique", "sort", "reverse", "safe", "escape", "e", "indent", "attr", "dictsort", "batch",
    "wordcount", "center", "truncate", "format", "forceescape", "striptags", "bool"};

const char* const kTests[] = {
    "defined", "undefined", "none", "string", "mapping", "iterable", "number", "integer", "float",
    "boolean", "sequence", "true", "false", "callable", "eq", "equalto", "==", "ne", "!=", "lt",
    "<", "le", "<=", "gt", ">", "ge", ">=", "lessthan", "greaterthan", "in", "odd", "even",
    "divisibleby", "sameas", "lower", "upper", "escaped", "filter", "test"};

template <std::size_t N>
bool in_list(const char* const (&list)[N], std::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

const Value* arg(const CallArgs& a, std::size_t pos, const char* name) { return a.get(pos, name); }

bool arg_bool(const CallArgs& a, std::size_t pos, const char* name, bool dflt) {
  const Value* v = a.get(pos, name);
  return v ? truthy(*v) : dflt;
}

// Follows a dotted attribute path ("a.b", or a list index "0") as Jinja's attribute= does.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  std::size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.size() < 18 && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (cur.is_undefined()) return cur;
    cur = numeric ? get_item(cur, Value(static_cast<std::int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::int64_t length_of(const Value& v) {
  if (v.is_string()) return static_cast<std::int64_t>(utf8_length(v.as_string()));
  if (v.is_array()) return static_cast<std::int64_t>(v.as_array().size());
  if (v.is_object()) return static_cast<std::int64_t>(v.as_object().entries.size());
  if (v.is_undefined()) return 0;
  throw EvalError(std::string("object of type '") + type_name(v) + "' has no len()");
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value to_int(const Value& v, const Value& dflt, std::int64_t base) {
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(std::int64_t{v.as_bool()});
  if (v.is_float()) {
    double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
    return Value(static_cast<std::int64_t>(d));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    std::string digits;
    for (char c : s) if (c != '_') digits += c;
    if (digits.empty()) return dflt;
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
    if (errno == 0 && end && *end == '\0') return Value(static_cast<std::int64_t>(x));
    errno = 0;
    double d = std::strtod(digits.c_str(), &end);
    if (errno == 0 && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18)
      return Value(static_cast<std::int64_t>(d));
  }
  return dflt;
}

Value to_float(const Value& v, const Value& dflt) {
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.as_double());
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value(d);
  }
  return dflt;
}

// Sort key compare honouring Jinja's case_sensitive=False default for strings.
int sort_compare(const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string())
    return compare(Value(py_lower(a.as_string())), Value(py_lower(b.as_string())));
  return compare(a, b);
}

// select/reject/selectattr/rejectattr: keep items whose (attribute's) test result == keep.
Value filter_items(Renderer& r, const Value& seq, const CallArgs& a, bool by_attr, bool keep) {
  std::size_t next = 0;
  std::string attr;
  if (by_attr) {
    const Value* at = arg(a, next++, "attribute");
    if (at == nullptr) throw EvalError("selectattr/rejectattr needs an attribute name");
    attr = arg_string(*at, "attribute");
  }
  std::string test;
  if (next < a.positional.size()) test = arg_string(a.positional[next++], "test name");
  CallArgs test_args;
  for (std::size_t i = next; i < a.positional.size(); ++i) test_args.positional.push_back(a.positional[i]);
  Array out;
  for (const auto& item : iterate(seq)) {
    Value subject = by_attr ? attr_path(item, attr) : item;
    bool ok = test.empty() ? truthy(subject) : apply_test(r, test, subject, test_args);
    if (ok == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

Value min_max(const Value& seq, const CallArgs& a, bool want_max) {
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* at = arg(a, 1, "attribute");
  Array items = iterate(seq);
  if (items.empty()) return Value::undefined();
  std::size_t best = 0;
  for (std::size_t i = 1; i < items.size(); ++i) {
    Value x = at ? attr_path(items[i], to_str(*at)) : items[i];
    Value y = at ? attr_path(items[best], to_str(*at)) : items[best];
    int c = sort_compare(x, y, cs);
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

}  // namespace

bool is_known_filter(std::string_view name) { return in_list(kFilters, name); }
bool is_known_test(std::string_view name) { return in_list(kTests, name); }

Value apply_filter(Renderer& r, std::string_view name, const Value& v, const CallArgs& a) {
  const std::string n(name);
  if (n == "trim") return Value(py_strip(to_str(v), [&]() -> std::optional<std::string> {
      const Value* c = arg(a, 0, "chars");
      if (c == nullptr || c->is_none()) return std::nullopt;
      return arg_string(*c, "trim chars");
    }(), true, true));
  if (n == "tojson") {
    for (const auto& [k, x] : a.named)
      if (k != "ensure_ascii" && k != "indent" && k != "separators" && k != "sort_keys")
        throw EvalError("tojson() got an unexpected keyword argument '" + k + "'");
    JsonFormat fmt;
    if (const Value* ea = arg(a, 0, "ensure_ascii")) fmt.ensure_ascii = truthy(*ea);
    if (const Value* ind = arg(a, 1, "indent"); ind && !ind->is_none()) {
      fmt.indent = static_cast<int>(std::clamp<std::int64_t>(arg_int(*ind, "tojson indent"), 0, 64));
      fmt.item_sep = ",";
    }
    if (const Value* sep = arg(a, 2, "separators"); sep && !sep->is_none()) {
      if (!sep->is_array() || sep->as_array().size() != 2)
        throw EvalError("tojson separators must be a pair of strings");
      fmt.item_sep = arg_string(sep->as_array()[0], "tojson separators");
      fmt.key_sep = arg_string(sep->as_array()[1], "tojson separators");
    }
    if (const Value* sk = arg(a, 3, "sort_keys")) fmt.sort_keys = truthy(*sk);
    std::string out;
    append_json(out, v, fmt);
    r.check_size(out.size());
    return Value(std::move(out));
  }
  if (n == "length" || n == "count") return Value(length_of(v));
  if (n == "list") return Value(iterate(v));
  if (n == "join") {
    std::string sep = a.get(0, "d") ? to_str(*a.get(0, "d")) : "";
    const Value* at = arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& x : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += to_str(at ? attr_path(x, to_str(*at)) : x);
      r.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (n == "default" || n == "d") {
    const Value* d = arg(a, 0, "default_value");
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !truthy(v))) return d ? *d : Value("");
    return v;
  }
  if (n == "upper") return Value(py_upper(to_str(v)));
  if (n == "lower") return Value(py_lower(to_str(v)));
  if (n == "capitalize") return Value(py_capitalize(to_str(v)));
  if (n == "title") return Value(py_title(to_str(v)));
  if (n == "items") {
    if (v.is_undefined()) return Value(Array{});
    if (!v.is_object()) throw EvalError(std::string("items filter needs a dict, got '") + type_name(v) + "'");
    Array out;
    for (const auto& [k, x] : v.as_object().entries) out.push_back(Value::tuple(Array{Value(k), x}));
    return Value(std::move(out));
  }
  if (n == "first" || n == "last") {
    Array items = iterate(v);
    if (items.empty()) return Value::undefined();
    return n == "first" ? items.front() : items.back();
  }
  if (n == "map") {
    Array out;
    if (const Value* at = a.get(std::size_t(-1), "attribute")) {
      const Value* dflt = a.get(std::size_t(-1), "default");
      for (const auto& x : iterate(v)) {
        Value y = attr_path(x, to_str(*at));
        out.push_back(y.is_undefined() && dflt ? *dflt : y);
      }
      return Value(std::move(out));
    }
    if (a.positional.empty()) throw EvalError("map needs a filter name or attribute=");
    std::string f = arg_string(a.positional[0], "map filter name");
    if (!is_known_filter(f)) throw EvalError("no filter named '" + f + "'");
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.named = a.named;
    for (const auto& x : iterate(v)) out.push_back(apply_filter(r, f, x, rest));
    return Value(std::move(out));
  }
  if (n == "select" || n == "reject") return filter_items(r, v, a, false, n == "select");
  if (n == "selectattr" || n == "rejectattr") return filter_items(r, v, a, true, n == "selectattr");
  if (n == "replace") {
    const Value* from = arg(a, 0, "old");
    const Value* to = arg(a, 1, "new");
    if (from == nullptr || to == nullptr) throw EvalError("replace needs old and new strings");
    const Value* c = arg(a, 2, "count");
    std::string out = py_replace(to_str(v), to_str(*from), to_str(*to),
                                 c && !c->is_none() ? arg_int(*c, "replace count") : -1);
    r.check_size(out.size());
    return Value(std::move(out));
  }
  if (n == "string") return Value(to_str(v));
  if (n == "int") {
    const Value* d = arg(a, 0, "default");
    const Value* base = arg(a, 1, "base");
    return to_int(v, d ? *d : Value(0), base ? arg_int(*base, "int base") : 10);
  }
  if (n == "float") {
    const Value* d = arg(a, 0, "default");
    return to_float(v, d ? *d : Value(0.0));
  }
  if (n == "bool") return Value(truthy(v));
  if (n == "abs") {
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    return v.is_int() && v.as_int() < 0 ? unary_op("-", v) : unary_op("+", v);
  }
  if (n == "round") {
    std::int64_t prec = arg(a, 0, "precision") ? arg_int(*arg(a, 0, "precision"), "round precision") : 0;
    std::string method = arg(a, 1, "method") ? to_str(*arg(a, 1, "method")) : "common";
    double x = v.as_double(), scale = std::pow(10.0, static_cast<double>(prec));
    double y = method == "ceil" ? std::ceil(x * scale) : method == "floor" ? std::floor(x * scale) : std::nearbyint(x * scale);  // half to even, as Python's round
    return Value(y / scale);
  }
  if (n == "sum") {
    const Value* at = arg(a, 0, "attribute");
    Value total = arg(a, 1, "start") ? *arg(a, 1, "start") : Value(0);
    for (const auto& x : iterate(v))
      total = binary_op("+", total, at ? attr_path(x, to_str(*at)) : x, r.options().max_output_bytes);
    return total;
  }
  if (n == "min" || n == "max") return min_max(v, a, n == "max");
  if (n == "unique") {
    Array out;
    for (const auto& x : iterate(v)) {
      bool seen = false;
      for (const auto& y : out) seen = seen || (x.is_string() && y.is_string() ? py_lower(x.as_string()) == py_lower(y.as_string()) : equals(x, y));
      if (!seen) out.push_back(x);
    }
    return Value(std::move(out));
  }
  if (n == "sort") {
    bool reverse = arg_bool(a, 0, "reverse", false);
    bool cs = arg_bool(a, 1, "case_sensitive", false);
    const Value* at = arg(a, 2, "attribute");
    Array items = iterate(v);
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      Value kx = at ? attr_path(x, to_str(*at)) : x, ky = at ? attr_path(y, to_str(*at)) : y;
      return reverse ? sort_compare(ky, kx, cs) < 0 : sort_compare(kx, ky, cs) < 0;
    });
    return Value(std::move(items));
  }
  if (n == "dictsort") {
    if (!v.is_object()) throw EvalError("dictsort needs a dict");
    Array items = apply_filter(r, "items", v, {}).as_array();
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    bool by_value = arg(a, 1, "by") && to_str(*arg(a, 1, "by")) == "value";
    bool reverse = arg_bool(a, 2, "reverse", false);
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      const Value& kx = x.as_array()[by_value], &ky = y.as_array()[by_value];
      return reverse ? sort_compare(ky, kx, cs) < 0 : sort_compare(kx, ky, cs) < 0;
    });
    return Value(std::move(items));
  }
  if (n == "reverse") {
    if (v.is_string()) {
      auto u = utf8_decode(v.as_string());
      std::reverse(u.begin(), u.end());
      return Value(utf8_encode(u));
    }
    Array items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (n == "safe") return v;
  if (n == "escape" || n == "e" || n == "forceescape") return Value(html_escape(to_str(v)));
  if (n == "indent") {
    std::string pad = "    ";
    if (const Value* w = arg(a, 0, "width"))
      pad = w->is_string() ? w->as_string()
                           : std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(arg_int(*w, "indent width"), 0, 256)), ' ');
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    auto lines = py_split(to_str(v), std::string("\n"), -1);
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n";
      if ((i > 0 || first) && (blank || !lines[i].empty())) out += pad;
      out += lines[i];
      r.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (n == "attr") {
    const Value* name_arg = arg(a, 0, "name");
    if (name_arg == nullptr) throw EvalError("attr needs a name");
    return get_attribute(v, to_str(*name_arg));
  }
  if (n == "batch") {
    std::int64_t size = arg(a, 0, "linecount") ? arg_int(*arg(a, 0, "linecount"), "batch size") : 1;
    if (size <= 0) throw EvalError("batch size must be positive");
    Array out, cur;
    for (const auto& x : iterate(v)) {
      cur.push_back(x);
      if (static_cast<std::int64_t>(cur.size()) == size) out.emplace_back(std::exchange(cur, {}));
    }
    if (!cur.empty()) out.emplace_back(std::move(cur));
    return Value(std::move(out));
  }
  if (n == "wordcount")
    return Value(static_cast<std::int64_t>(py_split(to_str(v), std::nullopt, -1).size()));
  if (n == "center") {
    std::int64_t width = arg(a, 0, "width") ? std::min<std::int64_t>(arg_int(*arg(a, 0, "width"), "center width"), 1 << 20) : 80;
    std::string s = to_str(v);
    auto len = static_cast<std::int64_t>(utf8_length(s));
    if (len >= width) return Value(s);
    std::int64_t left = (width - len) / 2 + ((width - len) % 2 & width % 2);  // Python's rule
    return Value(std::string(static_cast<std::size_t>(left), ' ') + s +
                 std::string(static_cast<std::size_t>(width - len - left), ' '));
  }
  if (n == "truncate") {
    std::int64_t length = arg(a, 0, "length") ? arg_int(*arg(a, 0, "length"), "truncate length") : 255;
    auto u = utf8_decode(to_str(v));
    if (static_cast<std::int64_t>(u.size()) <= length) return Value(to_str(v));
    std::string end = arg(a, 2, "end") ? to_str(*arg(a, 2, "end")) : "...";
    std::int64_t keep = std::max<std::int64_t>(0, length - static_cast<std::int64_t>(utf8_length(end)));
    return Value(utf8_encode(std::u32string_view(u).substr(0, static_cast<std::size_t>(keep))) + end);
  }
  if (n == "format") {
    // printf-style "%s" formatting: each %s / %d takes the next argument.
    std::string fmt = to_str(v), out;
    std::size_t next = 0;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] != '%' || i + 1 >= fmt.size()) { out += fmt[i]; continue; }
      char spec = fmt[++i];
      if (spec == '%') { out += '%'; continue; }
      if (next >= a.positional.size()) throw EvalError("format: not enough arguments");
      out += to_str(a.positional[next++]);
    }
    return Value(std::move(out));
  }
  if (n == "striptags") {
    std::string s = to_str(v), out;
    bool in_tag = false;
    for (char c : s) {
      if (c == '<') in_tag = true;
      else if (c == '>') in_tag = false;
      else if (!in_tag) out += c;
    }
    return Value(py_strip(out, std::nullopt, true, true));
  }
  throw EvalError("no filter named '" + n + "'");
}

bool apply_test(Renderer& r, std::string_view name, const Value& v, const CallArgs& a) {
  const std::string n(name);
  auto other = [&]() -> const Value& {
    if (a.positional.empty()) throw EvalError("test '" + n + "' needs an argument");
    return a.positional[0];
  };
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "string") return v.is_string();
  if (n == "mapping") return v.is_object() && !v.as_object().is_namespace;
  if (n == "iterable") return v.is_string() || v.is_array() || v.is_object() || v.is_undefined();
  if (n == "sequence") return v.is_string() || v.is_array() || (v.is_object() && !v.as_object().is_namespace);
  if (n == "number") return v.is_int() || v.is_float() || v.is_bool();
  if (n == "integer") return v.is_int();
  if (n == "float") return v.is_float();
  if (n == "boolean") return v.is_bool();
  if (n == "true") return v.is_bool() && v.as_bool();
  if (n == "false") return v.is_bool() && !v.as_bool();
  if (n == "callable") return v.is_callable();
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, other());
  if (n == "ne" || n == "!=") return !equals(v, other());
  if (n == "lt" || n == "<" || n == "lessthan") return compare(v, other()) < 0;
  if (n == "le" || n == "<=") return compare(v, other()) <= 0;
  if (n == "gt" || n == ">" || n == "greaterthan") return compare(v, other()) > 0;
  if (n == "ge" || n == ">=") return compare(v, other()) >= 0;
  if (n == "in") return contains(other(), v);
  if (n == "odd" || n == "even") {
    std::int64_t x = arg_int(v, "odd/even test");
    return ((x % 2) != 0) == (n == "odd");
  }
  if (n == "divisibleby") {
    std::int64_t d = arg_int(other(), "divisibleby");
    if (d == 0) throw EvalError("divisibleby 0");
    return arg_int(v, "divisibleby") % d == 0;
  }
  if (n == "sameas") {
    const Value& o = other();
    if (v.is_object() && o.is_object()) return &v.as_object() == &o.as_object();
    if (v.is_array() && o.is_array()) return &v.as_array() == &o.as_array();
    if ((v.is_none() && o.is_none()) || (v.is_undefined() && o.is_undefined())) return true;
    if (v.is_bool() && o.is_bool()) return v.as_bool() == o.as_bool();
    return false;
  }
  if (n == "lower") return v.is_string() && py_lower(v.as_string()) == v.as_string();
  if (n == "upper") return v.is_string() && py_upper(v.as_string()) == v.as_string();
  if (n == "escaped") return false;
  if (n == "filter") return is_known_filter(to_str(v));
  if (n == "test") return is_known_test(to_str(v));
  (void)r;
  throw EvalError("no test named '" + n + "'");
}

}  // namespace sable::chat::detail
