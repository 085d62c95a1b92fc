// Numeric bounds in the automaton grammar engine (numeric_range.h): the DFA of a range must accept
// exactly the canonical numbers inside it. Checked exhaustively over a window of integers for many
// random ranges, and by random walks over the DFA whose strings are checked against an independent
// reference comparison (digit strings padded to a common length), so that both directions fail
// loudly: a number in range that is rejected, and a generated string outside the range.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/numeric_range.h"
#include "plugins/grammar/automaton/regex.h"

namespace sable::grammar {
namespace {

Dfa dfa_of(const std::string& regex) {
  return Dfa::build(build_nfa(parse_regex(regex)));
}

std::optional<NumericBound> bound(const std::string& text, bool exclusive) {
  return NumericBound{parse_decimal(text), exclusive};
}

// Reference: a JSON number without exponent vs a bound, by padding both to the same number of
// integer and fraction digits and comparing the strings (no shared code with numeric_range.cpp).
int reference_compare(const std::string& a, const std::string& b) {
  auto split = [](std::string s, bool* neg, std::string* in, std::string* fr) {
    *neg = !s.empty() && s[0] == '-';
    if (*neg) s.erase(0, 1);
    const size_t dot = s.find('.');
    *in = s.substr(0, dot);
    *fr = dot == std::string::npos ? "" : s.substr(dot + 1);
  };
  bool na, nb;
  std::string ia, fa, ib, fb;
  split(a, &na, &ia, &fa);
  split(b, &nb, &ib, &fb);
  const size_t iw = std::max(ia.size(), ib.size()), fw = std::max(fa.size(), fb.size());
  const std::string da = std::string(iw - ia.size(), '0') + ia + fa + std::string(fw - fa.size(), '0');
  const std::string db = std::string(iw - ib.size(), '0') + ib + fb + std::string(fw - fb.size(), '0');
  const bool za = da.find_first_not_of('0') == std::string::npos;
  const bool zb = db.find_first_not_of('0') == std::string::npos;
  na = na && !za, nb = nb && !zb;
  if (na != nb) return na ? -1 : 1;
  const int c = da.compare(db);
  const int mag = c < 0 ? -1 : c > 0 ? 1 : 0;
  return na ? -mag : mag;
}

bool reference_in_range(const std::string& x, const std::optional<std::string>& lo, bool lo_excl,
                        const std::optional<std::string>& hi, bool hi_excl) {
  if (lo) {
    const int c = reference_compare(x, *lo);
    if (c < 0 || (c == 0 && lo_excl)) return false;
  }
  if (hi) {
    const int c = reference_compare(x, *hi);
    if (c > 0 || (c == 0 && hi_excl)) return false;
  }
  return true;
}

// A random string of the DFA's language (nullopt when a walk runs past max_len).
std::optional<std::string> random_member(const Dfa& dfa, std::mt19937& rng, size_t max_len = 60) {
  std::string out;
  int32_t state = dfa.start();
  while (out.size() <= max_len) {
    std::vector<int> bytes;
    for (int b = 0; b < 256; ++b)
      if (dfa.next(state, static_cast<uint8_t>(b)) != Dfa::kDead) bytes.push_back(b);
    if (dfa.accepting(state) && (bytes.empty() || rng() % 4 == 0)) return out;
    const int b = bytes[rng() % bytes.size()];
    out.push_back(static_cast<char>(b));
    state = dfa.next(state, static_cast<uint8_t>(b));
  }
  return std::nullopt;
}

TEST(GrammarNumericRange, IntegerExamples) {
  const Dfa d = dfa_of(*integer_range_regex(bound("0", false), bound("150", false)));
  for (const char* good : {"0", "7", "10", "99", "100", "149", "150"}) EXPECT_TRUE(d.matches(good));
  for (const char* bad : {"-1", "151", "007", "00", "-0", "1000", "", "1.0"})
    EXPECT_FALSE(d.matches(bad)) << bad;
  EXPECT_LT(d.num_states(), 20);
  // 20-digit bounds stay small; one-sided bounds leave the other side open.
  const Dfa big = dfa_of(*integer_range_regex(bound("-9223372036854775808", false),
                                              bound("18446744073709551615", false)));
  EXPECT_LT(big.num_states(), 200);
  EXPECT_TRUE(big.matches("18446744073709551615"));
  EXPECT_FALSE(big.matches("18446744073709551616"));
  EXPECT_TRUE(big.matches("-9223372036854775808"));
  EXPECT_FALSE(big.matches("-9223372036854775809"));
  const Dfa open = dfa_of(*integer_range_regex(bound("-7", true), std::nullopt));
  EXPECT_TRUE(open.matches("-6"));
  EXPECT_TRUE(open.matches("123456789012345678901234567890"));
  EXPECT_FALSE(open.matches("-7"));
  // Fractional bounds round inwards; an empty range is nullopt.
  const Dfa frac = dfa_of(*integer_range_regex(bound("-2.5", false), bound("2.5", true)));
  EXPECT_TRUE(frac.matches("-2") && frac.matches("2"));
  EXPECT_FALSE(frac.matches("-3") || frac.matches("3"));
  EXPECT_FALSE(integer_range_regex(bound("1.2", false), bound("1.8", false)));
  EXPECT_FALSE(integer_range_regex(bound("5", true), bound("6", true)));
  EXPECT_TRUE(dfa_of(*integer_range_regex(bound("1e3", false), bound("1e3", false))).matches("1000"));
}

// Every integer in a window, for random (also one-sided, exclusive, fractional) bounds.
TEST(GrammarNumericRange, IntegersExhaustively) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    const int a = static_cast<int>(rng() % 2400) - 1200, b = static_cast<int>(rng() % 2400) - 1200;
    const int lo_v = std::min(a, b), hi_v = std::max(a, b);
    const bool has_lo = rng() % 5 != 0, has_hi = rng() % 5 != 0;
    const bool lo_excl = rng() % 2, hi_excl = rng() % 2;
    const std::string lo_s = std::to_string(lo_v) + (rng() % 4 == 0 ? ".5" : "");
    const std::string hi_s = std::to_string(hi_v) + (rng() % 4 == 0 ? ".25" : "");
    const auto lo = has_lo ? bound(lo_s, lo_excl) : std::nullopt;
    const auto hi = has_hi ? bound(hi_s, hi_excl) : std::nullopt;
    const std::optional<std::string> regex = integer_range_regex(lo, hi);
    auto inside = [&](int x) {
      return reference_in_range(std::to_string(x), has_lo ? std::optional(lo_s) : std::nullopt,
                                lo_excl, has_hi ? std::optional(hi_s) : std::nullopt, hi_excl);
    };
    bool any = false;
    for (int x = -1500; x <= 1500 && !any; ++x) any = inside(x);
    if (!regex) {
      EXPECT_FALSE(any) << lo_s << " " << hi_s;
      continue;
    }
    const Dfa d = dfa_of(*regex);
    SCOPED_TRACE(*regex);
    for (int x = -1500; x <= 1500; ++x)
      ASSERT_EQ(d.matches(std::to_string(x)), inside(x)) << x << " in " << lo_s << ".." << hi_s;
    EXPECT_FALSE(d.matches("-0"));
    EXPECT_FALSE(d.matches("01"));
  }
}

// Random strings of random number ranges: each one parses as a number and lies inside; the
// bounds themselves (and numbers just past them) are accepted or rejected as they should be.
TEST(GrammarNumericRange, NumbersByRandomWalk) {
  std::mt19937 rng(11);
  const char* const values[] = {"0",   "-0.5",  "0.5",   "2.25", "-3",     "10",   "0.001",
                                "-0.001", "99.99", "-100", "1",    "0.10001", "-7.5", "1234.5"};
  for (const char* lo_s : values) {
    for (const char* hi_s : values) {
      for (int flags = 0; flags < 8; ++flags) {
        const bool lo_excl = flags & 1, hi_excl = flags & 2, open_hi = flags & 4;
        if (reference_compare(lo_s, hi_s) > 0) continue;
        const auto lo = bound(lo_s, lo_excl);
        const auto hi = open_hi ? std::nullopt : bound(hi_s, hi_excl);
        const std::optional<std::string> opt_hi =
            open_hi ? std::nullopt : std::optional<std::string>(hi_s);
        const std::optional<std::string> regex = number_range_regex(lo, hi);
        const bool empty = !open_hi && reference_compare(lo_s, hi_s) == 0 && (lo_excl || hi_excl);
        ASSERT_EQ(!regex, empty) << lo_s << " " << hi_s << " " << flags;
        if (!regex) continue;
        SCOPED_TRACE(std::string(lo_s) + " .. " + (open_hi ? "" : hi_s) + ": " + *regex);
        const Dfa d = dfa_of(*regex);
        EXPECT_EQ(d.matches(lo_s), !lo_excl);
        if (!open_hi) EXPECT_EQ(d.matches(hi_s), !hi_excl);
        for (int i = 0; i < 200; ++i) {  // both ways, over random decimals near the bounds
          std::string x = std::to_string(static_cast<int>(rng() % 2400) - 1200);
          if (rng() % 2) x += "." + std::to_string(rng() % 100000);
          if (x.starts_with("-0") && x.find_first_not_of("-0.") == std::string::npos) continue;
          EXPECT_EQ(d.matches(x), reference_in_range(x, std::string(lo_s), lo_excl, opt_hi, hi_excl))
              << x;
        }
        for (int i = 0; i < 60; ++i) {
          const std::optional<std::string> x = random_member(d, rng);
          if (!x) continue;
          EXPECT_TRUE(reference_in_range(*x, std::string(lo_s), lo_excl, opt_hi, hi_excl)) << *x;
          EXPECT_NE(*x, "-0");
        }
      }
    }
  }
}

}  // namespace
}  // namespace sable::grammar
