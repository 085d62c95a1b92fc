// JSON schema objects and arrays as regexes (see json_schema.h for the layout and the rules).
#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "json_schema.h"
#include "json_schema_converter.h"
#include "json_schema_patterns.h"
#include "json_string.h"
#include "key_patterns.h"
#include "nfa.h"
#include "regex.h"
#include "repeat_text.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"
#include "unique_items.h"

namespace sable::grammar::schema {
namespace {

// NFA states of a member's regex, to foresee the size of the any-order automaton; past `cap` (or
// for a text so long that parsing it for this alone costs too much: regex text is a few bytes per
// NFA state), cap + 1.
int64_t nfa_size(const std::string& regex, int64_t cap) {
  if (regex.size() > static_cast<size_t>(cap) * 16) return cap + 1;
  try {
    // Its references to the prelude's (deferred) definitions count one state each, as there.
    RegexAst ast = parse_regex(regex, RegexDialect::kFragment);
    return static_cast<int64_t>(
        NfaBuilder(std::move(ast), /*defer=*/true, static_cast<int32_t>(cap + 1)).nfa().states.size());
  } catch (const sable::cpp::Error&) {
    return cap + 1;
  }
}

}  // namespace

// The declared properties (each optional one skippable) and, when additionalProperties allows
// them, further members whose keys are none of the declared names; in declared order or in any
// order (PropertyOrder).
std::string Converter::object(const Json& s, const std::string& path) {
  const bool has_props = s.contains("properties");
  if (has_props && !s["properties"].is_object())
    error(path + "/properties", "properties must be an object");
  Json props = has_props ? s["properties"] : Json::object();
  std::set<std::string> required;
  if (s.contains("required")) {
    if (!s["required"].is_array()) error(path + "/required", "required must be an array");
    for (const Json& r : s["required"]) {
      if (!r.is_string()) error(path + "/required", "required entries must be strings");
      required.insert(r.get<std::string>());
    }
  }
  // Names that must not occur (`not` of required, json_schema_not.cpp; a property whose schema
  // allows nothing, `false` or `not {}`): no member, no extra key.
  std::vector<std::string> absent;
  for (auto p = props.begin(); p != props.end(); ++p)
    if (allows_nothing(p.value())) {
      if (required.count(p.key())) return kNothing;  // (no value for a member it must have)
      absent.push_back(p.key());
    }
  for (const std::string& name : absent) props.erase(name);
  if (s.contains("x-sable-absent")) {
    for (const Json& a : s["x-sable-absent"]) {
      if (!a.is_string()) error(path + "/x-sable-absent", "x-sable-absent entries must be strings");
      // Required and excluded (an anyOf branch of `not required`, of a dependency's "without
      // p" beside required p): no object is both.
      if (required.count(a.get<std::string>())) return kNothing;
      absent.push_back(a.get<std::string>());
      props.erase(a.get<std::string>());
    }
  }
  const bool patterned = s.contains("patternProperties");
  // Further members: additionalProperties (or unevaluatedProperties, the same here). Absent, any
  // (JSON Schema), or none beside properties in strict mode. With patternProperties only keys
  // matching a pattern are generated.
  const bool implicit = !s.contains("additionalProperties") && !s.contains("unevaluatedProperties");
  // Implied further members go only after the declared ones (a subset), explicit ones anywhere
  // where that fits; so do implied ones of the alternatives a `not` splits objects into
  // (internal "x-sable-extras-anywhere", json_schema_not.cpp).
  const bool extras_anywhere = !implicit || s.contains("x-sable-extras-anywhere");
  const int64_t min_props = count_keyword(s, "minProperties", 0, path);
  const int64_t max_props = count_keyword(s, "maxProperties", -1, path);
  // Implied further members may be left out (a subset): so they are beside maxProperties.
  Json extra = props.empty() || (!options_.strict && max_props < 0) ? Json(true) : Json(false);
  std::string extra_path = path + "/additionalProperties";
  for (const char* key : {"unevaluatedProperties", "additionalProperties"}) {
    if (s.contains(key)) extra = s[key], extra_path = path + "/" + key;
  }
  // A required name that `properties` does not declare must be one of the further members: it is
  // declared here with additionalProperties' schema (written once, its value per that schema).
  // Without further members no object has it; beside patternProperties (which a pattern matching
  // it would govern instead) it is refused.
  // patternProperties: declared and required names take the schemas of the patterns matching them
  // (json_schema_patterns.h); the other keys are split into regions below.
  std::vector<KeyPattern> patterns;
  if (patterned) {
    patterns = key_patterns_of(s, path);
    const bool extra_given = !implicit || options_.strict;
    if (!give_pattern_schemas(patterns, required, extra_given ? &extra : nullptr, &props, &absent,
                              path))
      return kNothing;
  }
  for (const std::string& r : required) {
    if (props.contains(r)) continue;
    if (implicit && options_.strict)
      error(path + "/required", "required property '" + r +
                                    "' is not listed in properties "
                                    "(strict mode allows no further members)");
    if (!implicit && extra.is_boolean() && !extra.get<bool>()) return kNothing;
    props[r] = implicit ? Json(true) : extra;
  }
  // Names `dependencies` lists that `properties` does not are declared likewise (optional), so
  // the set of members written shows them (member_counts).
  if (!patterned && !(extra.is_boolean() && !extra.get<bool>()))
    for (const std::string& name : dependency_names(s))
      if (!props.contains(name) && std::find(absent.begin(), absent.end(), name) == absent.end())
        props[name] = implicit ? Json(true) : extra;
  // One pattern that every key matches (".*", "^a*"): the declared properties' values satisfy its
  // schema too, and every other key is a further member with that schema (additionalProperties
  // then governs no key).
  std::string every_key_member;
  if (patterned && s["patternProperties"].is_object() && s["patternProperties"].size() == 1 &&
      !props.empty()) {
    const auto only = s["patternProperties"].begin();
    std::optional<std::string> unmatched;
    try {
      unmatched = key_complement_regex(only.key());
    } catch (const sable::cpp::Error&) {
    }
    const Json& sub = only.value();
    if (unmatched == kNothing && sub.is_object()) {  // (its schema is in the declared ones already)
      std::vector<std::string> names = absent;
      for (const auto& [name, prop] : props.items()) names.push_back(name);
      every_key_member = "\"" + json_key_other_than(names) + "\":" + kWs +
                         (sub.empty() ? any_value(kAnyDepth - 1)
                                      : value(sub, path + "/patternProperties/" + only.key()));
    }
  }
  const bool extras = !(extra.is_boolean() && !extra.get<bool>());
  std::string extra_member;
  if (!every_key_member.empty()) {
    extra_member = every_key_member;
  } else if (patterned) {
    // Keys matching no pattern are further members too (additionalProperties): written out
    // directly for one pattern of a simple shape beside no names (key_patterns.h), else as the
    // keys no pattern and no name matches (a difference of key languages).
    const Json& pp = s["patternProperties"];
    std::optional<std::string> simple;
    if (extras && pp.size() == 1 && props.empty() && absent.empty())
      simple = key_complement_regex(pp.begin().key());
    std::vector<std::string> alts = pattern_members(patterns, props, absent,
                                                    extras && !simple ? &extra : nullptr,
                                                    extra_path, path);
    if (simple && *simple != kNothing) {
      const std::string v = extra.is_boolean() || extra.empty() ? any_value(kAnyDepth - 1)
                                                                : value(extra, extra_path);
      alts.push_back("\"" + json_string_pattern_regex(*simple) + "\":" + kWs + v);
    }
    if (!alts.empty()) extra_member = group(alts);
  } else if (extras) {
    const std::string v = extra.is_boolean() || extra.empty() ? any_value(kAnyDepth - 1)
                                                               : value(extra, extra_path);
    std::vector<std::string> names = absent;
    for (const auto& [name, sub] : props.items()) names.push_back(name);
    const std::string key = options_.exact ? exact_key_other_than(names)
                            : names.empty() ? any_string_regex()
                                            : "\"" + json_key_other_than(names) + "\"";
    extra_member = key + ":" + kWs + v;
  }
  std::vector<std::string> members;  // `"name":[ ]?value`
  std::vector<size_t> key_sizes;     // of each member's `"name":[ ]?`
  std::vector<bool> needed;
  for (const auto& [name, sub] : props.items()) {
    const std::string key = escape_regex_literal(Json(name).dump()) + ":" + kWs;
    members.push_back(key + value(sub, path + "/properties/" + name));
    key_sizes.push_back(key.size());
    needed.push_back(required.count(name) > 0);
  }
  // What the required properties and the members allowed already guarantee needs no counting.
  MemberCounts counts = member_counts(s, props, !extra_member.empty(), path);
  if (counts.min <= static_cast<int64_t>(required.size())) counts.min = 0;
  if (extra_member.empty() && counts.max >= static_cast<int64_t>(props.size())) counts.max = -1;
  if (options_.exact) return exact_members(members, key_sizes, needed, extra_member, counts, path);
  const bool any_order = options_.order != PropertyOrder::kDeclared || members.size() <= 1;
  if (any_order && (members.size() > 1 || !counts.empty() ||
                    (members.size() == 1 && extras_anywhere && !extra_member.empty()))) {
    // Explicit further members go anywhere when that fits (and need not be counted), else after
    // the declared ones; implied ones (JSON Schema's default) only after them (extras_anywhere).
    std::string why;
    if (extras_anywhere && !extra_member.empty() && !counts.counted())
      if (std::string r = members_any_order(members, key_sizes, needed, extra_member, true, counts, &why);
          !r.empty())
        return r;
    if (std::string r = members_any_order(members, key_sizes, needed, extra_member, false, counts, &why);
        !r.empty())
      return r;
    // Too large for the set of members written: any order with only the required ones tracked.
    if (options_.order == PropertyOrder::kAuto)
      if (std::string r = members_repeatable(members, key_sizes, needed, extra_member, counts); !r.empty())
        return r;
    if (options_.order == PropertyOrder::kAny || !counts.empty())
      error(path + (counts.empty()     ? "/properties"
                    : counts.counted() ? "/minProperties"
                                       : "/dependencies"),
            counts.empty() ? why
                           : "minProperties/maxProperties/dependencies are enforced only for "
                             "objects in any property order, and " +
                                 why);
  }
  if (!counts.empty())
    error(path + (counts.counted() ? "/minProperties" : "/dependencies"),
          "minProperties/maxProperties/dependencies are not supported in declared property order");
  return members_in_order(members, needed, extra_member, path);
}

// Members repeat (a $ref used in several places, the same further-member regex): sized once. Their
// texts differ only in the numbers of their shared subexpressions (`(?@N`), so the memo's key
// numbers them from the first one; the generic values' fixed numbers stay as they are.
int64_t Converter::nfa_states(const std::string& regex, int64_t cap) {
  std::string key;
  key.reserve(regex.size());
  int64_t base = -1;
  for (size_t i = 0; i < regex.size();) {
    if (regex.compare(i, 3, "(?@") != 0 || i + 3 >= regex.size() || !std::isdigit(static_cast<unsigned char>(regex[i + 3]))) {
      key += regex[i++];
      continue;
    }
    size_t j = i + 3;
    int64_t id = 0;
    while (j < regex.size() && std::isdigit(static_cast<unsigned char>(regex[j])))
      id = id * 10 + (regex[j++] - '0');
    if (id <= kAnyDepth) {
      key += "(?@any" + std::to_string(id);
      i = j;
      continue;
    }
    if (base < 0) base = id;
    key += "(?@" + std::to_string(id - base);
    i = j;
  }
  auto it = nfa_sizes_.find(key);
  // A size past an earlier cap at least as large as this one is past this one too.
  if (it != nfa_sizes_.end() && (it->second.second || it->second.first > cap)) return it->second.first;
  const int64_t n = nfa_size(regex, cap);
  nfa_sizes_.insert_or_assign(std::move(key), std::pair{n, n <= cap});
  return n;
}

std::string Converter::define(const std::string& body, std::string* defs, bool deferred) {
  const std::string id = std::to_string(next_definition_++);
  *defs += "(?@" + id + (deferred ? "~=" : "=") + body + ")";
  return "(?@" + id + ")";
}

std::string Converter::repeat(const std::string& atom, int64_t lo, int64_t hi) {
  // Equal links (the same atom and count left) are one definition, shared by every use.
  return repeat_text(atom, lo, hi, [this](const std::string& body) {
    auto [it, added] = repeat_links_.try_emplace(body);
    if (added) it->second = define(body, &prelude_, true);
    return it->second;
  });
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
  // uniqueItems: exact over a finite set of item values (unique_items.h), else refused.
  if (s.value("uniqueItems", false) && (hi < 0 || hi > 1)) {
    Json values_of = items;
    if (p == 0 && items.is_object() && items.size() == 1 && items.contains("$ref"))
      values_of = resolve(ref_target(items, items_path), items_path);
    const auto values = p == 0 ? finite_item_values(values_of) : std::nullopt;
    if (!values || values->size() > kMaxUniqueValues)
      error(path + "/uniqueItems",
            "uniqueItems is not supported (except with maxItems <= 1 or items of at most " +
                std::to_string(kMaxUniqueValues) + " listed values: enum, const, boolean, null)");
    return unique_items_regex(*values, lo, hi, [this](const std::string& body) {
      return define(body, &prelude_, true);
    });
  }

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
      item = any_value(kAnyDepth - 1);
  }
  // tail(i): the elements from index i on, i >= 1 already written (each with a leading comma).
  const std::string sep = "," + kWs;
  std::string tail;
  if (!item.empty()) {
    const int64_t at_least = std::max<int64_t>(lo - static_cast<int64_t>(p), 0);
    tail = repeat("(?:" + sep + item + ")", at_least, hi < 0 ? -1 : hi - static_cast<int64_t>(p));
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
    const std::string rest =
        repeat("(?:" + sep + item + ")", std::max<int64_t>(lo - 1, 0), hi < 0 ? -1 : hi - 1);
    body = lo == 0 ? "(?:" + item + rest + ")?" : item + rest;
  } else if (lo > 0) {
    error(path, "minItems needs more elements than the array allows");
  }
  return "\\[" + body + "\\]";
}

}  // namespace sable::grammar::schema
