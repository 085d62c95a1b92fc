// Python semantics of the template value model: truthiness, str/repr, equality, ordering,
// membership and json.dumps (see value.h).
#include "core/chat_template/value.h"

#include <algorithm>
#include <cstdio>
#include <cmath>

#include "core/chat_template/text.h"

namespace sable::chat::detail {

namespace {

constexpr int kMaxJsonDepth = 512;

bool is_numeric(const Value& v) { return v.is_int() || v.is_float() || v.is_bool(); }

void append_py_string_repr(std::string& out, const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  for (unsigned char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out.push_back('\\');
          out.push_back(static_cast<char>(c));
        } else if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back(quote);
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  if (!ensure_ascii) {
    for (unsigned char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
    }
  } else {
    for (char32_t c : utf8_decode(s)) {
      if (c < 0x80) {
        std::string one(1, static_cast<char>(c));
        std::string tmp;
        append_json_string(tmp, one, false);
        out.append(tmp, 1, tmp.size() - 2);
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        unsigned v = static_cast<unsigned>(c) - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        out += buf;
      }
    }
  }
  out.push_back('"');
}

void append_newline_indent(std::string& out, const JsonFormat& fmt, int depth) {
  out.push_back('\n');
  out.append(static_cast<std::size_t>(fmt.indent) * static_cast<std::size_t>(depth), ' ');
}

}  // namespace

double Value::as_double() const {
  if (is_int()) return static_cast<double>(as_int());
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  return as_float();
}

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(std::string key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::get(std::size_t pos, std::string_view name) const {
  if (pos < positional.size()) return &positional[pos];
  for (const auto& [k, v] : named)
    if (k == name) return &v;
  return nullptr;
}

const char* type_name(const Value& v) {
  switch (v.storage().index()) {
    case 0: return "undefined";
    case 1: return "NoneType";
    case 2: return "bool";
    case 3: return "int";
    case 4: return "float";
    case 5: return "str";
    case 6: return "list";
    case 7: return v.as_object().is_namespace ? "Namespace" : "dict";
    default: return "function";
  }
}

bool truthy(const Value& v) {
  switch (v.storage().index()) {
    case 0: case 1: return false;
    case 2: return v.as_bool();
    case 3: return v.as_int() != 0;
    case 4: return v.as_float() != 0.0;
    case 5: return !v.as_string().empty();
    case 6: return !v.as_array().empty();
    case 7: return v.as_object().is_namespace || !v.as_object().entries.empty();
    default: return true;
  }
}

std::string to_str(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_string()) return v.as_string();
  return repr(v);
}

std::string repr(const Value& v) {
  switch (v.storage().index()) {
    case 0: return "Undefined";
    case 1: return "None";
    case 2: return v.as_bool() ? "True" : "False";
    case 3: return std::to_string(v.as_int());
    case 4: return py_float_repr(v.as_float());
    case 5: {
      std::string out;
      append_py_string_repr(out, v.as_string());
      return out;
    }
    case 6: {
      std::string out = v.is_tuple() ? "(" : "[";
      bool first = true;
      for (const auto& x : v.as_array()) {
        if (!first) out += ", ";
        first = false;
        out += repr(x);
      }
      if (v.is_tuple()) return out + (v.as_array().size() == 1 ? ",)" : ")");
      return out + "]";
    }
    case 7: {
      const auto& o = v.as_object();
      std::string out = o.is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, x] : o.entries) {
        if (!first) out += ", ";
        first = false;
        append_py_string_repr(out, k);
        out += ": " + repr(x);
      }
      return out + (o.is_namespace ? "}>" : "}");
    }
    default: return "<function " + v.as_callable().name() + ">";
  }
}

bool equals(const Value& a, const Value& b) {
  if (is_numeric(a) && is_numeric(b)) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    auto ia = a.is_bool() ? std::int64_t{a.as_bool()} : a.as_int();
    auto ib = b.is_bool() ? std::int64_t{b.as_bool()} : b.as_int();
    return ia == ib;
  }
  if (a.storage().index() != b.storage().index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.as_string() == b.as_string();
  if (a.is_array()) {
    const auto &x = a.as_array(), &y = b.as_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!equals(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto &x = a.as_object(), &y = b.as_object();
    if (&x == &y) return true;
    if (x.is_namespace || y.is_namespace) return false;
    if (x.entries.size() != y.entries.size()) return false;
    for (const auto& [k, v] : x.entries) {
      const Value* w = y.find(k);
      if (w == nullptr || !equals(v, *w)) return false;
    }
    return true;
  }
  return &a.as_callable() == &b.as_callable();
}

int compare(const Value& a, const Value& b) {
  if (is_numeric(a) && is_numeric(b)) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    auto x = a.is_bool() ? std::int64_t{a.as_bool()} : a.as_int();
    auto y = b.is_bool() ? std::int64_t{b.as_bool()} : b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_array() && b.is_array()) {
    const auto &x = a.as_array(), &y = b.as_array();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw EvalError(std::string("cannot compare '") + type_name(a) + "' with '" + type_name(b) +
                  "'");
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string())
      throw EvalError(std::string("'in <string>' requires string as left operand, not ") +
                      type_name(item));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_array()) {
    for (const auto& x : container.as_array())
      if (equals(x, item)) return true;
    return false;
  }
  if (container.is_object()) {
    return item.is_string() && container.as_object().find(item.as_string()) != nullptr;
  }
  if (container.is_undefined()) return false;
  throw EvalError(std::string("argument of type '") + type_name(container) +
                  "' is not iterable");
}

void append_json(std::string& out, const Value& v, const JsonFormat& fmt, int depth) {
  if (depth > kMaxJsonDepth) throw EvalError("tojson: value nested too deeply");
  switch (v.storage().index()) {
    case 0:
      throw EvalError("tojson: Object of type Undefined is not JSON serializable");
    case 1: out += "null"; return;
    case 2: out += v.as_bool() ? "true" : "false"; return;
    case 3: out += std::to_string(v.as_int()); return;
    case 4: {
      double d = v.as_float();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += py_float_repr(d);
      return;
    }
    case 5: append_json_string(out, v.as_string(), fmt.ensure_ascii); return;
    case 6: {
      const auto& a = v.as_array();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i > 0) out += fmt.item_sep;
        if (fmt.indent >= 0) append_newline_indent(out, fmt, depth + 1);
        append_json(out, a[i], fmt, depth + 1);
      }
      if (fmt.indent >= 0) append_newline_indent(out, fmt, depth);
      out.push_back(']');
      return;
    }
    case 7: {
      const auto& o = v.as_object();
      if (o.entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& e : o.entries) items.push_back(&e);
      if (fmt.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* x, auto* y) { return x->first < y->first; });
      out.push_back('{');
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += fmt.item_sep;
        if (fmt.indent >= 0) append_newline_indent(out, fmt, depth + 1);
        append_json_string(out, items[i]->first, fmt.ensure_ascii);
        out += fmt.key_sep;
        append_json(out, items[i]->second, fmt, depth + 1);
      }
      if (fmt.indent >= 0) append_newline_indent(out, fmt, depth);
      out.push_back('}');
      return;
    }
    default:
      throw EvalError("tojson: Object of type function is not JSON serializable");
  }
}

}  // namespace sable::chat::detail
