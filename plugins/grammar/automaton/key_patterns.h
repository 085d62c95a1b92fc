// patternProperties for the JSON schema front end: a JSON Schema pattern matches a key when it
// matches *somewhere* in it (ECMA-262 search semantics), while the regex engine matches whole
// strings. These helpers restate a pattern as the whole keys it matches and answer the two
// questions the converter must settle before it can enforce patternProperties exactly: does a
// declared property name match a pattern (then both schemas apply to it), and can two patterns
// match the same key (then a key's value would need both schemas).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sable::grammar {

// The regex (regex.h's syntax) of the whole strings in which `pattern` finds a match: each
// top-level alternative between `[\s\S]*` on each side it is not anchored (`^` first, `$` last).
// Anchors inside a group that starts or ends an alternative are brought out by distributing its
// branches (`(^$)|(^x$)`, `^([^,]|$)` -> `^[^,]`, `^$`). Throws sable::cpp::Error
// (SABLE_ERR_INVALID_ARGUMENT) for a pattern that does not parse, and for anchors elsewhere
// (`a^b`, `(^a)*`), whose meaning this does not restate.
std::string whole_key_regex(std::string_view pattern);

// Whether `pattern` has a `^`/`$` anchor other than a first `^` and a last `$` (outside classes).
bool anchors_inside(std::string_view pattern);

// The regex (regex.h's syntax) of the whole strings in which `pattern` finds *no* match, for the
// shapes where that is simple: a pattern that is (between optional ^ and $) empty, one character
// class C, or a run C* / C+. nullopt for any other pattern. Throws like whole_key_regex.
std::optional<std::string> key_complement_regex(std::string_view pattern);

// Whether `key` (UTF-8) is one of the strings of `whole_regex` (a whole_key_regex result).
bool key_matches(std::string_view whole_regex, std::string_view key);

// Whether some string is in both languages; true also when the check passes its work budget
// (the answer must never wrongly be "disjoint").
bool keys_may_overlap(std::string_view whole_a, std::string_view whole_b);

}  // namespace sable::grammar
