// JSON schema -> regex (see json_schema.h): keyword audit, combinators, enum/const, scalars.
// References and allOf are in json_schema_refs.cpp, objects and arrays in
// json_schema_containers.cpp and json_schema_members.cpp.
#include "json_schema.h"

#include <algorithm>
#include <set>

#include "dfa.h"
#include "json_schema_converter.h"
#include "json_string.h"
#include "multiple_of.h"
#include "key_patterns.h"
#include "nfa.h"
#include "numeric_range.h"
#include "one_of.h"
#include "property_names.h"
#include "regex.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

namespace sable::grammar {
namespace schema {
namespace {

using sable::cpp::fail;

// One character of a JSON string: anything but `"`, `\` and controls, or an escape (a \u escape
// is outside the surrogate range, so each one is one code point).
const std::string kStringChar =
    R"((?:[^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CeEfF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})))";
const std::string kInteger = R"((?:-?(?:0|[1-9][0-9]*)))";
const std::string kNumber = R"((?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?))";

// A converted schema longer than this is refused (optional properties multiply the text).
constexpr size_t kMaxRegexSize = 4 << 20;
// All the regex text one conversion may produce, parts included (sibling keywords merged into
// anyOf branches and $refs copy subschemas, so a small schema could otherwise make a huge text).
constexpr size_t kMaxProduced = 64 << 20;

// Keywords refused wherever they appear: their constraint cannot be expressed as a regex here.
const std::pair<const char*, const char*> kRefused[] = {
    {"contains", "arrays that must contain a match"},
    {"$dynamicRef", "dynamic references"},
    {"$recursiveRef", "dynamic references"},
};

// Which types a type-less schema's keywords speak about.
const std::set<std::string> kObjectKeys = {
    "properties",    "required",          "additionalProperties", "unevaluatedProperties",
    "minProperties", "patternProperties", "x-sable-absent",       "maxProperties",
    "dependencies",  "dependentRequired", "propertyNames"};
const std::set<std::string> kArrayKeys = {"items",    "prefixItems", "additionalItems",
                                          "minItems", "maxItems",    "uniqueItems",
                                          "unevaluatedItems"};
const std::set<std::string> kStringKeys = {"pattern", "format", "minLength", "maxLength"};
const std::set<std::string> kNumberKeys = {"minimum", "maximum", "exclusiveMinimum",
                                           "exclusiveMaximum", "multipleOf"};

// Keywords beside enum/const that filter its values (length of strings, bounds of numbers).
const std::set<std::string> kValueFilters = {"minLength", "maxLength", "minimum", "maximum",
                                             "exclusiveMinimum", "exclusiveMaximum"};

}  // namespace

bool is_schema_keyword(const std::string& key) {
  static const std::set<std::string> kOthers = {
      "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "not", "if",
      "dependentSchemas", "dependencies", "dependentRequired", "patternProperties",
      "propertyNames", "contains", "minContains", "maxContains", "$dynamicRef", "$recursiveRef",
      "format"};
  return kObjectKeys.count(key) || kArrayKeys.count(key) || kStringKeys.count(key) ||
         kNumberKeys.count(key) || kOthers.count(key);
}

const char* keyword_family(const std::string& key) {
  if (kObjectKeys.count(key)) return "object";
  if (kArrayKeys.count(key)) return "array";
  if (kStringKeys.count(key)) return "string";
  if (kNumberKeys.count(key)) return "number";
  return nullptr;
}

namespace {

int64_t code_point_count(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string alternation(const std::vector<std::string>& alts) {
  return alts.size() == 1 ? alts[0] : group(alts);
}

std::string literal(const Json& value) {
  return "(?:" + escape_regex_literal(value.dump()) + ")";
}

// A `pattern` is matched in full inside the quotes: its own ^ and $ anchors restate that.
std::string strip_anchors(std::string pattern) {
  if (!pattern.empty() && pattern.front() == '^') pattern.erase(0, 1);
  if (!pattern.empty() && pattern.back() == '$') {
    size_t slashes = 0;
    for (size_t i = pattern.size() - 1; i > 0 && pattern[i - 1] == '\\'; --i) ++slashes;
    if (slashes % 2 == 0) pattern.pop_back();
  }
  return pattern;
}

// The JSON string content whose decoded text a `pattern` finds (search semantics: its unanchored
// ends match anything), or "" when the pattern has no unanchored end, has anchors inside a
// top-level alternation, does not keep the length inside [lo, hi] or needs more than
// kMaxSearchStates DFA states.
constexpr int32_t kMaxSearchStates = 4000;
std::string search_pattern_regex(const std::string& pattern, int64_t lo, int64_t hi) {
  if (strip_anchors(pattern).size() + 2 == pattern.size()) return "";  // anchored at both ends
  try {
    const std::string whole = whole_key_regex(pattern);
    const LengthRange own = regex_length_range(whole);
    if (own.min < lo || (hi >= 0 && (own.max < 0 || own.max > hi))) return "";
    std::string inner = json_string_pattern_regex(whole);
    Dfa::build(build_nfa(parse_regex(inner)), kMaxSearchStates);
    return inner;
  } catch (const sable::cpp::Error&) {
    return "";
  }
}

}  // namespace

bool value_has_type(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "number") return v.is_number();
  if (type == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && parse_decimal(v.dump()).frac_digits.empty());
  return false;
}

namespace {

// minimum/exclusiveMinimum (or the maximum pair): the tighter of the two, exclusive on a tie.
// Draft 4's boolean exclusiveMinimum makes `minimum` exclusive.
std::optional<NumericBound> bound(const Json& s, const char* inclusive_key,
                                  const char* exclusive_key, bool lower, const std::string& path) {
  std::optional<NumericBound> out;
  auto number_of = [&](const char* key) {
    if (!s[key].is_number()) Converter::error(path + "/" + key, std::string(key) + " must be a number");
    return parse_decimal(s[key].dump());
  };
  const bool draft4 = s.contains(exclusive_key) && s[exclusive_key].is_boolean();
  if (s.contains(inclusive_key))
    out = NumericBound{number_of(inclusive_key), draft4 && s[exclusive_key].get<bool>()};
  if (s.contains(exclusive_key) && !draft4) {
    const NumericBound e{number_of(exclusive_key), true};
    const int c = out ? compare_decimal(e.value, out->value) : 0;
    if (!out || (lower ? c >= 0 : c <= 0)) out = e;
  }
  return out;
}

}  // namespace

namespace {

// Whether `a` and `b` both name types and share none: a branch merged with its siblings then
// allows nothing (and drops out of anyOf/oneOf).
bool no_common_type(const Json& a, const Json& b) {
  if (!a.is_object() || !b.is_object() || !a.contains("type") || !b.contains("type")) return false;
  auto names = [](const Json& t) { return t.is_array() ? t : Json::array({t}); };
  for (const Json& x : names(a["type"]))
    for (const Json& y : names(b["type"])) {
      if (!x.is_string() || !y.is_string()) return false;
      const std::string p = x.get<std::string>(), q = y.get<std::string>();
      if (p == q || (p == "integer" && q == "number") || (p == "number" && q == "integer"))
        return false;
    }
  return true;
}

}  // namespace

bool pattern_search_form_fits(const std::string& pattern) {
  return !search_pattern_regex(pattern, 0, -1).empty();
}

const std::string& any_string_regex() {
  static const std::string s = "\"" + kStringChar + "*\"";
  return s;
}

void Converter::error(const std::string& path, const std::string& what) {
  fail(SABLE_ERR_INVALID_ARGUMENT, what + " (at " + (path.empty() ? "/" : path) + ")");
}

SchemaOptions schema_options(const Json& options, SchemaOptions outer, const std::string& path) {
  if (!options.is_object()) Converter::error(path, "x-sable must be an object");
  for (auto it = options.begin(); it != options.end(); ++it) {
    const Json& v = it.value();
    if (it.key() == "property_order") {
      if (v != "auto" && v != "any" && v != "declared")
        Converter::error(path + "/property_order",
                         "property_order must be \"auto\", \"any\" or \"declared\"");
      outer.order = v == "any"        ? PropertyOrder::kAny
                    : v == "declared" ? PropertyOrder::kDeclared
                                      : PropertyOrder::kAuto;
    } else if (it.key() == "strict") {
      if (!v.is_boolean()) Converter::error(path + "/strict", "strict must be true or false");
      outer.strict = v.get<bool>();
    } else {
      Converter::error(path + "/" + it.key(), "unknown option '" + it.key() +
                                                  "' (known: property_order, strict)");
    }
  }
  return outer;
}

int64_t count_keyword(const Json& s, const char* key, int64_t fallback, const std::string& path) {
  if (!s.contains(key)) return fallback;
  const Json& v = s[key];
  const bool integral = v.is_number_integer() ||
                        (v.is_number_float() && v.get<double>() == static_cast<int64_t>(v.get<double>()));
  if (!integral || v.get<double>() < 0)
    Converter::error(path + "/" + key, std::string(key) + " must be a non-negative integer");
  return static_cast<int64_t>(v.get<double>());
}

std::string Converter::value(const Json& s, const std::string& path) {
  std::string out = value_of(s, path);
  produced_ += out.size();
  if (produced_ > kMaxProduced)
    error(path, "the schema is too large (its regex would pass " +
                    std::to_string(kMaxProduced >> 20) + " MiB)");
  return out;
}

std::string Converter::value_of(const Json& s, const std::string& path) {
  if (s.is_object() && s.contains("x-sable")) {  // options for this schema and those inside it
    const SchemaOptions outer = options_;
    options_ = schema_options(s["x-sable"], outer, path + "/x-sable");
    Json rest = s;
    rest.erase("x-sable");
    std::string out = value_of(rest, path);
    options_ = outer;
    return out;
  }
  if (s.is_boolean()) {
    if (!s.get<bool>()) error(path, "a `false` schema allows nothing");
    return any_value(kAnyDepth);
  }
  if (!s.is_object()) error(path, "a schema must be an object or a boolean");
  if (auto listed = evaluated_constants(s, path)) return *listed;  // (schema_eval.h)
  if (s.contains("if")) {  // (json_schema_not.cpp)
    try {
      return value_of(conditional(s), path);
    } catch (const sable::cpp::Error& e) {
      error(path + "/if", std::string("'if' (conditional schemas) is supported where its "
                                      "negation is; here: ") + e.what());
    }
  }
  if (auto rewritten = schema_dependencies(s)) return value_of(*rewritten, path);
  for (const auto& [key, why] : kRefused)
    if (s.contains(key))
      error(path + "/" + key, std::string("'") + key + "' (" + why + ") is not supported");
  // propertyNames becomes patternProperties where the object's own keywords are in reach (the
  // combinators below carry it into their branches and merged schemas first).
  if (s.contains("propertyNames") && !s.contains("allOf") && !s.contains("$ref") &&
      !s.contains("anyOf") && !s.contains("oneOf") && !s.contains("not"))
    return value_of(apply_property_names(s, options_.strict, path), path);
  if (s.contains("not")) {
    Json rewritten;
    try {
      rewritten = negation(s, path);
    } catch (const sable::cpp::Error& e) {  // not a rewritable form: a difference of automata
      return difference(s, path, e.what());
    }
    if (allows_nothing(rewritten)) error(path + "/not", "the schema allows nothing (`not`)");
    return value_of(rewritten, path);
  }
  if (s.contains("allOf") || s.contains("$ref")) return merged(s, path);
  if (s.contains("const") || s.contains("enum")) return constants(s, path);
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    const Json& list = s[key];
    if (!list.is_array() || list.empty())
      error(path + "/" + key, std::string(key) + " must be a non-empty array");
    if (std::string(key) == "oneOf")  // branches of `required` lists only (one_of.h)
      if (auto rewritten = one_of_required_lists(s)) return value_of(*rewritten, path);
    // Sibling keywords apply to every branch: merge them in.
    Json siblings = s;
    siblings.erase(key);
    std::vector<size_t> index;
    std::vector<Json> branches;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string branch_path = path + "/" + key + "/" + std::to_string(i);
      if (allows_nothing(list[i]) || no_common_type(siblings, list[i])) continue;
      Json branch = siblings;
      if (list[i].is_object()) merge_schema(branch, list[i], branch_path);
      else if (!list[i].is_boolean()) error(branch_path, "a schema must be an object or a boolean");
      index.push_back(i);
      branches.push_back(std::move(branch));
    }
    // oneOf: a value valid against two branches must be refused, which only disjoint branches
    // guarantee (one_of.h).
    // Overlapping ones: "exactly one" of their automata, where they are exact (json_schema_bool.cpp).
    if (std::string(key) == "oneOf") {
      // Each narrowed branch must be disjoint from every other branch as given: a value it keeps
      // must match no other one (a branch narrowed against a second one that is not narrowed
      // against it still overlaps it).
      const std::vector<Json> whole = branches;
      exclude_other_branches(branches);
      for (size_t b = 0; b < branches.size(); ++b)
        for (size_t a = 0; a < branches.size(); ++a)
          if (a != b && !provably_disjoint(branches[b], whole[a], root_))
            return one_of_combination(
                whole, index, path,
                "oneOf branches " + std::to_string(index[std::min(a, b)]) + " and " +
                    std::to_string(index[std::max(a, b)]) +
                    " may both match a value, which oneOf must then reject and cannot be enforced "
                    "here (supported: branches of different types, const/enum values, "
                    "discriminator properties or different required properties, or written "
                    "exactly); anyOf allows the overlap");
    }
    std::vector<std::string> alts;
    for (size_t b = 0; b < branches.size(); ++b)
      alts.push_back(value(branches[b], path + "/" + key + "/" + std::to_string(index[b])));
    if (alts.empty()) error(path + "/" + key, "every branch is `false`");
    return alternation(alts);
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
  // No type: any value, each keyword constraining the values of its own type (`properties` says
  // nothing about a string); no such keyword: the shared generic value.
  auto any_of = [&](const std::set<std::string>& keys) {
    return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return s.contains(k); });
  };
  if (!any_of(kObjectKeys) && !any_of(kArrayKeys) && !any_of(kStringKeys) && !any_of(kNumberKeys))
    return any_value(kAnyDepth);
  std::vector<std::string> alts;
  for (const char* type : {"object", "array", "string", "number", "boolean", "null"})
    alts.push_back(typed(s, type, path));
  return alternation(alts);
}

// const and enum: the listed values (of the schema's type, when it has one) written as JSON.
std::string Converter::constants(const Json& s, const std::string& path) {
  Json values = Json::array();
  if (s.contains("enum")) {
    if (!s["enum"].is_array() || s["enum"].empty())
      error(path + "/enum", "enum must be a non-empty array");
    values = s["enum"];
  }
  if (s.contains("const")) {
    const bool listed = !s.contains("enum") ||
                        std::find(values.begin(), values.end(), s["const"]) != values.end();
    values = listed ? Json::array({s["const"]}) : Json::array();
  }
  // Beside the values: length and numeric bounds filter them; keys that are no JSON Schema
  // keyword are annotations; any other keywords filter them through their own automaton: a value
  // stays when its JSON text is one of theirs (refused when they are).
  Json others = Json::object();
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& key = it.key();
    if (key == "enum" || key == "const" || key == "type" || is_annotation_keyword(key) ||
        kValueFilters.count(key) || !is_schema_keyword(key))
      continue;
    others[key] = it.value();
  }
  if (!others.empty()) {
    Converter sub(root_);
    sub.options_ = options_;
    const std::string regex = sub.value(others, path);
    const Dfa dfa = Dfa::compile(parse_regex(sub.prelude() + regex, RegexDialect::kInternal));
    // A keyword of one type says nothing about values of the others (the automaton of keywords
    // without `type` holds only the types they speak about).
    bool typed_keywords = true;
    for (auto it = others.begin(); it != others.end(); ++it)
      typed_keywords =
          typed_keywords && (kObjectKeys.count(it.key()) || kArrayKeys.count(it.key()) ||
                             kStringKeys.count(it.key()) || kNumberKeys.count(it.key()));
    auto constrained = [&](const Json& v) {
      if (!typed_keywords) return true;
      const std::set<std::string>& keys = v.is_object()   ? kObjectKeys
                                          : v.is_array()  ? kArrayKeys
                                          : v.is_string() ? kStringKeys
                                          : v.is_number() ? kNumberKeys
                                                          : std::set<std::string>{};
      for (auto it = others.begin(); it != others.end(); ++it)
        if (keys.count(it.key())) return true;
      return false;
    };
    Json kept = Json::array();
    for (const Json& v : values)
      if (!constrained(v) || dfa.matches(v.dump())) kept.push_back(v);
    values = std::move(kept);
  }
  const int64_t min_len = count_keyword(s, "minLength", 0, path);
  const int64_t max_len = count_keyword(s, "maxLength", -1, path);
  const std::optional<NumericBound> lo = bound(s, "minimum", "exclusiveMinimum", true, path);
  const std::optional<NumericBound> hi = bound(s, "maximum", "exclusiveMaximum", false, path);
  auto within = [&](const Json& v) {
    if (v.is_string()) {
      const int64_t n = code_point_count(v.get<std::string>());
      return n >= min_len && (max_len < 0 || n <= max_len);
    }
    if (!v.is_number()) return true;
    const Decimal d = parse_decimal(v.dump());
    const int cl = lo ? compare_decimal(d, lo->value) : 1;
    const int ch = hi ? compare_decimal(d, hi->value) : -1;
    return (cl > 0 || (cl == 0 && !lo->exclusive)) && (ch < 0 || (ch == 0 && !hi->exclusive));
  };
  std::vector<std::string> alts;
  for (const Json& v : values) {
    if (!within(v)) continue;
    bool typed_ok = !s.contains("type");
    if (!typed_ok) {
      const Json& t = s["type"];
      for (const Json& name : t.is_array() ? t : Json::array({t}))
        typed_ok = typed_ok || (name.is_string() && value_has_type(v, name.get<std::string>()));
    }
    if (typed_ok) alts.push_back(literal(v));
  }
  // No value left: the schema allows nothing (an optional member holding it is never written).
  if (alts.empty()) return kNothing;
  return alternation(alts);
}

std::string Converter::typed(const Json& s, const std::string& type, const std::string& path) {
  if (type == "string") return string(s, path);
  if (type == "integer") return number(s, true, path);
  if (type == "number") return number(s, false, path);
  if (type == "boolean") return "(?:true|false)";
  if (type == "null") return "null";
  if (type == "object") return object(s, path);
  if (type == "array") return array(s, path);
  error(path + "/type", "unknown type '" + type + "'");
}

std::string Converter::string(const Json& s, const std::string& path) {
  const int64_t lo = count_keyword(s, "minLength", 0, path);
  const int64_t hi = count_keyword(s, "maxLength", -1, path);
  if (hi >= 0 && hi < lo) error(path, "maxLength is below minLength");
  // A format no JSON Schema draft defines is an annotation (json_string.h): nothing to enforce.
  // So is draft 3's "color" under any later draft (or none: the latest applies).
  const bool draft3 = root_.is_object() && root_.contains("$schema") &&
                      root_["$schema"].is_string() &&
                      root_["$schema"].get<std::string>().find("draft-03") != std::string::npos;
  const bool asserted_format =
      s.contains("format") &&
      (!s["format"].is_string() || (is_json_schema_format(s["format"].get<std::string>()) &&
                                    (draft3 || s["format"] != "color")));
  // The pattern's, the format's and the length's languages (between the quotes), intersected
  // (product.h) when there are several: each writes a character as one JSON string unit, so the
  // length counts code points in every one of them.
  std::vector<std::string> parts;
  bool length_kept = lo == 0 && hi < 0;  // nothing to bound, or a part keeps the bounds
  if (s.contains("pattern")) {
    if (!s["pattern"].is_string()) error(path + "/pattern", "pattern must be a string");
    std::string pattern = s["pattern"].get<std::string>();
    // Anchors inside (`(^$)|(^x$)`, `^([^,]|$)`): the whole strings it finds, matched in full.
    if (anchors_inside(pattern)) {
      try {
        pattern = "^" + whole_key_regex(pattern) + "$";
      } catch (const sable::cpp::Error& e) {
        error(path + "/pattern", std::string("bad pattern: ") + e.what());
      }
    }
    const std::string source = strip_anchors(pattern);
    std::string inner;
    try {
      inner = json_string_pattern_regex(source);
    } catch (const sable::cpp::Error& e) {
      error(path + "/pattern", std::string("bad pattern: ") + e.what());
    }
    // JSON Schema searches: an end without its anchor matches anything. That exact form is used
    // when its automaton stays small, else the full match above (a subset).
    std::string whole = source;
    if (std::string searched = search_pattern_regex(pattern, 0, -1); !searched.empty()) {
      inner = searched;
      whole = whole_key_regex(pattern);
    }
    const LengthRange own = regex_length_range(whole);
    if (own.min >= lo && (hi < 0 || (own.max >= 0 && own.max <= hi))) {
      length_kept = true;
    } else if (whole == source) {
      // A pattern of fixed parts around one repeated set takes the bounds into that repetition.
      if (auto within = json_string_pattern_regex_within(source, lo, hi)) {
        inner = *within;
        length_kept = true;
      }
    }
    parts.push_back(inner);
  }
  if (asserted_format) {
    if (!s["format"].is_string()) error(path + "/format", "format must be a string");
    const std::string format = s["format"].get<std::string>();
    const std::string inner = json_string_format_regex(format);
    if (inner.empty())
      error(path + "/format", "format '" + format + "' is not supported (supported: " +
                                  supported_formats() + ")");
    const LengthRange own = regex_length_range(inner);
    length_kept = length_kept || (own.min >= lo && (hi < 0 || (own.max >= 0 && own.max <= hi)));
    parts.push_back(inner);
  }
  if (!length_kept || parts.empty()) {
    if (parts.empty() && lo == 0 && hi < 0) return any_string_regex();
    parts.push_back(repeat(kStringChar, lo, hi));
  }
  if (parts.size() == 1) return "\"" + parts[0] + "\"";
  std::string all = "(?&a";
  for (const std::string& part : parts) all += "(" + part + ")";
  return "\"" + all + ")\"";
}

std::string Converter::any_value(int depth) {
  const std::string ref = "(?@" + std::to_string(depth) + ")";
  if (any_defined_[depth]) return ref;
  std::vector<std::string> alts = {any_string_regex(), kNumber, "(?:true|false)", "null"};
  if (depth > 0) {
    const std::string inner = any_value(depth - 1);
    const std::string member = any_string_regex() + ":" + kWs + inner;
    alts.push_back("\\{(?:" + member + "(?:," + kWs + member + ")*)?\\}");
    alts.push_back("\\[(?:" + inner + "(?:," + kWs + inner + ")*)?\\]");
  }
  // Deferred: each level is built only where a text enters it (nfa.h), so kAnyDepth levels cost
  // what the texts use, not 2^kAnyDepth copies.
  prelude_ += "(?@" + std::to_string(depth) + "~=" + alternation(alts) + ")";
  any_defined_[depth] = true;
  return ref;
}

// A JSON value nested at most kSkeletonDepth deep: the values of the counting automata of large
// objects (json_schema_members.cpp), which must end where the checked values do. Each level is
// deferred and so is what follows an opening `"`, `{` or `[`, so a use whose value is a number
// builds a few states, not the whole level. Defined once.
std::string Converter::skeleton_value() {
  if (!skeleton_.empty()) return skeleton_;
  const std::string text = "\"" + define(any_string_regex().substr(1), &prelude_, true);
  std::string inner;
  for (int depth = 0; depth <= kSkeletonDepth; ++depth) {
    std::vector<std::string> alts = {text, kNumber, "(?:true|false)", "null"};
    if (depth > 0) {
      const std::string member = text + ":" + kWs + inner;
      alts.push_back("\\{" + define("(?:" + member + "(?:," + kWs + member + ")*)?\\}", &prelude_, true));
      alts.push_back("\\[" + define("(?:" + inner + "(?:," + kWs + inner + ")*)?\\]", &prelude_, true));
    }
    inner = define(alternation(alts), &prelude_, /*deferred=*/true);
  }
  return skeleton_ = inner;
}

std::string Converter::number(const Json& s, bool integer, const std::string& path) {
  std::optional<NumericBound> lo = bound(s, "minimum", "exclusiveMinimum", true, path);
  std::optional<NumericBound> hi = bound(s, "maximum", "exclusiveMaximum", false, path);
  if (s.contains("format") && s["format"].is_string()) {
    const std::string f = s["format"].get<std::string>();
    if (integer && (f == "int32" || f == "int64")) {  // OpenAPI's sized integers
      const std::string top = f == "int32" ? "2147483647" : "9223372036854775807";
      const NumericBound fmin{{true, f == "int32" ? "2147483648" : "9223372036854775808", ""}};
      const NumericBound fmax{{false, top, ""}};
      if (!lo || compare_decimal(lo->value, fmin.value) < 0) lo = fmin;
      if (!hi || compare_decimal(hi->value, fmax.value) > 0) hi = fmax;
    }
    // Any other format asserts nothing about numbers: JSON Schema's formats are string formats
    // (draft 3's utc-millisec is any number), OpenAPI's float/double are annotations.
  }
  // multipleOf over the decimal digits (multiple_of.h), or refused naming what is missing.
  if (s.contains("multipleOf")) {
    const Json& m = s["multipleOf"];
    if (!m.is_number() || m.get<double>() <= 0)
      error(path + "/multipleOf", "multipleOf must be a positive number");
    std::string why;
    const std::optional<std::string> r =
        multiple_of_regex(parse_decimal(m.dump()), integer, lo, hi, &why);
    if (!r) error(path + "/multipleOf", why);
    if (r->empty()) error(path, "no multiple of multipleOf lies between the minimum and the maximum");
    return *r;
  }
  // (Inside a `not` or oneOf part every writing of an integer value without exponent: 2.0 is one.)
  if (!lo && !hi) return !integer ? kNumber : options_.exact ? "(?:" + kInteger + "(?:\\.0+)?)" : kInteger;
  const std::optional<std::string> r =
      integer ? integer_range_regex(lo, hi) : number_range_regex(lo, hi);
  if (!r)
    error(path, std::string("no ") + (integer ? "integer" : "number") +
                    " lies between the minimum and the maximum");
  return *r;
}

}  // namespace schema

std::string json_schema_to_regex(std::string_view schema_json) {
  schema::Json root;
  try {
    root = schema::Json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     std::string("the schema is not valid JSON: ") + e.what());
  }
  schema::apply_draft_semantics(root);
  schema::Converter converter(root);
  std::string body = converter.value(root, "");
  if (body == schema::kNothing)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     "the schema allows no value (e.g. no value of "
                     "enum/const satisfies its other keywords)");
  std::string out = converter.prelude() + body;
  if (out.size() > schema::kMaxRegexSize)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "the schema is too large");
  return out;
}

}  // namespace sable::grammar
