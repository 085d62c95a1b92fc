// The members of a JSON schema object as regexes (see json_schema.h): in declared order, in any
// order with the set of members written as the state (and min/maxProperties, dependencies checked
// on it); for objects too large for that, any order with repeatable members is in
// json_schema_repeatable.cpp. object() in json_schema_containers.cpp chooses among them.
#include <algorithm>
#include <optional>

#include "json_schema_converter.h"
#include "schema_merge.h"

namespace sable::grammar::schema {
namespace {

// A converted object longer than this is refused (optional properties multiply the text).
constexpr size_t kMaxObjectRegexSize = 4 << 20;

}  // namespace

// A member `"name":[ ]?value` as a shared definition whose value is deferred: the automata of
// subset states offer every member, and build a value's only once a text has written its key there.
std::string Converter::define_member(const std::string& member, size_t key_size,
                                     std::string* defs) {
  return define(member.substr(0, key_size) +
                    define(member.substr(key_size), defs, /*deferred=*/true),
                defs);
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
          only_required =
              only_required && (k.key() == "required" || is_annotation_keyword(k.key()));
        if (only_required) names = &(*names)["required"];
      }
      if (!names->is_array())
        error(here, "'" + std::string(key) +
                        "' with a schema (conditional schemas) is not "
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
        error(here, "'" + std::string(key) + "' triggered by '" + it.key() +
                        "', which is not in "
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
                                         const std::vector<size_t>& key_sizes,
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
    *why = "an object with " + std::to_string(n) +
           " properties in any order is too large to "
           "compile (" +
           (n > kMaxAnyOrderProperties
                ? "more than " + std::to_string(kMaxAnyOrderProperties) + " properties"
                : "about " + std::to_string(copies) + " automaton states") +
           ": each subset of the properties is a state); \"x-sable\": {\"property_order\": "
           "\"declared\"} (or \"auto\", the default) generates properties in declared order";
    return "";
  }
  std::string defs;
  std::vector<std::string> member(n);
  for (size_t i = 0; i < n; ++i) member[i] = define_member(members[i], key_sizes[i], &defs);
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
    return repeat("(?:" + sep + other + ")", lo, hi);
  };
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first: rest(S) refers to rest(S + p)
    if (!fits(set)) continue;
    std::vector<std::string> alts;
    if (may_close(set))
      if (auto t = extras_anywhere ? std::optional<std::string>("") : tail(set, 0))
        alts.push_back(*t);
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
    if (extras_anywhere)
      first.push_back(other + rest[0]);
    else if (may_close(0))
      if (auto t = tail(0, 1)) first.push_back(other + *t);
  }
  if (first.empty()) return kNothing;
  return "(?:" + defs + "\\{" + group(first) + "\\})";
}

}  // namespace sable::grammar::schema
