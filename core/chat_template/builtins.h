// Jinja's built-in library as chat templates use it: filters, tests, attribute and item access
// (with Python's str/dict methods as bound callables), slicing, and the globals transformers
// provides (range, namespace, dict, raise_exception, strftime_now). Called by the renderer; all
// failures are EvalError (the renderer adds the template line).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/chat_template/value.h"

namespace sable::chat::detail {

bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

Value apply_filter(Renderer& r, std::string_view name, const Value& subject,
                   const CallArgs& args);
bool apply_test(Renderer& r, std::string_view name, const Value& subject, const CallArgs& args);

// obj.name: dict key, str/dict method, namespace attribute; undefined when absent. Throws on an
// undefined obj.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: list/str index (negative from the end), dict key; then attribute. Undefined when
// absent.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python's rules, for lists and strings (by code point).
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// A global function by name, or undefined.
Value lookup_global(const std::string& name);

// The items `for` walks: list elements, dict keys, string characters; undefined gives none.
Array iterate(const Value& v);

// Argument helpers shared by the builtins.
std::int64_t arg_int(const Value& v, const char* what);
std::string arg_string(const Value& v, const char* what);

}  // namespace sable::chat::detail
