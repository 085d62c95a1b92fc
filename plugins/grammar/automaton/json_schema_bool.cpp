// `not` and overlapping `oneOf` as exact boolean combinations of automata (product.h), where the
// rewrites of json_schema_not.cpp and the disjointness proofs of one_of.h do not apply.
//
// Subtracting a language is only right when it is EXACT: a value the negated schema allows but
// whose text its regex misses would be accepted. The converter's regexes are often subsets (a
// fixed member order, bounded depth, canonical numbers), so each negated or overlapping schema is
// classified per JSON type (typed_part): everything of that type, nothing, an exact regex, or an
// inexact one; a combination that needs an inexact part is refused naming the type. The texts
// themselves are first narrowed to one writing per value's string escapes (canonical_texts(): as
// nlohmann::json's dump() and Python's json.dumps(ensure_ascii=False) write them), so an exact
// part only has to hold that writing (a pattern's automaton does not write "\u0061" for "a").
#include <algorithm>
#include <set>

#include "json_schema_converter.h"
#include "json_string.h"
#include "one_of.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

namespace sable::grammar::schema {
namespace {

// JSON texts whose strings hold every character raw but `"` and `\` (escaped so), the controls
// with short escapes (\b \f \n \r \t) and the other controls as lowercase \u00xx; whose numbers
// have no exponent (outside strings an `e` only ends `true` and `false`), and whose containers nest
// at most kAnyDepth deep, as deep as the generic value ({}, further members, items without a
// schema) is written wherever it appears, so that a part allowing all objects or arrays is exact.
const std::string& canonical_texts() {
  static const std::string texts = [] {
    const std::string atom =
        R"(ue|se|[^"eE\[\]{}]|"(?:[^"\\\x00-\x1F]|\\["\\bfnrt]|\\u00(?:0[0-7]|0b|0e|0f|1[0-9a-f]))*")";
    std::string level = "(?:" + atom + ")*";
    for (int depth = 1; depth <= kAnyDepth; ++depth)
      level = "(?:" + atom + "|[\\[{]" + level + "[\\]}])*";
    return level;
  }();
  return texts;
}

const char* const kTypes[] = {"string", "number", "boolean", "null", "object", "array"};

// The first byte of a text of each type of kTypes.
const char* first_bytes(const std::string& type) {
  if (type == "string") return "\"";
  if (type == "number") return "\\-0-9";
  if (type == "boolean") return "tf";
  if (type == "null") return "n";
  if (type == "object") return "\\{";
  return "\\[";
}

bool has(const Json& list, const std::string& name) {
  for (const Json& x : list)
    if (x.is_string() && x.get<std::string>() == name) return true;
  return false;
}

// What a schema's automaton holds of the values of one type.
enum class Part { kAll, kNothing, kExact, kInexact };

// At most this many required properties in an exact object: (members + 1) * 2^required stays
// under kMaxRepeatableAlternatives, so it is never written in declared order.
constexpr size_t kMaxExactRequired = 10;
static_assert(static_cast<int64_t>(kMaxAnyOrderProperties + 1) << kMaxExactRequired <
              kMaxRepeatableAlternatives);

Part object_part(const Json& b, const Json& root, bool any_order, int depth);
Part array_part(const Json& b, const Json& root, bool any_order, int depth);

// Most oneOf branches overlapping on objects that one_of_combination combines.
constexpr size_t kMaxObjectOperands = 8;

// How many $refs typed_part follows inside each other.
constexpr int kMaxPartDepth = 8;

Part typed_part(const Json& b, const std::string& type, const Json& root, bool any_order,
                int depth = 0) {
  if (b.is_boolean()) return b.get<bool>() ? Part::kAll : Part::kNothing;
  if (!b.is_object() || depth > kMaxPartDepth) return Part::kInexact;
  // A $ref or an anyOf with nothing else beside it: its target, the union of its branches.
  bool alone = true;
  for (auto it = b.begin(); it != b.end(); ++it)
    alone = alone && (it.key() == "$ref" || it.key() == "anyOf" || is_annotation_keyword(it.key()));
  if (alone && b.contains("$ref") != b.contains("anyOf")) {
    if (b.contains("$ref")) {
      const Json& r = b["$ref"];
      if (!r.is_string() || !r.get<std::string>().starts_with("#")) return Part::kInexact;
      const Json* target = nullptr;
      try {
        target = &root.at(Json::json_pointer(r.get<std::string>().substr(1)));
      } catch (const nlohmann::json::exception&) {
        return Part::kInexact;
      }
      return typed_part(*target, type, root, any_order, depth + 1);
    }
    if (!b["anyOf"].is_array()) return Part::kInexact;
    bool all_nothing = true, exact = true;
    for (const Json& branch : b["anyOf"]) {
      const Part part = typed_part(branch, type, root, any_order, depth + 1);
      if (part == Part::kAll) return Part::kAll;
      all_nothing = all_nothing && part == Part::kNothing;
      exact = exact && part != Part::kInexact;
    }
    return all_nothing ? Part::kNothing : exact ? Part::kExact : Part::kInexact;
  }
  if (b.contains("not")) {
    // `not X` beside the rest, X of scalars only: per scalar type the rest's part less X's (a
    // difference, or a rewrite into other types or values); containers as the rest has them.
    Json rest = b;
    rest.erase("not");
    const Json& x = b["not"];
    for (const char* container : {"object", "array"})
      if (typed_part(x, container, root, any_order, depth + 1) != Part::kNothing)
        return Part::kInexact;
    const Part pr = typed_part(rest, type, root, any_order, depth + 1);
    if (type == "object" || type == "array") return pr;
    const Part px = typed_part(x, type, root, any_order, depth + 1);
    if (pr == Part::kNothing || px == Part::kAll) return Part::kNothing;
    if (pr == Part::kInexact || px == Part::kInexact) return Part::kInexact;
    return px == Part::kNothing ? pr : Part::kExact;
  }
  if (b.contains("allOf") && !b.contains("$ref")) {
    // Inline items merged keyword by keyword, as the converter merges them (json_schema_refs.cpp):
    // the merged schema's part; where a merge fails the converter intersects the automata, whose
    // intersection is exact where every item is.
    if (!b["allOf"].is_array()) return Part::kInexact;
    Json merged = b;
    merged.erase("allOf");
    bool merges = true;
    for (const Json& item : b["allOf"]) {
      if (item.is_boolean() && item.get<bool>()) continue;
      if (!item.is_object() || item.contains("$ref")) return Part::kInexact;
      try {
        merge_schema(merged, item, "");
      } catch (const sable::cpp::Error&) {
        merges = false;
      }
    }
    if (merges) return typed_part(merged, type, root, any_order, depth + 1);
    merged = b;
    merged.erase("allOf");
    std::vector<Part> parts = {typed_part(merged, type, root, any_order, depth + 1)};
    for (const Json& item : b["allOf"]) parts.push_back(typed_part(item, type, root, any_order, depth + 1));
    auto any = [&](Part p) { return std::find(parts.begin(), parts.end(), p) != parts.end(); };
    if (any(Part::kNothing)) return Part::kNothing;
    if (any(Part::kInexact)) return Part::kInexact;
    return any(Part::kExact) ? Part::kExact : Part::kAll;
  }
  bool constrained = false;
  bool integers_only = false;
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string& key = it.key();
    if (key == "type") {
      const Json names = it.value().is_array() ? it.value() : Json::array({it.value()});
      // Integers alone are written exactly (with zero fractions, SchemaOptions::exact) when
      // unbounded: checked below.
      integers_only = type == "number" && has(names, "integer") && !has(names, "number");
      if (!has(names, type) && !integers_only) return Part::kNothing;
    } else if (key == "enum" || key == "const") {
      continue;
    } else if (key == "format") {
      // int32/int64 bound integers; a format no draft defines is an annotation; the others'
      // automata are subsets here.
      if (type == "number" && (it.value() == "int32" || it.value() == "int64"))
        return Part::kInexact;
      if (it.value().is_string() && !is_json_schema_format(it.value().get<std::string>())) continue;
      if (type == "string") return Part::kInexact;
    } else if (key == "pattern") {
      if (type == "string" && !pattern_written_exactly(it.value())) return Part::kInexact;
      constrained = constrained || type == "string";
    } else if (key == "minLength" || key == "maxLength") {
      constrained = constrained || type == "string";
    } else if (is_annotation_keyword(key) || (key != "x-sable" && !is_schema_keyword(key))) {
      continue;
    } else if (const char* family = keyword_family(key); family && type != family) {
      continue;  // a keyword of another type says nothing about this one
    } else if (type == "object" &&
               (key == "properties" || key == "required" || key == "additionalProperties")) {
      constrained = true;  // object_part below
    } else if (type == "array" && (key == "items" || key == "minItems" || key == "maxItems")) {
      constrained = true;  // array_part below
    } else {
      return Part::kInexact;  // combinators, references, numbers, containers: not classified
    }
  }
  if (integers_only && (b.contains("enum") || b.contains("const"))) return Part::kInexact;
  if (b.contains("enum") || b.contains("const")) {
    // (Strings: the listed values filtered by their length and exact pattern, exactly.)
    if (constrained && type != "string") return Part::kInexact;
    const Json values = b.contains("const") ? Json::array({b["const"]}) : b["enum"];
    if (!values.is_array()) return Part::kInexact;
    bool any = false;
    for (const Json& v : values) any = any || value_has_type(v, type);
    if (!any) return Part::kNothing;
    // Numbers have many writings (1, 1.0, 1e0), containers many layouts.
    return type == "string" || type == "boolean" || type == "null" ? Part::kExact : Part::kInexact;
  }
  if (integers_only) return Part::kExact;
  if (constrained && type == "object") return object_part(b, root, any_order, depth);
  if (constrained && type == "array") return array_part(b, root, any_order, depth);
  if (constrained) return Part::kExact;
  return Part::kAll;
}

// Whether every value of `schema` is written exactly, whatever its type.
bool exact_for_every_type(const Json& schema, const Json& root, bool any_order, int depth) {
  for (const char* t : kTypes)
    if (typed_part(schema, t, root, any_order, depth) == Part::kInexact) return false;
  return true;
}

// Objects of at most 12 declared properties and 10 required ones whose values, and further
// members' (additionalProperties absent, true or a schema), are written exactly: the converter
// writes them in any order with further members anywhere among them (SchemaOptions::exact,
// json_schema_any_object.cpp), or with members repeatable, which only adds texts.
Part object_part(const Json& b, const Json& root, bool any_order, int depth) {
  if (!any_order) return Part::kInexact;  // x-sable asks for declared order
  const Json props = b.value("properties", Json::object());
  const Json required = b.value("required", Json::array());
  if (!props.is_object() || !required.is_array() || props.size() > kMaxAnyOrderProperties ||
      required.size() > kMaxExactRequired)
    return Part::kInexact;
  for (auto p = props.begin(); p != props.end(); ++p)
    if (!exact_for_every_type(p.value(), root, any_order, depth + 1)) return Part::kInexact;
  if (b.contains("additionalProperties") &&
      !exact_for_every_type(b["additionalProperties"], root, any_order, depth + 1))
    return Part::kInexact;
  return Part::kExact;
}

// Arrays of `items` (a schema written exactly, or any value) between minItems and maxItems.
Part array_part(const Json& b, const Json& root, bool any_order, int depth) {
  const Json items = b.value("items", Json(true));
  if (items.is_array() || !exact_for_every_type(items, root, any_order, depth + 1))
    return Part::kInexact;
  return Part::kExact;
}

// $refs nested near the unrolling bound match nothing (json_schema_refs.cpp): the parts would
// not be exact there.
std::string deep_refusal() {
  return "; as a combination of automata: too deep inside $refs for its parts to be exact";
}

}  // namespace

// A pattern the converter writes exactly: anchored at both ends without alternatives, or in the
// search form json_schema.cpp uses when it stays small.
bool pattern_written_exactly(const Json& pattern) {
  if (!pattern.is_string()) return false;
  const std::string p = pattern.get<std::string>();
  if (p.find('|') == std::string::npos && p.size() >= 2 && p.front() == '^' && p.back() == '$' &&
      p[p.size() - 2] != '\\')
    return true;
  return pattern_search_form_fits(p);
}

std::string Converter::difference(const Json& s, const std::string& path,
                                  const std::string& refusal) {
  if (stack_.size() + kMaxPartDepth >= kMaxRefNesting) error(path + "/not", refusal + deep_refusal());
  const Json& b = s["not"];
  Json rest = s;
  rest.erase("not");
  std::vector<std::string> types;
  if (rest.contains("type")) {
    const Json names = rest["type"].is_array() ? rest["type"] : Json::array({rest["type"]});
    for (const char* t : kTypes)
      if (has(names, t) || (std::string(t) == "number" && has(names, "integer"))) types.push_back(t);
  } else {
    types.assign(std::begin(kTypes), std::end(kTypes));
  }
  // Values of a type the negated schema allows whole are all excluded; the others stay, less
  // those it allows (exactly written).
  std::string firsts;
  for (const std::string& t : types) {
    const Part part = typed_part(b, t, root_, options_.order != PropertyOrder::kDeclared);
    if (part == Part::kAll) continue;
    if (part == Part::kInexact)
      error(path + "/not", refusal + "; as a difference of automata: the negated schema's " + t +
                               " values are not written exactly");
    firsts += first_bytes(t);
  }
  if (firsts.empty()) error(path + "/not", "the schema allows nothing (`not`)");
  return "(?&-((?&a(" + value(rest, path) + ")(" + canonical_texts() + ")([" + firsts + "][\\s\\S]*)))(" +
         exact_value(b, path + "/not") + "))";
}

std::string Converter::exact_value(const Json& s, const std::string& path) {
  const SchemaOptions outer = options_;
  options_.exact = true;
  try {
    std::string out = value(s, path);
    options_ = outer;
    return out;
  } catch (...) {
    options_ = outer;
    throw;
  }
}

std::string Converter::one_of_combination(const std::vector<Json>& branches,
                                          const std::vector<size_t>& index,
                                          const std::string& path, const std::string& refusal) {
  if (stack_.size() + kMaxPartDepth >= kMaxRefNesting)
    error(path + "/oneOf", refusal + deep_refusal());
  // Two branches that may both hold values of a type must both be written exactly there. Each
  // branch keeps the types it can be the only match of (narrowed by `type`).
  std::vector<Json> kept(branches.size(), Json::array());
  std::vector<Json> shared(branches.size(), Json::array());  // kept types others hold too
  for (const char* t : kTypes) {
    std::vector<size_t> holders;
    std::vector<Part> parts;
    for (size_t b = 0; b < branches.size(); ++b)
      if (const Part part =
              typed_part(branches[b], t, root_, options_.order != PropertyOrder::kDeclared);
          part != Part::kNothing) {
        holders.push_back(b);
        parts.push_back(part);
      }
    // All allow every value of the type: every such value matches several, none is kept.
    if (parts.size() >= 2 &&
        std::all_of(parts.begin(), parts.end(), [](Part p) { return p == Part::kAll; }))
      continue;
    for (size_t i = 0; i < parts.size() && parts.size() >= 2; ++i)
      if (parts[i] == Part::kInexact)
        error(path + "/oneOf", refusal + "; as a combination of automata: a branch's " +
                                   std::string(t) + " values are not written exactly");
    for (size_t b : holders) {
      kept[b].push_back(t);
      if (holders.size() >= 2) shared[b].push_back(t);
    }
    // Each overlapping object branch is an operand every product state steps, its members
    // tracked in every order: past a few the masks cost milliseconds each.
    if (std::string(t) == "object" && holders.size() > kMaxObjectOperands)
      error(path + "/oneOf", refusal + "; as a combination of automata: more than " +
                                 std::to_string(kMaxObjectOperands) +
                                 " branches that may hold the same object");
  }
  // Each branch narrowed to its kept types: those another branch holds too written exactly, the
  // others as usual.
  std::string one = "(?&1";
  for (size_t b = 0; b < branches.size(); ++b) {
    const std::string at = path + "/oneOf/" + std::to_string(index[b]);
    Json alone = Json::array();
    for (const Json& t : kept[b])
      if (!has(shared[b], t.get<std::string>())) alone.push_back(t);
    std::vector<std::string> alts;
    for (const Json* types : {&shared[b], &alone}) {
      if (types->empty()) continue;
      Json narrowed = branches[b];
      try {
        merge_schema(narrowed, Json{{"type", *types}}, path);
      } catch (const sable::cpp::Error&) {  // (its own type excludes them all)
        continue;
      }
      alts.push_back(types == &shared[b] ? exact_value(narrowed, at) : value(narrowed, at));
    }
    if (!alts.empty()) one += "(" + group(alts) + ")";  // (none: its values match others too)
  }
  if (one == "(?&1") error(path + "/oneOf", "every value matches several branches or none");
  return "(?&a(" + one + "))(" + canonical_texts() + "))";
}

}  // namespace sable::grammar::schema
