// Radix selection of a top-k / top-p prefix (see top_cut.h). Level by level, a histogram of one
// digit of the undecided tokens' probability bits (count, and mass for top-p) is walked from the
// largest digit down to the bucket where the prefix ends; only that bucket's tokens stay undecided
// for the next digit. After the last digit they share one exact probability, and the prefix ends
// among them in index order.
#include "core/sampling/top_cut.h"

#include <algorithm>
#include <array>
#include <bit>
#include <vector>

namespace sable::sampling {
namespace {

constexpr int kLevels = 3;
constexpr int kShift[kLevels] = {21, 10, 0};  // digits: bits 31..21, 20..10, 9..0
constexpr uint32_t kMask[kLevels] = {0x7ff, 0x7ff, 0x3ff};

uint32_t bits(float p) {
  return std::bit_cast<uint32_t>(p);
}

// kMass: `need` is a probability mass, else a count of tokens.
template <bool kMass>
TopCut select(std::span<const float> p, std::span<const int32_t> candidates, double need) {
  std::vector<int32_t> members;  // the undecided tokens, increasing
  uint32_t key = 0;              // the boundary's digits found so far
  bool keep_all = false;         // the candidates' mass fell short: the prefix ends at the last one
  // Four histograms, one per token of each run of four, summed after the pass: consecutive tokens
  // of a flat row fall in one bucket, and a single histogram's increments made one long chain.
  constexpr int kWays = 4;
  std::array<std::array<uint32_t, 2048>, kWays> counts;
  std::array<std::array<double, 2048>, kWays> masses;
  std::array<uint32_t, 2048> count;
  std::array<double, 2048> mass;
  for (int level = 0; level < kLevels; ++level) {
    const int shift = kShift[level];
    const uint32_t mask = kMask[level];
    const bool every = level == 0 && candidates.empty();
    const std::span<const int32_t> from =
        level == 0 ? candidates : std::span<const int32_t>(members);
    const int64_t n = every ? static_cast<int64_t>(p.size()) : static_cast<int64_t>(from.size());
    auto token = [&](int64_t j) { return every ? static_cast<int32_t>(j) : from[j]; };
    for (auto& c : counts) std::fill_n(c.begin(), mask + 1, 0u);
    if constexpr (kMass)
      for (auto& m : masses) std::fill_n(m.begin(), mask + 1, 0.0);
    int64_t j = 0;
    for (; j + kWays <= n; j += kWays) {
      for (int w = 0; w < kWays; ++w) {
        const float v = p[token(j + w)];
        const uint32_t d = (bits(v) >> shift) & mask;
        ++counts[w][d];
        if constexpr (kMass) masses[w][d] += v;
      }
    }
    for (; j < n; ++j) {
      const float v = p[token(j)];
      const uint32_t d = (bits(v) >> shift) & mask;
      ++counts[0][d];
      if constexpr (kMass) masses[0][d] += v;
    }
    for (uint32_t d = 0; d <= mask; ++d) {
      count[d] = counts[0][d] + counts[1][d] + counts[2][d] + counts[3][d];
      if constexpr (kMass) mass[d] = (masses[0][d] + masses[1][d]) + (masses[2][d] + masses[3][d]);
    }
    // The bucket where the prefix ends: from the largest digit down.
    int boundary = -1;
    bool found = false;
    for (int b = static_cast<int>(mask); b >= 0; --b) {
      if (count[b] == 0) continue;
      boundary = b;
      if (keep_all) continue;  // the lowest non-empty bucket
      const double w = kMass ? mass[b] : static_cast<double>(count[b]);
      if (w >= need) {
        found = true;
        break;
      }
      need -= w;
    }
    if (boundary < 0) return TopCut{};  // no candidates
    keep_all = keep_all || !found;      // walked past the lowest bucket: every candidate is kept
    key |= static_cast<uint32_t>(boundary) << shift;
    std::vector<int32_t> next;
    next.reserve(count[boundary]);
    for (int64_t j = 0; j < n; ++j) {
      const int32_t i = token(j);
      if (((bits(p[i]) >> shift) & mask) == static_cast<uint32_t>(boundary)) next.push_back(i);
    }
    members.swap(next);
  }
  TopCut cut;
  cut.key = key;
  cut.last_tie = members.back();
  if (keep_all) return cut;
  if constexpr (kMass) {
    double acc = 0;
    for (const int32_t i : members) {
      acc += p[i];
      if (acc >= need) {
        cut.last_tie = i;
        break;
      }
    }
  } else {
    cut.last_tie = members[static_cast<size_t>(need) - 1];
  }
  return cut;
}

}  // namespace

TopCut top_k_cut(std::span<const float> p, std::span<const int32_t> candidates, int64_t k) {
  return select<false>(p, candidates, static_cast<double>(k));
}

TopCut top_mass_cut(std::span<const float> p, std::span<const int32_t> candidates, double mass) {
  return select<true>(p, candidates, mass);
}

}  // namespace sable::sampling
