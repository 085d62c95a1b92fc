// Digit-range regexes for numeric bounds (see numeric_range.h). Magnitudes are digit strings; a
// signed range splits into a negative part ("-" + a range of magnitudes) and a non-negative part.
#include "numeric_range.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

using sable::cpp::fail;

constexpr size_t kMaxDigits = 400;

// ---- magnitudes: digit strings without leading zeros ("0" is zero) ----

// head + tail (spelled out: GCC 12 warns falsely (-Wrestrict) on `"x" + std::string`).
std::string prefixed(std::string_view head, const std::string& tail) {
  std::string out;
  out.reserve(head.size() + tail.size());
  out.append(head);
  out.append(tail);
  return out;
}
std::string prefixed(char head, const std::string& tail) {
  return prefixed(std::string_view(&head, 1), tail);
}

int compare_magnitude(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  const int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

std::string increment(std::string d) {
  for (size_t i = d.size(); i-- > 0;) {
    if (d[i] != '9') {
      ++d[i];
      return d;
    }
    d[i] = '0';
  }
  return prefixed("1", d);
}

std::string decrement(std::string d) {  // d > 0
  for (size_t i = d.size(); i-- > 0;) {
    if (d[i] != '0') {
      --d[i];
      break;
    }
    d[i] = '9';
  }
  if (d.size() > 1 && d[0] == '0') d.erase(0, 1);
  return d;
}

bool all_digits_are(std::string_view d, char c) {
  return d.find_first_not_of(c) == std::string_view::npos;
}

std::string group(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

std::string digit_class(char lo, char hi) {
  if (lo == hi) return std::string(1, lo);
  return std::string("[") + lo + "-" + hi + "]";
}

std::string any_digits(size_t n) {
  if (n == 0) return "";
  if (n == 1) return "[0-9]";
  return "[0-9]{" + std::to_string(n) + "}";
}

// Every digit string of lo's length from lo to hi (lo <= hi, same length, leading zeros allowed).
std::string same_length_range(std::string_view lo, std::string_view hi) {
  if (lo.empty()) return "";
  if (lo[0] == hi[0]) return prefixed(lo[0], same_length_range(lo.substr(1), hi.substr(1)));
  const size_t rest = lo.size() - 1;
  std::vector<std::string> alts;
  char first = lo[0], last = hi[0];
  if (!all_digits_are(lo.substr(1), '0')) {
    alts.push_back(prefixed(lo[0], same_length_range(lo.substr(1), std::string(rest, '9'))));
    ++first;
  }
  std::string upper;
  if (!all_digits_are(hi.substr(1), '9')) {
    upper = prefixed(hi[0], same_length_range(std::string(rest, '0'), hi.substr(1)));
    --last;
  }
  if (first <= last) alts.push_back(digit_class(first, last) + any_digits(rest));
  if (!upper.empty()) alts.push_back(upper);
  return group(alts);
}

// Canonical non-negative integers in [a, b] (b absent: unbounded); a <= b.
std::string magnitude_range(const std::string& a, const std::optional<std::string>& b) {
  const size_t la = a.size();
  if (b && b->size() == la) return same_length_range(a, *b);
  std::vector<std::string> alts = {same_length_range(a, std::string(la, '9'))};
  if (!b) {
    alts.push_back("[1-9][0-9]{" + std::to_string(la) + ",}");
  } else {
    const size_t lb = b->size();
    if (lb - la >= 2)
      alts.push_back("[1-9][0-9]{" + std::to_string(la) + "," + std::to_string(lb - 2) + "}");
    alts.push_back(same_length_range(prefixed("1", std::string(lb - 1, '0')), *b));
  }
  return group(alts);
}

// ---- fractions: digit strings D read as 0.D000... ----

struct FracLimit {
  std::string_view digits;  // the rest of the bound's fraction digits
  bool exclusive = false;
};

// The digit strings D with lo < (or <=) D and D < (or <=) hi: `empty` says whether D = "" (all
// zeros) is one; `nonempty` (if any) is the regex of the others.
struct FracTail {
  bool empty = false;
  std::optional<std::string> nonempty;
};

std::string tail_regex(const FracTail& t) {  // t has a string
  if (!t.nonempty) return "";
  return t.empty ? "(?:" + *t.nonempty + ")?" : *t.nonempty;
}

FracTail fraction_tail(std::optional<FracLimit> lo, std::optional<FracLimit> hi) {
  if (lo && lo->digits.empty() && !lo->exclusive) lo.reset();  // D >= 0 always holds
  if (hi && hi->digits.empty()) {                                // D <= 0: only zeros
    if (hi->exclusive || lo) return {};
    return {true, "0+"};
  }
  if (!lo && !hi) return {true, "[0-9]+"};
  if (lo && lo->digits.empty() && !hi) return {false, "0*[1-9][0-9]*"};  // D > 0
  FracTail out;
  out.empty = !lo;  // D = "" is zero: below any remaining lo, and hi is not zero here
  std::vector<std::string> alts;
  const char lf = lo ? (lo->digits.empty() ? '0' : lo->digits[0]) : '0';
  const char hf = hi ? hi->digits[0] : '9';
  // First digits strictly between the limits leave the rest free.
  const char free_lo = lo ? static_cast<char>(lf + 1) : '0';
  const char free_hi = hi ? static_cast<char>(hf - 1) : '9';
  auto then = [](char d, const FracTail& rest) -> std::optional<std::string> {
    if (!rest.empty && !rest.nonempty) return std::nullopt;
    return prefixed(d, tail_regex(rest));
  };
  auto rest_of = [](const std::optional<FracLimit>& l) -> std::optional<FracLimit> {
    return FracLimit{l->digits.empty() ? l->digits : l->digits.substr(1), l->exclusive};
  };
  if (lo && hi && lf == hf) {
    if (auto s = then(lf, fraction_tail(rest_of(lo), rest_of(hi)))) alts.push_back(*s);
  } else {
    if (lo)
      if (auto s = then(lf, fraction_tail(rest_of(lo), std::nullopt))) alts.push_back(*s);
    if (free_lo <= free_hi) alts.push_back(digit_class(free_lo, free_hi) + "[0-9]*");
    if (hi)
      if (auto s = then(hf, fraction_tail(std::nullopt, rest_of(hi)))) alts.push_back(*s);
  }
  if (!alts.empty()) out.nonempty = group(alts);
  return out;
}

// The optional fraction "(\.digits)?" under the limits; nullopt when nothing fits.
std::optional<std::string> fraction_part(const std::optional<FracLimit>& lo,
                                         const std::optional<FracLimit>& hi) {
  const FracTail t = fraction_tail(lo, hi);
  if (!t.nonempty) return t.empty ? std::optional<std::string>("") : std::nullopt;
  const std::string dot = "\\." + *t.nonempty;
  return t.empty ? "(?:" + dot + ")?" : dot;
}

// Non-negative numbers int(.frac)? from lo (>= 0) to hi (absent: unbounded).
std::optional<std::string> magnitude_number_range(const Decimal& lo, bool lo_excl,
                                                  const std::optional<NumericBound>& hi) {
  if (hi) {
    const int c = compare_decimal(lo, hi->value);
    if (c > 0 || (c == 0 && (lo_excl || hi->exclusive))) return std::nullopt;
  }
  const std::string& li = lo.int_digits;
  const FracLimit lo_frac{lo.frac_digits, lo_excl};
  std::vector<std::string> alts;
  if (hi && hi->value.int_digits == li) {
    if (auto f = fraction_part(lo_frac, FracLimit{hi->value.frac_digits, hi->exclusive}))
      alts.push_back(li + *f);
  } else {
    if (auto f = fraction_part(lo_frac, std::nullopt)) alts.push_back(li + *f);
    const std::string next = increment(li);
    if (!hi) {
      alts.push_back(magnitude_range(next, std::nullopt) + "(?:\\.[0-9]+)?");
    } else {
      const std::string& hi_int = hi->value.int_digits;
      if (compare_magnitude(next, hi_int) < 0)
        alts.push_back(magnitude_range(next, decrement(hi_int)) + "(?:\\.[0-9]+)?");
      if (auto f = fraction_part(std::nullopt, FracLimit{hi->value.frac_digits, hi->exclusive}))
        alts.push_back(hi_int + *f);
    }
  }
  if (alts.empty()) return std::nullopt;
  return group(alts);
}

// ---- signed integers (frac_digits empty) ----

Decimal floor_of(Decimal v) {
  if (v.frac_digits.empty()) return v;
  v.frac_digits.clear();
  if (v.negative) v.int_digits = increment(v.int_digits);
  return v;
}

Decimal ceil_of(Decimal v) {
  if (v.frac_digits.empty()) return v;
  v.frac_digits.clear();
  if (!v.negative) v.int_digits = increment(v.int_digits);
  if (v.int_digits == "0") v.negative = false;
  return v;
}

Decimal plus_one(Decimal v) {
  if (!v.negative) {
    v.int_digits = increment(v.int_digits);
  } else {
    v.int_digits = decrement(v.int_digits);
    if (v.int_digits == "0") v.negative = false;
  }
  return v;
}

Decimal minus_one(Decimal v) {
  if (v.negative) {
    v.int_digits = increment(v.int_digits);
  } else if (v.int_digits == "0") {
    v = Decimal{true, "1", ""};
  } else {
    v.int_digits = decrement(v.int_digits);
  }
  return v;
}

}  // namespace

Decimal parse_decimal(std::string_view text) {
  auto bad = [&] { fail(SABLE_ERR_INVALID_ARGUMENT, "bad number '" + std::string(text) + "'"); };
  size_t i = 0;
  Decimal d;
  if (i < text.size() && text[i] == '-') d.negative = true, ++i;
  std::string digits;  // all significant digits, the point after `point` of them
  const size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++];
  if (i == int_start) bad();
  int64_t point = static_cast<int64_t>(digits.size());
  if (i < text.size() && text[i] == '.') {
    const size_t frac_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++];
    if (i == frac_start) bad();
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool neg_exp = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) neg_exp = text[i++] == '-';
    const size_t exp_start = i;
    int64_t exp = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      exp = exp * 10 + (text[i++] - '0');
      if (exp > static_cast<int64_t>(kMaxDigits)) bad();
    }
    if (i == exp_start) bad();
    point += neg_exp ? -exp : exp;
  }
  if (i != text.size()) bad();
  // Place the point: pad with zeros on either side as needed.
  if (point < 0) digits.insert(0, static_cast<size_t>(-point), '0'), point = 0;
  if (point > static_cast<int64_t>(digits.size())) digits.append(point - digits.size(), '0');
  if (digits.size() > kMaxDigits) bad();
  const size_t lead = std::min(digits.find_first_not_of('0'), static_cast<size_t>(point));
  d.int_digits = lead == static_cast<size_t>(point) ? "0" : digits.substr(lead, point - lead);
  d.frac_digits = digits.substr(static_cast<size_t>(point));
  while (!d.frac_digits.empty() && d.frac_digits.back() == '0') d.frac_digits.pop_back();
  if (d.int_digits == "0" && d.frac_digits.empty()) d.negative = false;
  return d;
}

int compare_decimal(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int c = compare_magnitude(a.int_digits, b.int_digits);
  if (c == 0) {
    const int f = a.frac_digits.compare(b.frac_digits);  // no trailing zeros: lexicographic
    c = f < 0 ? -1 : f > 0 ? 1 : 0;
  }
  return a.negative ? -c : c;
}

std::optional<std::string> integer_range_regex(const std::optional<NumericBound>& lo,
                                               const std::optional<NumericBound>& hi) {
  std::optional<Decimal> a, b;  // inclusive integer bounds
  if (lo) a = lo->exclusive ? plus_one(floor_of(lo->value)) : ceil_of(lo->value);
  if (hi) b = hi->exclusive ? minus_one(ceil_of(hi->value)) : floor_of(hi->value);
  if (a && b && compare_decimal(*a, *b) > 0) return std::nullopt;
  std::vector<std::string> alts;
  if (!a || a->negative) {  // -m for m in [max(1, -b), -a]
    const std::string from = b && b->negative ? b->int_digits : "1";
    const std::optional<std::string> to =
        a ? std::optional<std::string>(a->int_digits) : std::nullopt;
    if (!to || compare_magnitude(from, *to) <= 0) alts.push_back(prefixed("-", magnitude_range(from, to)));
  }
  if (!b || !b->negative) {  // [max(0, a), b]
    const std::string from = a && !a->negative ? a->int_digits : "0";
    const std::optional<std::string> to =
        b ? std::optional<std::string>(b->int_digits) : std::nullopt;
    if (!to || compare_magnitude(from, *to) <= 0) alts.push_back(magnitude_range(from, to));
  }
  if (alts.empty()) return std::nullopt;
  return group(alts);
}

std::optional<std::string> number_range_regex(const std::optional<NumericBound>& lo,
                                              const std::optional<NumericBound>& hi) {
  std::vector<std::string> alts;
  auto magnitude = [](const NumericBound& b) {
    NumericBound m = b;
    m.value.negative = false;
    return m;
  };
  if (!lo || lo->value.negative) {  // -m with m from |hi| (or just above 0) to |lo|
    const bool hi_neg = hi && hi->value.negative;
    const Decimal from = hi_neg ? magnitude(*hi).value : Decimal{};
    const std::optional<NumericBound> to =
        lo ? std::optional<NumericBound>(magnitude(*lo)) : std::nullopt;
    if (auto r = magnitude_number_range(from, hi_neg ? hi->exclusive : true, to))
      alts.push_back(prefixed("-", *r));
  }
  if (!hi || !hi->value.negative) {  // from max(0, lo) to hi
    const bool lo_pos = lo && !lo->value.negative;
    if (auto r = magnitude_number_range(lo_pos ? lo->value : Decimal{}, lo_pos && lo->exclusive,
                                        hi))
      alts.push_back(*r);
  }
  if (alts.empty()) return std::nullopt;
  return group(alts);
}

}  // namespace sable::grammar
