// Wall-clock bounds for tests that pin "this finishes quickly" (a refusal before a blow-up, a
// compile that stays small). A sanitizer build runs the same code 3-20x slower by design
// (ASan + UBSan at -O0 on a loaded machine measured 8x), so its bounds are stretched instead of
// failing on what they are not there to catch; the optimised build keeps the bound as written.
#pragma once

#include <chrono>

namespace sable::test_support {

#ifdef SABLE_SANITIZED_BUILD
inline constexpr int kTimeBudgetScale = 20;
#else
inline constexpr int kTimeBudgetScale = 1;
#endif

template <class Rep, class Period>
constexpr auto time_budget(std::chrono::duration<Rep, Period> d) {
  return d * kTimeBudgetScale;
}

}  // namespace sable::test_support
