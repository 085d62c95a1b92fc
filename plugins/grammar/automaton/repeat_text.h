// Counted repetition written as regex text. The regex front end takes counts up to
// kMaxRepeatCount (regex.h) and unrolls them into that many copies of the repeated automaton, but
// JSON Schema bounds are often larger (`maxLength: 32767`, `maxItems: 65535`). Such a count
// becomes a chain of deferred blocks instead: "0..n more" is "fewer than B more, or B more and
// then 0..n-B more", each link a deferred definition (nfa.h) built only when a text reaches it,
// so the automaton holds the blocks a text has entered, not n copies; the language is the same.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sable::grammar {

// Appends a deferred definition `(?@N~=body)` somewhere in front of the regex and returns its
// reference `(?@N)` (the JSON schema converter's define()).
using DefineDeferred = std::function<std::string(const std::string& body)>;

// How many repetitions one deferred link of a long count holds.
inline constexpr int64_t kRepeatBlock = 512;

// `atom` (a group or a single atom) repeated lo..hi times (hi < 0: no upper bound). Counts up to
// kMaxRepeatCount are written as atom{lo,hi}; a larger upper bound as a chain of deferred blocks
// defined through `define`; a larger lower bound is unrolled (nested exact counts).
std::string repeat_text(const std::string& atom, int64_t lo, int64_t hi,
                        const DefineDeferred& define);

}  // namespace sable::grammar
