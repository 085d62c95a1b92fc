// Keyword-wise merge of JSON schemas (see schema_merge.h).
#include "schema_merge.h"

#include <algorithm>
#include <set>
#include <vector>

#include "json_schema_converter.h"
#include "numeric_range.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

using Json = nlohmann::ordered_json;

// anyOf/oneOf on both sides become the branches' pairs up to this many.
constexpr size_t kMaxDistributedBranches = 64;

[[noreturn]] void conflict(const std::string& key, const std::string& path, const std::string& why) {
  sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                   "allOf/$ref: '" + key + "' " + why + " (at " + (path.empty() ? "/" : path) + ")");
}

std::vector<std::string> type_list(const Json& t, const std::string& path) {
  std::vector<std::string> out;
  if (t.is_string()) out.push_back(t.get<std::string>());
  if (t.is_array())
    for (const Json& x : t)
      if (x.is_string()) out.push_back(x.get<std::string>());
  if (out.empty()) conflict("type", path, "must be a string or a list of strings");
  return out;
}

Json merged_types(const Json& a, const Json& b, const std::string& path) {
  const std::vector<std::string> ta = type_list(a, path), tb = type_list(b, path);
  auto has = [](const std::vector<std::string>& v, const std::string& t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  Json out = Json::array();
  for (const std::string& t : ta) {
    if (has(tb, t) || (t == "integer" && has(tb, "number"))) out.push_back(t);
    else if (t == "number" && has(tb, "integer")) out.push_back("integer");
  }
  if (out.empty()) conflict("type", path, "has no type in common between the schemas");
  return out.size() == 1 ? out[0] : out;
}

// The properties `mine` declares that `other` does not fall under other's additionalProperties
// (when it constrains: absent or true does not): each becomes allOf of its schema and that one,
// or, when that one is `false`, may not appear (x-sable-absent; refused when required).
void restrict_by_other_additional(Json& mine, const Json& other, const Json& required,
                                  const std::string& path) {
  if (!mine.contains("properties") || !mine["properties"].is_object()) return;
  if (!other.contains("additionalProperties")) return;
  const Json& extra = other["additionalProperties"];
  if (extra.is_boolean() && extra.get<bool>()) return;
  const Json none = Json::object();
  const Json& declared = other.contains("properties") ? other["properties"] : none;
  Json& props = mine["properties"];
  std::vector<std::string> excluded;
  for (auto p = props.begin(); p != props.end(); ++p) {
    if (declared.is_object() && declared.contains(p.key())) continue;
    if (other.contains("patternProperties"))
      conflict("additionalProperties", path, "beside patternProperties restricts property '" +
                                                 p.key() + "' of the other merged schema; "
                                                 "merging them is not supported");
    if (extra.is_boolean()) {
      if (std::find(required.begin(), required.end(), p.key()) != required.end())
        conflict("additionalProperties", path, "false in one merged schema excludes property '" +
                                                   p.key() + "', which is required: the schema "
                                                   "allows no object");
      excluded.push_back(p.key());
    } else {
      p.value() = Json{{"allOf", Json::array({p.value(), extra})}};
    }
  }
  if (excluded.empty()) return;
  for (const std::string& name : excluded) props.erase(name);
  // (ordered_json keeps members in a vector: a new key moves `props`, so it is not used after)
  if (!mine.contains("x-sable-absent")) mine["x-sable-absent"] = Json::array();
  for (const std::string& name : excluded) mine["x-sable-absent"].push_back(name);
}

}  // namespace

bool is_annotation_keyword(const std::string& key) {
  static const std::set<std::string> kAnnotations = {
      "title",    "description", "default",          "examples",        "deprecated",
      "readOnly", "writeOnly",   "$comment",         "$schema",         "$id",
      "$anchor",  "$vocabulary", "$dynamicAnchor",   "contentEncoding", "contentMediaType",
      "contentSchema", "$defs",  "definitions"};
  return kAnnotations.count(key) > 0;
}

void merge_schema(Json& a, const Json& b_in, const std::string& path) {
  // A name one schema declares and the other does not is one of the other's further members.
  Json required = Json::array();
  for (const Json* s : {static_cast<const Json*>(&a), &b_in})
    if (s->contains("required") && (*s)["required"].is_array())
      for (const Json& r : (*s)["required"]) required.push_back(r);
  // Keys matching one side's patternProperties are further members of the other side, which its
  // additionalProperties must then also govern: not expressed by a merge, refused.
  using Side = std::pair<const Json*, const Json*>;
  for (const auto& [x, y] : {Side{&a, &b_in}, Side{&b_in, &a}})
    if (x->contains("patternProperties") && y->contains("additionalProperties") &&
        (*y)["additionalProperties"] != Json(true))
      conflict("additionalProperties", path,
               "in one merged schema governs the keys of the "
               "other's patternProperties; merging them is not "
               "supported");
  Json b = b_in;
  restrict_by_other_additional(b, a, required, path);
  restrict_by_other_additional(a, b_in, required, path);
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (!a.contains(key)) {
      a[key] = v;
      continue;
    }
    Json& mine = a[key];
    // Keys no draft defines (x-... extensions, `help`, ...) are annotations too.
    if (mine == v || is_annotation_keyword(key) ||
        (key != "x-sable" && key != "x-sable-absent" && !schema::is_schema_keyword(key)))
      continue;
    if ((key == "required" || key == "x-sable-absent") && mine.is_array() && v.is_array()) {
      for (const Json& r : v)
        if (std::find(mine.begin(), mine.end(), r) == mine.end()) mine.push_back(r);
    } else if (key == "properties" && mine.is_object() && v.is_object()) {
      for (auto p = v.begin(); p != v.end(); ++p) {
        if (!mine.contains(p.key())) mine[p.key()] = p.value();
        else if (mine[p.key()] != p.value())
          mine[p.key()] = Json{{"allOf", Json::array({mine[p.key()], p.value()})}};
      }
    } else if (key == "additionalProperties" && !a.contains("patternProperties") &&
               !b.contains("patternProperties")) {
      // Keys neither side declares are further members of both: their values satisfy both.
      if (mine.is_boolean() || v.is_boolean()) {
        const Json& flag = mine.is_boolean() ? mine : v;
        if (flag.get<bool>())
          mine = mine.is_boolean() ? v : mine;
        else
          mine = false;
      } else {
        mine = Json{{"allOf", Json::array({mine, v})}};
      }
    } else if ((key == "anyOf" || key == "oneOf") && mine.is_array() && v.is_array() &&
               mine.size() * v.size() <= kMaxDistributedBranches) {
      // (x1 | x2) & (y1 | y2) is (x1 & y1) | (x1 & y2) | ...; for oneOf too: a value matches
      // (#x matched) * (#y matched) pairs, one exactly when it matches one x and one y.
      Json pairs = Json::array();
      for (const Json& x : mine)
        for (const Json& y : v) {
          Json pair = Json{{"allOf", Json::array({x, y})}};
          if (x.is_object() && y.is_object()) {
            Json merged = x;
            try {
              merge_schema(merged, y, path + "/" + key);
              pair = std::move(merged);
            } catch (const sable::cpp::Error&) {  // converted as the allOf
            }
          }
          pairs.push_back(std::move(pair));
        }
      mine = std::move(pairs);
    } else if (key == "type") {
      mine = merged_types(mine, v, path);
    } else if (key == "enum" && mine.is_array() && v.is_array()) {
      Json common = Json::array();
      for (const Json& x : mine)
        if (std::find(v.begin(), v.end(), x) != v.end()) common.push_back(x);
      if (common.empty()) conflict(key, path, "has no value in common between the schemas");
      mine = std::move(common);
    } else if ((key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
                key == "exclusiveMaximum" || key == "minLength" || key == "maxLength" ||
                key == "minItems" || key == "maxItems") &&
               mine.is_number() && v.is_number()) {
      const int c = compare_decimal(parse_decimal(mine.dump()), parse_decimal(v.dump()));
      const bool keep_larger = key.starts_with("min") || key == "exclusiveMinimum";
      if ((keep_larger && c < 0) || (!keep_larger && c > 0)) mine = v;
    } else {
      conflict(key, path, "has different values in the merged schemas; merging them is not supported");
    }
  }
}

}  // namespace sable::grammar
