// Rope caches against independent float64 references written from transformers'
// modeling_rope_utils formulas (default, linear, dynamic, llama3, yarn incl. attention factor /
// mscale / truncate, longrope), plus the cache layout and the golden llama config.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/hf_config/hf_config.h"

namespace sable::hf {
namespace {

constexpr double kPi = std::numbers::pi;

// Reference inverse frequencies, in double, straight from the formulas.
std::vector<double> ref_default(double base, int dim) {
  std::vector<double> inv;
  for (int i = 0; i < dim; i += 2) inv.push_back(1.0 / std::pow(base, static_cast<double>(i) / dim));
  return inv;
}

std::vector<double> ref_llama3(double base, int dim, double factor, double low, double high,
                               double old_ctx) {
  std::vector<double> inv = ref_default(base, dim);
  for (double& f : inv) {
    const double wavelen = 2 * kPi / f;
    if (wavelen < old_ctx / high) continue;  // high frequency: unchanged
    if (wavelen > old_ctx / low) {
      f /= factor;  // low frequency: scaled
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      f = (1 - smooth) * f / factor + smooth * f;
    }
  }
  return inv;
}

std::vector<double> ref_yarn(double base, int dim, double factor, double orig, double beta_fast,
                             double beta_slow, bool truncate) {
  auto corr = [&](double rot) { return dim * std::log(orig / (rot * 2 * kPi)) / (2 * std::log(base)); };
  double low = corr(beta_fast), high = corr(beta_slow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1.0);
  if (low == high) high += 0.001;
  std::vector<double> inv;
  for (int i = 0; i < dim / 2; ++i) {
    const double pos_freq = std::pow(base, 2.0 * i / dim);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extra = 1 - ramp;
    inv.push_back((1 / (factor * pos_freq)) * (1 - extra) + (1 / pos_freq) * extra);
  }
  return inv;
}

// Checks cache rows against cos/sin of p * inv (times scale). Float32 angles drift by about one
// float32 ulp of p * inv, hence the angle-proportional tolerance.
void expect_cache(const RopeCache& c, const std::vector<double>& inv, double scale,
                  int64_t from = 0, int64_t to = -1) {
  const int half = c.rot_dim / 2;
  ASSERT_EQ(static_cast<int>(inv.size()), half);
  if (to < 0) to = c.max_positions;
  for (int64_t p = from; p < to; ++p) {
    for (int i = 0; i < half; ++i) {
      const double angle = p * inv[i];
      const double tol = 2e-6 + 4e-7 * angle;
      const float* row = c.cos_sin.data() + p * c.rot_dim;
      ASSERT_NEAR(row[i], std::cos(angle) * scale, tol) << "pos " << p << " i " << i;
      ASSERT_NEAR(row[half + i], std::sin(angle) * scale, tol) << "pos " << p << " i " << i;
    }
  }
}

TEST(Rope, DefaultAndLayout) {
  RopeParams p;
  p.theta = 10000.0;
  const RopeCache c = build_rope_cache(p, 16, 300);
  EXPECT_EQ(c.cos_sin.size(), 300u * 16u);
  EXPECT_EQ(c.attention_factor, 1.0f);
  // Row 0: cos = 1, sin = 0; row 1, i = 1: angle 10000^(-1/8).
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(c.cos_sin[i], 1.0f);
    EXPECT_EQ(c.cos_sin[8 + i], 0.0f);
  }
  EXPECT_NEAR(c.cos_sin[16 + 1], std::cos(0.31622776601683794), 1e-7);
  EXPECT_NEAR(c.cos_sin[16 + 8 + 1], std::sin(0.31622776601683794), 1e-7);
  expect_cache(c, ref_default(10000.0, 16), 1.0);
}

TEST(Rope, Float32InvFreqMatchesTorchArithmetic) {
  // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in float32.
  RopeParams p;
  p.theta = 500000.0;
  const InvFreq f = compute_inv_freq(p, 128);
  for (int i = 0; i < 64; ++i) {
    const float e = static_cast<float>(2 * i) / 128.0f;
    const float pw = static_cast<float>(std::pow(500000.0, static_cast<double>(e)));
    EXPECT_EQ(f.inv_freq[i], 1.0f / pw) << i;
    EXPECT_NEAR(f.inv_freq[i], 1.0 / std::pow(500000.0, i / 64.0), 1e-6 * f.inv_freq[i]);
  }
}

TEST(Rope, Linear) {
  RopeParams p;
  p.type = "linear";
  p.theta = 10000.0;
  p.factor = 4.0;
  std::vector<double> inv = ref_default(10000.0, 32);
  for (double& v : inv) v /= 4.0;
  expect_cache(build_rope_cache(p, 32, 512), inv, 1.0);
}

TEST(Rope, DynamicNtk) {
  RopeParams p;
  p.type = "dynamic";
  p.theta = 10000.0;
  p.factor = 2.0;
  p.max_position_embeddings = 256;
  // Within max_position_embeddings, transformers' init uses seq_len = max: plain default rope.
  expect_cache(build_rope_cache(p, 32, 200), ref_default(10000.0, 32), 1.0);
  // A longer cache uses seq_len = max_positions: base * ((f * s / m) - (f - 1)) ** (d / (d - 2)).
  const double base = 10000.0 * std::pow(2.0 * 512 / 256 - 1.0, 32.0 / 30.0);
  expect_cache(build_rope_cache(p, 32, 512), ref_default(base, 32), 1.0);
}

TEST(Rope, Llama3MatchesGoldenConfig) {
  const HfConfig c = HfConfig::load(std::string(SABLE_TEST_DATA_DIR) + "/models/llama/config.json");
  const RopeParams p = c.rope();
  const RopeCache cache = build_rope_cache(p, c.rotary_dim(), c.max_position_embeddings());
  EXPECT_EQ(cache.attention_factor, 1.0f);
  const auto inv = ref_llama3(500000.0, 16, 8.0, 1.0, 4.0, 64.0);
  expect_cache(cache, inv, 1.0);
  // With old context 64 and dim 16 all three bands occur: unchanged, smoothed, divided.
  const auto plain = ref_default(500000.0, 16);
  int unchanged = 0, divided = 0, smoothed = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    if (inv[i] == plain[i]) ++unchanged;
    else if (std::abs(inv[i] - plain[i] / 8.0) < 1e-15) ++divided;
    else ++smoothed;
  }
  EXPECT_GT(unchanged, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(smoothed, 0);
}

TEST(Rope, YarnWithDefaultAttentionFactor) {
  RopeParams p;
  p.type = "yarn";
  p.theta = 10000.0;
  p.factor = 4.0;
  p.max_position_embeddings = 4096;
  p.original_max_position_embeddings = 1024;
  const RopeCache c = build_rope_cache(p, 64, 600);
  const double af = 0.1 * std::log(4.0) + 1.0;
  EXPECT_NEAR(c.attention_factor, af, 1e-7);
  expect_cache(c, ref_yarn(10000.0, 64, 4.0, 1024, 32, 1, true), af);
}

TEST(Rope, YarnMscaleTruncateAndExplicitFactor) {
  RopeParams p;
  p.type = "yarn";
  p.theta = 1e6;
  p.factor = 40.0;
  p.max_position_embeddings = 163840;
  p.original_max_position_embeddings = 4096;
  p.mscale = 0.707;
  p.mscale_all_dim = 0.707;  // DeepSeek style: ratio of equal mscales gives 1
  p.beta_fast = 32;
  p.beta_slow = 1;
  p.truncate = false;
  const RopeCache c = build_rope_cache(p, 64, 300);
  EXPECT_NEAR(c.attention_factor, 1.0, 1e-7);
  expect_cache(c, ref_yarn(1e6, 64, 40.0, 4096, 32, 1, false), 1.0);
  // Unequal mscales: (0.1 * m * ln f + 1) / (0.1 * m_all * ln f + 1).
  p.mscale = 1.0;
  p.mscale_all_dim = 0.5;
  const double want = (0.1 * std::log(40.0) + 1) / (0.05 * std::log(40.0) + 1);
  EXPECT_NEAR(build_rope_cache(p, 64, 4).attention_factor, want, 1e-6);
  // An explicit attention_factor wins.
  p.attention_factor = 0.8;
  const RopeCache explicit_af = build_rope_cache(p, 64, 300);
  EXPECT_NEAR(explicit_af.attention_factor, 0.8, 1e-7);
  expect_cache(explicit_af, ref_yarn(1e6, 64, 40.0, 4096, 32, 1, false), 0.8);
  // truncate = true really differs from false here.
  const auto a = ref_yarn(1e6, 64, 40.0, 4096, 32, 1, false);
  const auto b = ref_yarn(1e6, 64, 40.0, 4096, 32, 1, true);
  EXPECT_NE(a, b);
}

TEST(Rope, YarnFromConfigMatchesTransformersDefaults) {
  // Qwen2.5-style classic config: factor 4, original 32768; no beta keys -> 32 / 1.
  const HfConfig c = HfConfig::parse(
      R"({"hidden_size": 256, "num_attention_heads": 4, "max_position_embeddings": 131072,
          "rope_theta": 1000000.0,
          "rope_scaling": {"type": "yarn", "factor": 4.0,
                           "original_max_position_embeddings": 32768}})", "qwen-yarn");
  const RopeCache cache = build_rope_cache(c.rope(), c.rotary_dim(), 256);
  expect_cache(cache, ref_yarn(1e6, 64, 4.0, 32768, 32, 1, true), 0.1 * std::log(4.0) + 1);
}

TEST(Rope, LongRopeShortAndLongFactors) {
  RopeParams p;
  p.type = "longrope";
  p.theta = 10000.0;
  p.max_position_embeddings = 512;
  p.original_max_position_embeddings = 128;
  p.factor = 4.0;
  p.short_factor = {1.0, 1.1, 1.2, 1.5, 2.0, 2.0, 3.0, 4.0};
  p.long_factor = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0};
  const RopeCache c = build_rope_cache(p, 16, 300);
  const double af = std::sqrt(1 + std::log(4.0) / std::log(128.0));
  EXPECT_NEAR(c.attention_factor, af, 1e-7);
  std::vector<double> short_inv = ref_default(10000.0, 16), long_inv = short_inv;
  for (int i = 0; i < 8; ++i) {
    short_inv[i] /= p.short_factor[i];
    long_inv[i] /= p.long_factor[i];
  }
  expect_cache(c, short_inv, af, 0, 128);
  expect_cache(c, long_inv, af, 128, 300);
}

TEST(Rope, PartialRotaryAndErrors) {
  RopeParams p;
  p.partial_rotary_factor = 0.25;
  EXPECT_EQ(p.rotary_dim(128), 32);
  p.partial_rotary_factor = 0.4;
  EXPECT_EQ(p.rotary_dim(80), 32);
  EXPECT_THROW(build_rope_cache(p, 15, 10), std::invalid_argument);
  EXPECT_THROW(build_rope_cache(p, 16, 0), std::invalid_argument);
  RopeParams bad;
  bad.type = "mrope";
  EXPECT_THROW(build_rope_cache(bad, 16, 4), std::invalid_argument);
  RopeParams lr;
  lr.type = "longrope";
  lr.short_factor = {1.0};
  lr.long_factor = {1.0};
  EXPECT_THROW(build_rope_cache(lr, 16, 4), std::invalid_argument);
}

}  // namespace
}  // namespace sable::hf
