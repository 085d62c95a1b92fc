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
  // e^x for x <= 0 (a score minus its row's max): Cephes' expf - x = n ln2 + r, a degree-5
  // polynomial in r, times 2^n - within 2 ulp of expf; below -87.3 it flushes to 0 (expf's
  // denormals, weights under 1e-38 of the largest).
  static R exp(R x) {
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    const R n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    R r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    R y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(_mm512_mul_ps(y, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(static_cast<__mmask16>(~tiny), y, _mm512_castsi512_ps(e));
  }
};
}  // namespace
#define ATTEND_HEADS_FN attend_heads_avx512
#include "attend_heads.inc"
}  // namespace sable_cpu_attention
