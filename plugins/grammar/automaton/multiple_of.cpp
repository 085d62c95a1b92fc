// multipleOf over decimal digits (multiple_of.h).
#include "multiple_of.h"

#include <cstdint>
#include <vector>

#include "regex.h"

namespace sable::grammar {
namespace {

// At most this many multiples of an integer k inside bounds are listed one by one.
constexpr int64_t kMaxListed = 4096;
const std::string kAnyInteger = "-?(?:0|[1-9][0-9]*)";

// |d| as an int64 when it is an integer of at most 17 digits.
std::optional<int64_t> small_integer(const Decimal& d) {
  if (!d.frac_digits.empty() || d.int_digits.size() > 17) return std::nullopt;
  const int64_t v = std::stoll(d.int_digits);
  return d.negative ? -v : v;
}

// The smallest integer >= b (exclusive: > b), or nullopt when it does not fit 17 digits.
std::optional<int64_t> integer_at_least(const NumericBound& b) {
  Decimal whole = b.value;
  const bool had_fraction = !whole.frac_digits.empty();
  whole.frac_digits.clear();
  std::optional<int64_t> v = small_integer(whole);
  if (!v) return std::nullopt;
  // Truncation moved a positive value down and a negative one up.
  if (had_fraction) return b.value.negative ? *v : *v + 1;
  return b.exclusive ? *v + 1 : *v;
}

// The largest integer <= b (exclusive: < b).
std::optional<int64_t> integer_at_most(const NumericBound& b) {
  NumericBound negated = b;
  negated.value.negative = !b.value.negative && (b.value.int_digits != "0" || !b.value.frac_digits.empty());
  std::optional<int64_t> v = integer_at_least(negated);
  if (!v) return std::nullopt;
  return -*v;
}

std::string alternatives(const std::vector<std::string>& alts) {
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

// Multiples of k inside [lo, hi], listed.
std::optional<std::string> listed(int64_t k, int64_t lo, int64_t hi, std::string* why) {
  int64_t first = lo >= 0 ? (lo + k - 1) / k * k : -((-lo) / k * k);
  if (first > hi) return std::string();
  if ((hi - first) / k + 1 > kMaxListed) {
    *why = "more than " + std::to_string(kMaxListed) + " multiples lie between the bounds";
    return std::nullopt;
  }
  std::vector<std::string> alts;
  for (int64_t v = first; v <= hi; v += k) alts.push_back(std::to_string(v));
  return alternatives(alts);
}

// Unbounded multiples of k = 2^a 5^b: those below 10^d written out, longer ones by their last d
// digits (d = max(a, b)); nullopt for other k.
std::optional<std::string> by_last_digits(int64_t k) {
  int64_t rest = k, a = 0, b = 0;
  while (rest % 2 == 0) rest /= 2, ++a;
  while (rest % 5 == 0) rest /= 5, ++b;
  if (rest != 1) return std::nullopt;
  const int64_t d = std::max<int64_t>(std::max(a, b), 1);
  int64_t modulus = 1;
  for (int64_t i = 0; i < d; ++i) modulus *= 10;
  std::vector<std::string> small, suffixes;
  for (int64_t v = 0; v < modulus; v += k) {
    small.push_back(std::to_string(v));
    std::string padded = std::to_string(v);
    suffixes.push_back(std::string(static_cast<size_t>(d) - padded.size(), '0') + padded);
  }
  return "-?(?:" + alternatives(small) + "|[1-9][0-9]*" + alternatives(suffixes) + ")";
}

}  // namespace

std::optional<std::string> multiple_of_regex(const Decimal& m, bool integer,
                                             const std::optional<NumericBound>& lo,
                                             const std::optional<NumericBound>& hi,
                                             std::string* why) {
  const std::string zero_fraction = integer ? "" : "(?:\\.0+)?";
  const size_t f = m.frac_digits.size();
  std::string digits = m.int_digits + m.frac_digits;
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.size() > 17) {
    *why = "multipleOf has too many digits";
    return std::nullopt;
  }
  const int64_t c = std::stoll(digits);  // m = c * 10^-f
  if (c == 1) {  // 10^-f (1 when f = 0): every integer is a multiple
    if (lo || hi) {
      if (!integer && f > 0) {
        *why = "a fractional multipleOf beside minimum/maximum on numbers is not supported";
        return std::nullopt;
      }
      std::optional<std::string> r = integer_range_regex(lo, hi);
      return r ? "(?:" + *r + zero_fraction + ")" : std::string();
    }
    if (integer || f == 0) return "(?:" + kAnyInteger + zero_fraction + ")";
    return "(?:" + kAnyInteger + "(?:\\.[0-9]{1," + std::to_string(f) + "}0*)?)";
  }
  if (f > 0) {
    *why = "a fractional multipleOf other than 0.1, 0.01, ... is not supported";
    return std::nullopt;
  }
  if (lo && hi) {
    const std::optional<int64_t> a = integer_at_least(*lo), b = integer_at_most(*hi);
    if (a && b) {
      if (*a > *b) return std::string();
      std::optional<std::string> r = listed(c, *a, *b, why);
      if (!r || r->empty()) return r;
      return "(?:" + *r + zero_fraction + ")";
    }
  }
  if (lo || hi) {
    *why = "multipleOf beside a one-sided or very large minimum/maximum is not supported";
    return std::nullopt;
  }
  if (std::optional<std::string> r = by_last_digits(c)) return "(?:" + *r + zero_fraction + ")";
  *why = "multipleOf " + digits + " (a factor other than 2 and 5) without minimum and maximum is "
         "not supported";
  return std::nullopt;
}

}  // namespace sable::grammar
