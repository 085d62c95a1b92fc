// JSON schema objects and arrays as regexes (see json_schema.h for the layout and the rules).
#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "json_schema.h"
#include "json_schema_converter.h"
#include "json_string.h"
#include "key_patterns.h"
#include "nfa.h"
#include "regex.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

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

// patternProperties: the further members whose keys match a pattern, one alternative per group of
// patterns with the same schema. Exact only when no key can match two patterns of different
// schemas and no declared name matches a pattern (a pattern key could then repeat it, with only
// the pattern's schema on its value): both are checked and refused. Keys matching no pattern are
// not generated (a subset: they would need the complement of the patterns).
std::vector<std::string> Converter::pattern_members(const Json& s, const Json& props,
                                                    const std::vector<std::string>& absent,
                                                    const std::string& path) {
  const Json& pp = s["patternProperties"];
  const std::string pp_path = path + "/patternProperties";
  if (!pp.is_object()) error(pp_path, "patternProperties must be an object");
  struct Group {
    Json schema;
    std::string path;  // of its first pattern
    std::vector<std::string> keys;  // whole-key regexes
  };
  std::vector<Group> groups;
  for (auto item = pp.begin(); item != pp.end(); ++item) {
    const std::string& pattern = item.key();
    const Json& sub = item.value();
    const std::string at = pp_path + "/" + pattern;
    std::string whole;
    try {
      whole = whole_key_regex(pattern);
    } catch (const sable::cpp::Error& e) {
      error(at, std::string("bad patternProperties pattern: ") + e.what());
    }
    for (const auto& [name, prop] : props.items())
      if (key_matches(whole, name))
        error(at, "the pattern matches the declared property '" + name + "' (a key written "
                  "for the pattern could repeat it); not supported");
    for (const std::string& name : absent)
      if (key_matches(whole, name))
        error(at, "the pattern matches the property '" + name + "' that `not` excludes; not "
                  "supported");
    if (sub.is_boolean() && !sub.get<bool>()) continue;  // such keys are never generated
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.schema == sub; });
    if (g == groups.end()) groups.push_back({sub, at, {}}), g = groups.end() - 1;
    for (const Group& other : groups)
      if (other.schema != sub)
        for (const std::string& w : other.keys)
          if (keys_may_overlap(w, whole))
            error(pp_path, "patternProperties patterns may match the same key with different "
                           "schemas, which a key's value would then need both of; not supported");
    g->keys.push_back(whole);
  }
  std::vector<std::string> out;
  for (const Group& g : groups) {
    std::string keys;
    for (const std::string& w : g.keys) keys += (keys.empty() ? "" : "|") + w;
    const std::string v = g.schema.is_boolean() || g.schema.empty()
                              ? any_value(kAnyDepth - 1)
                              : value(g.schema, g.path);
    out.push_back("\"" + json_string_pattern_regex(keys) + "\":" + kWs + v);
  }
  return out;
}

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
  // Names that must not occur (`not` of required, json_schema_not.cpp): no member, no extra key.
  std::vector<std::string> absent;
  if (s.contains("x-sable-absent")) {
    for (const Json& a : s["x-sable-absent"]) {
      if (!a.is_string()) error(path + "/x-sable-absent", "x-sable-absent entries must be strings");
      if (required.count(a.get<std::string>()))
        error(path + "/not", "property '" + a.get<std::string>() + "' is both required and excluded");
      absent.push_back(a.get<std::string>());
      props.erase(a.get<std::string>());
    }
  }
  const bool patterned = s.contains("patternProperties");
  // Further members: additionalProperties (or unevaluatedProperties, the same here). Absent, any
  // (JSON Schema), or none beside properties in strict mode. With patternProperties only keys
  // matching a pattern are generated.
  const bool implicit = !s.contains("additionalProperties") && !s.contains("unevaluatedProperties");
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
  for (const std::string& r : required) {
    if (props.contains(r)) continue;
    if (patterned)
      error(path + "/required", "required property '" + r + "' is not listed in properties "
                                "(beside patternProperties: not supported)");
    if (implicit && options_.strict)
      error(path + "/required", "required property '" + r + "' is not listed in properties "
                                "(strict mode allows no further members)");
    if (!implicit && extra.is_boolean() && !extra.get<bool>()) return kNothing;
    props[r] = implicit ? Json(true) : extra;
  }
  const std::vector<std::string> pattern_alts =
      patterned ? pattern_members(s, props, absent, path) : std::vector<std::string>{};
  const bool extras = !(extra.is_boolean() && !extra.get<bool>()) || !pattern_alts.empty();
  std::string extra_member;
  if (patterned) {
    std::vector<std::string> alts = pattern_alts;
    // Keys matching no pattern are further members too (additionalProperties): generated when
    // that language is simple (one pattern of a simple shape, key_patterns.h) and no declared
    // name must be told apart from them; else left out (a subset).
    const Json& pp = s["patternProperties"];
    if (!(extra.is_boolean() && !extra.get<bool>()) && pp.size() == 1 && props.empty() &&
        absent.empty())
      if (auto keys = key_complement_regex(pp.begin().key()); keys && *keys != kNothing) {
        const std::string v = extra.is_boolean() || extra.empty() ? any_value(kAnyDepth - 1)
                                                                   : value(extra, extra_path);
        alts.push_back("\"" + json_string_pattern_regex(*keys) + "\":" + kWs + v);
      }
    if (!alts.empty()) extra_member = group(alts);
  } else if (extras) {
    const std::string v = extra.is_boolean() || extra.empty() ? any_value(kAnyDepth - 1)
                                                               : value(extra, extra_path);
    std::vector<std::string> names = absent;
    for (const auto& [name, sub] : props.items()) names.push_back(name);
    const std::string key =
        names.empty() ? any_string_regex() : "\"" + json_key_other_than(names) + "\"";
    extra_member = key + ":" + kWs + v;
  }
  std::vector<std::string> members;  // `"name":[ ]?value`
  std::vector<bool> needed;
  for (const auto& [name, sub] : props.items()) {
    members.push_back(escape_regex_literal(Json(name).dump()) + ":" + kWs +
                      value(sub, path + "/properties/" + name));
    needed.push_back(required.count(name) > 0);
  }
  // What the required properties and the members allowed already guarantee needs no counting.
  MemberCounts counts = member_counts(s, props, !extra_member.empty(), path);
  if (counts.min <= static_cast<int64_t>(required.size())) counts.min = 0;
  if (extra_member.empty() && counts.max >= static_cast<int64_t>(props.size())) counts.max = -1;
  const bool any_order = options_.order != PropertyOrder::kDeclared || members.size() <= 1;
  if (any_order && (members.size() > 1 || !counts.empty())) {
    // Explicit further members go anywhere when that fits (and need not be counted), else after
    // the declared ones; implied ones (JSON Schema's default) only after them.
    std::string why;
    if (!implicit && !extra_member.empty() && !counts.counted())
      if (std::string r = members_any_order(members, needed, extra_member, true, counts, &why);
          !r.empty())
        return r;
    if (std::string r = members_any_order(members, needed, extra_member, false, counts, &why);
        !r.empty())
      return r;
    // Too large for the set of members written: any order with only the required ones tracked.
    if (options_.order == PropertyOrder::kAuto)
      if (std::string r = members_repeatable(members, needed, extra_member, counts); !r.empty())
        return r;
    if (options_.order == PropertyOrder::kAny || !counts.empty())
      error(path + (counts.empty() ? "/properties" : counts.counted() ? "/minProperties" : "/dependencies"),
            counts.empty() ? why
                           : "minProperties/maxProperties/dependencies are enforced only for "
                             "objects in any property order, and " + why);
  }
  if (!counts.empty())
    error(path + (counts.counted() ? "/minProperties" : "/dependencies"),
          "minProperties/maxProperties/dependencies are not supported in declared property order");
  return members_in_order(members, needed, extra_member, path);
}

// Members in any order where only the set of *tracked* members written is a state (the required
// ones and those `dependencies` name): each member may be written again (its value checked each
// time), so every parse of the text, whichever duplicate it keeps, is a valid object; at the
// closing brace the required ones are there and the dependencies hold. 2^t states for t tracked
// properties, each choosing among the n members: "" past kMaxRepeatableAlternatives, or for
// min/maxProperties (repeats would count; minProperties 1 is a non-empty object).
std::string Converter::members_repeatable(const std::vector<std::string>& members,
                                          const std::vector<bool>& needed,
                                          const std::string& extra, const MemberCounts& counts) {
  const size_t n = members.size();
  if (counts.max >= 0 || counts.min > 1) return "";
  std::vector<bool> tracked = needed;
  for (const auto& [trigger, needs] : counts.dependencies) {
    tracked[trigger] = true;
    for (size_t i : needs) tracked[i] = true;
  }
  std::vector<size_t> req;  // member index of each tracked property
  for (size_t i = 0; i < n; ++i)
    if (tracked[i]) req.push_back(i);
  if (req.size() > 16 || (static_cast<int64_t>(n) + 1) << req.size() > kMaxRepeatableAlternatives)
    return "";
  std::string defs;
  std::vector<std::string> member(n);
  for (size_t i = 0; i < n; ++i) member[i] = define(members[i], &defs);
  const std::string other = extra.empty() ? "" : define(extra, &defs);
  const std::string sep = "," + kWs;
  // bit[i]: the bit of member i among the tracked ones (0 for the others).
  std::vector<uint32_t> bit(n, 0);
  uint32_t required = 0;
  for (size_t k = 0; k < req.size(); ++k) {
    bit[req[k]] = 1u << k;
    required |= needed[req[k]] ? 1u << k : 0u;
  }
  const uint32_t all = req.empty() ? 0 : static_cast<uint32_t>((uint64_t{1} << req.size()) - 1);
  auto may_close = [&](uint32_t set) {
    if ((set & required) != required) return false;
    for (const auto& [trigger, needs] : counts.dependencies)
      if (set & bit[trigger])
        for (size_t i : needs)
          if (!(set & bit[i])) return false;
    return true;
  };
  // rest(S): members that leave S as it is (optional ones, required ones in S, further ones) any
  // number of times, then the end (S complete) or a required one not in S.
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first
    std::vector<std::string> loops, exits;
    for (size_t i = 0; i < n; ++i)
      if (bit[i] == 0 || (set & bit[i])) loops.push_back(member[i]);
    if (!other.empty()) loops.push_back(other);
    if (may_close(set)) exits.push_back("");
    for (size_t i = 0; i < n; ++i)
      if (bit[i] && !(set & bit[i])) exits.push_back(sep + member[i] + rest[set | bit[i]]);
    rest[set] = define("(?:" + sep + group(loops) + ")*" + group(exits), &defs, /*deferred=*/true);
  }
  std::vector<std::string> first;
  if (may_close(0) && counts.min <= 0) first.push_back("");
  for (size_t i = 0; i < n; ++i) first.push_back(member[i] + rest[bit[i]]);
  if (!other.empty()) first.push_back(other + rest[0]);
  return "(?:" + defs + "\\{" + group(first) + "\\})";
}

// dependencies (draft 4-7: a list of names or a schema), dependentRequired (2019-09) and
// min/maxProperties of an object whose declared properties are `props` in order. A dependency
// given as a schema is supported when it holds only `required`; a name outside `props` is a
// further member, refused when further members may hold it (the set of declared members written
// does not show it) and else never present.
MemberCounts Converter::member_counts(const Json& s, const Json& props, bool extras,
                                      const std::string& path) {
  MemberCounts out;
  out.min = count_keyword(s, "minProperties", 0, path);
  out.max = count_keyword(s, "maxProperties", -1, path);
  if (out.max >= 0 && out.max < out.min) error(path, "maxProperties is below minProperties");
  // The index of a declared property, or -1.
  auto index = [&](const std::string& name) -> int64_t {
    int64_t i = 0;
    for (auto it = props.begin(); it != props.end(); ++it, ++i)
      if (it.key() == name) return i;
    return -1;
  };
  for (const char* key : {"dependentRequired", "dependencies"}) {
    if (!s.contains(key)) continue;
    const std::string at = path + "/" + key;
    if (!s[key].is_object()) error(at, std::string(key) + " must be an object");
    for (auto it = s[key].begin(); it != s[key].end(); ++it) {
      const std::string here = at + "/" + it.key();
      const Json* names = &it.value();
      if (names->is_object() && names->contains("required")) {
        bool only_required = true;
        for (auto k = names->begin(); k != names->end(); ++k)
          only_required = only_required && (k.key() == "required" || is_annotation_keyword(k.key()));
        if (only_required) names = &(*names)["required"];
      }
      if (!names->is_array())
        error(here, "'" + std::string(key) + "' with a schema (conditional schemas) is not "
                    "supported (only a list of required names)");
      const int64_t trigger = index(it.key());
      std::vector<size_t> needs;
      for (const Json& name : *names) {
        if (!name.is_string()) error(here, std::string(key) + " entries must be strings");
        const int64_t i = index(name.get<std::string>());
        if (i < 0 && trigger >= 0)
          error(here, "'" + std::string(key) + "' on property '" + name.get<std::string>() +
                          "', which is not in properties, is not supported");
        if (i >= 0) needs.push_back(static_cast<size_t>(i));
      }
      if (trigger < 0 && extras)
        error(here, "'" + std::string(key) + "' triggered by '" + it.key() + "', which is not in "
                    "properties, is not supported beside further members");
      if (trigger >= 0 && !needs.empty())
        out.dependencies.emplace_back(static_cast<size_t>(trigger), std::move(needs));
    }
  }
  return out;
}

// Optional members may be skipped, commas only between those present. started[i]: the members
// from i on after one was already written (each with a leading comma); fresh(i): the same when
// none was written yet. Each member and each started[i] is one shared subexpression, used twice,
// so the text stays linear in the members (not quadratic, as copies would be).
std::string Converter::members_in_order(const std::vector<std::string>& members,
                                        const std::vector<bool>& needed, const std::string& extra,
                                        const std::string& path) {
  const size_t k = members.size();
  std::string defs;
  const std::string sep = "," + kWs;
  const std::string other = extra.empty() ? "" : define(extra, &defs);
  std::vector<std::string> started(k + 1);
  started[k] = other.empty() ? "" : define("(?:" + sep + other + ")*", &defs);
  std::vector<std::string> member(k);
  for (size_t i = k; i-- > 0;) {
    member[i] = define(members[i], &defs);
    const std::string item = sep + member[i];
    started[i] = define((needed[i] ? item : "(?:" + item + ")?") + started[i + 1], &defs);
  }
  std::string fresh = other.empty() ? "" : "(?:" + other + started[k] + ")?";
  for (size_t i = k; i-- > 0;) {
    const std::string with_i = member[i] + started[i + 1];
    fresh = needed[i] ? with_i : "(?:" + with_i + "|" + fresh + ")";
  }
  if (defs.size() + fresh.size() > kMaxObjectRegexSize)
    error(path, "the object is too large to compile (its regex would pass " +
                    std::to_string(kMaxObjectRegexSize >> 20) + " MiB)");
  return "(?:" + defs + "\\{" + fresh + "\\})";
}

// Each subset S of the declared properties written so far is one shared subexpression rest(S):
// further members (each declared one not in S once; extra ones any number of times when
// extras_anywhere), ending when S holds every required property (and satisfies `counts`), where
// extra members may follow (after them: a shared tail, or a counted one for min/maxProperties).
// Text and automaton are 2^n in the number of properties n, hence the limits; past them "" and
// *why says so.
std::string Converter::members_any_order(const std::vector<std::string>& members,
                                         const std::vector<bool>& needed, const std::string& extra,
                                         bool extras_anywhere, const MemberCounts& counts,
                                         std::string* why) {
  const size_t n = members.size();
  // The automaton holds a copy of member p for each subset without p: 2^(n-1) copies of each.
  // (rest(S) is deferred, built when a text reaches S, so a text builds far fewer; the bound
  // keeps the regex text, 2^n subsets, and the automata of texts that try many orders small.)
  int64_t copies = 0;
  if (n <= kMaxAnyOrderProperties) {
    const int64_t cap = kMaxAnyOrderStates >> (n > 0 ? n - 1 : 0);
    for (const std::string& m : members) copies += nfa_states(m, cap);
    copies <<= n > 0 ? n - 1 : 0;
    if (!extra.empty() && copies <= kMaxAnyOrderStates) {
      const int shift = extras_anywhere ? static_cast<int>(n) : 0;
      copies += nfa_states(extra, kMaxAnyOrderStates >> shift) << shift;
    }
  }
  if (n > kMaxAnyOrderProperties || copies > kMaxAnyOrderStates) {
    *why = "an object with " + std::to_string(n) + " properties in any order is too large to "
           "compile (" + (n > kMaxAnyOrderProperties
                              ? "more than " + std::to_string(kMaxAnyOrderProperties) + " properties"
                              : "about " + std::to_string(copies) + " automaton states") +
           ": each subset of the properties is a state); \"x-sable\": {\"property_order\": "
           "\"declared\"} (or \"auto\", the default) generates properties in declared order";
    return "";
  }
  std::string defs;
  std::vector<std::string> member(n);
  for (size_t i = 0; i < n; ++i) member[i] = define(members[i], &defs);
  const std::string sep = "," + kWs;
  const std::string other = extra.empty() ? "" : define(extra, &defs);
  const std::string others = other.empty() ? "" : define("(?:" + sep + other + ")*", &defs);
  uint32_t required = 0;
  for (size_t i = 0; i < n; ++i) required |= needed[i] ? 1u << i : 0u;
  const uint32_t all = n ? (1u << n) - 1 : 0;
  auto size_of = [](uint32_t set) { return static_cast<int64_t>(__builtin_popcount(set)); };
  auto fits = [&](uint32_t set) { return counts.max < 0 || size_of(set) <= counts.max; };
  // Whether the object may end at S once `extras` further members follow (-1: any number).
  auto may_close = [&](uint32_t set) {
    if ((set & required) != required) return false;
    for (const auto& [trigger, needs] : counts.dependencies)
      if (set & (1u << trigger))
        for (size_t i : needs)
          if (!(set & (1u << i))) return false;
    return true;
  };
  // The further members after the declared ones, counted when min/maxProperties need it ("" when
  // none may follow and none is needed; nullopt when the count cannot be met).
  auto tail = [&](uint32_t set, int64_t written) -> std::optional<std::string> {
    const int64_t have = size_of(set) + written;
    const int64_t lo = std::max<int64_t>(counts.min - have, 0);
    const int64_t hi = counts.max < 0 ? -1 : counts.max - have;
    if (hi >= 0 && hi < lo) return std::nullopt;
    if (other.empty()) return lo > 0 ? std::nullopt : std::optional<std::string>("");
    if (!counts.counted()) return others;
    if (hi == 0) return "";
    return "(?:" + sep + other + "){" + std::to_string(lo) + "," +
           (hi < 0 ? "" : std::to_string(hi)) + "}";
  };
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first: rest(S) refers to rest(S + p)
    if (!fits(set)) continue;
    std::vector<std::string> alts;
    if (may_close(set))
      if (auto t = extras_anywhere ? std::optional<std::string>("") : tail(set, 0)) alts.push_back(*t);
    for (size_t p = 0; p < n; ++p)
      if (!(set & (1u << p)) && fits(set | (1u << p)))
        alts.push_back(sep + member[p] + rest[set | (1u << p)]);
    rest[set] = alts.empty() ? kNothing
                             : define((extras_anywhere ? others : "") + group(alts), &defs,
                                      /*deferred=*/true);
  }
  std::vector<std::string> first;
  if (may_close(0) && counts.min <= 0) first.push_back("");
  for (size_t p = 0; p < n; ++p)
    if (fits(1u << p)) first.push_back(member[p] + rest[1u << p]);
  if (!other.empty() && counts.max != 0) {
    if (extras_anywhere) first.push_back(other + rest[0]);
    else if (may_close(0))
      if (auto t = tail(0, 1)) first.push_back(other + *t);
  }
  if (first.empty()) return kNothing;
  return "(?:" + defs + "\\{" + group(first) + "\\})";
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
      item = any_value(kAnyDepth - 1);
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
