// Numeric bounds of JSON schema (minimum, maximum, exclusiveMinimum, exclusiveMaximum) as regexes:
// the language is exactly the JSON numbers inside the bounds, so the DFA enforces them digit by
// digit. Bounds are exact decimals (the JSON text of the schema's number, as nlohmann writes the
// double it parsed: shortest round-trip digits), compared without any floating-point rounding.
//
// Integers: canonical JSON integers only (no leading zeros, no "-0"); the regex is the classic
// digit-range construction (per length: a chain of "same prefix, then a smaller/larger digit,
// then any digits"), linear in the number of digits, so even 20-digit bounds stay a few hundred
// DFA states. One-sided bounds leave the other side open ([1-9][0-9]{n,}).
// Numbers: written without an exponent (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`), and the fraction digits
// are bounded too, lexicographically against the bound's digits, so 0.5 < x <= 2.25 is exact.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sable::grammar {

// An exact decimal: sign, integer digits without leading zeros ("0" for zero) and fraction digits
// without trailing zeros. Zero is never negative.
struct Decimal {
  bool negative = false;
  std::string int_digits = "0";
  std::string frac_digits;
};

// Parses a JSON number's text ("-12", "0.5", "1e+30", "2.5E-7"). Throws
// sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) on anything else or more than 400 digits.
Decimal parse_decimal(std::string_view text);

// <0, 0, >0 as a is below, equal to, above b.
int compare_decimal(const Decimal& a, const Decimal& b);

struct NumericBound {
  Decimal value;
  bool exclusive = false;
};

// The regex of the canonical JSON integers inside the bounds (absent: open on that side); nullopt
// when no integer is.
std::optional<std::string> integer_range_regex(const std::optional<NumericBound>& lo,
                                               const std::optional<NumericBound>& hi);

// The regex of the JSON numbers without exponent inside the bounds; nullopt when none is.
std::optional<std::string> number_range_regex(const std::optional<NumericBound>& lo,
                                              const std::optional<NumericBound>& hi);

}  // namespace sable::grammar
