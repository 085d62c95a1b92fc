// JSON Schema's `multipleOf` as a regex over the number's decimal text. Divisibility by k is a
// property of the digits: by 10^-f, at most f fraction digits (trailing zeros aside); by
// k = 2^a * 5^b, the last max(a, b) digits; by any k inside a bounded range, the list of its
// multiples there. The meaning is the exact decimal one the JSON Schema specification and its
// test suite use ("0.0075 is a multiple of 0.0001"); validators that divide in binary floating
// point (Python's `jsonschema`: 0.07 / 0.01 = 7.000000000000001) reject some of those values.
#pragma once

#include <optional>
#include <string>

#include "numeric_range.h"

namespace sable::grammar {

// The canonical JSON numbers (`integer`: integers; otherwise also with a zero fraction, "4.0",
// or with up to f fraction digits for m = 10^-f) that are multiples of `m` (> 0) and lie inside
// the bounds. nullopt, with *why saying what is missing, where this cannot be written exactly:
// fractional m other than 10^-f, 10^-f beside bounds on numbers, and integers k with a factor
// other than 2 and 5 whose multiples are unbounded or too many to list. "" when no value is.
std::optional<std::string> multiple_of_regex(const Decimal& m, bool integer,
                                             const std::optional<NumericBound>& lo,
                                             const std::optional<NumericBound>& hi,
                                             std::string* why);

}  // namespace sable::grammar
