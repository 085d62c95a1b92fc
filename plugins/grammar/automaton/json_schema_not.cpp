// JSON schema `not` (see json_schema.h): a regex has no complement, so `not` is rewritten into the
// positive keywords it amounts to where that is exact, and refused by name everywhere else:
//   not {} / not true        -> the schema allows nothing (an anyOf branch drops out)
//   not false                -> no constraint
//   not {not: X}             -> allOf X
//   not {type: T}            -> the other types (not integer beside number: refused)
//   enum/const beside not {enum/const} -> the listed values the negated list misses
//   not {required: [a]}, not {anyOf: [{required: [a]}, {required: [b]}, ...]}
//                            -> an object without a (nor b): "x-sable-absent": [a, b], which
//                               object() honours (json_schema_containers.cpp)
//   not {properties: {p: S}, required: [r]} (type object or none)
//                            -> anyOf: another type (when typed), an object holding p whose value
//                               is not S, an object without r (further members anywhere
//                               where that fits: "x-sable-extras-anywhere")
//   not of `required` lists, anyOf and allOf of them (De Morgan)
//                            -> objects without one name of each list: not {required: [a, b]}
//                               is anyOf [{x-sable-absent: [a]}, {x-sable-absent: [b]}]
// Beside them (not negations, but rewritten the same way): `if`/`then`/`else` (conditional) and
// `dependencies`/`dependentSchemas` with a schema (schema_dependencies).
// Other forms become a difference of automata where the negated schema is written exactly
// (json_schema_bool.cpp).
#include <algorithm>
#include <optional>

#include "json_schema_converter.h"
#include "schema_eval.h"
#include "schema_merge.h"

namespace sable::grammar::schema {
namespace {

const std::vector<std::string> kAllTypes = {"string", "number", "integer", "boolean",
                                            "null",   "object", "array"};

// Whether `s` holds no keys but `keys` and annotations.
bool only(const Json& s, std::initializer_list<const char*> keys) {
  if (!s.is_object()) return false;
  for (auto it = s.begin(); it != s.end(); ++it)
    if (!is_annotation_keyword(it.key()) &&
        std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
      return false;
  return true;
}

std::vector<std::string> type_names(const Json& t, const std::string& path) {
  std::vector<std::string> out;
  for (const Json& x : t.is_array() ? t : Json::array({t})) {
    if (!x.is_string()) Converter::error(path + "/type", "type entries must be strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// `not`'s "these properties are present" forms (`required`, anyOf and allOf of them) as a
// disjunction of conjunctions of names, or none for another form (or past kMaxClauses).
constexpr size_t kMaxClauses = 64;
using Clauses = std::vector<std::vector<std::string>>;
std::optional<Clauses> required_clauses(const Json& n) {
  if (only(n, {"required"})) {
    if (!n["required"].is_array()) return std::nullopt;
    std::vector<std::string> names;
    for (const Json& r : n["required"]) {
      if (!r.is_string()) return std::nullopt;
      names.push_back(r.get<std::string>());
    }
    return Clauses{names};
  }
  const bool any = only(n, {"anyOf"}), all = only(n, {"allOf"});
  if (!any && !all) return std::nullopt;
  const Json& list = n[any ? "anyOf" : "allOf"];
  if (!list.is_array() || list.empty()) return std::nullopt;
  Clauses out = any ? Clauses{} : Clauses{{}};
  for (const Json& branch : list) {
    auto c = required_clauses(branch);
    if (!c) return std::nullopt;
    if (any) {
      out.insert(out.end(), c->begin(), c->end());
    } else {  // (a | b) & (c | d): every pair's names together
      Clauses pairs;
      for (const auto& x : out)
        for (const auto& y : *c) {
          pairs.push_back(x);
          pairs.back().insert(pairs.back().end(), y.begin(), y.end());
        }
      out = std::move(pairs);
    }
    if (out.size() > kMaxClauses) return std::nullopt;
  }
  return out;
}

// not (C1 | C2 | ...) with each Ci "all of its names present": every Ci misses one of its names,
// so each choice of one name per clause is a set of names absent together (a disjunction of them).
std::optional<Clauses> absent_sets(const Clauses& present) {
  Clauses out{{}};
  for (const auto& clause : present) {
    Clauses next;
    for (const auto& chosen : out)
      for (const std::string& name : clause) {
        next.push_back(chosen);
        if (std::find(chosen.begin(), chosen.end(), name) == chosen.end())
          next.back().push_back(name);
      }
    out = std::move(next);
    if (out.size() > kMaxClauses) return std::nullopt;
  }
  return out;
}

// not {properties: {p: S}, required: [r], type: object}: a value violates it by being another
// type, holding some p whose value violates S, or missing some r. The alternatives (objects
// unless `rest_types` says otherwise), or none for another form. The object alternatives are
// marked "x-sable-extras-anywhere" (object(): further members anywhere among the declared ones,
// as explicit additionalProperties are written): each declares a member the others do not, so
// with implied further members only after the declared ones, a valid object whose further
// members come first ({"x":1,"q":"b"}: x further in the one that declares q) could match none.
std::optional<Json> object_violations(const Json& n, const std::vector<std::string>& rest_types,
                                      const std::vector<std::string>& required_by_rest) {
  if (!n.is_object() || !n.contains("properties") || !n["properties"].is_object()) return std::nullopt;
  for (auto it = n.begin(); it != n.end(); ++it)
    if (it.key() != "properties" && it.key() != "required" && it.key() != "type" &&
        !is_annotation_keyword(it.key()) && is_schema_keyword(it.key()))
      return std::nullopt;
  Json out = Json::array();
  if (n.contains("type")) {
    if (n["type"] != Json("object")) return std::nullopt;
    Json others = Json::array();
    for (const std::string& t : rest_types)
      if (t != "object") others.push_back(t);
    if (!others.empty()) out.push_back(Json{{"type", others}});
  }
  for (auto p = n["properties"].begin(); p != n["properties"].end(); ++p) {
    if (p.value() == Json(true) || p.value() == Json::object()) continue;  // nothing to violate
    Json violation = {{"type", "object"}, {"required", Json::array({p.key()})}, {"x-sable-extras-anywhere", true}};
    if (p.value() != Json(false)) violation["properties"] = Json{{p.key(), Json{{"not", p.value()}}}};
    out.push_back(std::move(violation));
  }
  if (n.contains("required")) {
    if (!n["required"].is_array()) return std::nullopt;
    for (const Json& r : n["required"]) {
      if (!r.is_string()) return std::nullopt;
      if (has(required_by_rest, r.get<std::string>())) continue;  // cannot be missing
      out.push_back(
          Json{{"type", "object"}, {"x-sable-absent", Json::array({r})}, {"x-sable-extras-anywhere", true}});
    }
  }
  return out;
}

}  // namespace

Json conditional(const Json& s) {
  Json rest = s;
  for (const char* key : {"if", "then", "else"}) rest.erase(key);
  const Json& condition = s["if"];
  const Json then_schema = s.value("then", Json(true));
  const Json else_schema = s.value("else", Json(true));
  Json branches = Json::array({Json{{"allOf", Json::array({condition, then_schema})}},
                               Json{{"allOf", Json::array({else_schema})}, {"not", condition}}});
  Json all = rest.value("allOf", Json::array());
  all.push_back(Json{{"anyOf", std::move(branches)}});
  rest["allOf"] = std::move(all);
  return rest;
}

std::optional<Json> schema_dependencies(const Json& s) {
  // (Every schema passes here: look before copying.)
  auto schema_valued = [](const Json& dependent) {
    return !dependent.is_array() && !(dependent.is_object() && only(dependent, {"required"}));
  };
  bool found = false;
  for (const char* key : {"dependencies", "dependentSchemas"})
    if (s.contains(key) && s[key].is_object())
      found = found || std::any_of(s[key].begin(), s[key].end(), schema_valued);
  if (!found) return std::nullopt;
  Json out = s;
  Json all = s.value("allOf", Json::array());
  bool any = false;
  for (const char* key : {"dependencies", "dependentSchemas"}) {
    if (!s.contains(key) || !s[key].is_object()) continue;
    for (auto it = s[key].begin(); it != s[key].end(); ++it) {
      const Json& dependent = it.value();
      if (!schema_valued(dependent)) continue;  // a list of names: dependentRequired's form
      any = true;
      out[key].erase(it.key());
      if (dependent == Json(true)) continue;
      Json branches = Json::array({Json{{"x-sable-absent", Json::array({it.key()})}}});
      if (dependent != Json(false))
        branches.push_back(
            Json{{"required", Json::array({it.key()})}, {"allOf", Json::array({dependent})}});
      all.push_back(Json{{"anyOf", std::move(branches)}});
    }
    if (out[key].empty()) out.erase(key);
  }
  if (!any) return std::nullopt;
  out["allOf"] = std::move(all);
  return out;
}

bool allows_nothing(const Json& s) {
  if (s.is_boolean()) return !s.get<bool>();
  if (s.is_object() && s.contains("allOf") && s["allOf"].is_array())  // (an item that does)
    for (const Json& item : s["allOf"])
      if (allows_nothing(item)) return true;
  if (!s.is_object() || !s.contains("not")) return false;
  const Json& n = s["not"];
  return (n.is_boolean() && n.get<bool>()) || (n.is_object() && only(n, {}));
}

Json Converter::negation(const Json& s, const std::string& path) {
  const Json& n = s["not"];
  const std::string at = path + "/not";
  Json rest = s;
  rest.erase("not");
  if (n.is_boolean()) return n.get<bool>() ? Json(false) : rest;
  if (!n.is_object()) error(at, "a schema must be an object or a boolean");
  if (only(n, {})) return Json(false);
  if (only(n, {"not"})) {  // double negation
    Json all = rest.value("allOf", Json::array());
    all.push_back(n["not"]);
    rest["allOf"] = std::move(all);
    return rest;
  }
  if (only(n, {"type"})) {
    std::vector<std::string> excluded = type_names(n["type"], at);
    if (has(excluded, "number")) excluded.push_back("integer");
    const std::vector<std::string> base =
        rest.contains("type") ? type_names(rest["type"], path) : kAllTypes;
    Json allowed = Json::array();
    for (const std::string& t : base) {
      if (has(excluded, t)) continue;
      if (t == "number" && has(excluded, "integer"))
        error(at, "'not' of integer beside number (numbers with a fraction) is not supported");
      if (t == "integer" && has(base, "number")) continue;  // inside number
      allowed.push_back(t);
    }
    if (allowed.empty()) return Json(false);
    rest["type"] = allowed.size() == 1 ? allowed[0] : allowed;
    return rest;
  }
  if ((rest.contains("enum") || rest.contains("const")) && only(n, {"enum", "const"})) {
    // Listed values beside `not` of listed values: those of the first list the second misses
    // (JSON equality: key order does not matter, 1 equals 1.0).
    std::vector<Json> excluded;
    if (n.contains("enum")) {
      if (!n["enum"].is_array()) error(at + "/enum", "enum must be an array");
      for (const Json& v : n["enum"])
        if (!n.contains("const") || json_equal(v, n["const"])) excluded.push_back(v);
    } else {
      excluded.push_back(n["const"]);
    }
    Json values = rest.contains("const") ? Json::array({rest["const"]}) : rest["enum"];
    if (!values.is_array()) error(path + "/enum", "enum must be an array");
    Json kept = Json::array();
    for (const Json& v : values) {
      const bool listed =
          !rest.contains("enum") || !rest["enum"].is_array() ||
          std::find(rest["enum"].begin(), rest["enum"].end(), v) != rest["enum"].end();
      const bool negated = std::any_of(excluded.begin(), excluded.end(),
                                       [&](const Json& e) { return json_equal(e, v); });
      if (listed && !negated) kept.push_back(v);
    }
    if (kept.empty()) return Json(false);
    rest.erase("const");
    rest["enum"] = std::move(kept);
    return rest;
  }
  // Names the schema itself requires can never be absent: alternatives needing that drop out.
  std::vector<std::string> required;
  for (const Json& r : rest.value("required", Json::array()))
    if (r.is_string()) required.push_back(r.get<std::string>());
  if (auto present = required_clauses(n)) {
    // Only objects can hold properties: every other value satisfies the `required` inside.
    if (rest.contains("type") && !has(type_names(rest["type"], path), "object")) return Json(false);
    auto sets = absent_sets(*present);
    if (!sets) error(at, "'not' of `required` forms expands to more than 64 alternatives");
    if (sets->size() > 1)
      std::erase_if(*sets, [&](const std::vector<std::string>& set) {
        return std::any_of(set.begin(), set.end(), [&](const std::string& x) { return has(required, x); });
      });
    if (sets->empty()) return Json(false);  // a clause with no names: every object satisfies it
    rest["type"] = "object";
    if (sets->size() == 1) {
      Json absent = rest.value("x-sable-absent", Json::array());
      for (const std::string& name : sets->front()) absent.push_back(name);
      rest["x-sable-absent"] = std::move(absent);
      return rest;
    }
    Json alternatives = Json::array();  // objects without all of one set's names
    for (const auto& set : *sets) alternatives.push_back(Json{{"x-sable-absent", set}});
    Json all = rest.value("allOf", Json::array());
    all.push_back(Json{{"anyOf", std::move(alternatives)}});
    rest["allOf"] = std::move(all);
    return rest;
  }
  const std::vector<std::string> rest_types =
      rest.contains("type") ? type_names(rest["type"], path) : kAllTypes;
  if (auto violations = object_violations(n, rest_types, required)) {
    // Only objects can violate a type-less one: every other value satisfies it.
    if (!n.contains("type") && !has(rest_types, "object")) return Json(false);
    if (violations->empty()) return Json(false);
    Json all = rest.value("allOf", Json::array());
    all.push_back(Json{{"anyOf", std::move(*violations)}});
    rest["allOf"] = std::move(all);
    return rest;
  }
  error(at, "'not' (negation) is supported only over {}, a type, `required` lists (and anyOf or "
            "allOf of them), `properties` with `required`, or another not; this one is not");
}

}  // namespace sable::grammar::schema
