// Counted repetition written as regex text. The regex front end takes counts up to
// kMaxRepeatCount (regex.h) and unrolls them into that many copies of the repeated automaton, but
// JSON Schema bounds are often larger (`maxLength: 32767`, `maxItems: 65535`), and nested bounded
// arrays multiply (100 arrays of 100 strings of 255 characters: 2.5M copies of a character). Such
// a count becomes a chain of deferred blocks instead: "0..n more" is "fewer than B more, or B
// more and then 0..n-B more", each link a deferred definition (nfa.h) built only when a text
// reaches it, so the automaton holds the blocks a text has entered, not n copies; the language is
// the same. B shrinks as the repeated part's automaton grows (down to one element per link).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sable::grammar {

// Appends a deferred definition `(?@N~=body)` somewhere in front of the regex and returns its
// reference `(?@N)` (the JSON schema converter's define()).
using DefineDeferred = std::function<std::string(const std::string& body)>;

// Most repetitions one deferred link holds, and about how many NFA states of the repeated part:
// a link holds min(kRepeatBlock, kLinkStates / the atom's NFA states) of them, at least one.
inline constexpr int64_t kRepeatBlock = 512;
inline constexpr int64_t kLinkStates = 8000;
// Optional repetitions whose unrolled NFA (count x the atom's states) stays under this are written
// as atom{lo,hi} (when the counts fit the parser).
inline constexpr int64_t kUnrolledStates = 100'000;

// `atom` (a group or a single atom) repeated lo..hi times (hi < 0: no upper bound). Small counts
// are written as atom{lo,hi}; a larger upper bound (past kMaxRepeatCount, or past kUnrolledStates
// unrolled) as a chain of deferred blocks defined through `define`; a lower bound past
// kMaxRepeatCount is unrolled (nested exact counts). `atom` may refer to definitions it does not
// hold (they count as one state, regex.h's fragment dialect).
std::string repeat_text(const std::string& atom, int64_t lo, int64_t hi,
                        const DefineDeferred& define);

}  // namespace sable::grammar
