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
  std::string array(const Json& s, const std::string& path);

  const Json& root_;
  std::vector<std::string> stack_;  // $refs being expanded, to bound recursion
  size_t produced_ = 0;             // bytes of regex text returned by value() so far
};

// A count keyword (minLength, maxItems, ...): a non-negative integer, or `fallback` when absent.
int64_t count_keyword(const Json& s, const char* key, int64_t fallback, const std::string& path);

}  // namespace sable::grammar::schema
