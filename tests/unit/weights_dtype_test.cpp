// bf16 / f16 <-> f32 conversions against naive references: exhaustive widening and round trips over
// every 16-bit pattern, and round-to-nearest-even narrowing checked against a nearest-value search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/weights/dtype_convert.h"
#include "sable/tensor.h"

namespace sable::weights {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// f16 value by the definition: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m for e == 0.
double f16_reference(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  if (e == 31) v = m == 0 ? std::numeric_limits<double>::infinity() : std::nan("");
  return s ? -v : v;
}

TEST(DTypeConvert, F16ToF32MatchesDefinitionForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = f16_reference(static_cast<uint16_t>(h));
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << h;
    }
  }
}

TEST(DTypeConvert, RoundTripsEverySixteenBitPattern) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto x = static_cast<uint16_t>(h);
    const float f16 = f16_to_f32(x);
    const float bf16 = bf16_to_f32(x);
    if (std::isnan(f16)) {
      EXPECT_EQ(f32_to_f16(f16) & 0x7c00, 0x7c00);
      EXPECT_NE(f32_to_f16(f16) & 0x3ff, 0);
    } else {
      EXPECT_EQ(f32_to_f16(f16), x) << h;
    }
    if (std::isnan(bf16)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bf16))));
    } else {
      EXPECT_EQ(f32_to_bf16(bf16), x) << h;
      EXPECT_EQ(bits(bf16), static_cast<uint32_t>(h) << 16);
    }
  }
}

// Nearest representable value by search; ties go to the even (last bit 0) pattern.
uint16_t nearest(double x, const std::vector<std::pair<double, uint16_t>>& sorted) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), std::make_pair(x, uint16_t{0}));
  if (it == sorted.end()) return sorted.back().second;
  if (it == sorted.begin()) return it->second;
  const auto lo = *(it - 1), hi = *it;
  const double dlo = x - lo.first, dhi = hi.first - x;
  if (dlo < dhi) return lo.second;
  if (dhi < dlo) return hi.second;
  return (lo.second & 1) == 0 ? lo.second : hi.second;
}

// The portable f16 conversions (clang 14 builds use them) give the values of the ones this build
// uses (the compiler's _Float16 under gcc): every f16 pattern widened, and every 4096th f32
// pattern narrowed together with its neighbours (exact, halfway and just-off-halfway cases of every
// f16 step). NaN payloads may differ; NaN stays NaN.
TEST(DTypeConvert, PortableF16MatchesTheBuildsConversion) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float a = f16_to_f32(static_cast<uint16_t>(h));
    const float b = f16_to_f32_portable(static_cast<uint16_t>(h));
    if (std::isnan(a)) {
      EXPECT_TRUE(std::isnan(b)) << h;
    } else {
      EXPECT_EQ(bits(a), bits(b)) << h;
    }
  }
  auto is_nan16 = [](uint16_t x) { return (x & 0x7c00) == 0x7c00 && (x & 0x3ff) != 0; };
  for (uint64_t base = 0; base < 0x100000000ull; base += 0x1000) {
    for (uint32_t d : {0u, 1u, 0xfffu}) {
      const float f = from_bits(static_cast<uint32_t>(base) + d);
      if (std::isnan(f)) {
        EXPECT_TRUE(is_nan16(f32_to_f16(f)) && is_nan16(f32_to_f16_portable(f)));
      } else {
        ASSERT_EQ(f32_to_f16(f), f32_to_f16_portable(f)) << bits(f);
      }
    }
  }
}

TEST(DTypeConvert, NarrowingRoundsToNearestEven) {
  std::vector<std::pair<double, uint16_t>> f16_pos, bf16_pos;
  for (uint32_t h = 0; h < 0x7c00; ++h) f16_pos.emplace_back(f16_reference(h), h);
  // One step past the largest finite value stands for infinity (IEEE overflow rule: x >= 65520).
  f16_pos.emplace_back(65536.0, 0x7c00);
  for (uint32_t h = 0; h < 0x7f80; ++h) bf16_pos.emplace_back(bf16_to_f32(h), h);
  bf16_pos.emplace_back(std::ldexp(1.0, 128), 0x7f80);

  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any(0, 0x7f7fffffu);
  std::uniform_int_distribution<uint32_t> small(0x2f000000u, 0x47ffffffu);  // f16's range
  for (int i = 0; i < 200000; ++i) {
    const float x = from_bits(i % 2 ? any(rng) : small(rng));
    const bool neg = (i / 2) % 2;
    const float v = neg ? -x : x;
    const uint16_t sign = neg ? 0x8000 : 0;
    EXPECT_EQ(f32_to_bf16(v), nearest(x, bf16_pos) | sign) << x;
    EXPECT_EQ(f32_to_f16(v), nearest(x, f16_pos) | sign) << x;
  }
  // Exact ties.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);          // half of min subnormal: tie to 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
}

TEST(DTypeConvert, BulkConvertAllPairsMatchScalarAndHandlesUnalignedInput) {
  std::vector<float> src(1001);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 3.f);
  for (float& v : src) v = dist(rng);
  const int32_t types[] = {SABLE_DTYPE_F32, SABLE_DTYPE_F16, SABLE_DTYPE_BF16};
  for (int32_t from : types) {
    // Store src as `from`, starting one byte into the buffer (unaligned).
    std::vector<std::byte> stored(src.size() * 4 + 1);
    ASSERT_TRUE(convert(SABLE_DTYPE_F32, src.data(), from, stored.data() + 1, src.size()));
    for (int32_t to : types) {
      std::vector<std::byte> out(src.size() * 4);
      ASSERT_TRUE(convert(from, stored.data() + 1, to, out.data(), src.size()));
      std::vector<float> back(src.size());
      ASSERT_TRUE(convert(to, out.data(), SABLE_DTYPE_F32, back.data(), src.size()));
      for (size_t i = 0; i < src.size(); ++i) {
        // Reference: round to `from`, then to `to`, one scalar at a time.
        float r = src[i];
        auto round_to = [](int32_t d, float f) {
          if (d == SABLE_DTYPE_F16) return f16_to_f32(f32_to_f16(f));
          if (d == SABLE_DTYPE_BF16) return bf16_to_f32(f32_to_bf16(f));
          return f;
        };
        r = round_to(to, round_to(from, r));
        ASSERT_EQ(back[i], r) << from << "->" << to << " at " << i;
      }
    }
  }
  int32_t a = 5, b = 0;
  EXPECT_TRUE(convert(SABLE_DTYPE_I32, &a, SABLE_DTYPE_I32, &b, 1));
  EXPECT_EQ(b, 5);
  EXPECT_FALSE(convert(SABLE_DTYPE_I32, &a, SABLE_DTYPE_F32, &b, 1));
}

}  // namespace
}  // namespace sable::weights
