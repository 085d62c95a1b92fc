// Conversions between the floating-point storage types of checkpoints (bf16, fp16, fp32).
//
// Scalars are bit patterns held in uint16_t. f32 -> bf16 and f32 -> f16 round to nearest, ties to
// even; NaN stays NaN (quiet), overflow in f16 becomes +-inf, f16 subnormals are exact both ways.
// The bulk converters take unaligned byte pointers (safetensors data need not be aligned) and are
// plain loops the compiler vectorises. Thread-safety: pure functions.
#pragma once

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

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Bulk: `n` elements from src (of src_dtype) to dst (of dst_dtype); dtypes are SableDType values.
// Supported: any pair of {F32, F16, BF16}, and any dtype to itself (a byte copy).
// Returns false (and writes nothing) for an unsupported pair.
bool convert(int32_t src_dtype, const void* src, int32_t dst_dtype, void* dst, size_t n);

void bf16_to_f32(const void* src, float* dst, size_t n);
void f16_to_f32(const void* src, float* dst, size_t n);
void f32_to_bf16(const float* src, void* dst, size_t n);
void f32_to_f16(const float* src, void* dst, size_t n);

}  // namespace sable::weights
