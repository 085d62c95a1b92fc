// The attention kernel (attend_heads.inc) with 512-bit registers and masked tails (built with
// -mavx512f -mfma; cpu_attention.cpp calls it only where the CPU runs AVX-512F).
#include <immintrin.h>
#include <math.h>

#include "attend_heads.h"

namespace sable_cpu_attention {
namespace {
struct Vec {
  using R = __m512;
  using M = __mmask16;
  static constexpr int kW = 16, kBlock = 4;
  static M mask(int n) { return static_cast<M>((1u << n) - 1u); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, R x, M m) { _mm512_mask_storeu_ps(p, m, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R zero() { return _mm512_setzero_ps(); }
  static float sum(R x) { return _mm512_reduce_add_ps(x); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  static R round(R x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static R pow2(R n) {  // n integral, -127 < n < 128
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static R keep_at_least(R x, float lim, R y) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(lim), _CMP_NLT_UQ), y);
  }
};
}  // namespace
#define ATTEND_HEADS_FN attend_heads_avx512
#include "attend_heads.inc"
}  // namespace sable_cpu_attention
