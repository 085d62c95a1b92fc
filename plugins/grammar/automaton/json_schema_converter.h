// The JSON schema -> regex converter behind json_schema_to_regex (private to the automaton engine).
// One recursive walk; every function returns a self-contained regex (a group or an atom) so that
// callers can concatenate freely. Scalars, references and combinators live in json_schema.cpp;
// objects and arrays in json_schema_containers.cpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sable::grammar::schema {

using Json = nlohmann::ordered_json;

// A regex that matches nothing (a class with no member): a schema no value satisfies.
inline const std::string kNothing = "[^\\s\\S]";
// (?:a|b|...): one of the alternatives ("" is the empty string).
inline std::string group(const std::vector<std::string>& alts) {
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

// The one optional space allowed after `,` and `:`.
inline const std::string kWs = "[ ]?";
// Depth of the generic "any value" regex for {} and of the items of a bare object/array. Each
// level is a deferred definition (built only where a text enters it).
inline constexpr int kAnyDepth = 16;
// Depth of the generic values in the counting automata of large objects (skeleton_value): deeper
// than any value the converter writes in practice ($refs unrolled kMaxRefNesting deep).
inline constexpr int kSkeletonDepth = 64;
// How many $refs nest inside each other (deeper occurrences match nothing): recursion is unrolled
// this deep. Each (target, depth) is one deferred shared subexpression, built only where a text
// reaches it, so the depth costs text linear in it and no automaton until used.
inline constexpr size_t kMaxRefNesting = 20;

// A JSON string of any content (escapes included).
const std::string& any_string_regex();

// How the members of an object may be ordered, chosen by the schema's "x-sable":
// {"property_order": ...} on a schema, for it and the schemas inside it: kAny (what JSON Schema
// allows: declared properties in any order, each at most once, further members anywhere or after
// them), kDeclared (the declared order, further members after them: what xgrammar and llguidance
// generate) or kAuto, the default: any order where its automaton stays small (see the limits
// below), declared order for larger objects.
enum class PropertyOrder { kAuto, kAny, kDeclared };

// The engine options of "x-sable" in force for a schema (its own or its nearest enclosing ones).
struct SchemaOptions {
  PropertyOrder order = PropertyOrder::kAuto;
  // Absent additionalProperties beside properties: false when strict (xgrammar's strict_mode, no
  // further members), JSON Schema's `true` otherwise (further members after the declared ones).
  bool strict = false;
  // Internal (no x-sable option): the schema is a part of a `not` or an overlapping oneOf, whose
  // objects are written exactly (json_schema_any_object.cpp).
  bool exact = false;
};

// Objects in kAny order are refused past either limit: each subset of the properties written so far
// is a state of the automaton, and each member is copied once per subset without it, so its size
// doubles with each property. The states are counted as NFA states of those copies.
inline constexpr size_t kMaxAnyOrderProperties = 12;
inline constexpr int64_t kMaxAnyOrderStates = 40'000;
// Larger objects keep any order but let members repeat (each value checked), tracking only which
// required ones were written: (members + 1) * 2^required alternatives at most per automaton, more
// required ones split among several automata intersected (json_schema_members.cpp).
inline constexpr int64_t kMaxRepeatableAlternatives = 1 << 15;

// What an object's members must satisfy beyond `required`: minProperties/maxProperties (-1: none)
// counted over all members, and dependencies/dependentRequired as indices of declared properties
// (when the trigger is present, every property of `needs` is too). The any-order automaton
// knows the set of declared members written, so it enforces these exactly at the closing brace;
// further members are counted only when they come after the declared ones.
struct MemberCounts {
  int64_t min = 0;
  int64_t max = -1;
  std::vector<std::pair<size_t, std::vector<size_t>>> dependencies;  // (trigger, needs)
  bool empty() const { return min <= 0 && max < 0 && dependencies.empty(); }
  bool counted() const { return min > 0 || max >= 0; }
};

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {}

  // The regex of the JSON texts `s` allows; `path` (a JSON pointer) names it in errors. Throws
  // when all the text produced so far passes a budget.
  std::string value(const Json& s, const std::string& path);

  [[noreturn]] static void error(const std::string& path, const std::string& what);

  // The definitions of the generic values used so far (put in front of the whole regex).
  const std::string& prelude() const { return prelude_; }

 private:
  std::string value_of(const Json& s, const std::string& path);
  std::string merged(const Json& s, const std::string& path);
  std::string merged_reference(const Json& s, Json& out, const std::string& path, int inlined);
  // `s` with its `not` rewritten into positive keywords (json_schema_not.cpp), or refused.
  Json negation(const Json& s, const std::string& path);
  // `s` less what its `not` allows, as a difference of automata (json_schema_bool.cpp), or
  // refused with `refusal` and the reason.
  std::string difference(const Json& s, const std::string& path, const std::string& refusal);
  // value() with options_.exact on: the objects in `s` written exactly (a `not` or oneOf part).
  std::string exact_value(const Json& s, const std::string& path);
  // oneOf of overlapping branches as "exactly one" of their automata, or refused likewise.
  std::string one_of_combination(const std::vector<Json>& branches,
                                 const std::vector<size_t>& index, const std::string& path,
                                 const std::string& refusal);
  // A schema listing its values (enum/const) beside keywords without an exact automaton (`not`,
  // oneOf, `if`, `contains`): the values that satisfy it, evaluated one by one (schema_eval.h);
  // nullopt when it lists none or evaluation cannot decide a value.
  std::optional<std::string> evaluated_constants(const Json& s, const std::string& path);
  std::string ref(const Json& s, const std::string& path);
  // The local pointer of s["$ref"], checked; the schema it names (true as {}).
  std::string ref_target(const Json& s, const std::string& path);
  Json resolve(const std::string& target, const std::string& path);
  // `s` with its $ref replaced by the target merged with s's other keywords (chains followed).
  Json inline_ref(Json s, const std::string& path);
  std::string constants(const Json& s, const std::string& path);
  std::string typed(const Json& s, const std::string& type, const std::string& path);
  std::string string(const Json& s, const std::string& path);
  std::string number(const Json& s, bool integer, const std::string& path);
  std::string object(const Json& s, const std::string& path);
  std::string members_in_order(const std::vector<std::string>& members,
                               const std::vector<bool>& needed, const std::string& extra,
                               const std::string& path);
  // "" (and *why) when the any-order automaton would pass the limits below (extras_anywhere:
  // further members between the declared ones too, else only after them; `counts` must then be
  // empty but for dependencies).
  std::string members_any_order(const std::vector<std::string>& members,
                                const std::vector<size_t>& key_sizes,
                                const std::vector<bool>& needed, const std::string& extra,
                                bool extras_anywhere, const MemberCounts& counts, std::string* why);
  // Any order, members repeatable, the required ones tracked ("" when too large).
  // (key_sizes[i]: the length of members[i]'s `"name":[ ]?` prefix.) define_member: a member
  // as a shared definition with its value deferred.
  std::string define_member(const std::string& member, size_t key_size, std::string* defs);
  std::string members_repeatable(const std::vector<std::string>& members,
                                 const std::vector<size_t>& key_sizes,
                                 const std::vector<bool>& needed, const std::string& extra,
                                 const MemberCounts& counts);
  // An exactly written object's members (options_.exact): any order, further members anywhere;
  // refused naming `path` where that automaton would pass the any-order limits.
  std::string exact_members(const std::vector<std::string>& members,
                            const std::vector<size_t>& key_sizes, const std::vector<bool>& needed,
                            const std::string& extra, const MemberCounts& counts,
                            const std::string& path);
  std::string skeleton_value();
  std::string counting_members(const std::vector<std::string>& members,
                               const std::vector<size_t>& key_sizes,
                               const std::vector<size_t>& tracked, std::string* defs);
  std::string repeatable_members(const std::vector<std::string>& member, const std::string& other,
                                 const std::vector<size_t>& tracked, const std::vector<bool>& needed,
                                 const MemberCounts& counts, std::string* defs);
  MemberCounts member_counts(const Json& s, const Json& props, bool extras,
                             const std::string& path);
  // patternProperties' further members (json_schema_patterns.cpp): one per region of keys the same
  // patterns match (none of `props`' names or `absent`), and, when `extra` (additionalProperties,
  // nullptr when absent) allows them, the keys no pattern matches.
  std::vector<std::string> pattern_members(const std::vector<struct KeyPattern>& patterns,
                                           const Json& props,
                                           const std::vector<std::string>& absent,
                                           const Json* extra, const std::string& extra_path,
                                           const std::string& path);
  // Any JSON value with containers nested at most `depth` deep ({}, further members, items
  // without a schema), as a reference to one shared definition in prelude_: the value is used in
  // many places (every object's further members), and copies of its text made large schemas'
  // regexes pass their size limits.
  std::string any_value(int depth);
  // Appends `(?@N=body)` (deferred: `(?@N~=body)`, built only when a text reaches it) to *defs
  // and returns `(?@N)` (regex.h's internal dialect).
  std::string define(const std::string& body, std::string* defs, bool deferred = false);
  // `atom` repeated lo..hi times (hi < 0: unbounded); counts past the regex parser's limit as a
  // chain of deferred blocks in prelude_ (repeat_text.h).
  std::string repeat(const std::string& atom, int64_t lo, int64_t hi);
  // NFA states of a member's regex, past `cap`: cap + 1 (memoized).
  int64_t nfa_states(const std::string& regex, int64_t cap);
  std::string array(const Json& s, const std::string& path);

  const Json& root_;
  SchemaOptions options_;  // from the innermost enclosing x-sable
  int64_t next_definition_ = kAnyDepth + 1;  // ids 0..kAnyDepth: any_value(depth)
  std::string prelude_;
  std::vector<bool> any_defined_ = std::vector<bool>(kAnyDepth + 1, false);
  std::string skeleton_;  // skeleton_value() once defined
  std::vector<std::string> stack_;  // $refs being expanded, to bound recursion
  int inline_depth_ = 0;            // allOf conversions nested inside inlined $ref targets
  std::unordered_map<std::string, std::string> ref_definitions_;  // (target, depth, options) -> (?@N)
  size_t produced_ = 0;             // bytes of regex text returned by value() so far
  std::unordered_map<std::string, std::pair<int64_t, bool>> nfa_sizes_;  // regex: size, exact
  std::unordered_map<std::string, std::string> repeat_links_;  // chain link body -> (?@N)
};

// Draft-dependent meaning applied to a parsed schema before conversion (json_schema_drafts.cpp):
// under a `$schema` of draft 3-7 the keywords beside each `$ref` are dropped, as those drafts say.
void apply_draft_semantics(Json& root);

// `outer` updated by an "x-sable" options object (errors name unknown options and bad values).
SchemaOptions schema_options(const Json& options, SchemaOptions outer, const std::string& path);

// A keyword of JSON Schema (any draft) that constrains values; other keys are annotations.
bool is_schema_keyword(const std::string& key);
// Whether JSON value `v` is of JSON Schema type `type` (1.0 is an integer).
bool value_has_type(const Json& v, const std::string& type);
// The type a keyword speaks about ("object", "array", "string", "number"), or nullptr.
const char* keyword_family(const std::string& key);
// Whether json_schema.cpp writes `pattern` (not anchored at both ends) in its exact search form.
bool pattern_search_form_fits(const std::string& pattern);
// Whether the automaton of a string `pattern` holds every string the pattern finds (anchored at
// both ends without alternatives, or in the exact search form; json_schema_bool.cpp).
bool pattern_written_exactly(const Json& pattern);

// `if`/`then`/`else` as anyOf [allOf [if, then], allOf [else] with not if] beside the schema's
// other keywords (json_schema_not.cpp; the `not` rewritten or a difference of automata).
Json conditional(const Json& s);

// `s` with each `dependencies`/`dependentSchemas` entry that is a schema S for property p moved
// into allOf as anyOf [objects without p, objects with p satisfying S]; nullopt when none.
std::optional<Json> schema_dependencies(const Json& s);

// The keys (quotes included) of every JSON string in the narrowed writing of escapes
// (json_schema_bool.cpp) other than `names`: further members of an exactly written object.
std::string exact_key_other_than(const std::vector<std::string>& names);

// The names (triggers and the names they need) of `s`'s dependencies/dependentRequired given as
// lists (or schemas holding `required`), with repeats.
std::vector<std::string> dependency_names(const Json& s);

// Whether a schema allows no value: `false`, a `not` of {} or true, or an allOf holding one (an
// anyOf branch drops out).
bool allows_nothing(const Json& s);

// A count keyword (minLength, maxItems, ...): a non-negative integer, or `fallback` when absent.
int64_t count_keyword(const Json& s, const char* key, int64_t fallback, const std::string& path);

}  // namespace sable::grammar::schema
