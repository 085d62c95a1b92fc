// Attribute, item and slice access, Python's str/dict methods, iteration and the global
// functions (see builtins.h).
#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include "core/chat_template/builtins.h"
#include "core/chat_template/renderer.h"
#include "core/chat_template/text.h"

namespace sable::chat::detail {

namespace {

constexpr std::int64_t kMaxRange = 10'000'000;

std::optional<std::string> opt_string(const Value* v, const char* what) {
  if (v == nullptr || v->is_none()) return std::nullopt;
  return arg_string(*v, what);
}

Value strings_to_array(std::vector<std::string> parts) {
  Array a;
  a.reserve(parts.size());
  for (auto& p : parts) a.emplace_back(std::move(p));
  return Value(std::move(a));
}

// True when s starts (ends) with prefix, which may be a string or a list of strings.
bool affix_matches(const std::string& s, const Value& affix, bool at_start) {
  if (affix.is_array()) {
    for (const auto& a : affix.as_array())
      if (affix_matches(s, a, at_start)) return true;
    return false;
  }
  const std::string& p = arg_string(affix, at_start ? "startswith()" : "endswith()");
  if (p.size() > s.size()) return false;
  return at_start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// str.format with {} / {0} / {name} fields; format specs after ':' are ignored.
std::string py_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c != '{') { out += c; continue; }
    auto close = fmt.find('}', i);
    if (close == std::string::npos) throw EvalError("format(): single '{' in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    field = field.substr(0, field.find(':'));
    const Value* v = nullptr;
    if (field.empty()) {
      v = auto_index < args.positional.size() ? &args.positional[auto_index] : nullptr;
      ++auto_index;
    } else if (field.size() < 9 &&
               std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      std::size_t k = std::stoul(field);
      v = k < args.positional.size() ? &args.positional[k] : nullptr;
    } else {
      v = args.get(std::numeric_limits<std::size_t>::max(), field);
    }
    if (v == nullptr) throw EvalError("format(): no argument for field '{" + field + "}'");
    out += to_str(*v);
    i = close;
  }
  return out;
}

class StrMethod : public Callable {
 public:
  StrMethod(std::string self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string name() const override { return "str." + name_; }

  Value call(Renderer& r, const CallArgs& a) override {
    const std::string& s = self_;
    const std::string& n = name_;
    if (n == "startswith" || n == "endswith") {
      const Value* p = a.get(0, "prefix");
      if (p == nullptr) throw EvalError(n + "() takes at least 1 argument");
      return Value(affix_matches(s, *p, n == "startswith"));
    }
    if (n == "strip" || n == "lstrip" || n == "rstrip")
      return Value(py_strip(s, opt_string(a.get(0, "chars"), "strip()"), n != "rstrip", n != "lstrip"));
    if (n == "split" || n == "rsplit") {
      const Value* m = a.get(1, "maxsplit");
      long long maxsplit = m ? arg_int(*m, "split() maxsplit") : -1;
      auto sep = opt_string(a.get(0, "sep"), "split() separator");
      if (n == "rsplit" && maxsplit >= 0) {
        // rsplit with a limit: split all, then glue the leading parts back.
        auto parts = py_split(s, sep, -1);
        if (static_cast<long long>(parts.size()) > maxsplit + 1 && sep) {
          std::size_t keep = parts.size() - static_cast<std::size_t>(maxsplit);
          std::string head = parts[0];
          for (std::size_t i = 1; i < keep; ++i) head += *sep + parts[i];
          std::vector<std::string> out{head};
          out.insert(out.end(), parts.begin() + static_cast<long>(keep), parts.end());
          return strings_to_array(std::move(out));
        }
        return strings_to_array(std::move(parts));
      }
      return strings_to_array(py_split(s, sep, maxsplit));
    }
    if (n == "replace") {
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      if (from == nullptr || to == nullptr) throw EvalError("replace() takes 2 arguments");
      const Value* c = a.get(2, "count");
      std::string out = py_replace(s, arg_string(*from, "replace()"), arg_string(*to, "replace()"),
                                   c ? arg_int(*c, "replace() count") : -1);
      r.check_size(out.size());
      return Value(std::move(out));
    }
    if (n == "upper") return Value(py_upper(s));
    if (n == "lower") return Value(py_lower(s));
    if (n == "title") return Value(py_title(s));
    if (n == "capitalize") return Value(py_capitalize(s));
    if (n == "format") {
      std::string out = py_format(s, a);
      r.check_size(out.size());
      return Value(std::move(out));
    }
    if (n == "join") {
      const Value* items = a.get(0, "iterable");
      if (items == nullptr) throw EvalError("join() takes 1 argument");
      std::string out;
      bool first = true;
      for (const auto& x : iterate(*items)) {
        if (!first) out += s;
        first = false;
        out += arg_string(x, "join() item");
        r.check_size(out.size());
      }
      return Value(std::move(out));
    }
    if (n == "find" || n == "rfind" || n == "count") {
      const Value* sub = a.get(0, "sub");
      if (sub == nullptr) throw EvalError(n + "() takes 1 argument");
      const std::string& needle = arg_string(*sub, "find()");
      if (n == "count") {
        if (needle.empty()) return Value(static_cast<std::int64_t>(utf8_length(s) + 1));
        std::int64_t k = 0;
        for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + needle.size())) ++k;
        return Value(k);
      }
      auto p = n == "find" ? s.find(needle) : s.rfind(needle);
      if (p == std::string::npos) return Value(std::int64_t{-1});
      return Value(static_cast<std::int64_t>(utf8_length(std::string_view(s).substr(0, p))));
    }
    auto all_of = [&](auto pred) {
      auto u = utf8_decode(s);
      return Value(!u.empty() && std::all_of(u.begin(), u.end(), pred));
    };
    if (n == "isdigit") return all_of([](char32_t c) { return c >= '0' && c <= '9'; });
    if (n == "isspace") return all_of(is_py_space);
    if (n == "isalpha")
      return all_of([](char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c > 0x7f; });
    if (n == "isupper") return Value(py_upper(s) == s && py_lower(s) != s);
    if (n == "islower") return Value(py_lower(s) == s && py_upper(s) != s);
    if (n == "splitlines") {
      auto parts = py_split(s, std::string("\n"), -1);
      if (!parts.empty() && parts.back().empty()) parts.pop_back();
      return strings_to_array(std::move(parts));
    }
    throw EvalError("str has no method '" + n + "'");
  }

  static bool has(const std::string& n) {
    static const char* kNames[] = {"startswith", "endswith", "strip", "lstrip", "rstrip", "split",
                                   "rsplit", "replace", "upper", "lower", "title", "capitalize",
                                   "format", "join", "find", "rfind", "count", "isdigit",
                                   "isspace", "isalpha", "isupper", "islower", "splitlines"};
    return std::find_if(std::begin(kNames), std::end(kNames),
                        [&](const char* k) { return n == k; }) != std::end(kNames);
  }

 private:
  std::string self_;
  std::string name_;
};

class DictMethod : public Callable {
 public:
  DictMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string name() const override { return "dict." + name_; }

  Value call(Renderer&, const CallArgs& a) override {
    const Object& o = self_.as_object();
    if (name_ == "get") {
      const Value* k = a.get(0, "key");
      if (k == nullptr) throw EvalError("get() takes at least 1 argument");
      const Value* v = k->is_string() ? o.find(k->as_string()) : nullptr;
      if (v != nullptr) return *v;
      const Value* d = a.get(1, "default");
      return d ? *d : Value(None{});
    }
    Array out;
    for (const auto& [k, v] : o.entries) {
      if (name_ == "keys") out.emplace_back(k);
      else if (name_ == "values") out.push_back(v);
      else out.push_back(Value::tuple(Array{Value(k), v}));
    }
    return Value(std::move(out));
  }

  static bool has(const std::string& n) {
    return n == "get" || n == "items" || n == "keys" || n == "values";
  }

 private:
  Value self_;
  std::string name_;
};

class GlobalFunction : public Callable {
 public:
  explicit GlobalFunction(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }

  Value call(Renderer& r, const CallArgs& a) override {
    if (name_ == "raise_exception") {
      const Value* m = a.get(0, "message");
      throw EvalError(m ? to_str(*m) : "raise_exception() called");
    }
    if (name_ == "range") return range(r, a);
    if (name_ == "namespace" || name_ == "dict") {
      auto o = std::make_shared<Object>();
      o->is_namespace = name_ == "namespace";
      for (const auto& p : a.positional) {
        if (!p.is_object()) throw EvalError(name_ + "() positional argument must be a dict");
        for (const auto& [k, v] : p.as_object().entries) o->set(k, v);
      }
      for (const auto& [k, v] : a.named) o->set(k, v);
      return Value(std::move(o));
    }
    if (name_ == "strftime_now") {
      const Value* f = a.get(0, "format");
      if (f == nullptr) throw EvalError("strftime_now() takes 1 argument");
      std::time_t now = r.options().now ? *r.options().now : std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      std::size_t n = std::strftime(buf, sizeof buf, arg_string(*f, "strftime_now()").c_str(), &tm);
      return Value(std::string(buf, n));
    }
    throw EvalError("unknown function '" + name_ + "'");
  }

 private:
  static Value range(Renderer& r, const CallArgs& a) {
    std::int64_t start = 0, stop = 0, step = 1;
    const auto& p = a.positional;
    if (p.size() == 1) {
      stop = arg_int(p[0], "range()");
    } else if (p.size() == 2 || p.size() == 3) {
      start = arg_int(p[0], "range()");
      stop = arg_int(p[1], "range()");
      if (p.size() == 3) step = arg_int(p[2], "range()");
    } else {
      throw EvalError("range() takes 1 to 3 integer arguments");
    }
    if (step == 0) throw EvalError("range() step must not be zero");
    double count = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
    if (count > static_cast<double>(kMaxRange)) throw EvalError("range() too large");
    Array out;
    for (std::int64_t v = start; step > 0 ? v < stop : v > stop; v += step) {
      out.emplace_back(v);
      if (static_cast<std::int64_t>(out.size()) % 4096 == 0) r.step();
    }
    return Value(std::move(out));
  }

  std::string name_;
};

std::int64_t normalize_index(std::int64_t i, std::size_t size) {
  return i < 0 ? i + static_cast<std::int64_t>(size) : i;
}

}  // namespace

std::int64_t arg_int(const Value& v, const char* what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool();
  throw EvalError(std::string(what) + ": expected an integer, got '" + type_name(v) + "'");
}

std::string arg_string(const Value& v, const char* what) {
  if (v.is_string()) return v.as_string();
  throw EvalError(std::string(what) + ": expected a string, got '" + type_name(v) + "'");
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) {
    throw EvalError(obj.undefined_name().empty()
                        ? "undefined value has no attribute '" + name + "'"
                        : "'" + obj.undefined_name() + "' is undefined");
  }
  if (obj.is_object()) {
    const Object& o = obj.as_object();
    if (!o.is_namespace && DictMethod::has(name))
      return Value(std::shared_ptr<Callable>(std::make_shared<DictMethod>(obj, name)));
    if (const Value* v = o.find(name)) return *v;
    return Value::undefined(name);
  }
  if (obj.is_string() && StrMethod::has(name))
    return Value(std::shared_ptr<Callable>(std::make_shared<StrMethod>(obj.as_string(), name)));
  return Value::undefined(name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return get_attribute(obj, to_str(key));
  if (obj.is_object()) {
    if (key.is_string()) {
      if (const Value* v = obj.as_object().find(key.as_string())) return *v;
      return get_attribute(obj, key.as_string());
    }
    return Value::undefined();
  }
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    std::int64_t k = key.is_bool() ? key.as_bool() : key.as_int();
    if (obj.is_array()) {
      const auto& a = obj.as_array();
      k = normalize_index(k, a.size());
      if (k < 0 || k >= static_cast<std::int64_t>(a.size())) return Value::undefined();
      return a[static_cast<std::size_t>(k)];
    }
    auto u = utf8_decode(obj.as_string());
    k = normalize_index(k, u.size());
    if (k < 0 || k >= static_cast<std::int64_t>(u.size())) return Value::undefined();
    return Value(utf8_encode(std::u32string_view(u).substr(static_cast<std::size_t>(k), 1)));
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined();
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (!obj.is_array() && !obj.is_string()) {
    if (obj.is_undefined()) return get_attribute(obj, "__getitem__");
    throw EvalError(std::string("'") + type_name(obj) + "' object is not subscriptable");
  }
  std::u32string chars;
  if (obj.is_string()) chars = utf8_decode(obj.as_string());
  auto n = static_cast<std::int64_t>(obj.is_string() ? chars.size() : obj.as_array().size());
  std::int64_t st = step.is_none() ? 1 : arg_int(step, "slice step");
  if (st == 0) throw EvalError("slice step cannot be zero");
  auto bound = [&](const Value& v, std::int64_t dflt) {
    if (v.is_none()) return dflt;
    std::int64_t i = arg_int(v, "slice index");
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  std::int64_t b = bound(start, st < 0 ? n - 1 : 0);
  std::int64_t e = bound(stop, st < 0 ? -1 : n);
  std::vector<std::int64_t> idx;
  for (std::int64_t i = b; st > 0 ? i < e : i > e; i += st) idx.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (auto i : idx) utf8_append(out, chars[static_cast<std::size_t>(i)]);
    return Value(std::move(out));
  }
  Array out;
  for (auto i : idx) out.push_back(obj.as_array()[static_cast<std::size_t>(i)]);
  return Value(std::move(out));
}

Value lookup_global(const std::string& name) {
  if (name == "raise_exception" || name == "range" || name == "namespace" || name == "dict" ||
      name == "strftime_now")
    return Value(std::shared_ptr<Callable>(std::make_shared<GlobalFunction>(name)));
  return Value::undefined();
}

Array iterate(const Value& v) {
  if (v.is_array()) return v.as_array();
  if (v.is_undefined()) return {};
  if (v.is_object()) {
    Array keys;
    for (const auto& [k, x] : v.as_object().entries) keys.emplace_back(k);
    return keys;
  }
  if (v.is_string()) {
    Array chars;
    for (char32_t c : utf8_decode(v.as_string())) {
      std::string s;
      utf8_append(s, c);
      chars.emplace_back(std::move(s));
    }
    return chars;
  }
  throw EvalError(std::string("'") + type_name(v) + "' object is not iterable");
}

}  // namespace sable::chat::detail
