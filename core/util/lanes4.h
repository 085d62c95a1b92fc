// Four float / int32 lanes (GCC/Clang vector extensions: one SSE register on the baseline x86-64
// build, one NEON register on arm64) and an exp over them, so that loops over a vocabulary (the
// sampler) or an activation row (the CPU ops' SiLU) run lanes-wide without intrinsics or a libm
// call per element. Header-only; pure functions.
#pragma once

#include <cstdint>
#include <cstring>

namespace sable::lanes4 {

typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// exp(x) for x <= 0, lane-wise, within 2 ulp of std::exp down to -87 (below, -inf included:
// ~1.6e-38): Cody-Waite reduction to [-ln2/2, ln2/2], Cephes' degree-6 polynomial, the exponent
// built in the bits. F / I: float / int32 vectors of one width (any: the CPU kernel tables
// instantiate it at their register width, core/ops/cpu/silu_lanes.h).
template <class F, class I>
inline __attribute__((always_inline)) F exp_nonpositive_lanes(F x) {
  const F lo = F{} - 87.0f;
  x = x < lo ? lo : x;
  const F n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const F r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F e = p * r * r + r + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  return e * (F)bits;  // 2^n: reinterprets the lanes' bits
}
inline F4 exp_nonpositive(F4 x) { return exp_nonpositive_lanes<F4, I4>(x); }
// One value through the same polynomial (a row's tail after its full lanes): the same bits as a
// lane.
inline float exp_nonpositive(float x) {
  F4 v{};
  v[0] = x;
  return exp_nonpositive(v)[0];
}

}  // namespace sable::lanes4
