// JSON schema objects and arrays as regexes (see json_schema.h for the layout and the rules).
#include <set>

#include "json_schema.h"
#include "json_schema_converter.h"
#include "json_string.h"
#include "nfa.h"
#include "regex.h"

namespace sable::grammar::schema {
namespace {

// A converted object longer than this is refused (optional properties multiply the text).
constexpr size_t kMaxObjectRegexSize = 4 << 20;

// (?:a|b|...): one of the alternatives ("" is the empty string).
std::string group(const std::vector<std::string>& alts) {
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

// NFA states of a member's regex, to foresee the size of the any-order automaton.
int64_t nfa_size(const std::string& regex) {
  return static_cast<int64_t>(build_nfa(parse_regex(regex, RegexDialect::kInternal)).states.size());
}

}  // namespace

// The declared properties (each optional one skippable) and, when additionalProperties allows
// them, further members whose keys are none of the declared names; in declared order or in any
// order (PropertyOrder).
std::string Converter::object(const Json& s, const std::string& path) {
  const bool has_props = s.contains("properties");
  if (has_props && !s["properties"].is_object())
    error(path + "/properties", "properties must be an object");
  const Json props = has_props ? s["properties"] : Json::object();
  std::set<std::string> required;
  if (s.contains("required")) {
    if (!s["required"].is_array()) error(path + "/required", "required must be an array");
    for (const Json& r : s["required"]) {
      if (!r.is_string()) error(path + "/required", "required entries must be strings");
      required.insert(r.get<std::string>());
    }
  }
  for (const std::string& r : required)
    if (!props.contains(r))
      error(path + "/required", "required property '" + r + "' is not listed in properties");

  // Further members: additionalProperties (or unevaluatedProperties, the same here). Absent, an
  // object with properties gets no others (a subset of what the schema allows), one without any.
  Json extra = props.empty() ? Json(true) : Json(false);
  std::string extra_path = path + "/additionalProperties";
  for (const char* key : {"unevaluatedProperties", "additionalProperties"}) {
    if (s.contains(key)) extra = s[key], extra_path = path + "/" + key;
  }
  const bool extras = !(extra.is_boolean() && !extra.get<bool>());
  std::string extra_member;
  if (extras) {
    const std::string v = extra.is_boolean() || extra.empty() ? any_json_value_regex(kAnyDepth - 1)
                                                               : value(extra, extra_path);
    std::vector<std::string> names;
    for (const auto& [name, sub] : props.items()) names.push_back(name);
    const std::string key =
        names.empty() ? any_string_regex() : "\"" + json_key_other_than(names) + "\"";
    extra_member = key + ":" + kWs + v;
  }
  const int64_t min_props = count_keyword(s, "minProperties", 0, path);
  const int64_t max_props = count_keyword(s, "maxProperties", -1, path);
  if (min_props > static_cast<int64_t>(required.size()))
    error(path + "/minProperties",
          "minProperties above the number of required properties is not supported");
  if (max_props >= 0 && (extras || max_props < static_cast<int64_t>(props.size())))
    error(path + "/maxProperties",
          "maxProperties below the number of properties the object may have is not supported");

  std::vector<std::string> members;  // `"name":[ ]?value`
  std::vector<bool> needed;
  for (const auto& [name, sub] : props.items()) {
    members.push_back(escape_regex_literal(Json(name).dump()) + ":" + kWs +
                      value(sub, path + "/properties/" + name));
    needed.push_back(required.count(name) > 0);
  }
  if (order_ == PropertyOrder::kAny && members.size() > 1)
    return members_any_order(members, needed, extra_member, path);
  return members_in_order(members, needed, extra_member, path);
}

// Optional members may be skipped, commas only between those present. started[i]: the members
// from i on after one was already written (each with a leading comma); fresh(i): the same when
// none was written yet.
std::string Converter::members_in_order(const std::vector<std::string>& members,
                                        const std::vector<bool>& needed, const std::string& extra,
                                        const std::string& path) {
  const size_t k = members.size();
  std::vector<std::string> started(k + 1);
  started[k] = extra.empty() ? "" : "(?:," + kWs + extra + ")*";
  for (size_t i = k; i-- > 0;) {
    const std::string item = "," + kWs + members[i];
    started[i] = (needed[i] ? item : "(?:" + item + ")?") + started[i + 1];
  }
  std::string fresh = extra.empty() ? "" : "(?:" + extra + started[k] + ")?";
  for (size_t i = k; i-- > 0;) {
    const std::string with_i = members[i] + started[i + 1];
    fresh = needed[i] ? with_i : "(?:" + with_i + "|" + fresh + ")";
    if (fresh.size() > kMaxObjectRegexSize)
      error(path, "the object has too many optional properties");
  }
  return "\\{" + fresh + "\\}";
}

// Each subset S of the declared properties written so far is one shared subexpression rest(S):
// further members (extra ones any number of times, each declared one not in S once), ending
// when S holds every required property. Text and automaton are 2^n in the number of properties n,
// hence kMaxAnyOrderProperties.
std::string Converter::members_any_order(const std::vector<std::string>& members,
                                         const std::vector<bool>& needed, const std::string& extra,
                                         const std::string& path) {
  const size_t n = members.size();
  // The automaton holds a copy of member p for each subset without p: 2^(n-1) copies of each.
  int64_t copies = 0;
  if (n <= kMaxAnyOrderProperties) {
    for (const std::string& m : members) copies += nfa_size(m);
    copies <<= n - 1;
    if (!extra.empty()) copies += nfa_size(extra) << n;
  }
  if (n > kMaxAnyOrderProperties || copies > kMaxAnyOrderStates)
    error(path + "/properties",
          "an object with " + std::to_string(n) + " properties in any order is too large to "
          "compile (" + (n > kMaxAnyOrderProperties
                             ? "more than " + std::to_string(kMaxAnyOrderProperties) + " properties"
                             : "about " + std::to_string(copies) + " automaton states") +
          ": each subset of the properties is a state); send \"x-sable\": "
          "{\"property_order\": \"declared\"} in the schema (top level or this object) to generate "
          "properties in declared order");
  std::string defs;
  std::vector<std::string> member(n);
  for (size_t i = 0; i < n; ++i) member[i] = define(members[i], &defs);
  const std::string other = extra.empty() ? "" : define(extra, &defs);
  const std::string sep = "," + kWs;
  uint32_t required = 0;
  for (size_t i = 0; i < n; ++i) required |= needed[i] ? 1u << i : 0u;
  const uint32_t all = (1u << n) - 1;
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first: rest(S) refers to rest(S + p)
    std::vector<std::string> alts;
    if ((set & required) == required) alts.push_back("");
    for (size_t p = 0; p < n; ++p)
      if (!(set & (1u << p))) alts.push_back(sep + member[p] + rest[set | (1u << p)]);
    rest[set] = define((other.empty() ? "" : "(?:" + sep + other + ")*") + group(alts), &defs);
  }
  std::vector<std::string> first;
  if (required == 0) first.push_back("");
  for (size_t p = 0; p < n; ++p) first.push_back(member[p] + rest[1u << p]);
  if (!other.empty()) first.push_back(other + rest[0]);
  return "(?:" + defs + "\\{" + group(first) + "\\})";
}

std::string Converter::define(const std::string& body, std::string* defs) {
  const std::string id = std::to_string(next_definition_++);
  *defs += "(?@" + id + "=" + body + ")";
  return "(?@" + id + ")";
}

// n elements, lo <= n <= hi: position i < prefix.size() holds prefix[i], later ones `items`.
std::string Converter::array(const Json& s, const std::string& path) {
  // Draft-4 tuples ("items": [...]) mean what prefixItems means today.
  const bool old_tuple = s.contains("items") && s["items"].is_array();
  const Json prefix = old_tuple                   ? s["items"]
                      : s.contains("prefixItems") ? s["prefixItems"]
                                                  : Json::array();
  const std::string prefix_path = path + (old_tuple ? "/items/" : "/prefixItems/");
  if (!prefix.is_array()) error(path + "/prefixItems", "prefixItems must be an array");
  std::string items_path = path + (old_tuple ? "/additionalItems" : "/items");
  Json items = old_tuple ? s.value("additionalItems", Json()) : s.value("items", Json());
  if (items.is_null() && s.contains("unevaluatedItems"))
    items = s["unevaluatedItems"], items_path = path + "/unevaluatedItems";
  const size_t p = prefix.size();
  int64_t lo = count_keyword(s, "minItems", -1, path);
  int64_t hi = count_keyword(s, "maxItems", -1, path);
  if (items.is_boolean() && !items.get<bool>()) hi = hi < 0 ? p : std::min<int64_t>(hi, p);
  if (hi >= 0 && lo > hi) error(path, "maxItems is below minItems (or the items allowed)");
  // Without minItems a tuple is written whole (shorter ones are valid too, but rarely meant).
  if (lo < 0) lo = hi >= 0 ? std::min<int64_t>(hi, p) : static_cast<int64_t>(p);
  if (s.value("uniqueItems", false) && (hi < 0 || hi > 1))
    error(path + "/uniqueItems", "uniqueItems is not supported (except with maxItems <= 1)");

  std::vector<std::string> elems;
  for (size_t i = 0; i < p && (hi < 0 || static_cast<int64_t>(i) < hi); ++i)
    elems.push_back(value(prefix[i], prefix_path + std::to_string(i)));
  // Elements after the prefix: `items` when a schema; absent, any value for a plain array and
  // none after a tuple unless minItems needs them.
  std::string item;
  const bool more_allowed = hi < 0 || hi > static_cast<int64_t>(p);
  if (more_allowed) {
    if (items.is_object() && !items.empty()) item = value(items, items_path);
    else if (items.is_boolean() || items.is_object() || p == 0 || lo > static_cast<int64_t>(p))
      item = any_json_value_regex(kAnyDepth - 1);
  }
  // tail(i): the elements from index i on, i >= 1 already written (each with a leading comma).
  const std::string sep = "," + kWs;
  std::string tail;
  if (!item.empty()) {
    const int64_t at_least = std::max<int64_t>(lo - static_cast<int64_t>(p), 0);
    const std::string most = hi < 0 ? "" : std::to_string(hi - static_cast<int64_t>(p));
    tail = "(?:" + sep + item + "){" + std::to_string(at_least) + "," + most + "}";
  }
  for (size_t i = elems.size(); i-- > 1;) {
    const std::string with_i = sep + elems[i] + tail;
    tail = static_cast<int64_t>(i) < lo ? with_i : "(?:" + with_i + ")?";
  }
  std::string body;
  if (!elems.empty()) {
    body = elems[0] + tail;
    if (lo == 0) body = "(?:" + body + ")?";
  } else if (!item.empty()) {  // no prefix: item (sep item){lo-1, hi-1}
    if (hi == 0) return "\\[\\]";
    const std::string rest = "(?:" + sep + item + "){" + std::to_string(std::max<int64_t>(lo - 1, 0)) +
                             "," + (hi < 0 ? "" : std::to_string(hi - 1)) + "}";
    body = lo == 0 ? "(?:" + item + rest + ")?" : item + rest;
  } else if (lo > 0) {
    error(path, "minItems needs more elements than the array allows");
  }
  return "\\[" + body + "\\]";
}

}  // namespace sable::grammar::schema
