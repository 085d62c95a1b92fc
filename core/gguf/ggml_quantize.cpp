// Quantizers of ggml's block formats (see ggml_quantize.h). The 32-element formats transcribe
// gguf-py's quants.py (Q8_0/Q4_0/Q4_1.quantize_blocks) operation by operation.
#include "core/gguf/ggml_quantize.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/gguf/ggml_types.h"
#include "core/weights/dtype_convert.h"

namespace sable::gguf {
namespace {

using weights::f16_to_f32;
using weights::f32_to_f16;

void put16(std::byte* p, uint16_t v) { std::memcpy(p, &v, 2); }

// ggml's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (half away from zero).
void q8_0(const float* x, std::byte* out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(out, f32_to_f16(d));
  for (int j = 0; j < 32; ++j)
    out[2 + j] = static_cast<std::byte>(static_cast<int8_t>(std::round(x[j] * id)));
}

// q4_0: d = (the value of largest magnitude, first one on ties) / -8, q = min(15, trunc(x/d + 8.5))
void q4_0(const float* x, std::byte* out) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(out, f32_to_f16(d));
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) {
    const float v = x[j] * id + 8.5f;
    q[j] = static_cast<uint8_t>(std::clamp(static_cast<int>(std::trunc(v)), 0, 15));
  }
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<std::byte>(q[j] | (q[j + 16] << 4));
}

// q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min)/d + 0.5)).
void q4_1(const float* x, std::byte* out) {
  float max = x[0], min = x[0];
  for (int j = 1; j < 32; ++j) {
    max = std::max(max, x[j]);
    min = std::min(min, x[j]);
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(out, f32_to_f16(d));
  put16(out + 2, f32_to_f16(min));
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) {
    const float v = (x[j] - min) * id + 0.5f;
    q[j] = static_cast<uint8_t>(std::clamp(static_cast<int>(std::trunc(v)), 0, 15));
  }
  for (int j = 0; j < 16; ++j) out[4 + j] = static_cast<std::byte>(q[j] | (q[j + 16] << 4));
}

int nearest(float v, int lo, int hi) { return std::clamp(static_cast<int>(std::lround(v)), lo, hi); }

// Q4_K (bits 4) and Q5_K (bits 5): 8 sub-blocks of 32, each x ≈ d*sc*q - dmin*m with 6-bit sc, m.
void k45(const float* x, std::byte* out, int bits) {
  const int qmax = (1 << bits) - 1;
  float scale[8], offset[8];
  for (int s = 0; s < 8; ++s) {
    const float* v = x + 32 * s;
    const float lo = std::min(0.0f, *std::min_element(v, v + 32));
    const float hi = std::max(0.0f, *std::max_element(v, v + 32));
    offset[s] = -lo;
    scale[s] = (hi - lo) / static_cast<float>(qmax);
  }
  const float d = f16_to_f32(f32_to_f16(*std::max_element(scale, scale + 8) / 63.0f));
  const float dmin = f16_to_f32(f32_to_f16(*std::max_element(offset, offset + 8) / 63.0f));
  uint8_t sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<uint8_t>(d > 0.0f ? nearest(scale[s] / d, 0, 63) : 0);
    m[s] = static_cast<uint8_t>(dmin > 0.0f ? nearest(offset[s] / dmin, 0, 63) : 0);
  }
  put16(out, f32_to_f16(d));
  put16(out + 2, f32_to_f16(dmin));
  uint8_t* scales = reinterpret_cast<uint8_t*>(out + 4);
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  uint8_t* qh = bits == 5 ? scales + 12 : nullptr;
  uint8_t* qs = bits == 5 ? scales + 12 + 32 : scales + 12;
  std::memset(qs, 0, 128);
  if (qh) std::memset(qh, 0, 32);
  for (int s = 0; s < 8; ++s) {
    const float step = d * static_cast<float>(sc[s]), shift = dmin * static_cast<float>(m[s]);
    for (int l = 0; l < 32; ++l) {
      const int q = step > 0.0f ? nearest((x[32 * s + l] + shift) / step, 0, qmax) : 0;
      qs[32 * (s / 2) + l] |= static_cast<uint8_t>((q & 0xF) << (s % 2 == 0 ? 0 : 4));
      if (qh) qh[l] |= static_cast<uint8_t>((q >> 4) << s);
    }
  }
}

// Q6_K: 16 sub-blocks of 16, x ≈ d * sc * (q - 32) with int8 sc.
void q6_k(const float* x, std::byte* out) {
  float scale[16];
  for (int s = 0; s < 16; ++s) {
    float amax = 0.0f;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * s + l]));
    scale[s] = amax / 31.0f;
  }
  const float d = f16_to_f32(f32_to_f16(*std::max_element(scale, scale + 16) / 127.0f));
  uint8_t* ql = reinterpret_cast<uint8_t*>(out);
  uint8_t* qh = ql + 128;
  auto* scales = reinterpret_cast<int8_t*>(ql + 192);
  std::memset(ql, 0, 192);
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<int8_t>(d > 0.0f ? nearest(scale[s] / d, 0, 127) : 0);
  for (int e = 0; e < 256; ++e) {
    const float step = d * static_cast<float>(scales[e / 16]);
    const int q = (step > 0.0f ? nearest(x[e] / step, -32, 31) : 0) + 32;
    const int n = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    ql[64 * n + l + (quarter % 2 == 1 ? 32 : 0)] |= static_cast<uint8_t>((q & 0xF) << (quarter >= 2 ? 4 : 0));
    qh[32 * n + l] |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
  }
  put16(out + 208, f32_to_f16(d));
}

}  // namespace

bool can_quantize(uint32_t type) {
  switch (type) {
    case kF16: case kBF16: case kQ8_0: case kQ4_0: case kQ4_1: case kQ4_K: case kQ5_K: case kQ6_K:
      return true;
    default:
      return false;
  }
}

std::vector<std::byte> quantize(uint32_t type, const float* x, int64_t rows, int64_t cols) {
  const TypeTraits* t = type_traits(type);
  if (!can_quantize(type) || t == nullptr)
    throw std::invalid_argument(fmt::format("cannot quantize to ggml type {}", type));
  if (cols <= 0 || rows < 0 || cols % t->block_size != 0)
    throw std::invalid_argument(fmt::format("{} rows need a multiple of {} columns, got {}",
                                            t->name, t->block_size, cols));
  const int64_t blocks = rows * cols / t->block_size;
  std::vector<std::byte> out(static_cast<size_t>(blocks) * t->type_size);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = x + b * t->block_size;
    std::byte* o = out.data() + static_cast<size_t>(b) * t->type_size;
    switch (type) {
      case kF16: put16(o, f32_to_f16(*v)); break;
      case kBF16: put16(o, weights::f32_to_bf16(*v)); break;
      case kQ8_0: q8_0(v, o); break;
      case kQ4_0: q4_0(v, o); break;
      case kQ4_1: q4_1(v, o); break;
      case kQ4_K: k45(v, o, 4); break;
      case kQ5_K: k45(v, o, 5); break;
      default: q6_k(v, o); break;
    }
  }
  return out;
}

}  // namespace sable::gguf
