// patternProperties split exactly into key regions (see pattern_members below and
// json_schema_patterns.h): a key's value must satisfy the schema of every pattern that matches it,
// of its declared property too, and additionalProperties' only where nothing else names it.
// Regions are differences and intersections of key languages (product.h: `(?&-(A)(B))`,
// `(?&a(A)(B))`), over one writing of each key (json_string.h's escapes), so that "not that key"
// cannot be met by writing the same key another way.
#include "json_schema_patterns.h"

#include <algorithm>

#include "json_string.h"
#include "key_patterns.h"
#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar::schema {
namespace {

// More pattern schemas than this that can match one key are refused (2^n regions).
constexpr size_t kMaxOverlappingGroups = 4;

bool is_false(const Json& s) { return allows_nothing(s); }  // false, not {}, not true
bool is_anything(const Json& s) { return (s.is_boolean() && s.get<bool>()) || (s.is_object() && s.empty()); }

// `value` and `also` together (allOf), `also` left out when it asserts nothing.
Json both(const Json& value, const Json& also) {
  if (is_anything(also)) return value;
  if (is_anything(value)) return also;
  return Json{{"allOf", Json::array({value, also})}};
}

// The regex between the quotes of the one writing of the keys `decoded` (a whole-key regex).
std::string written(const std::string& decoded) { return json_string_pattern_regex(decoded); }

std::string literal_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : "|") + escape_regex_literal(n);
  return out;
}

// (?&-(first)(minus...)) or `first` alone.
std::string keys_minus(const std::string& first, const std::vector<std::string>& minus) {
  if (minus.empty()) return first;
  std::string out = "(?&-(" + first + ")";
  for (const std::string& m : minus) out += "(" + m + ")";
  return out + ")";
}

}  // namespace

std::vector<KeyPattern> key_patterns_of(const Json& s, const std::string& path) {
  const Json& pp = s["patternProperties"];
  const std::string pp_path = path + "/patternProperties";
  if (!pp.is_object()) Converter::error(pp_path, "patternProperties must be an object");
  std::vector<KeyPattern> out;
  for (auto item = pp.begin(); item != pp.end(); ++item) {
    KeyPattern k{item.key(), "", item.value(), pp_path + "/" + item.key()};
    try {
      k.whole = whole_key_regex(k.pattern);
    } catch (const sable::cpp::Error& e) {
      Converter::error(k.path, std::string("bad patternProperties pattern: ") + e.what());
    }
    out.push_back(std::move(k));
  }
  return out;
}

bool give_pattern_schemas(const std::vector<KeyPattern>& patterns,
                          const std::set<std::string>& required, const Json* extra, Json* props,
                          std::vector<std::string>* absent, const std::string& path) {
  // A required name nothing declares is a further member: the patterns matching it govern it,
  // else additionalProperties (absent: any value).
  size_t undeclared = 0;
  for (const std::string& r : required) undeclared += !props->contains(r);
  for (const std::string& r : required) {
    if (props->contains(r)) continue;
    // As declared properties they must fit the any-order automaton (past it a declared order would
    // reject the valid orders of names the schema never listed).
    if (props->size() + undeclared > kMaxAnyOrderProperties)
      Converter::error(path + "/required",
                       "required property '" + r + "' is not listed in properties (beside "
                       "patternProperties, in an object too large for any property order); not "
                       "supported");
    bool matched = false;
    Json schema = true;
    for (const KeyPattern& k : patterns)
      if (key_matches(k.whole, r)) matched = true, schema = both(schema, k.schema);
    if (!matched) {
      if (extra && is_false(*extra)) return false;
      schema = extra ? *extra : Json(true);
    }
    (*props)[r] = schema;
  }
  for (auto p = props->begin(); p != props->end();) {
    Json schema = p.value();
    bool excluded = false;
    for (const KeyPattern& k : patterns) {
      if (!key_matches(k.whole, p.key())) continue;
      if (is_false(k.schema)) excluded = true;
      schema = both(schema, k.schema);
    }
    if (!excluded) {
      p.value() = std::move(schema);
      ++p;
      continue;
    }
    if (required.count(p.key())) return false;
    absent->push_back(p.key());
    p = props->erase(p);
  }
  return true;
}

std::vector<std::string> Converter::pattern_members(const std::vector<KeyPattern>& patterns,
                                                    const Json& props,
                                                    const std::vector<std::string>& absent,
                                                    const Json* extra, const std::string& extra_path,
                                                    const std::string& path) {
  struct Group {
    Json schema;
    std::string path;               // of its first pattern
    std::vector<std::string> keys;  // whole-key regexes
    std::string written;            // the keys' one writing
  };
  std::vector<Group> groups, none;  // none: patterns whose schema is false
  for (const KeyPattern& k : patterns) {
    std::vector<Group>& list = is_false(k.schema) ? none : groups;
    auto g = std::find_if(list.begin(), list.end(), [&](const Group& x) { return x.schema == k.schema; });
    if (g == list.end()) list.push_back({k.schema, k.path, {}, ""}), g = list.end() - 1;
    g->keys.push_back(k.whole);
  }
  auto alternation_of = [](const std::vector<std::string>& keys) {
    std::string out;
    for (const std::string& w : keys) out += (out.empty() ? "" : "|") + w;
    return out;
  };
  for (Group& g : groups) g.written = written(alternation_of(g.keys));
  for (Group& g : none) g.written = written(alternation_of(g.keys));
  std::vector<std::string> names = absent;
  for (const auto& [name, sub] : props.items()) names.push_back(name);
  auto overlap = [](const Group& a, const Group& b) {
    for (const std::string& x : a.keys)
      for (const std::string& y : b.keys)
        if (keys_may_overlap(x, y)) return true;
    return false;
  };
  // The keys of a set of groups (all of them match) that no other pattern and no name matches.
  auto region_keys = [&](const std::vector<size_t>& in) {
    std::vector<std::string> minus;
    for (size_t j = 0; j < groups.size(); ++j)
      if (std::find(in.begin(), in.end(), j) == in.end() &&
          std::any_of(in.begin(), in.end(), [&](size_t i) { return overlap(groups[i], groups[j]); }))
        minus.push_back(groups[j].written);
    for (const Group& f : none)
      if (std::any_of(in.begin(), in.end(), [&](size_t i) { return overlap(groups[i], f); }))
        minus.push_back(f.written);
    std::vector<std::string> matched;
    for (const std::string& n : names)
      if (std::all_of(in.begin(), in.end(), [&](size_t i) {
            return std::any_of(groups[i].keys.begin(), groups[i].keys.end(),
                               [&](const std::string& w) { return key_matches(w, n); });
          }))
        matched.push_back(n);
    if (!matched.empty()) minus.push_back(written(literal_names(matched)));
    std::string first = groups[in[0]].written;
    if (in.size() > 1) {
      first = "(?&a";
      for (size_t i : in) first += "(" + groups[i].written + ")";
      first += ")";
    }
    return keys_minus(first, minus);
  };
  std::vector<std::string> out;
  auto member = [&](const std::string& keys, const Json& schema, const std::string& at) {
    const std::string v = is_anything(schema) ? any_value(kAnyDepth - 1) : value(schema, at);
    out.push_back("\"" + keys + "\":" + kWs + v);
  };
  for (size_t i = 0; i < groups.size(); ++i) member(region_keys({i}), groups[i].schema, groups[i].path);
  // Keys two or more patterns of different schemas match: every such schema applies.
  size_t overlapping = 0;
  for (size_t i = 0; i < groups.size(); ++i)
    for (size_t j = 0; j < i; ++j) overlapping += overlap(groups[i], groups[j]);
  if (overlapping > 0) {
    if (groups.size() > kMaxOverlappingGroups)
      error(path + "/patternProperties",
            "more than " + std::to_string(kMaxOverlappingGroups) +
                " patternProperties schemas of which several may match one key; not supported");
    for (uint32_t set = 1; set < (1u << groups.size()); ++set) {
      std::vector<size_t> in;
      for (size_t i = 0; i < groups.size(); ++i)
        if (set & (1u << i)) in.push_back(i);
      if (in.size() < 2) continue;
      bool all_meet = true;
      for (size_t a = 0; a < in.size() && all_meet; ++a)
        for (size_t b = 0; b < a && all_meet; ++b) all_meet = overlap(groups[in[a]], groups[in[b]]);
      if (!all_meet) continue;
      Json schema = true;
      for (size_t i : in) schema = both(schema, groups[i].schema);
      member(region_keys(in), schema, groups[in[0]].path);
    }
  }
  // Keys no pattern matches and no property declares: additionalProperties.
  if (extra && !is_false(*extra)) {
    std::vector<std::string> minus;
    for (const Group& g : groups) minus.push_back(g.written);
    for (const Group& f : none) minus.push_back(f.written);
    if (!names.empty()) minus.push_back(written(literal_names(names)));
    member(keys_minus(written(R"([\s\S]*)"), minus), *extra, extra_path);
  }
  return out;
}

}  // namespace sable::grammar::schema
