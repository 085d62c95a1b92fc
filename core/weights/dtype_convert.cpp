// Scalar f16 conversions and the bulk converters (see dtype_convert.h).
#include "core/weights/dtype_convert.h"

#include "sable/tensor.h"

namespace sable::weights {
namespace {

inline uint16_t load_u16(const void* base, size_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const std::byte*>(base) + 2 * i, sizeof v);
  return v;
}
inline void store_u16(void* base, size_t i, uint16_t v) {
  std::memcpy(static_cast<std::byte*>(base) + 2 * i, &v, sizeof v);
}
inline float load_f32(const void* base, size_t i) {
  float v;
  std::memcpy(&v, static_cast<const std::byte*>(base) + 4 * i, sizeof v);
  return v;
}

}  // namespace

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    u = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  } else {
    // Zero or subnormal: mant * 2^-24 is exact in f32.
    float f = static_cast<float>(mant) * 5.9604644775390625e-08f;
    std::memcpy(&u, &f, sizeof u);
    u |= sign;
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t f32_to_f16(float value) {
  // Round-to-nearest-even by integer arithmetic on the f32 bits (normal range) and by letting the
  // FPU round (subnormal range: adding 0.5 aligns the f16 subnormal ulp to the f32 mantissa end).
  uint32_t u;
  std::memcpy(&u, &value, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  uint16_t out;
  if (u >= 0x47800000u) {                            // |x| >= 65536, inf or NaN
    out = u > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (u < 0x38800000u) {                      // |x| < 2^-14: f16 subnormal or zero
    constexpr uint32_t kMagicBits = 0x3f000000u;     // 0.5f
    float f, magic;
    std::memcpy(&f, &u, sizeof f);
    std::memcpy(&magic, &kMagicBits, sizeof magic);
    f += magic;
    std::memcpy(&u, &f, sizeof u);
    out = static_cast<uint16_t>(u - kMagicBits);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + mant_odd;
    out = static_cast<uint16_t>(u >> 13);            // a carry into the exponent gives inf
  }
  return static_cast<uint16_t>(out | sign);
}

void bf16_to_f32(const void* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src, i));
}
void f16_to_f32(const void* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src, i));
}
void f32_to_bf16(const float* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_bf16(src[i]));
}
void f32_to_f16(const float* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_f16(src[i]));
}

bool convert(int32_t src_dtype, const void* src, int32_t dst_dtype, void* dst, size_t n) {
  if (src_dtype == dst_dtype) {
    const size_t size = sable_dtype_size(src_dtype);
    if (size == 0) return false;
    std::memcpy(dst, src, n * size);
    return true;
  }
  auto is_float = [](int32_t d) {
    return d == SABLE_DTYPE_F32 || d == SABLE_DTYPE_F16 || d == SABLE_DTYPE_BF16;
  };
  if (!is_float(src_dtype) || !is_float(dst_dtype)) return false;
  auto out_u16 = [&](size_t i, float f) {
    store_u16(dst, i, dst_dtype == SABLE_DTYPE_BF16 ? f32_to_bf16(f) : f32_to_f16(f));
  };
  if (dst_dtype == SABLE_DTYPE_F32) {
    float* out = static_cast<float*>(dst);
    if (src_dtype == SABLE_DTYPE_BF16) {
      bf16_to_f32(src, out, n);
    } else {
      f16_to_f32(src, out, n);
    }
  } else if (src_dtype == SABLE_DTYPE_F32) {
    for (size_t i = 0; i < n; ++i) out_u16(i, load_f32(src, i));
  } else if (src_dtype == SABLE_DTYPE_BF16) {  // bf16 -> f16 through f32 (exact widening)
    for (size_t i = 0; i < n; ++i) out_u16(i, bf16_to_f32(load_u16(src, i)));
  } else {  // f16 -> bf16
    for (size_t i = 0; i < n; ++i) out_u16(i, f16_to_f32(load_u16(src, i)));
  }
  return true;
}

}  // namespace sable::weights
