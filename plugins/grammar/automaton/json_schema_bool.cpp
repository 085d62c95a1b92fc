// `not` and overlapping `oneOf` as exact boolean combinations of automata (product.h), where the
// rewrites of json_schema_not.cpp and the disjointness proofs of one_of.h do not apply.
//
// Subtracting a language is only right when it is EXACT: a value the negated schema allows but
// whose text its regex misses would be accepted. The converter's regexes are often subsets (a
// fixed member order, bounded depth, canonical numbers), so each negated or overlapping schema is
// classified per JSON type (typed_part): everything of that type, nothing, an exact regex, or an
// inexact one; a combination that needs an inexact part is refused naming the type. The texts
// themselves are first narrowed to one writing per value's string escapes (kCanonical: as
// nlohmann::json's dump() and Python's json.dumps(ensure_ascii=False) write them), so an exact
// part only has to hold that writing (a pattern's automaton does not write "\u0061" for "a").
#include <set>

#include "json_schema_converter.h"
#include "json_string.h"
#include "one_of.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

namespace sable::grammar::schema {
namespace {

// JSON texts whose strings hold every character raw but `"` and `\` (escaped so), the controls
// with short escapes (\b \f \n \r \t) and the other controls as lowercase \u00xx.
const std::string kCanonical =
    R"((?:[^"]|"(?:[^"\\\x00-\x1F]|\\["\\bfnrt]|\\u00(?:0[0-7]|0b|0e|0f|1[0-9a-f]))*")*)";

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

bool of_type(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  return v.is_array();
}

// What a schema's automaton holds of the values of one type.
enum class Part { kAll, kNothing, kExact, kInexact };

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

// How many $refs typed_part follows inside each other.
constexpr int kMaxPartDepth = 8;

Part typed_part(const Json& b, const std::string& type, const Json& root, int depth = 0) {
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
      return typed_part(*target, type, root, depth + 1);
    }
    if (!b["anyOf"].is_array()) return Part::kInexact;
    bool all_nothing = true, exact = true;
    for (const Json& branch : b["anyOf"]) {
      const Part part = typed_part(branch, type, root, depth + 1);
      if (part == Part::kAll) return Part::kAll;
      all_nothing = all_nothing && part == Part::kNothing;
      exact = exact && part != Part::kInexact;
    }
    return all_nothing ? Part::kNothing : exact ? Part::kExact : Part::kInexact;
  }
  bool constrained = false;
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string& key = it.key();
    if (key == "type") {
      const Json names = it.value().is_array() ? it.value() : Json::array({it.value()});
      if (type == "number" && has(names, "integer") && !has(names, "number")) return Part::kInexact;
      if (!has(names, type)) return Part::kNothing;
    } else if (key == "enum" || key == "const") {
      continue;
    } else if (key == "format") {
      // A format no draft defines is an annotation; the others' automata are subsets here.
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
    } else {
      return Part::kInexact;  // combinators, references, numbers, containers: not classified
    }
  }
  if (b.contains("enum") || b.contains("const")) {
    if (constrained) return Part::kInexact;
    const Json values = b.contains("const") ? Json::array({b["const"]}) : b["enum"];
    if (!values.is_array()) return Part::kInexact;
    bool any = false;
    for (const Json& v : values) any = any || of_type(v, type);
    if (!any) return Part::kNothing;
    // Numbers have many writings (1, 1.0, 1e0), containers many layouts.
    return type == "string" || type == "boolean" || type == "null" ? Part::kExact : Part::kInexact;
  }
  if (constrained) return Part::kExact;
  return Part::kAll;
}

// An automaton of all the values of `type`: exact for the scalars (any string escape, any number
// form), a subset for containers (bounded depth, layout).
bool all_written_exactly(const std::string& type) { return type != "object" && type != "array"; }

// $refs nested near the unrolling bound match nothing (json_schema_refs.cpp): the parts would
// not be exact there.
std::string deep_refusal() {
  return "; as a combination of automata: too deep inside $refs for its parts to be exact";
}

}  // namespace

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
    const Part part = typed_part(b, t, root_);
    if (part == Part::kAll) continue;
    if (part == Part::kInexact)
      error(path + "/not", refusal + "; as a difference of automata: the negated schema's " + t +
                               " values are not written exactly");
    firsts += first_bytes(t);
  }
  if (firsts.empty()) error(path + "/not", "the schema allows nothing (`not`)");
  return "(?&-((?&a(" + value(rest, path) + ")(" + kCanonical + ")([" + firsts + "][\\s\\S]*)))(" +
         value(b, path + "/not") + "))";
}

std::string Converter::one_of_combination(const std::vector<Json>& branches,
                                          const std::vector<size_t>& index,
                                          const std::string& path, const std::string& refusal) {
  if (stack_.size() + kMaxPartDepth >= kMaxRefNesting)
    error(path + "/oneOf", refusal + deep_refusal());
  // Two branches that may both hold values of a type must both be written exactly there.
  for (const char* t : kTypes) {
    std::vector<Part> parts;
    for (const Json& branch : branches)
      if (const Part part = typed_part(branch, t, root_); part != Part::kNothing)
        parts.push_back(part);
    if (parts.size() < 2) continue;
    for (size_t i = 0; i < parts.size(); ++i)
      if (parts[i] == Part::kInexact || (parts[i] == Part::kAll && !all_written_exactly(t)))
        error(path + "/oneOf", refusal + "; as a combination of automata: a branch's " +
                                   std::string(t) + " values are not written exactly");
  }
  std::string one = "(?&1";
  for (size_t b = 0; b < branches.size(); ++b)
    one += "(" + value(branches[b], path + "/oneOf/" + std::to_string(index[b])) + ")";
  return "(?&a(" + one + "))(" + kCanonical + "))";
}

}  // namespace sable::grammar::schema
