// JSON schema -> regex (see json_schema.h). One recursive Converter walks the schema; every
// function returns a self-contained regex (a group or an atom) so callers can concatenate freely.
#include "json_schema.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

using Json = nlohmann::ordered_json;
using sable::cpp::fail;

// The one optional space allowed after `,` and `:`.
const std::string kWs = "[ ]?";
// One character of a JSON string: anything but `"`, `\` and controls, or an escape.
const std::string kStringChar =
    R"((?:[^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CeEfF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})))";
const std::string kString = "\"" + kStringChar + "*\"";
const std::string kInteger = R"((?:-?(?:0|[1-9][0-9]*)))";
const std::string kNumber = R"((?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?))";
const std::string kBoolean = "(?:true|false)";
const std::string kNull = "null";

// Depth of the generic "any value" regex for {} and of the items of a bare object/array.
constexpr int kAnyDepth = 3;
// How deep a recursive $ref nests (deeper occurrences match nothing).
constexpr int kMaxRefDepth = 3;
// A regex that matches nothing (a class with no member).
const std::string kNothing = "[^\\s\\S]";

// A converted schema longer than this is refused (optional properties multiply the text).
constexpr size_t kMaxRegexSize = 4 << 20;

const std::string kDate = R"((?:[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])))";
const std::string kTime =
    R"((?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?))";

// The regex (inside quotes) of a known string format, or "" for an unknown one.
std::string format_regex(const std::string& format) {
  if (format == "date") return kDate;
  if (format == "time") return kTime;
  if (format == "date-time") return "(?:" + kDate + "T" + kTime + ")";
  if (format == "uuid")
    return "(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})";
  if (format == "email")
    return R"((?:[a-zA-Z0-9._%+\-]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,}))";
  return "";
}

std::string object_of(const std::string& key, const std::string& value) {
  const std::string member = key + ":" + kWs + value;
  return "\\{(?:" + member + "(?:," + kWs + member + ")*)?\\}";
}

std::string array_of(const std::string& item) {
  return "\\[(?:" + item + "(?:," + kWs + item + ")*)?\\]";
}

std::string alternation(const std::vector<std::string>& alts) {
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

std::string literal(const Json& value) {
  return "(?:" + escape_regex_literal(value.dump()) + ")";
}

// A `pattern` is a full-match regex inside the quotes: drop its own ^ and $ anchors.
std::string strip_anchors(std::string pattern) {
  if (!pattern.empty() && pattern.front() == '^') pattern.erase(0, 1);
  if (!pattern.empty() && pattern.back() == '$') {
    size_t slashes = 0;
    for (size_t i = pattern.size() - 1; i > 0 && pattern[i - 1] == '\\'; --i) ++slashes;
    if (slashes % 2 == 0) pattern.pop_back();
  }
  return pattern;
}

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {}

  std::string value(const Json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) error(path, "a `false` schema allows nothing");
      return any_json_value_regex(kAnyDepth);
    }
    if (!s.is_object()) error(path, "a schema must be an object or a boolean");
    if (s.contains("$ref")) return ref(s["$ref"], path);
    if (s.contains("const")) return literal(s["const"]);
    if (s.contains("enum")) {
      const Json& e = s["enum"];
      if (!e.is_array() || e.empty()) error(path + "/enum", "enum must be a non-empty array");
      std::vector<std::string> alts;
      for (const Json& v : e) alts.push_back(literal(v));
      return alternation(alts);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const Json& list = s[key];
      if (!list.is_array() || list.empty())
        error(path + "/" + key, std::string(key) + " must be a non-empty array");
      std::vector<std::string> alts;
      for (size_t i = 0; i < list.size(); ++i)
        alts.push_back(value(list[i], path + "/" + key + "/" + std::to_string(i)));
      return alternation(alts);
    }
    if (s.contains("allOf")) {
      const Json& list = s["allOf"];
      if (!list.is_array() || list.size() != 1)
        error(path + "/allOf", "allOf is only supported with exactly one schema");
      return value(list[0], path + "/allOf/0");
    }
    if (s.contains("type")) {
      const Json& type = s["type"];
      if (type.is_string()) return typed(s, type.get<std::string>(), path);
      if (!type.is_array() || type.empty())
        error(path + "/type", "type must be a string or a non-empty array");
      std::vector<std::string> alts;
      for (const Json& t : type) {
        if (!t.is_string()) error(path + "/type", "type entries must be strings");
        alts.push_back(typed(s, t.get<std::string>(), path));
      }
      return alternation(alts);
    }
    // No type: infer it from the keywords present, else any value.
    if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties"))
      return typed(s, "object", path);
    if (s.contains("items") || s.contains("prefixItems")) return typed(s, "array", path);
    if (s.contains("pattern") || s.contains("format") || s.contains("minLength") ||
        s.contains("maxLength"))
      return typed(s, "string", path);
    return any_json_value_regex(kAnyDepth);
  }

 private:
  [[noreturn]] static void error(const std::string& path, const std::string& what) {
    fail(SABLE_ERR_INVALID_ARGUMENT, what + " (at " + (path.empty() ? "/" : path) + ")");
  }

  std::string typed(const Json& s, const std::string& type, const std::string& path) {
    if (type == "string") return string(s, path);
    if (type == "integer") return kInteger;
    if (type == "number") return kNumber;
    if (type == "boolean") return kBoolean;
    if (type == "null") return kNull;
    if (type == "object") return object(s, path);
    if (type == "array") return array(s, path);
    error(path + "/type", "unknown type '" + type + "'");
  }

  static int64_t count(const Json& s, const char* key, int64_t fallback, const std::string& path) {
    if (!s.contains(key)) return fallback;
    if (!s[key].is_number_integer() || s[key].get<int64_t>() < 0)
      error(path + "/" + key, std::string(key) + " must be a non-negative integer");
    return s[key].get<int64_t>();
  }

  std::string string(const Json& s, const std::string& path) {
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) error(path + "/pattern", "pattern must be a string");
      const std::string pattern = strip_anchors(s["pattern"].get<std::string>());
      try {
        parse_regex(pattern);
      } catch (const sable::cpp::Error& e) {
        error(path + "/pattern", std::string("bad pattern: ") + e.what());
      }
      return "\"(?:" + pattern + ")\"";
    }
    if (s.contains("format") && s["format"].is_string()) {
      const std::string f = format_regex(s["format"].get<std::string>());
      if (!f.empty()) return "\"" + f + "\"";
    }
    const int64_t lo = count(s, "minLength", 0, path);
    const int64_t hi = count(s, "maxLength", -1, path);
    if (lo == 0 && hi < 0) return kString;
    if (hi >= 0 && hi < lo) error(path, "maxLength is below minLength");
    return "\"" + kStringChar + "{" + std::to_string(lo) + "," +
           (hi < 0 ? "" : std::to_string(hi)) + "}\"";
  }

  std::string object(const Json& s, const std::string& path) {
    const bool has_props = s.contains("properties");
    if (has_props && !s["properties"].is_object())
      error(path + "/properties", "properties must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) error(path + "/required", "required must be an array");
      for (const Json& r : s["required"]) {
        if (!r.is_string()) error(path + "/required", "required entries must be strings");
        required.insert(r.get<std::string>());
      }
    }
    if (!has_props || s["properties"].empty()) {
      if (!required.empty())
        error(path + "/required",
              "required property '" + *required.begin() + "' is not listed in properties");
      const Json ap = s.value("additionalProperties", Json(true));
      if (ap.is_boolean() && !ap.get<bool>()) return "\\{\\}";
      if (ap.is_object() && !ap.empty())
        return object_of(kString, value(ap, path + "/additionalProperties"));
      return object_of(kString, any_json_value_regex(kAnyDepth - 1));
    }
    const Json& props = s["properties"];
    for (const std::string& r : required)
      if (!props.contains(r))
        error(path + "/required", "required property '" + r + "' is not listed in properties");

    // members[i] = `"name":[ ]?value`; optional ones may be skipped, commas only between those
    // present. started[i]: the members from i on after one was already written (each with a
    // leading comma); fresh(i): the same when none was written yet.
    std::vector<std::string> members;
    std::vector<bool> needed;
    for (const auto& [name, sub] : props.items()) {
      members.push_back(escape_regex_literal(Json(name).dump()) + ":" + kWs +
                        value(sub, path + "/properties/" + name));
      needed.push_back(required.count(name) > 0);
    }
    const size_t k = members.size();
    std::vector<std::string> started(k + 1);
    for (size_t i = k; i-- > 0;) {
      const std::string item = "," + kWs + members[i];
      started[i] = (needed[i] ? item : "(?:" + item + ")?") + started[i + 1];
    }
    std::string fresh;  // fresh(k) is empty
    for (size_t i = k; i-- > 0;) {
      const std::string with_i = members[i] + started[i + 1];
      fresh = needed[i] ? with_i : "(?:" + with_i + "|" + fresh + ")";
      if (fresh.size() > kMaxRegexSize) error(path, "the object has too many optional properties");
    }
    return "\\{" + fresh + "\\}";
  }

  std::string array(const Json& s, const std::string& path) {
    // Draft-4 tuples ("items": [...]) mean what prefixItems means today.
    const bool old_tuple = s.contains("items") && s["items"].is_array();
    const Json none = Json::array();
    const Json& prefix = old_tuple                   ? s["items"]
                         : s.contains("prefixItems") ? s["prefixItems"]
                                                     : none;
    const std::string prefix_path = path + (old_tuple ? "/items/" : "/prefixItems/");
    if (!prefix.is_array()) error(path + "/prefixItems", "prefixItems must be an array");
    const Json items =
        old_tuple ? s.value("additionalItems", Json(false)) : s.value("items", Json());
    const bool no_more = items.is_boolean() && !items.get<bool>();
    const std::string item = items.is_null() || no_more ? "" : value(items, path + "/items");
    if (!prefix.empty()) {
      // The whole tuple, then further elements only when `items` is a schema.
      std::string out = "\\[";
      for (size_t i = 0; i < prefix.size(); ++i)
        out += (i ? "," + kWs : "") + value(prefix[i], prefix_path + std::to_string(i));
      if (!item.empty()) out += "(?:," + kWs + item + ")*";
      return out + "\\]";
    }
    if (no_more) return "\\[\\]";
    const std::string v = item.empty() ? any_json_value_regex(kAnyDepth - 1) : item;
    const int64_t lo = count(s, "minItems", 0, path);
    const int64_t hi = count(s, "maxItems", -1, path);
    if (hi >= 0 && hi < lo) error(path, "maxItems is below minItems");
    if (hi == 0) return "\\[\\]";
    const std::string more = "(?:," + kWs + v + "){" + std::to_string(lo == 0 ? 0 : lo - 1) + "," +
                             (hi < 0 ? "" : std::to_string(hi - 1)) + "}";
    if (lo == 0) return "\\[(?:" + v + more + ")?\\]";
    return "\\[" + v + more + "\\]";
  }

  std::string ref(const Json& r, const std::string& path) {
    if (!r.is_string()) error(path + "/$ref", "$ref must be a string");
    const std::string target = r.get<std::string>();
    if (target.empty() || target[0] != '#')
      error(path + "/$ref", "only local $ref ('#/...') is supported, not '" + target + "'");
    // Recursion is unrolled: a $ref already open kMaxRefDepth times matches nothing, so optional
    // members and array items through it drop out and nesting stops there.
    if (std::count(stack_.begin(), stack_.end(), target) >= kMaxRefDepth) return kNothing;
    const Json* resolved = nullptr;
    try {
      resolved = &root_.at(Json::json_pointer(target.substr(1)));
    } catch (const nlohmann::json::exception&) {
      error(path + "/$ref", "$ref '" + target + "' names nothing in the schema");
    }
    stack_.push_back(target);
    std::string out = value(*resolved, target.substr(1));
    stack_.pop_back();
    return out;
  }

  const Json& root_;
  std::vector<std::string> stack_;  // $refs being expanded, to bound recursion
};

}  // namespace

std::string any_json_value_regex(int depth) {
  std::vector<std::string> alts = {kString, kNumber, kBoolean, kNull};
  if (depth > 0) {
    const std::string inner = any_json_value_regex(depth - 1);
    alts.push_back(object_of(kString, inner));
    alts.push_back(array_of(inner));
  }
  return alternation(alts);
}

std::string json_schema_to_regex(std::string_view schema_json) {
  Json schema;
  try {
    schema = Json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    fail(SABLE_ERR_INVALID_ARGUMENT, std::string("the schema is not valid JSON: ") + e.what());
  }
  std::string out = Converter(schema).value(schema, "");
  if (out.size() > kMaxRegexSize) fail(SABLE_ERR_INVALID_ARGUMENT, "the schema is too large");
  return out;
}

}  // namespace sable::grammar
