// Inverse frequencies and cos/sin caches for each rope scheme, mirroring transformers'
// modeling_rope_utils (_compute_default/linear/dynamic/yarn/longrope/llama3_parameters) in float32,
// one torch op at a time (see rope.h for why float32 rather than float64).
#include "core/hf_config/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace sable::hf {
namespace {

// torch: base ** (torch.arange(0, dim, 2).float() / dim), then 1.0 / that. `base` is rounded to
// float32 first, as torch does with a python scalar meeting a float32 tensor.
std::vector<float> pow_freqs(double base, int32_t dim) {
  const float base_f = static_cast<float>(base);
  std::vector<float> out(static_cast<size_t>(dim / 2));
  for (int32_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    out[i] = static_cast<float>(std::pow(static_cast<double>(base_f), static_cast<double>(exponent)));
  }
  return out;
}

std::vector<float> default_inv_freq(double base, int32_t dim) {
  std::vector<float> inv = pow_freqs(base, dim);
  for (float& v : inv) v = 1.0f / v;
  return inv;
}

double yarn_get_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

int64_t original_max(const RopeParams& p) {
  return p.original_max_position_embeddings > 0 ? p.original_max_position_embeddings
                                                 : p.max_position_embeddings;
}

InvFreq yarn(const RopeParams& p, int32_t dim) {
  const int64_t orig = original_max(p);
  const double factor = p.factor;
  InvFreq out;
  if (p.attention_factor) {
    out.attention_factor = *p.attention_factor;
  } else if (p.mscale.value_or(0.0) != 0.0 && p.mscale_all_dim.value_or(0.0) != 0.0) {
    out.attention_factor = yarn_get_mscale(factor, *p.mscale) / yarn_get_mscale(factor, *p.mscale_all_dim);
  } else {
    out.attention_factor = yarn_get_mscale(factor, 1.0);
  }
  const double beta_fast = p.beta_fast != 0.0 ? p.beta_fast : 32.0;  // python `or 32`
  const double beta_slow = p.beta_slow != 0.0 ? p.beta_slow : 1.0;
  const auto correction_dim = [&](double rotations) {
    return (dim * std::log(static_cast<double>(orig) / (rotations * 2 * std::numbers::pi))) /
           (2 * std::log(p.theta));
  };
  double low = correction_dim(beta_fast);
  double high = correction_dim(beta_slow);
  if (p.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // linear_ramp_factor's singularity guard

  const std::vector<float> pos_freqs = pow_freqs(p.theta, dim);
  const float factor_f = static_cast<float>(factor);
  const float low_f = static_cast<float>(low);
  const float span_f = static_cast<float>(high - low);
  out.inv_freq.resize(pos_freqs.size());
  for (size_t i = 0; i < pos_freqs.size(); ++i) {
    const float extrapolation = 1.0f / pos_freqs[i];
    const float interpolation = 1.0f / (factor_f * pos_freqs[i]);
    const float ramp = std::clamp((static_cast<float>(i) - low_f) / span_f, 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    const float a = interpolation * (1.0f - extrapolation_factor);
    const float b = extrapolation * extrapolation_factor;
    out.inv_freq[i] = a + b;
  }
  return out;
}

InvFreq llama3(const RopeParams& p, int32_t dim) {
  InvFreq out;
  out.inv_freq = default_inv_freq(p.theta, dim);
  const double old_context = static_cast<double>(original_max(p));
  const float low_wavelen = static_cast<float>(old_context / p.low_freq_factor);
  const float high_wavelen = static_cast<float>(old_context / p.high_freq_factor);
  const float factor = static_cast<float>(p.factor);
  const float two_pi = static_cast<float>(2 * std::numbers::pi);
  const float old_context_f = static_cast<float>(old_context);
  const float low_ff = static_cast<float>(p.low_freq_factor);
  const float ff_span = static_cast<float>(p.high_freq_factor - p.low_freq_factor);
  for (float& inv : out.inv_freq) {
    const float wavelen = (1.0f / inv) * two_pi;  // torch: 2*pi / t == t.reciprocal() * (2*pi)
    const float inv_llama = wavelen > low_wavelen ? inv / factor : inv;
    const float smooth = ((1.0f / wavelen) * old_context_f - low_ff) / ff_span;
    const float smoothed = (1.0f - smooth) * inv_llama / factor + smooth * inv_llama;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    inv = medium ? smoothed : inv_llama;
  }
  return out;
}

InvFreq longrope(const RopeParams& p, int32_t dim, int64_t seq_len) {
  const int64_t orig = original_max(p);
  const size_t half = static_cast<size_t>(dim / 2);
  if (p.short_factor.size() != half || p.long_factor.size() != half) {
    throw std::invalid_argument("longrope: short_factor and long_factor need " +
                                std::to_string(half) + " values each (rotary dim " +
                                std::to_string(dim) + "), got " +
                                std::to_string(p.short_factor.size()) + " and " +
                                std::to_string(p.long_factor.size()));
  }
  const double factor = p.factor;
  InvFreq out;
  if (p.attention_factor) {
    out.attention_factor = *p.attention_factor;
  } else {
    out.attention_factor = factor <= 1.0 ? 1.0
                                         : std::sqrt(1 + std::log(factor) /
                                                             std::log(static_cast<double>(orig)));
  }
  const std::vector<double>& ext = seq_len > orig ? p.long_factor : p.short_factor;
  const std::vector<float> pos_freqs = pow_freqs(p.theta, dim);
  out.inv_freq.resize(half);
  for (size_t i = 0; i < half; ++i) {
    out.inv_freq[i] = 1.0f / (static_cast<float>(ext[i]) * pos_freqs[i]);
  }
  return out;
}

}  // namespace

int32_t RopeParams::rotary_dim(int64_t head_dim) const {
  return static_cast<int32_t>(static_cast<double>(head_dim) * partial_rotary_factor);
}

InvFreq compute_inv_freq(const RopeParams& p, int32_t dim, int64_t seq_len) {
  if (dim <= 0 || dim % 2 != 0) {
    throw std::invalid_argument("rope: rotary dim must be positive and even, got " +
                                std::to_string(dim));
  }
  if (!(p.theta > 0.0)) throw std::invalid_argument("rope: rope_theta must be positive");
  if (p.type == "default") return {default_inv_freq(p.theta, dim), 1.0};
  if (p.type == "linear") {
    InvFreq out{default_inv_freq(p.theta, dim), 1.0};
    const float factor = static_cast<float>(p.factor);
    for (float& v : out.inv_freq) v /= factor;
    return out;
  }
  if (p.type == "dynamic") {
    if (dim <= 2) throw std::invalid_argument("rope: dynamic scaling needs a rotary dim above 2");
    const double mpe = static_cast<double>(p.max_position_embeddings);
    const double seq = std::max(static_cast<double>(seq_len), mpe);
    const double base = p.theta * std::pow((p.factor * seq / mpe) - (p.factor - 1),
                                           static_cast<double>(dim) / (dim - 2));
    return {default_inv_freq(base, dim), 1.0};
  }
  if (p.type == "llama3") return llama3(p, dim);
  if (p.type == "yarn") return yarn(p, dim);
  if (p.type == "longrope") return longrope(p, dim, seq_len);
  throw std::invalid_argument("rope: unsupported rope type '" + p.type + "'");
}

RopeCache build_rope_cache(const RopeParams& params, int32_t rot_dim, int64_t max_positions) {
  if (max_positions <= 0) {
    throw std::invalid_argument("rope: max_positions must be positive, got " +
                                std::to_string(max_positions));
  }
  RopeCache cache;
  cache.max_positions = max_positions;
  cache.rot_dim = rot_dim;
  cache.cos_sin.resize(static_cast<size_t>(max_positions) * static_cast<size_t>(rot_dim));
  const size_t half = static_cast<size_t>(rot_dim / 2);

  // Rows [0, switch_at) use `first`, rows [switch_at, max_positions) use `second`.
  InvFreq first = compute_inv_freq(params, rot_dim, max_positions);
  InvFreq second = first;
  int64_t switch_at = max_positions;
  if (params.type == "longrope") {
    const int64_t orig = original_max(params);
    first = compute_inv_freq(params, rot_dim, 0);          // short_factor
    second = compute_inv_freq(params, rot_dim, orig + 1);  // long_factor
    switch_at = std::min(orig, max_positions);
  }
  cache.attention_factor = static_cast<float>(first.attention_factor);
  const float scale = cache.attention_factor;
  for (int64_t pos = 0; pos < max_positions; ++pos) {
    const std::vector<float>& inv = pos < switch_at ? first.inv_freq : second.inv_freq;
    float* row = cache.cos_sin.data() + static_cast<size_t>(pos) * rot_dim;
    const float pos_f = static_cast<float>(pos);
    for (size_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(inv[i] * pos_f);  // float32 product, as the matmul
      row[i] = static_cast<float>(std::cos(angle)) * scale;
      row[half + i] = static_cast<float>(std::sin(angle)) * scale;
    }
  }
  return cache;
}

}  // namespace sable::hf
