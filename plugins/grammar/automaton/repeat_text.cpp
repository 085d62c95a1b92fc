// Counted repetition past the regex parser's count limit (repeat_text.h).
#include "repeat_text.h"

#include <algorithm>

#include "nfa.h"
#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

// Atoms with more regex text than this are one definition the chain's links refer to.
constexpr size_t kSharedAtomText = 4096;

std::string counted(const std::string& atom, int64_t lo, int64_t hi) {
  if (lo == hi) return lo == 0 ? std::string() : lo == 1 ? atom : atom + "{" + std::to_string(lo) + "}";
  return atom + "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
}

// NFA states of `atom` (references to definitions outside it count one), past `cap`: cap + 1.
int64_t nfa_states(const std::string& atom, int64_t cap) {
  try {
    return static_cast<int64_t>(NfaBuilder(parse_regex(atom, RegexDialect::kFragment),
                                           /*defer=*/true, static_cast<int32_t>(cap + 1))
                                    .nfa()
                                    .states.size());
  } catch (const sable::cpp::Error&) {
    return cap + 1;
  }
}

// `atom` exactly n times (n = q*K + r: (atom{K}){q} atom{r}).
std::string exactly(const std::string& atom, int64_t n) {
  constexpr int64_t k = kMaxRepeatCount;
  if (n <= k) return counted(atom, n, n);
  return exactly("(?:" + atom + "{" + std::to_string(k) + "})", n / k) + exactly(atom, n % k);
}

// `atom` 0..n times as deferred links: U(n) = atom{0,B-1} | atom{B} U(n-B), innermost first.
// The alternatives differ in length, so a text is in one place of each link it has entered.
std::string chain(const std::string& atom, int64_t states, int64_t n,
                  const DefineDeferred& define) {
  const int64_t b = std::clamp<int64_t>(kLinkStates / std::max<int64_t>(states, 1), 1, kRepeatBlock);
  // A large atom is written once (deferred too), the links refer to it.
  const std::string x = atom.size() > kSharedAtomText ? define(atom) : atom;
  std::string rest = counted(x, 0, n % b);
  for (int64_t links = n / b; links > 0; --links)
    rest = define("(?:" + counted(x, 0, b - 1) + "|" + counted(x, b, b) + rest + ")");
  return rest;
}

}  // namespace

std::string repeat_text(const std::string& atom, int64_t lo, int64_t hi,
                        const DefineDeferred& define) {
  constexpr int64_t k = kMaxRepeatCount;
  // Few optional copies are unrolled without a look at their size.
  // (Sized up to what both choices need: the unrolled total, and a link's share.)
  const int64_t states =
      hi < 0 || hi - lo < 16
          ? 1
          : nfa_states(atom, std::max<int64_t>(kUnrolledStates / (hi - lo), kLinkStates));
  const bool unrolled = hi < 0 || (hi <= k && (hi - lo) * states <= kUnrolledStates);
  if (lo <= k && unrolled)
    return atom + "{" + std::to_string(lo) + "," + (hi < 0 ? "" : std::to_string(hi)) + "}";
  const std::string more = hi < 0 ? atom + "*" : chain(atom, states, hi - lo, define);
  return "(?:" + exactly(atom, lo) + more + ")";
}

}  // namespace sable::grammar
