// The packed weight formats the CPU GEMM reads without unpacking them to fp32 first: ggml's block
// layouts (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, byte for byte as GGUF stores them) and the int8
// blocks activations are quantized to before an integer dot product. Also bf16/f16 weights, which
// are "packed" in the sense that the kernels widen them on the fly.
//
// Notation: a weight row has K elements, K a multiple of the format's block (32, or 256 for the
// K-quants); an activation row of K floats becomes K/32 BlockQ8A blocks.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/weights/dtype_convert.h"
#include "sable/tensor.h"

namespace sable::ops::cpu {

struct BlockQ8_0 {  // x = d * q
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ4_0 {  // x = d * (q - 8); qs[j] holds element j (low nibble) and j + 16 (high)
  uint16_t d;
  uint8_t qs[16];
};
struct BlockQ4_1 {  // x = d * q + m
  uint16_t d, m;
  uint8_t qs[16];
};
// The K-quants: 256 elements in 8 sub-blocks of 32 (Q4_K, Q5_K: 6-bit scale and min per
// sub-block, x = d * sc * q - dmin * m) or 16 sub-blocks of 16 (Q6_K: int8 scale, x = d * sc * (q - 32)).
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// 32 activations as int8: x ≈ d * q; s = d * sum(q) (what a format's offset term multiplies).
struct BlockQ8A {
  float d, s;
  int8_t qs[32];
};
constexpr int64_t kQ8ABlock = 32;
// 32 activations as int16, for the LM head (qgemm.cpp head_gemm): x ≈ d * q with d = amax / 32767,
// rounding errors 258 times smaller than BlockQ8A's; s = d * sum(q).
struct BlockQ16A {
  float d, s;
  int16_t qs[32];
};

// Q4_K/Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Half the largest sum of |w| over a Q8_0 / Q4_0 / Q4_1 block whose scale is d (and min m for
// Q4_1): |q| <= 128, |q - 8| <= 8, |d q + m| <= 15 |d| + |m|. Times an activation block's step d_x
// it bounds the block's share of the rounding error of an integer dot (qkernels.h HeadRows).
inline float block_error_scale(int32_t dtype, float d, float m) {
  if (dtype == SABLE_DTYPE_Q8_0) return 2048.0f * std::fabs(d);
  if (dtype == SABLE_DTYPE_Q4_0) return 128.0f * std::fabs(d);
  return 240.0f * std::fabs(d) + 16.0f * std::fabs(m);
}

// Hint bit in SableTensor::reserved of a packed weight: its GEMM keeps the activations in fp32
// (the weight rows are unpacked to fp32 instead). The host sets it on the LM head (and a tied
// embedding), where the next token is chosen: int8 rounding of the final hidden state flips
// near-ties there (SmolLM2's first answer token to "What is the capital of France?", a 0.08-nat
// margin), while elsewhere it costs nothing measurable.
constexpr int32_t kPreciseActivations = 1;

// True for the dtypes the packed GEMM takes as weights (block-quantized, BF16, F16).
inline bool is_packed_weight(int32_t dtype) {
  return sable_dtype_block_elems(dtype) > 0 || dtype == SABLE_DTYPE_BF16 ||
         dtype == SABLE_DTYPE_F16;
}
// Bytes of one row of k elements of a packed or plain dtype.
inline int64_t row_bytes(int32_t dtype, int64_t k) {
  const int64_t be = sable_dtype_block_elems(dtype);
  if (be > 0) return k / be * static_cast<int64_t>(sable_dtype_block_bytes(dtype));
  return k * static_cast<int64_t>(sable_dtype_size(dtype));
}
// Elements a row length must be a multiple of (1 for plain dtypes).
inline int64_t row_granule(int32_t dtype) {
  const int64_t be = sable_dtype_block_elems(dtype);
  return be > 0 ? be : 1;
}

}  // namespace sable::ops::cpu
