// SiLU over a row (times a second row for the gated MLP's act·mul), on float vectors of any width
// (GCC/Clang vector extensions): the kernel tables instantiate it at their register width
// (QKernels::silu_row: 4 lanes in the scalar table's SSE / NEON, 8 for AVX2, 16 for AVX-512).
// At 4 lanes it was 7.8 % of a Qwen2.5-0.5B Q8_0 prefill of 256 tokens at one thread on an AMX
// host (perf, issue 21), second only to the AMX GEMM. Everything is always_inline, so each table's
// translation unit keeps its own copy compiled with its own instruction set.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/util/lanes4.h"

namespace sable::ops::cpu {

// x * sigmoid(x) from e = exp(-|x|) (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below.
template <class F, class I>
inline __attribute__((always_inline)) F silu_lanes(F x) {
  const F ax = (F)((I)x & 0x7FFFFFFF);
  const F e = lanes4::exp_nonpositive_lanes<F, I>(-ax);
  const F num = x >= 0.0f ? F{} + 1.0f : e;
  return x * num / (1.0f + e);
}

// y[i] = silu(x[i]) (times u[i] when u is given), the tail through the same lanes.
template <class F, class I>
inline __attribute__((always_inline)) void silu_row_lanes(const float* x, const float* u, float* y,
                                                          int64_t n) {
  constexpr int64_t kLanes = sizeof(F) / sizeof(float);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    F v, w;
    std::memcpy(&v, x + i, sizeof v);
    v = silu_lanes<F, I>(v);
    if (u != nullptr) {
      std::memcpy(&w, u + i, sizeof w);
      v *= w;
    }
    std::memcpy(y + i, &v, sizeof v);
  }
  if (i < n) {
    F v{}, w{};
    const size_t tail = static_cast<size_t>(n - i) * sizeof(float);
    std::memcpy(&v, x + i, tail);
    if (u != nullptr) std::memcpy(&w, u + i, tail);
    v = silu_lanes<F, I>(v);
    if (u != nullptr) v *= w;
    std::memcpy(y + i, &v, tail);
  }
}

}  // namespace sable::ops::cpu
