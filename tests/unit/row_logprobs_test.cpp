// The shared log-probability pieces (core/sampling/row_logprobs.h): top_indices equals a sort of
// the row (largest first, equal values by lower index, NaN as -inf) on both of its paths (the
// running list up to 64, a partial sort above), with many ties, masked (-inf) values and NaNs;
// log_sum_exp stays within 2e-5 of double precision and is -inf for a fully masked row.
#include "core/sampling/row_logprobs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

using sable::sampling::log_sum_exp;
using sable::sampling::top_indices;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<int32_t> reference(const std::vector<float>& row, size_t n) {
  auto key = [](float v) { return std::isnan(v) ? kNegInf : v; };
  std::vector<int32_t> idx(row.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int32_t a, int32_t b) { return key(row[a]) > key(row[b]); });
  idx.resize(n);
  return idx;
}

}  // namespace

TEST(RowLogprobs, TopIndicesEqualASortOfTheRow) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, 19);
  for (int shape = 0; shape < 3; ++shape) {
    std::vector<float> row(30000);
    for (float& v : row) {
      v = normal(rng);
      if (shape >= 1) v = std::round(v * 2.0f) / 2.0f;  // many exact ties
      if (shape == 2 && pick(rng) == 0) v = pick(rng) < 10 ? kNegInf : std::nanf("");
    }
    row[7] = std::nanf("");  // a NaN among the first values (the list still filling)
    for (size_t n : {1, 2, 5, 20, 64, 65, 200}) {
      std::vector<int32_t> got(n);
      top_indices(row, got);
      EXPECT_EQ(got, reference(row, n)) << "shape " << shape << " n " << n;
    }
  }
  // A short row, all of it asked for: every index, masked ones last by index.
  const std::vector<float> tiny = {kNegInf, 1.0f, kNegInf, 1.0f};
  std::vector<int32_t> all(4);
  top_indices(tiny, all);
  EXPECT_EQ(all, (std::vector<int32_t>{1, 3, 0, 2}));
}

TEST(RowLogprobs, LogSumExpMatchesDoublePrecision) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 6.0f);
  std::vector<float> row(151936);
  for (float& v : row) v = normal(rng);
  row[1000] = kNegInf;
  const float m = *std::max_element(row.begin(), row.end());
  double s = 0;
  for (float v : row) s += std::exp(static_cast<double>(v) - m);
  EXPECT_NEAR(log_sum_exp(row, m), m + std::log(s), 2e-5);
  const std::vector<float> masked(10, kNegInf);
  EXPECT_EQ(log_sum_exp(masked, kNegInf), kNegInf);
}
