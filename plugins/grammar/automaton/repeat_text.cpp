// Counted repetition past the regex parser's count limit (repeat_text.h).
#include "repeat_text.h"

#include "regex.h"

namespace sable::grammar {
namespace {

std::string counted(const std::string& atom, int64_t lo, int64_t hi) {
  if (lo == hi) return lo == 0 ? std::string() : lo == 1 ? atom : atom + "{" + std::to_string(lo) + "}";
  return atom + "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
}

// `atom` exactly n times (n = q*K + r: (atom{K}){q} atom{r}).
std::string exactly(const std::string& atom, int64_t n) {
  constexpr int64_t k = kMaxRepeatCount;
  if (n <= k) return counted(atom, n, n);
  return exactly("(?:" + atom + "{" + std::to_string(k) + "})", n / k) + exactly(atom, n % k);
}

// `atom` 0..n times, n > kMaxRepeatCount: U(n) = atom{0,B-1} | atom{B} U(n-B), innermost first.
// The alternatives differ in length, so a text is in one place of each link it has entered.
std::string chain(const std::string& atom, int64_t n, const DefineDeferred& define) {
  constexpr int64_t b = kRepeatBlock;
  std::string rest = counted(atom, 0, n % b);
  for (int64_t links = n / b; links > 0; --links)
    rest = define("(?:" + counted(atom, 0, b - 1) + "|" + counted(atom, b, b) + rest + ")");
  return rest;
}

}  // namespace

std::string repeat_text(const std::string& atom, int64_t lo, int64_t hi,
                        const DefineDeferred& define) {
  constexpr int64_t k = kMaxRepeatCount;
  if (lo <= k && hi <= k)
    return atom + "{" + std::to_string(lo) + "," + (hi < 0 ? "" : std::to_string(hi)) + "}";
  const std::string more =
      hi < 0 ? atom + "*" : hi - lo <= k ? counted(atom, 0, hi - lo) : chain(atom, hi - lo, define);
  return "(?:" + exactly(atom, lo) + more + ")";
}

}  // namespace sable::grammar
