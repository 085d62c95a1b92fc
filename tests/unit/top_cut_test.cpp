// Top-k and top-p cuts by radix selection (core/sampling/top_cut.h) against a full sort of the
// row: the kept set is exactly the sorted order's prefix, over rows with many equal probabilities
// (ties broken by the lower index), zeros (masked tokens), flat rows whose tokens share their upper
// digits, candidate sets from an earlier cut, and a mass the candidates fall short of.
#include "core/sampling/top_cut.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

using sable::sampling::top_k_cut;
using sable::sampling::top_mass_cut;
using sable::sampling::TopCut;

namespace {

// The probability order: descending, equal probabilities by lower index first.
std::vector<int32_t> order(const std::vector<float>& p, const std::vector<int32_t>& among) {
  std::vector<int32_t> idx = among;
  if (idx.empty()) {
    idx.resize(p.size());
    std::iota(idx.begin(), idx.end(), 0);
  }
  std::sort(idx.begin(), idx.end(),
            [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  return idx;
}

std::vector<int32_t> kept(const TopCut& cut, const std::vector<float>& p) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < p.size(); ++i)
    if (cut.keeps(p[i], static_cast<int32_t>(i))) out.push_back(static_cast<int32_t>(i));
  return out;
}

std::vector<int32_t> sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Rows of several shapes: spread, flat (one exponent), coarse (many exact ties), with zeros.
std::vector<std::vector<float>> rows() {
  std::mt19937 rng(11);
  std::vector<std::vector<float>> out;
  const int64_t n = 20000;
  for (double sd : {0.01, 1.0, 4.0}) {
    std::normal_distribution<float> normal(0.0f, static_cast<float>(sd));
    std::vector<float> p(n);
    for (float& v : p) v = std::exp(std::min(0.0f, normal(rng) - 3.0f * static_cast<float>(sd)));
    out.push_back(p);
  }
  std::uniform_int_distribution<int> level(0, 5);
  std::vector<float> coarse(n);
  for (float& v : coarse) v = level(rng) == 0 ? 0.0f : 0.125f * static_cast<float>(level(rng) + 1);
  out.push_back(coarse);
  return out;
}

}  // namespace

TEST(TopCut, TopKKeepsTheSortedPrefix) {
  for (const auto& p : rows()) {
    const auto ord = order(p, {});
    for (int64_t k : {1, 2, 50, 1000, 19999, 20000}) {
      const std::vector<int32_t> want(ord.begin(), ord.begin() + k);
      EXPECT_EQ(kept(top_k_cut(p, {}, k), p), sorted(want)) << "k " << k;
    }
  }
}

TEST(TopCut, TopMassKeepsTheShortestPrefixReachingTheMass) {
  for (const auto& p : rows()) {
    const auto ord = order(p, {});
    double total = 0;
    for (float v : p) total += v;
    for (double frac : {1e-6, 0.1, 0.5, 0.9, 0.999}) {
      const double mass = frac * total;
      double acc = 0;
      size_t n = 0;
      while (n < ord.size()) {
        acc += p[ord[n++]];
        if (acc >= mass) break;
      }
      const std::vector<int32_t> want(ord.begin(), ord.begin() + static_cast<int64_t>(n));
      EXPECT_EQ(kept(top_mass_cut(p, {}, mass), p), sorted(want)) << "fraction " << frac;
    }
  }
}

TEST(TopCut, MassWithinAnEarlierCutStaysInsideIt) {
  for (const auto& p : rows()) {
    const TopCut k = top_k_cut(p, {}, 300);
    const std::vector<int32_t> among = kept(k, p);
    ASSERT_EQ(among.size(), 300u);
    const auto ord = order(p, among);
    double total = 0;
    for (int32_t i : among) total += p[i];
    double acc = 0;
    size_t n = 0;
    while (n < ord.size()) {
      acc += p[ord[n++]];
      if (acc >= 0.6 * total) break;
    }
    const std::vector<int32_t> want(ord.begin(), ord.begin() + static_cast<int64_t>(n));
    EXPECT_EQ(kept(top_mass_cut(p, among, 0.6 * total), p), sorted(want));
    // A mass the candidates cannot reach keeps exactly the candidates.
    EXPECT_EQ(kept(top_mass_cut(p, among, 2.0 * total), p), among);
  }
}

TEST(TopCut, DefaultKeepsEveryToken) {
  const std::vector<float> p = {0.0f, 1.0f, 0.5f};
  EXPECT_EQ(kept(TopCut{}, p), (std::vector<int32_t>{0, 1, 2}));
  // A row of zeros and one token: top-1 is that token whatever its index.
  EXPECT_EQ(kept(top_k_cut(p, {}, 1), p), (std::vector<int32_t>{1}));
  EXPECT_EQ(kept(top_mass_cut(p, {}, 1.2), p), (std::vector<int32_t>{1, 2}));
}
