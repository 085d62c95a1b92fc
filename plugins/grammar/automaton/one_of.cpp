// Disjointness of two JSON schemas from their keywords (see one_of.h).
#include "one_of.h"

#include <algorithm>
#include <optional>
#include <string>

#include "sable/cpp/error.h"
#include "json_schema_converter.h"
#include "schema_merge.h"

namespace sable::grammar {
namespace {

using Json = nlohmann::ordered_json;

// How deep $ref chains, allOf and nested property checks are followed before answering "can't tell".
constexpr int kMaxDepth = 8;

// JSON types as bits; "number" is kInteger | kFraction.
enum : uint32_t {
  kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kString = 16, kInteger = 32, kFraction = 64,
  kAnyType = 127
};

uint32_t type_bits(const std::string& t) {
  if (t == "null") return kNull;
  if (t == "boolean") return kBoolean;
  if (t == "object") return kObject;
  if (t == "array") return kArray;
  if (t == "string") return kString;
  if (t == "integer") return kInteger;
  if (t == "number") return kInteger | kFraction;
  return kAnyType;
}

uint32_t value_bits(const Json& v) {
  if (v.is_null()) return kNull;
  if (v.is_boolean()) return kBoolean;
  if (v.is_object()) return kObject;
  if (v.is_array()) return kArray;
  if (v.is_string()) return kString;
  if (v.is_number_integer() || v.is_number_unsigned()) return kInteger;
  const double d = v.get<double>();
  return d == static_cast<double>(static_cast<int64_t>(d)) ? kInteger : kFraction;
}

// The schema with its $ref and allOf merged in (as the converter merges them), or nothing when
// that fails or goes too deep.
std::optional<Json> resolved(const Json& s, const Json& root, int depth) {
  if (depth > kMaxDepth) return std::nullopt;
  if (s.is_boolean()) return s.get<bool>() ? Json::object() : s;
  if (!s.is_object()) return std::nullopt;
  if (!s.contains("$ref") && !s.contains("allOf")) return s;
  try {
    Json out = s;
    out.erase("$ref");
    out.erase("allOf");
    if (s.contains("allOf") && s["allOf"].is_array())
      for (const Json& item : s["allOf"]) {
        std::optional<Json> r = resolved(item, root, depth + 1);
        if (!r || !r->is_object()) return std::nullopt;
        merge_schema(out, *r, "");
      }
    if (s.contains("$ref")) {
      const std::string target = s["$ref"].get<std::string>();
      if (target.empty() || target[0] != '#') return std::nullopt;
      std::optional<Json> r =
          resolved(root.at(Json::json_pointer(target.substr(1))), root, depth + 1);
      if (!r || !r->is_object()) return std::nullopt;
      merge_schema(*r, out, "");
      return r;
    }
    return out;
  } catch (const std::exception&) {  // bad pointers, unmergeable keywords: can't tell
    return std::nullopt;
  }
}

// The constant values a schema allows, when it lists them (enum, const).
std::optional<Json> constants(const Json& s) {
  if (s.contains("const")) return Json::array({s["const"]});
  if (s.contains("enum") && s["enum"].is_array()) return s["enum"];
  return std::nullopt;
}

// The types a schema allows (all of them when nothing narrows it).
uint32_t types_of(const Json& s, const Json& root, int depth) {
  uint32_t bits = kAnyType;
  if (std::optional<Json> values = constants(s)) {
    uint32_t v = 0;
    for (const Json& x : *values) v |= value_bits(x);
    bits &= v;
  }
  if (s.contains("type")) {
    const Json& t = s["type"];
    uint32_t v = 0;
    for (const Json& name : t.is_array() ? t : Json::array({t}))
      v |= name.is_string() ? type_bits(name.get<std::string>()) : kAnyType;
    bits &= v;
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key) || !s[key].is_array()) continue;
    uint32_t v = 0;
    for (const Json& branch : s[key]) {
      std::optional<Json> r = resolved(branch, root, depth + 1);
      v |= r && r->is_object() ? types_of(*r, root, depth + 1) : (r ? 0u : kAnyType);
    }
    bits &= v;
  }
  return bits;
}

bool requires_property(const Json& s, const std::string& name) {
  if (!s.contains("required") || !s["required"].is_array()) return false;
  const Json& r = s["required"];
  return std::find(r.begin(), r.end(), Json(name)) != r.end();
}

// `s` allows no member called `name`.
bool excludes_property(const Json& s, const std::string& name) {
  if (s.contains("x-sable-absent") && s["x-sable-absent"].is_array()) {
    const Json& a = s["x-sable-absent"];
    if (std::find(a.begin(), a.end(), Json(name)) != a.end()) return true;
  }
  if (s.contains("properties") && s["properties"].is_object() && s["properties"].contains(name))
    return false;
  if (s.contains("patternProperties")) return false;
  const Json extra = s.value("additionalProperties", Json(true));
  return extra.is_boolean() && !extra.get<bool>();
}

bool disjoint(const Json& a0, const Json& b0, const Json& root, int depth) {
  const std::optional<Json> ra = resolved(a0, root, depth), rb = resolved(b0, root, depth);
  if (!ra || !rb) return false;
  if (ra->is_boolean() || rb->is_boolean())  // `false` matches nothing; `true` everything
    return (ra->is_boolean() && !ra->get<bool>()) || (rb->is_boolean() && !rb->get<bool>());
  const Json &a = *ra, &b = *rb;
  const uint32_t shared = types_of(a, root, depth) & types_of(b, root, depth);
  if (shared == 0) return true;
  const std::optional<Json> ca = constants(a), cb = constants(b);
  if (ca && cb) {
    for (const Json& x : *ca)
      if (std::find(cb->begin(), cb->end(), x) != cb->end()) return false;
    return true;
  }
  if (shared != kObject || depth >= kMaxDepth) return false;
  // Objects: a property both require with disjoint schemas, or one's required property the other
  // cannot have.
  for (const auto& [x, y] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
    if (!x->contains("required") || !(*x)["required"].is_array()) continue;
    for (const Json& name : (*x)["required"]) {
      if (!name.is_string()) continue;
      const std::string n = name.get<std::string>();
      if (excludes_property(*y, n)) return true;
      if (!requires_property(*y, n)) continue;
      if (!x->contains("properties") || !y->contains("properties")) continue;
      const Json& px = (*x)["properties"];
      const Json& py = (*y)["properties"];
      if (px.is_object() && py.is_object() && px.contains(n) && py.contains(n) &&
          disjoint(px[n], py[n], root, depth + 1))
        return true;
    }
  }
  return false;
}

}  // namespace

void exclude_other_branches(std::vector<Json>& branches) {
  std::vector<Json> original = branches;
  for (size_t i = 0; i < branches.size(); ++i) {
    Json& mine = branches[i];
    if (!mine.is_object() || !mine.contains("properties") || !mine["properties"].is_object() ||
        mine.contains("$ref") || mine.contains("allOf"))
      continue;
    if (mine.contains("patternProperties")) continue;
    for (size_t j = 0; j < original.size(); ++j) {
      const Json& other = original[j];
      if (j == i || !other.is_object() || !other.contains("required") ||
          !other["required"].is_array())
        continue;
      for (const Json& name : other["required"]) {
        if (!name.is_string() || requires_property(original[i], name.get<std::string>())) continue;
        // Values of i lack k (neither a member nor a further key: x-sable-absent), so j's
        // `required` fails on them.
        mine["properties"].erase(name.get<std::string>());
        Json absent = mine.value("x-sable-absent", Json::array());
        absent.push_back(name);
        mine["x-sable-absent"] = std::move(absent);
        break;
      }
    }
  }
}

std::optional<Json> one_of_required_lists(const Json& s) {
  if (!s.contains("oneOf") || !s["oneOf"].is_array() || s["oneOf"].empty()) return std::nullopt;
  std::vector<std::vector<std::string>> lists;
  for (const Json& branch : s["oneOf"]) {
    if (!branch.is_object()) return std::nullopt;
    std::vector<std::string> names;
    for (auto it = branch.begin(); it != branch.end(); ++it) {
      if (it.key() == "required" && it.value().is_array()) {
        for (const Json& n : it.value())
          if (!n.is_string()) return std::nullopt;
          else if (std::find(names.begin(), names.end(), n.get<std::string>()) == names.end())
            names.push_back(n.get<std::string>());
      } else if (!is_annotation_keyword(it.key()) &&
                 (it.key().starts_with("x-sable") || schema::is_schema_keyword(it.key()))) {
        return std::nullopt;
      }
    }
    lists.push_back(std::move(names));
  }
  Json alts = Json::array();
  size_t choices = 1;
  for (size_t i = 0; i < lists.size(); ++i) {
    Json others = Json::array();  // for each j, the names of R_j that R_i lacks
    bool possible = true;
    for (size_t j = 0; j < lists.size() && possible; ++j) {
      if (j == i) continue;
      Json missing = Json::array();
      for (const std::string& n : lists[j])
        if (std::find(lists[i].begin(), lists[i].end(), n) == lists[i].end()) missing.push_back(n);
      possible = !missing.empty();  // (R_j within R_i: every value of i matches j too)
      choices *= std::max<size_t>(missing.size(), 1);
      others.push_back(Json{{"required", std::move(missing)}});
    }
    if (!possible) continue;
    Json alt = {{"required", lists[i]}};
    if (!others.empty()) alt["not"] = Json{{"anyOf", std::move(others)}};
    alts.push_back(std::move(alt));
  }
  // The `not` becomes one branch per choice of a missing name from each list: keep it small.
  if (choices > kMaxRequiredChoices) return std::nullopt;
  Json out = s;
  out.erase("oneOf");
  if (alts.empty()) return Json(false);
  if (!out.contains("anyOf")) {
    out["anyOf"] = std::move(alts);
  } else {
    Json all = out.value("allOf", Json::array());
    if (!all.is_array()) return std::nullopt;
    all.push_back(Json{{"anyOf", std::move(alts)}});
    out["allOf"] = std::move(all);
  }
  return out;
}

bool provably_disjoint(const Json& a, const Json& b, const Json& root) {
  return disjoint(a, b, root, 0);
}

}  // namespace sable::grammar
