// Objects too large to track the set of members written (json_schema_members.cpp): any order with
// repeatable members, only the required ones (and those dependencies name) tracked, past 2^15
// alternatives as an intersection of such automata, each tracking a group of them.
#include <algorithm>
#include <numeric>

#include "json_schema_converter.h"

namespace sable::grammar::schema {
namespace {

// The repeatable form past one automaton: at most this many intersected, each tracking at most
// kMaxGroupBits members (so up to 14 required ones; more stay in declared order: each further
// automaton costs mask time, measured in bench/NOTES.md).
constexpr size_t kMaxRepeatableGroups = 2;
constexpr size_t kMaxGroupBits = 7;
// How the intersection of the groups' automata opens (product.h: operands in step).
constexpr const char* kInStep = "(?&s";

// The tracked members split into at most `max_groups` groups of at most `max_bits`, a
// dependency's trigger and the names it needs in one group (the check at the closing brace sees
// all of them): the fewest groups that fit, sizes balanced (largest parts first, each into the
// emptiest group with room). Empty when they do not fit.
std::vector<std::vector<size_t>> tracked_groups(const std::vector<bool>& tracked,
                                                const MemberCounts& counts, size_t max_bits,
                                                size_t max_groups) {
  const size_t n = tracked.size();
  std::vector<size_t> root(n);
  for (size_t i = 0; i < n; ++i) root[i] = i;
  auto find = [&](size_t i) {
    while (root[i] != i) i = root[i] = root[root[i]];
    return i;
  };
  for (const auto& [trigger, needs] : counts.dependencies)
    for (size_t i : needs) root[find(i)] = find(trigger);
  std::vector<std::vector<size_t>> parts;  // connected by dependencies, in member order
  std::vector<int64_t> part_of(n, -1);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!tracked[i]) continue;
    int64_t& p = part_of[find(i)];
    if (p < 0) p = static_cast<int64_t>(parts.size()), parts.emplace_back();
    parts[static_cast<size_t>(p)].push_back(i);
    ++total;
  }
  if (total == 0) return {{}};
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (size_t count = 1; count <= max_groups; ++count) {
    const size_t cap = std::max((total + count - 1) / count, parts.front().size());
    if (cap > max_bits) continue;
    std::vector<std::vector<size_t>> groups(count);
    bool placed = true;
    for (const auto& part : parts) {
      auto g = std::min_element(groups.begin(), groups.end(),
                                [](const auto& a, const auto& b) { return a.size() < b.size(); });
      if (g->size() + part.size() > cap) {
        placed = false;
        break;
      }
      g->insert(g->end(), part.begin(), part.end());
    }
    if (placed) {
      std::erase_if(groups, [](const auto& g) { return g.empty(); });
      for (auto& g : groups) std::sort(g.begin(), g.end());
      return groups;
    }
  }
  return {};
}

}  // namespace

// Members in any order where only the set of *tracked* members written is a state (the required
// ones and those `dependencies` name): each member may be written again (its value checked each
// time), so every parse of the text, whichever duplicate it keeps, is a valid object; at the
// closing brace the required ones are there and the dependencies hold. 2^t states for t tracked
// properties, each choosing among the members. Past kMaxRepeatableAlternatives ((members + 1) *
// 2^t) the tracked ones are split into groups of at most kMaxGroupBits (tracked_groups) and the
// object is the intersection of one automaton per group (product.h, `(?&s(...)(...))`): the first
// checks every value and tracks its group; the others only count their group's members among
// members of any key and any value (counting_members). Every operand offers every key at every
// point and ends a value where the others do, so they move in step (no liveness search), and the
// text is accepted when every group's required members are there: 16 members, 14 required, are 2
// automata of 2^7 states instead of one of 2^14. "" past kMaxRepeatableGroups groups, for members
// whose automata are large (each operand and the product build states for them), or for
// min/maxProperties (repeats would count; minProperties 1 is a non-empty object).
std::string Converter::members_repeatable(const std::vector<std::string>& members,
                                          const std::vector<size_t>& key_sizes,
                                          const std::vector<bool>& needed, const std::string& extra,
                                          const MemberCounts& counts) {
  const size_t n = members.size();
  if (counts.max >= 0 || counts.min > 1) return "";
  std::vector<bool> tracked = needed;
  for (const auto& [trigger, needs] : counts.dependencies) {
    tracked[trigger] = true;
    for (size_t i : needs) tracked[i] = true;
  }
  size_t single_bits = 0;  // tracked members of one automaton alone
  while (single_bits < 16 &&
         (static_cast<int64_t>(n) + 1) << (single_bits + 1) <= kMaxRepeatableAlternatives)
    ++single_bits;
  std::vector<std::vector<size_t>> groups = tracked_groups(tracked, counts, single_bits, 1);
  // Several automata each build their own copy of the members checked in the first one (the
  // product's and that operand's states): only for members of moderate size, none of them
  // holding such an intersection itself (nested ones multiply the work of every byte); not in an
  // exactly written part (the counting automata's values stop kSkeletonDepth deep: a subset).
  if (groups.empty() && !options_.exact) {
    int64_t size = 0;
    for (const std::string& m : members) {
      if (m.find(kInStep) != std::string::npos) return "";
      size += nfa_states(m, kMaxAnyOrderStates);
    }
    if (size > kMaxAnyOrderStates) return "";
    groups = tracked_groups(tracked, counts, kMaxGroupBits, kMaxRepeatableGroups);
  }
  if (groups.empty()) return "";
  std::string defs;
  std::vector<std::string> member(n);
  for (size_t i = 0; i < n; ++i) member[i] = define_member(members[i], key_sizes[i], &defs);
  const std::string other = extra.empty() ? "" : define(extra, &defs);
  std::vector<std::string> operands;
  operands.push_back(repeatable_members(member, other, groups[0], needed, counts, &defs));
  // The other groups' automata only count: their values are generic JSON values
  // (skeleton_value), which end where the checked values do, and any key may be any member (a
  // tracked one also counts when it is one of its group's exits). A group holding a dependency's
  // trigger is checked like the first instead: a trigger read as a further member would not count.
  for (size_t g = 1; g < groups.size(); ++g) {
    const bool dependent = std::any_of(counts.dependencies.begin(), counts.dependencies.end(),
                                       [&](const auto& d) {
                                         return std::binary_search(groups[g].begin(),
                                                                   groups[g].end(), d.first);
                                       });
    operands.push_back(dependent
                           ? repeatable_members(member, other, groups[g], needed, counts, &defs)
                           : counting_members(members, key_sizes, groups[g], &defs));
  }
  if (operands.size() == 1) return "(?:" + defs + operands[0] + ")";
  std::string all = kInStep;
  for (const std::string& op : operands) all += "(" + op + ")";
  return "(?:" + defs + all + "))";
}

// A counting automaton of members_repeatable: `{...}` of members with any key and any value, at
// least one of each of `tracked` (required ones: none triggers a dependency, so none is needed by
// one either), whose keys are members[i]'s `"name":[ ]?` (key_sizes[i] bytes). 2^t states of at
// most t + 1 choices.
std::string Converter::counting_members(const std::vector<std::string>& members,
                                        const std::vector<size_t>& key_sizes,
                                        const std::vector<size_t>& tracked, std::string* defs) {
  const std::string sep = "," + kWs;
  const std::string any = define(any_string_regex() + ":" + kWs + skeleton_value(), defs);
  const std::string loop = "(?:" + sep + any + ")*";
  std::vector<std::string> member;
  for (size_t i : tracked)
    member.push_back(define(members[i].substr(0, key_sizes[i]) + skeleton_value(), defs));
  const uint32_t all = static_cast<uint32_t>((uint64_t{1} << tracked.size()) - 1);
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first
    std::vector<std::string> exits;
    if (set == all) exits.push_back("");
    for (size_t k = 0; k < tracked.size(); ++k)
      if (!(set & (1u << k))) exits.push_back(sep + member[k] + rest[set | (1u << k)]);
    rest[set] = define(loop + group(exits), defs, /*deferred=*/true);
  }
  std::vector<std::string> first;
  for (size_t k = 0; k < tracked.size(); ++k) first.push_back(member[k] + rest[1u << k]);
  first.push_back(any + rest[0]);
  return "\\{" + group(first) + "\\}";
}

// One automaton of members_repeatable: `{...}` over the defined members (and further ones,
// `other`), tracking the members listed in `tracked`.
std::string Converter::repeatable_members(const std::vector<std::string>& member,
                                          const std::string& other,
                                          const std::vector<size_t>& tracked,
                                          const std::vector<bool>& needed,
                                          const MemberCounts& counts, std::string* defs) {
  const size_t n = member.size();
  const std::string sep = "," + kWs;
  // bit[i]: the bit of member i among the tracked ones (0 for the others).
  std::vector<uint32_t> bit(n, 0);
  uint32_t required = 0;
  for (size_t k = 0; k < tracked.size(); ++k) {
    bit[tracked[k]] = 1u << k;
    required |= needed[tracked[k]] ? 1u << k : 0u;
  }
  const uint32_t all = tracked.empty() ? 0 : static_cast<uint32_t>((uint64_t{1} << tracked.size()) - 1);
  // Dependencies whose trigger is tracked here (tracked_groups keeps what they need here too).
  auto may_close = [&](uint32_t set) {
    if ((set & required) != required) return false;
    for (const auto& [trigger, needs] : counts.dependencies)
      if (set & bit[trigger])
        for (size_t i : needs)
          if (!(set & bit[i])) return false;
    return true;
  };
  // The members that never change the state (untracked ones, further ones): one definition.
  std::vector<std::string> free;
  for (size_t i = 0; i < n; ++i)
    if (bit[i] == 0) free.push_back(member[i]);
  if (!other.empty()) free.push_back(other);
  const std::string untracked = free.empty() ? "" : define(group(free), defs);
  // rest(S): members that leave S as it is (untracked ones, tracked ones in S) any number of
  // times, then the end (S complete) or a tracked one not in S.
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 0;) {  // supersets first
    std::vector<std::string> loops, exits;
    if (!untracked.empty()) loops.push_back(untracked);
    for (size_t i = 0; i < n; ++i)
      if (set & bit[i]) loops.push_back(member[i]);
    if (may_close(set)) exits.push_back("");
    for (size_t i = 0; i < n; ++i)
      if (bit[i] && !(set & bit[i])) exits.push_back(sep + member[i] + rest[set | bit[i]]);
    const std::string loop = loops.empty() ? "" : "(?:" + sep + group(loops) + ")*";
    rest[set] = define(loop + group(exits), defs, /*deferred=*/true);
  }
  std::vector<std::string> first;
  if (may_close(0) && counts.min <= 0) first.push_back("");
  for (size_t i = 0; i < n; ++i) first.push_back(member[i] + rest[bit[i]]);
  if (!other.empty()) first.push_back(other + rest[0]);
  return "\\{" + group(first) + "\\}";
}

std::vector<std::string> dependency_names(const Json& s) {
  std::vector<std::string> out;
  for (const char* key : {"dependentRequired", "dependencies"}) {
    if (!s.contains(key) || !s[key].is_object()) continue;
    for (auto it = s[key].begin(); it != s[key].end(); ++it) {
      const Json& v = it.value();
      const Json* names = v.is_array() ? &v : v.is_object() && v.contains("required") ? &v["required"] : nullptr;
      if (!names || !names->is_array()) continue;
      out.push_back(it.key());
      for (const Json& n : *names)
        if (n.is_string()) out.push_back(n.get<std::string>());
    }
  }
  return out;
}

}  // namespace sable::grammar::schema
