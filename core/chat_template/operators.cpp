// Arithmetic and concatenation with Python's rules (declared in value.h): int/float promotion,
// floor division and modulo rounding toward negative infinity, str/list repetition.
#include <cmath>
#include <limits>

#include "core/chat_template/value.h"

namespace sable::chat::detail {

namespace {

bool numeric(const Value& v) { return v.is_int() || v.is_float() || v.is_bool(); }
std::int64_t int_of(const Value& v) { return v.is_bool() ? std::int64_t{v.as_bool()} : v.as_int(); }

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    throw EvalError(u.undefined_name().empty() ? std::string("undefined value in '") +
                                                     std::string(op) + "'"
                                               : "'" + u.undefined_name() + "' is undefined");
  }
  throw EvalError("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) +
                  "' and '" + type_name(b) + "'");
}

void check_bytes(std::size_t n, std::size_t max_bytes) {
  if (n > max_bytes) throw EvalError("string result exceeds the render size limit");
}

Value repeat(const Value& seq, std::int64_t n, std::size_t max_bytes) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const auto& s = seq.as_string();
    if (!s.empty() && static_cast<std::uint64_t>(n) > max_bytes / s.size())
      check_bytes(max_bytes + 1, max_bytes);
    std::string out;
    out.reserve(s.size() * static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const auto& a = seq.as_array();
  if (!a.empty() && static_cast<std::uint64_t>(n) > max_bytes / (a.size() * 16))
    check_bytes(max_bytes + 1, max_bytes);
  Array out;
  for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), a.begin(), a.end());
  return Value(std::move(out));
}

Value int_pow(std::int64_t base, std::int64_t exp) {
  if (exp < 0) return Value(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  std::int64_t result = 1;
  while (exp > 0) {
    if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) throw EvalError("integer overflow");
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) throw EvalError("integer overflow");
  }
  return Value(result);
}

}  // namespace

Value binary_op(std::string_view op, const Value& a, const Value& b, std::size_t max_bytes) {
  if (op == "~") {
    std::string out = to_str(a);
    out += to_str(b);
    check_bytes(out.size(), max_bytes);
    return Value(std::move(out));
  }
  if (numeric(a) && numeric(b)) {
    bool ints = !a.is_float() && !b.is_float();
    std::int64_t x = ints ? int_of(a) : 0, y = ints ? int_of(b) : 0;
    double fx = a.as_double(), fy = b.as_double();
    std::int64_t r = 0;
    if (op == "+" || op == "-" || op == "*") {
      if (!ints) return Value(op == "+" ? fx + fy : op == "-" ? fx - fy : fx * fy);
      bool overflow = op == "+"   ? __builtin_add_overflow(x, y, &r)
                      : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                  : __builtin_mul_overflow(x, y, &r);
      if (overflow) throw EvalError("integer overflow");
      return Value(r);
    }
    if (op == "/") {
      if (fy == 0) throw EvalError("division by zero");
      return Value(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (ints ? y == 0 : fy == 0) throw EvalError("integer division or modulo by zero");
      if (ints) {
        if (x == std::numeric_limits<std::int64_t>::min() && y == -1) throw EvalError("integer overflow");
        std::int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return op == "//" ? Value(q) : Value(m);
      }
      double m = std::fmod(fx, fy);
      if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
      return op == "//" ? Value(std::floor(fx / fy)) : Value(m);
    }
    if (op == "**") return ints ? int_pow(x, y) : Value(std::pow(fx, fy));
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_bytes(a.as_string().size() + b.as_string().size(), max_bytes);
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array()) {
      Array out = a.as_array();
      out.insert(out.end(), b.as_array().begin(), b.as_array().end());
      return Value(std::move(out));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) return repeat(a, int_of(b), max_bytes);
    if ((b.is_string() || b.is_array()) && (a.is_int() || a.is_bool())) return repeat(b, int_of(a), max_bytes);
  }
  unsupported(op, a, b);
}

Value unary_op(std::string_view op, const Value& a) {
  if (a.is_float()) return op == "-" ? Value(-a.as_float()) : a;
  if (a.is_int() || a.is_bool()) {
    std::int64_t v = int_of(a);
    if (op == "+") return Value(v);
    if (v == std::numeric_limits<std::int64_t>::min()) throw EvalError("integer overflow");
    return Value(-v);
  }
  if (a.is_undefined() && !a.undefined_name().empty())
    throw EvalError("'" + a.undefined_name() + "' is undefined");
  throw EvalError("bad operand type for unary " + std::string(op) + ": '" + type_name(a) + "'");
}

}  // namespace sable::chat::detail
