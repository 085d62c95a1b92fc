// Listed values evaluated against their schema (see schema_eval.h): a small three-valued JSON
// Schema validator over the keywords of drafts 4 to 2020-12, and the converter's use of it.
#include "schema_eval.h"

#include <algorithm>
#include <set>

#include "json_schema_converter.h"
#include "json_string.h"
#include "numeric_range.h"
#include "regex.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

namespace sable::grammar::schema {
namespace {

using Verdict = std::optional<bool>;

// $refs followed inside each other before giving up (a recursive schema over a finite value ends
// long before; this bounds a reference cycle that never reaches a keyword).
constexpr int kMaxDepth = 64;

// Keywords evaluated together with the keyword they belong to (`then` with `if`, ...).
const std::set<std::string> kDependent = {"then", "else", "additionalItems", "minContains",
                                          "maxContains"};
// Draft 3 keywords the converter treats as annotations but which do constrain under draft 3.
const std::set<std::string> kDraft3 = {"divisibleBy", "disallow", "extends"};
// Applicators whose evaluated members unevaluatedProperties/unevaluatedItems would have to see.
const char* const kApplicators[] = {"allOf", "anyOf", "oneOf", "not", "$ref", "if",
                                    "dependentSchemas", "dependencies"};

Verdict all_of(Verdict a, Verdict b) {
  if (a == false || b == false) return false;
  if (!a || !b) return std::nullopt;
  return true;
}

int64_t code_points(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// Whether the decimal `v` is an integer multiple of `m` (> 0), exactly; nullopt when m's digits
// (scaled to v's fraction) do not fit 18 decimal digits.
Verdict multiple_of(const Decimal& v, const Decimal& m) {
  const size_t scale = std::max(v.frac_digits.size(), m.frac_digits.size());
  const std::string vd = v.int_digits + v.frac_digits + std::string(scale - v.frac_digits.size(), '0');
  std::string md = m.int_digits + m.frac_digits + std::string(scale - m.frac_digits.size(), '0');
  md.erase(0, std::min(md.find_first_not_of('0'), md.size()));
  if (md.empty() || md.size() > 18) return std::nullopt;
  const unsigned __int128 divisor = std::stoull(md);
  unsigned __int128 rest = 0;
  for (char c : vd) rest = (rest * 10 + static_cast<unsigned>(c - '0')) % divisor;
  return rest == 0;
}

bool uses_applicators(const Json& s) {
  for (const char* key : kApplicators)
    if (s.contains(key)) return true;
  return false;
}

const Json* resolve_local(const Json& ref, const Json& root) {
  if (!ref.is_string() || !ref.get<std::string>().starts_with("#")) return nullptr;
  try {
    return &root.at(Json::json_pointer(ref.get<std::string>().substr(1)));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

std::optional<std::vector<Json>> listed(const Json& s, const Json& root, int depth) {
  if (!s.is_object() || depth > 8) return std::nullopt;
  std::vector<Json> out;
  auto add = [&](const Json& v) {
    for (const Json& seen : out)
      if (json_equal(seen, v)) return;
    out.push_back(v);
  };
  if (s.contains("const")) return std::vector<Json>{s["const"]};
  if (s.contains("enum") && s["enum"].is_array()) {
    for (const Json& v : s["enum"]) add(v);
    return out;
  }
  if (s.contains("$ref"))
    if (const Json* target = resolve_local(s["$ref"], root))
      if (auto values = listed(*target, root, depth + 1)) return values;
  if (s.contains("allOf") && s["allOf"].is_array())
    for (const Json& item : s["allOf"])
      if (auto values = listed(item, root, depth + 1)) return values;
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key) || !s[key].is_array() || s[key].empty()) continue;
    bool every = true;
    for (const Json& branch : s[key]) {
      if (branch == Json(false)) continue;
      auto values = listed(branch, root, depth + 1);
      if (!values) {
        every = false;
        break;
      }
      for (const Json& v : *values) add(v);
    }
    if (every) return out;
    out.clear();
  }
  return std::nullopt;
}

// Keywords that no automaton writes exactly beside a list of values, and for which the list is
// therefore evaluated (elsewhere the converter's own filtering of listed values applies).
bool needs_evaluation(const Json& s) {
  if (!s.is_object()) return false;
  for (const char* key : {"not", "oneOf", "if", "contains"})
    if (s.contains(key)) return true;
  if (s.contains("allOf") && s["allOf"].is_array())
    for (const Json& item : s["allOf"])
      if (needs_evaluation(item)) return true;
  return false;
}

}  // namespace

bool json_equal(const Json& a, const Json& b) {
  return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump());
}

std::optional<std::vector<Json>> listed_values(const Json& s, const Json& root) {
  return listed(s, root, 0);
}

Verdict Evaluator::check(const Json& s, const Json& v, int depth) {
  if (s.is_boolean()) return s.get<bool>();
  if (!s.is_object() || depth > kMaxDepth) return std::nullopt;
  Verdict out = true;
  for (auto it = s.begin(); it != s.end() && out != false; ++it)
    out = all_of(out, keyword(s, it.key(), v, depth));
  return out;
}

Verdict Evaluator::keyword(const Json& s, const std::string& key, const Json& v, int depth) {
  const Json& k = s[key];
  if (is_annotation_keyword(key) || kDependent.count(key) || key == "x-sable") return true;
  if (kDraft3.count(key)) return std::nullopt;
  if (key == "x-sable-absent") {  // (internal: names an object must not hold)
    if (!v.is_object() || !k.is_array()) return k.is_array() ? Verdict(true) : std::nullopt;
    for (const Json& name : k)
      if (name.is_string() && v.contains(name.get<std::string>())) return false;
    return true;
  }
  if (!is_schema_keyword(key)) return true;  // unknown keys are annotations
  if (key == "type") {
    const Json names = k.is_array() ? k : Json::array({k});
    for (const Json& name : names) {
      if (!name.is_string()) return std::nullopt;  // (draft 3's schemas in type)
      const std::string t = name.get<std::string>();
      if (t == "any") return true;
      if (t != "string" && t != "number" && t != "integer" && t != "boolean" && t != "null" &&
          t != "object" && t != "array")
        return std::nullopt;
      if (value_has_type(v, t)) return true;
    }
    return false;
  }
  if (key == "enum") {
    if (!k.is_array()) return std::nullopt;
    return std::any_of(k.begin(), k.end(), [&](const Json& e) { return json_equal(e, v); });
  }
  if (key == "const") return json_equal(k, v);
  if (key == "$ref") {
    const Json* target = resolve_local(k, root_);
    return target ? check(*target, v, depth + 1) : std::nullopt;
  }
  if (key == "not") {
    const Verdict r = check(k, v, depth + 1);
    return r ? Verdict(!*r) : std::nullopt;
  }
  if (key == "allOf" || key == "anyOf" || key == "oneOf") {
    if (!k.is_array() || k.empty()) return std::nullopt;
    int matched = 0;
    bool undecided = false;
    for (const Json& branch : k) {
      const Verdict r = check(branch, v, depth + 1);
      if (!r) undecided = true;
      else matched += *r;
    }
    const int n = static_cast<int>(k.size());
    if (key == "allOf") return matched == n ? Verdict(true) : undecided ? std::nullopt : Verdict(false);
    if (key == "anyOf") return matched > 0 ? Verdict(true) : undecided ? std::nullopt : Verdict(false);
    if (matched > 1) return false;
    return undecided ? std::nullopt : Verdict(matched == 1);
  }
  if (key == "if") {
    const Json yes = s.value("then", Json(true)), no = s.value("else", Json(true));
    const Verdict cond = check(k, v, depth + 1);
    if (cond) return check(*cond ? yes : no, v, depth + 1);
    const Verdict a = check(yes, v, depth + 1), b = check(no, v, depth + 1);
    return a && b && *a == *b ? a : std::nullopt;
  }
  const char* family = key == "dependentSchemas" ? "object" : keyword_family(key);
  if (family && std::string(family) == "object") return object_keyword(s, key, v, depth);
  if (family && std::string(family) == "array") return array_keyword(s, key, v, depth);
  if (key == "contains") return array_keyword(s, key, v, depth);
  if (family && std::string(family) == "string") {
    if (!v.is_string()) return true;
    const std::string text = v.get<std::string>();
    if (key == "minLength" || key == "maxLength") {
      if (!k.is_number_unsigned() && !k.is_number_integer()) return std::nullopt;
      const int64_t n = code_points(text), bound = k.get<int64_t>();
      return key == "minLength" ? n >= bound : n <= bound;
    }
    if (key == "pattern")
      return k.is_string() ? string_automaton(key, k, v.dump(), pattern_written_exactly(k))
                           : std::nullopt;
    if (!k.is_string()) return std::nullopt;  // format
    if (!is_json_schema_format(k.get<std::string>())) return true;
    return string_automaton(key, k, v.dump(), false);
  }
  if (family && std::string(family) == "number") {
    if (!v.is_number()) return true;
    if (!k.is_number()) return k.is_boolean() ? Verdict(true) : std::nullopt;  // draft 4's flags
    try {
      const Decimal d = parse_decimal(v.dump()), b = parse_decimal(k.dump());
      if (key == "multipleOf") return b.negative || (b.int_digits == "0" && b.frac_digits.empty())
                                          ? std::nullopt
                                          : multiple_of(d, b);
      const int c = compare_decimal(d, b);
      const bool lower = key == "minimum" || key == "exclusiveMinimum";
      const char* flag = lower ? "exclusiveMinimum" : "exclusiveMaximum";
      const bool exclusive = key.starts_with("exclusive") ||
                             (s.contains(flag) && s[flag].is_boolean() && s[flag].get<bool>());
      return lower ? (exclusive ? c > 0 : c >= 0) : (exclusive ? c < 0 : c <= 0);
    } catch (const sable::cpp::Error&) {
      return std::nullopt;
    }
  }
  return std::nullopt;  // dynamic references
}

Verdict Evaluator::object_keyword(const Json& s, const std::string& key, const Json& v, int depth) {
  if (key == "dependentSchemas" || key == "dependencies" || key == "dependentRequired") {
    if (!v.is_object()) return true;
    if (!s[key].is_object()) return std::nullopt;
    Verdict out = true;
    for (auto it = s[key].begin(); it != s[key].end(); ++it) {
      if (!v.contains(it.key())) continue;
      if (it.value().is_array()) {
        for (const Json& name : it.value())
          if (!name.is_string()) return std::nullopt;
          else if (!v.contains(name.get<std::string>())) return false;
      } else {
        out = all_of(out, check(it.value(), v, depth + 1));
      }
    }
    return out;
  }
  if (!v.is_object()) return true;
  const Json& k = s[key];
  auto matches = [&](const std::string& pattern, const std::string& name) {
    return string_automaton("pattern", Json(pattern), Json(name).dump(),
                            pattern_written_exactly(Json(pattern)));
  };
  if (key == "required") {
    if (!k.is_array()) return std::nullopt;  // (draft 3's boolean)
    for (const Json& name : k)
      if (!name.is_string()) return std::nullopt;
      else if (!v.contains(name.get<std::string>())) return false;
    return true;
  }
  if (key == "minProperties" || key == "maxProperties") {
    if (!k.is_number_integer() && !k.is_number_unsigned()) return std::nullopt;
    const int64_t n = static_cast<int64_t>(v.size()), bound = k.get<int64_t>();
    return key == "minProperties" ? n >= bound : n <= bound;
  }
  if (key == "propertyNames") {
    Verdict out = true;
    for (auto it = v.begin(); it != v.end() && out != false; ++it)
      out = all_of(out, check(k, Json(it.key()), depth + 1));
    return out;
  }
  Verdict out = true;
  if (key == "properties") {
    if (!k.is_object()) return std::nullopt;
    for (auto it = k.begin(); it != k.end() && out != false; ++it)
      if (v.contains(it.key())) out = all_of(out, check(it.value(), v[it.key()], depth + 1));
    return out;
  }
  if (key == "patternProperties") {
    if (!k.is_object()) return std::nullopt;
    for (auto p = k.begin(); p != k.end() && out != false; ++p)
      for (auto it = v.begin(); it != v.end() && out != false; ++it) {
        const Verdict m = matches(p.key(), it.key());
        if (!m) out = all_of(out, std::nullopt);
        else if (*m) out = all_of(out, check(p.value(), it.value(), depth + 1));
      }
    return out;
  }
  if (key == "additionalProperties" || key == "unevaluatedProperties") {
    // unevaluatedProperties is additionalProperties where no applicator evaluates members, and
    // nothing beside additionalProperties (which evaluates them all).
    if (key == "unevaluatedProperties") {
      if (s.contains("additionalProperties")) return true;
      if (uses_applicators(s)) return std::nullopt;
    }
    const Json props = s.value("properties", Json::object());
    const Json patterns = s.value("patternProperties", Json::object());
    if (!props.is_object() || !patterns.is_object()) return std::nullopt;
    for (auto it = v.begin(); it != v.end() && out != false; ++it) {
      if (props.contains(it.key())) continue;
      bool matched = false, undecided = false;  // by some pattern
      for (auto p = patterns.begin(); p != patterns.end() && !matched; ++p) {
        const Verdict m = matches(p.key(), it.key());
        matched = m == true;
        undecided = undecided || !m;
      }
      if (matched) continue;
      out = all_of(out, undecided ? std::nullopt : check(k, it.value(), depth + 1));
    }
    return out;
  }
  return std::nullopt;
}

Verdict Evaluator::array_keyword(const Json& s, const std::string& key, const Json& v, int depth) {
  if (!v.is_array()) return true;
  const Json& k = s[key];
  const size_t n = v.size();
  auto count = [&](const char* name) -> std::optional<int64_t> {
    if (!s.contains(name)) return std::nullopt;
    const Json& c = s[name];
    return c.is_number_integer() || c.is_number_unsigned() ? std::optional(c.get<int64_t>())
                                                           : std::optional<int64_t>(-1);
  };
  if (key == "minItems" || key == "maxItems") {
    const auto bound = count(key.c_str());
    if (!bound || *bound < 0) return std::nullopt;
    return key == "minItems" ? static_cast<int64_t>(n) >= *bound : static_cast<int64_t>(n) <= *bound;
  }
  if (key == "uniqueItems") {
    if (!k.is_boolean()) return std::nullopt;
    for (size_t i = 0; k.get<bool>() && i < n; ++i)
      for (size_t j = i + 1; j < n; ++j)
        if (json_equal(v[i], v[j])) return false;
    return true;
  }
  // Elements from `from` on against `schema`.
  auto from = [&](size_t first, const Json& schema) {
    Verdict out = true;
    for (size_t i = first; i < n && out != false; ++i) out = all_of(out, check(schema, v[i], depth + 1));
    return out;
  };
  if (key == "prefixItems") {
    if (!k.is_array()) return std::nullopt;
    Verdict out = true;
    for (size_t i = 0; i < n && i < k.size() && out != false; ++i)
      out = all_of(out, check(k[i], v[i], depth + 1));
    return out;
  }
  if (key == "items") {
    if (k.is_array()) {  // draft 4's tuple, additionalItems after it
      Verdict out = true;
      for (size_t i = 0; i < n && i < k.size() && out != false; ++i)
        out = all_of(out, check(k[i], v[i], depth + 1));
      return all_of(out, from(k.size(), s.value("additionalItems", Json(true))));
    }
    const Json prefix = s.value("prefixItems", Json::array());
    return prefix.is_array() ? from(prefix.size(), k) : std::nullopt;
  }
  if (key == "unevaluatedItems") {
    if (s.contains("items") || uses_applicators(s)) return s.contains("items") ? Verdict(true) : std::nullopt;
    const Json prefix = s.value("prefixItems", Json::array());
    return prefix.is_array() ? from(prefix.size(), k) : std::nullopt;
  }
  if (key == "contains") {
    int64_t found = 0;
    for (size_t i = 0; i < n; ++i) {
      const Verdict r = check(k, v[i], depth + 1);
      if (!r) return std::nullopt;
      found += *r;
    }
    const auto lo = count("minContains"), hi = count("maxContains");
    if ((lo && *lo < 0) || (hi && *hi < 0)) return std::nullopt;
    return found >= lo.value_or(1) && (!hi || found <= *hi);
  }
  return std::nullopt;
}

Verdict Evaluator::string_automaton(const std::string& key, const Json& value,
                                    const std::string& text, bool exact) {
  const Json schema = {{"type", "string"}, {key, value}};
  const std::string id = schema.dump();
  auto it = automata_.find(id);
  if (it == automata_.end()) {
    try {
      Converter sub(root_);
      const std::string regex = sub.value(schema, "");
      it = automata_.emplace(id, Dfa::compile(parse_regex(sub.prelude() + regex,
                                                          RegexDialect::kInternal)))
               .first;
    } catch (const sable::cpp::Error&) {
      return std::nullopt;
    }
  }
  if (it->second.matches(text)) return true;
  return exact ? Verdict(false) : std::nullopt;
}

std::optional<std::string> Converter::evaluated_constants(const Json& s, const std::string& path) {
  if (!needs_evaluation(s)) return std::nullopt;
  const auto values = listed_values(s, root_);
  if (!values) return std::nullopt;
  Evaluator evaluator(root_);
  Json kept = Json::array();
  for (const Json& v : *values) {
    const Verdict r = evaluator.valid(s, v);
    if (!r) return std::nullopt;
    if (*r) kept.push_back(v);
  }
  if (kept.empty())
    error(path, "the schema allows no value (no value of enum/const satisfies its other keywords)");
  return constants(Json{{"enum", std::move(kept)}}, path);
}

}  // namespace sable::grammar::schema
