// The weight range registry (see weight_ranges.h): an ordered map from range start to end.
#include "core/ops/weight_ranges.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace sable::ops {
namespace {

struct Registry {
  std::shared_mutex mu;
  std::map<uintptr_t, uintptr_t> ranges;  // start -> end (exclusive)
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_weight_range(const void* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
  auto& r = registry();
  std::unique_lock lock(r.mu);
  uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
  // Coalesce with every range it overlaps or touches, so that the ranges stay disjoint and a
  // weight filled in row slices (q, k, v into one fused matrix) is one range.
  auto it = r.ranges.upper_bound(lo);
  if (it != r.ranges.begin() && std::prev(it)->second >= lo) --it;
  while (it != r.ranges.end() && it->first <= hi) {
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    it = r.ranges.erase(it);
  }
  r.ranges.emplace(lo, hi);
}

void forget_weight_ranges(const void* p, size_t bytes) {
  if (p == nullptr || bytes == 0) return;
  auto& r = registry();
  std::unique_lock lock(r.mu);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
  auto it = r.ranges.upper_bound(lo);
  if (it != r.ranges.begin() && std::prev(it)->second > lo) --it;
  while (it != r.ranges.end() && it->first < hi) {
    const uintptr_t a = it->first, b = it->second;
    it = r.ranges.erase(it);
    if (a < lo) r.ranges.emplace(a, lo);  // the parts outside [lo, hi) stay
    if (b > hi) r.ranges.emplace(hi, b);
  }
}

bool is_weight_range(const void* p, size_t bytes) {
  auto& r = registry();
  std::shared_lock lock(r.mu);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  auto it = r.ranges.upper_bound(lo);
  if (it == r.ranges.begin()) return false;
  return std::prev(it)->second >= lo + bytes;
}

}  // namespace sable::ops
