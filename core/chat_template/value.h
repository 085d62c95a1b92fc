// The value model templates compute with: Python's types as Jinja sees them (undefined, None,
// bool, int, float, str, list, dict, callables). Lists and dicts are shared, immutable once built
// (transformers renders in an immutable sandbox) except `namespace()` objects, which `set ns.x`
// mutates. Values are used by one render on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sable::chat::detail {

class Renderer;
class Value;
struct Object;
class Callable;
using Array = std::vector<Value>;

// A failure of one operation; it has no line yet: the renderer adds the line of the expression.
class EvalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Undefined {
  std::string name;  // what was looked up, for "'x' is undefined"
};
struct None {};

class Value {
 public:
  using Storage = std::variant<Undefined, None, bool, std::int64_t, double, std::string,
                               std::shared_ptr<Array>, std::shared_ptr<Object>,
                               std::shared_ptr<Callable>>;

  Value() : v_(Undefined{}) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<std::int64_t>(i)) {}
  Value(std::int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<Array>(std::move(a))) {}
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}
  Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}
  static Value undefined(std::string name = {}) { return Value(Undefined{std::move(name)}); }
  // A Python tuple: a list that prints as (a, b) (dict items, varargs, `(a, b)` literals).
  static Value tuple(Array a) {
    Value v(std::move(a));
    v.tuple_ = true;
    return v;
  }
  bool is_tuple() const { return tuple_; }

  bool is_undefined() const { return v_.index() == 0; }
  bool is_none() const { return v_.index() == 1; }
  bool is_bool() const { return v_.index() == 2; }
  bool is_int() const { return v_.index() == 3; }
  bool is_float() const { return v_.index() == 4; }
  bool is_number() const { return is_int() || is_float(); }  // bool excluded, as Jinja's test
  bool is_string() const { return v_.index() == 5; }
  bool is_array() const { return v_.index() == 6; }
  bool is_object() const { return v_.index() == 7; }
  bool is_callable() const { return v_.index() == 8; }

  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  double as_double() const;  // int, float or bool as double
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return *std::get<std::shared_ptr<Array>>(v_); }
  const Object& as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  Object& mutable_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  const Storage& storage() const { return v_; }

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  Storage v_;
  bool tuple_ = false;
};

// A dict keeping insertion order (Python's dicts do; tojson prints in that order).
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);  // replaces an existing key in place
};

// Positional and keyword arguments of one call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;

  // The argument at `pos` or named `name`; nullptr when absent.
  const Value* get(std::size_t pos, std::string_view name) const;
};

// Something a template can call: a macro, a bound method, a global function.
class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(Renderer& renderer, const CallArgs& args) = 0;
  virtual std::string name() const = 0;
};

// Python-visible operations.
const char* type_name(const Value& v);  // "str", "int", "list", "dict", "NoneType", ...
bool truthy(const Value& v);
std::string to_str(const Value& v);  // str(v); undefined prints as ""
std::string repr(const Value& v);
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0; throws EvalError when unordered
bool contains(const Value& container, const Value& item);  // `item in container`

// a op b for + - * / // % ** ~ with Python's rules (int overflow is an error, not a bigint).
// Strings and lists built by + * ~ may not pass max_bytes.
Value binary_op(std::string_view op, const Value& a, const Value& b, std::size_t max_bytes);
// -a, +a.
Value unary_op(std::string_view op, const Value& a);

struct JsonFormat {
  int indent = -1;  // < 0: one line
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
// json.dumps(v, ...) as transformers' tojson filter calls it.
void append_json(std::string& out, const Value& v, const JsonFormat& fmt, int depth = 0);

}  // namespace sable::chat::detail
