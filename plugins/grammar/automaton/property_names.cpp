// propertyNames as patternProperties (property_names.h).
#include "property_names.h"

#include <set>

#include "key_patterns.h"
#include "sable/cpp/error.h"

namespace sable::grammar::schema {
namespace {

// Keys of a propertyNames schema that assert nothing about a key.
const std::set<std::string> kAnnotations = {"title", "description", "$comment", "examples",
                                            "default", "deprecated"};

bool allows_strings(const Json& type) {
  if (type.is_string()) return type == "string";
  if (type.is_array())
    for (const Json& t : type)
      if (t == "string") return true;
  return false;
}

}  // namespace

Json apply_property_names(const Json& s, bool strict, const std::string& path) {
  const Json& names = s["propertyNames"];
  const std::string at = path + "/propertyNames";
  Json out = s;
  out.erase("propertyNames");
  if (names.is_boolean()) {
    if (names.get<bool>()) return out;
    Converter::error(at, "propertyNames false (only the empty object) is not supported");
  }
  if (!names.is_object()) Converter::error(at, "propertyNames must be a schema");
  for (auto it = names.begin(); it != names.end(); ++it) {
    if (it.key() == "pattern" || kAnnotations.count(it.key()) || it.key().rfind("x-", 0) == 0)
      continue;
    if (it.key() == "type") {
      if (!allows_strings(it.value()))
        Converter::error(at + "/type", "propertyNames allows no string, so only the empty "
                                       "object; not supported");
      continue;
    }
    Converter::error(at + "/" + it.key(), "'propertyNames' with '" + it.key() +
                                              "' is not supported (only type and pattern)");
  }
  if (!names.contains("pattern")) return out;  // any string is a key
  if (!names["pattern"].is_string()) Converter::error(at + "/pattern", "pattern must be a string");
  const std::string pattern = names["pattern"].get<std::string>();
  std::string whole;
  try {
    whole = whole_key_regex(pattern);
  } catch (const sable::cpp::Error& e) {
    Converter::error(at + "/pattern", std::string("bad pattern: ") + e.what());
  }
  // Declared names the pattern excludes can never be written.
  if (out.contains("properties") && out["properties"].is_object()) {
    Json kept = Json::object();
    for (auto it = out["properties"].begin(); it != out["properties"].end(); ++it)
      if (key_matches(whole, it.key())) kept[it.key()] = it.value();
    out["properties"] = std::move(kept);
  }
  if (out.contains("required") && out["required"].is_array())
    for (const Json& r : out["required"])
      if (r.is_string() && !key_matches(whole, r.get<std::string>()))
        Converter::error(at + "/pattern", "the required property '" + r.get<std::string>() +
                                              "' does not match propertyNames' pattern: no "
                                              "object is valid");
  if (out.contains("unevaluatedProperties"))
    Converter::error(at, "propertyNames beside unevaluatedProperties is not supported");
  if (out.contains("patternProperties")) {
    const Json& pp = out["patternProperties"];
    if (!pp.is_object()) Converter::error(path + "/patternProperties", "patternProperties must be an object");
    for (auto it = pp.begin(); it != pp.end(); ++it)
      if (it.key() != pattern)
        Converter::error(at, "propertyNames beside patternProperties of another pattern ('" +
                                 it.key() + "') is not supported");
  }
  // Further keys: only those matching the pattern, with additionalProperties' schema.
  const bool implicit = !out.contains("additionalProperties");
  const Json extra = implicit ? Json(!strict) : out["additionalProperties"];
  const bool further = !(extra.is_boolean() && !extra.get<bool>());
  if (further && !(out.contains("patternProperties") && out["patternProperties"].contains(pattern)))
    out["patternProperties"][pattern] = extra;
  out["additionalProperties"] = false;
  return out;
}

}  // namespace sable::grammar::schema
