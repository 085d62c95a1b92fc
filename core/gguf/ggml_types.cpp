// ggml type table and the dequantizers (see ggml_types.h). Each block is decoded into its element
// order exactly as ggml-quants.c's dequantize_row_*; the float expressions keep gguf-py's operation
// order (scale first, then d * q, then - min or + m) so results match it bit for bit.
#include "core/gguf/ggml_types.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/weights/dtype_convert.h"

namespace sable::gguf {
namespace {

constexpr int64_t kQK = 256;  // QK_K: elements of a K-quant super-block

float f16(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return weights::f16_to_f32(h);
}
uint8_t u8(const std::byte* p, int64_t i) { return static_cast<uint8_t>(p[i]); }

// Q4_0 / Q4_1: [d (f16), (m (f16)), qs[16]]; element j < 16 is the low nibble of qs[j], j >= 16
// the high nibble of qs[j - 16].
void q4(const std::byte* b, float* y, bool has_min) {
  const float d = f16(b);
  const float m = has_min ? f16(b + 2) : 0.0f;
  const std::byte* qs = b + (has_min ? 4 : 2);
  for (int j = 0; j < 16; ++j) {
    const int lo = u8(qs, j) & 0x0F, hi = u8(qs, j) >> 4;
    if (has_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - 8);
      y[j + 16] = d * static_cast<float>(hi - 8);
    }
  }
}

// Q5_0 / Q5_1: [d, (m), qh (u32: bit j is element j's fifth bit), qs[16]].
void q5(const std::byte* b, float* y, bool has_min) {
  const float d = f16(b);
  const float m = has_min ? f16(b + 2) : 0.0f;
  const std::byte* p = b + (has_min ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const std::byte* qs = p + 4;
  for (int j = 0; j < 16; ++j) {
    const int lo = (u8(qs, j) & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (u8(qs, j) >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    if (has_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - 16);
      y[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

void q8_0(const std::byte* b, float* y) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(u8(b + 2, j))) * d;
}

// Q2_K: [scales[16] (low nibble scale, high nibble min), qs[64], d, dmin]. Element e =
// c*128 + s*32 + i takes bits 2s..2s+1 of qs[c*32 + i]; its group of 16 is e / 16.
void q2_k(const std::byte* b, float* y) {
  const std::byte* scales = b;
  const std::byte* qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  for (int e = 0; e < kQK; ++e) {
    const int c = e / 128, s = (e % 128) / 32, i = e % 32, g = e / 16;
    const float dl = d * static_cast<float>(u8(scales, g) & 0x0F);
    const float ml = dmin * static_cast<float>(u8(scales, g) >> 4);
    const int q = (u8(qs, c * 32 + i) >> (2 * s)) & 3;
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

// Q3_K: [hmask[32], qs[64], scales[12] (16 six-bit scales, offset 32), d]. Low bits as Q2_K; the
// high bit of element e = h*32 + i is bit h of hmask[i], and a clear bit subtracts 4.
void q3_k(const std::byte* b, float* y) {
  const std::byte* hmask = b;
  const std::byte* qs = b + 32;
  const std::byte* sc = b + 96;
  const float d = f16(b + 108);
  float dl[16];
  for (int k = 0; k < 16; ++k) {
    const int low = (k < 8 ? u8(sc, k) : u8(sc, k - 8) >> 4) & 0x0F;
    const int high = (u8(sc, 8 + k % 4) >> (2 * (k / 4))) & 0x03;
    const int scale = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
    dl[k] = d * static_cast<float>(scale);
  }
  for (int e = 0; e < kQK; ++e) {
    const int c = e / 128, s = (e % 128) / 32, i = e % 32;
    const int ql = (u8(qs, c * 32 + i) >> (2 * s)) & 3;
    const int hbit = (u8(hmask, i) >> (e / 32)) & 1;
    y[e] = dl[e / 16] * static_cast<float>(ql - ((hbit ^ 1) << 2));
  }
}

// The 8 six-bit (scale, min) pairs of Q4_K / Q5_K packed in 12 bytes (get_scale_min_k4).
void scale_min_k4(const std::byte* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = u8(s, j) & 63;
    mn = u8(s, j + 4) & 63;
  } else {
    sc = (u8(s, j + 4) & 0x0F) | ((u8(s, j - 4) >> 6) << 4);
    mn = (u8(s, j + 4) >> 4) | ((u8(s, j) >> 6) << 4);
  }
}

// Q4_K: [d, dmin, scales[12], qs[128]]; Q5_K adds qh[32] before qs. Sub-block j (32 elements)
// = pair c = j / 2 of qs bytes, nibble j % 2; Q5_K's fifth bit of element i is bit j of qh[i].
void q45_k(const std::byte* b, float* y, bool five) {
  const float d = f16(b), dmin = f16(b + 2);
  const std::byte* scales = b + 4;
  const std::byte* qh = b + 16;
  const std::byte* qs = b + (five ? 48 : 16);
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    scale_min_k4(scales, j, sc, mn);
    const float dj = d * static_cast<float>(sc);
    const float mj = dmin * static_cast<float>(mn);
    for (int i = 0; i < 32; ++i) {
      int q = (u8(qs, (j / 2) * 32 + i) >> (4 * (j % 2))) & 0x0F;
      if (five) q |= ((u8(qh, i) >> j) & 1) << 4;
      y[j * 32 + i] = dj * static_cast<float>(q) - mj;
    }
  }
}

// Q6_K: [ql[128], qh[64], scales[16] (int8), d]. Element e = c*128 + r: low nibble of
// ql[c*64 + r % 64] shifted by 4 * (r / 64); two high bits from qh[c*32 + r % 32] >> 2 * (r / 32).
void q6_k(const std::byte* b, float* y) {
  const std::byte* ql = b;
  const std::byte* qh = b + 128;
  const std::byte* sc = b + 192;
  const float d = f16(b + 208);
  for (int e = 0; e < kQK; ++e) {
    const int c = e / 128, r = e % 128;
    const int lo = (u8(ql, c * 64 + r % 64) >> (4 * (r / 64))) & 0x0F;
    const int hi = (u8(qh, c * 32 + r % 32) >> (2 * (r / 32))) & 0x03;
    const float dg = d * static_cast<float>(static_cast<int8_t>(u8(sc, e / 16)));
    y[e] = dg * static_cast<float>((lo | (hi << 4)) - 32);
  }
}

}  // namespace

const TypeTraits* type_traits(uint32_t type) {
  static const TypeTraits kF32T{"F32", 1, 4, true}, kF16T{"F16", 1, 2, true},
      kBF16T{"BF16", 1, 2, true}, kQ4_0T{"Q4_0", 32, 18, true}, kQ4_1T{"Q4_1", 32, 20, true},
      kQ5_0T{"Q5_0", 32, 22, true}, kQ5_1T{"Q5_1", 32, 24, true}, kQ8_0T{"Q8_0", 32, 34, true},
      kQ8_1T{"Q8_1", 32, 36, false}, kQ2_KT{"Q2_K", kQK, 84, true}, kQ3_KT{"Q3_K", kQK, 110, true},
      kQ4_KT{"Q4_K", kQK, 144, true}, kQ5_KT{"Q5_K", kQK, 176, true},
      kQ6_KT{"Q6_K", kQK, 210, true}, kQ8_KT{"Q8_K", kQK, 292, false}, kI8T{"I8", 1, 1, false},
      kI16T{"I16", 1, 2, false}, kI32T{"I32", 1, 4, false}, kI64T{"I64", 1, 8, false},
      kF64T{"F64", 1, 8, false};
  switch (type) {
    case kF32: return &kF32T;
    case kF16: return &kF16T;
    case kBF16: return &kBF16T;
    case kQ4_0: return &kQ4_0T;
    case kQ4_1: return &kQ4_1T;
    case kQ5_0: return &kQ5_0T;
    case kQ5_1: return &kQ5_1T;
    case kQ8_0: return &kQ8_0T;
    case kQ8_1: return &kQ8_1T;
    case kQ2_K: return &kQ2_KT;
    case kQ3_K: return &kQ3_KT;
    case kQ4_K: return &kQ4_KT;
    case kQ5_K: return &kQ5_KT;
    case kQ6_K: return &kQ6_KT;
    case kQ8_K: return &kQ8_KT;
    case kI8: return &kI8T;
    case kI16: return &kI16T;
    case kI32: return &kI32T;
    case kI64: return &kI64T;
    case kF64: return &kF64T;
    default: return nullptr;  // IQ*, TQ*, MXFP4 and removed ids: not supported here
  }
}

void dequantize_row(uint32_t type, const std::byte* src, float* dst, int64_t n) {
  const TypeTraits* t = type_traits(type);
  if (t == nullptr || !t->dequantizable || n % t->block_size != 0) {
    throw std::invalid_argument("dequantize_row: unsupported type " + std::to_string(type) +
                                " or length " + std::to_string(n));
  }
  const int64_t blocks = n / t->block_size;
  switch (type) {
    case kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case kF16: weights::f16_to_f32(src, dst, static_cast<size_t>(n)); return;
    case kBF16: weights::bf16_to_f32(src, dst, static_cast<size_t>(n)); return;
    default: break;
  }
  for (int64_t i = 0; i < blocks; ++i) {
    const std::byte* b = src + static_cast<size_t>(i) * t->type_size;
    float* y = dst + i * t->block_size;
    switch (type) {
      case kQ4_0: q4(b, y, false); break;
      case kQ4_1: q4(b, y, true); break;
      case kQ5_0: q5(b, y, false); break;
      case kQ5_1: q5(b, y, true); break;
      case kQ8_0: q8_0(b, y); break;
      case kQ2_K: q2_k(b, y); break;
      case kQ3_K: q3_k(b, y); break;
      case kQ4_K: q45_k(b, y, false); break;
      case kQ5_K: q45_k(b, y, true); break;
      case kQ6_K: q6_k(b, y); break;
      default: break;
    }
  }
}

const char* file_type_name(int64_t file_type) {
  switch (file_type) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "";
  }
}

}  // namespace sable::gguf
