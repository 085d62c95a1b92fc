// The bulk converters (see dtype_convert.h).
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
