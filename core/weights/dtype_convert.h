// Conversions between the floating-point storage types of checkpoints (bf16, fp16, fp32).
//
// Scalars are bit patterns held in uint16_t. f32 -> bf16 and f32 -> f16 round to nearest, ties to
// even; NaN stays NaN (quiet), overflow in f16 becomes +-inf, f16 subnormals are exact both ways.
// The bulk converters take unaligned byte pointers (safetensors data need not be aligned) and are
// plain loops the compiler vectorises. Thread-safety: pure functions.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sable::weights {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// f16 by integer arithmetic, for any compiler.
inline float f16_to_f32_portable(uint16_t h) {
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

inline uint16_t f32_to_f16_portable(float value) {
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

// f16 through the compiler's _Float16 where it has one (gcc 12+, clang 15+ on x86-64: the F16C
// instructions or libgcc's routines; the same values, NaN payloads aside), else the portable
// functions above (clang 14, which `make test-sanitize` may use, has no _Float16 on x86-64).
#ifdef __FLT16_MANT_DIG__
inline float f16_to_f32(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }
inline uint16_t f32_to_f16(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }
#else
inline float f16_to_f32(uint16_t h) { return f16_to_f32_portable(h); }
inline uint16_t f32_to_f16(float f) { return f32_to_f16_portable(f); }
#endif

// Bulk: `n` elements from src (of src_dtype) to dst (of dst_dtype); dtypes are SableDType values.
// Supported: any pair of {F32, F16, BF16}, and any dtype to itself (a byte copy).
// Returns false (and writes nothing) for an unsupported pair.
bool convert(int32_t src_dtype, const void* src, int32_t dst_dtype, void* dst, size_t n);

void bf16_to_f32(const void* src, float* dst, size_t n);
void f16_to_f32(const void* src, float* dst, size_t n);
void f32_to_bf16(const float* src, void* dst, size_t n);
void f32_to_f16(const float* src, void* dst, size_t n);

}  // namespace sable::weights
