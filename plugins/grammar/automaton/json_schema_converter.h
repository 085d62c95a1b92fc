// The JSON schema -> regex converter behind json_schema_to_regex (private to the automaton engine).
// One recursive walk; every function returns a self-contained regex (a group or an atom) so that
// callers can concatenate freely. Scalars, references and combinators live in json_schema.cpp;
// objects and arrays in json_schema_containers.cpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sable::grammar::schema {

using Json = nlohmann::ordered_json;

// The one optional space allowed after `,` and `:`.
inline const std::string kWs = "[ ]?";
// Depth of the generic "any value" regex for {} and of the items of a bare object/array.
inline constexpr int kAnyDepth = 3;

// A JSON string of any content (escapes included).
const std::string& any_string_regex();

// How the members of an object may be ordered: kAny (what JSON Schema allows: declared properties
// in any order, each at most once, further members anywhere) or kDeclared (the declared order,
// further members after them: what xgrammar and llguidance generate), chosen by the schema's
// "x-sable": {"property_order": "declared"} on a schema, for it and the schemas inside it.
enum class PropertyOrder { kAny, kDeclared };

// Objects in kAny order are refused past either limit: each subset of the properties written so far
// is a state of the automaton, and each member is copied once per subset without it, so its size
// doubles with each property. The states are counted as NFA states of those copies.
inline constexpr size_t kMaxAnyOrderProperties = 12;
inline constexpr int64_t kMaxAnyOrderStates = 40'000;

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {}

  // The regex of the JSON texts `s` allows; `path` (a JSON pointer) names it in errors. Throws
  // when all the text produced so far passes a budget.
  std::string value(const Json& s, const std::string& path);

  [[noreturn]] static void error(const std::string& path, const std::string& what);

 private:
  std::string value_of(const Json& s, const std::string& path);
  std::string merged(const Json& s, const std::string& path);
  std::string ref(const Json& s, const std::string& path);
  std::string constants(const Json& s, const std::string& path);
  std::string typed(const Json& s, const std::string& type, const std::string& path);
  std::string string(const Json& s, const std::string& path);
  std::string number(const Json& s, bool integer, const std::string& path);
  std::string object(const Json& s, const std::string& path);
  std::string members_in_order(const std::vector<std::string>& members,
                               const std::vector<bool>& needed, const std::string& extra,
                               const std::string& path);
  std::string members_any_order(const std::vector<std::string>& members,
                                const std::vector<bool>& needed, const std::string& extra,
                                const std::string& path);
  // Appends `(?@N=body)` to *defs and returns `(?@N)` (regex.h's internal dialect).
  std::string define(const std::string& body, std::string* defs);
  std::string array(const Json& s, const std::string& path);

  const Json& root_;
  PropertyOrder order_ = PropertyOrder::kAny;  // from the innermost enclosing x-sable
  int64_t next_definition_ = 0;
  std::vector<std::string> stack_;  // $refs being expanded, to bound recursion
  size_t produced_ = 0;             // bytes of regex text returned by value() so far
};

// The property order an "x-sable" options object asks for (errors name unknown options).
PropertyOrder property_order_option(const Json& options, const std::string& path);

// A count keyword (minLength, maxItems, ...): a non-negative integer, or `fallback` when absent.
int64_t count_keyword(const Json& s, const char* key, int64_t fallback, const std::string& path);

}  // namespace sable::grammar::schema
