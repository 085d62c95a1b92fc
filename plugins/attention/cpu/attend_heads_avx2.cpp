// The attention kernel (attend_heads.inc) with 256-bit registers, tails through vmaskmovps (built
// with -mavx2 -mfma; cpu_attention.cpp calls it only where the CPU runs AVX2 and FMA).
#include <immintrin.h>
#include <math.h>

#include "attend_heads.h"

namespace sable_cpu_attention {
namespace {
struct Vec {
  using R = __m256;
  using M = __m256i;
  static constexpr int kW = 8, kBlock = 2;
  static M mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, R x, M m) { _mm256_maskstore_ps(p, m, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R zero() { return _mm256_setzero_ps(); }
  static float sum(R x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  static R round(R x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R pow2(R n) {  // n integral, -127 < n < 128
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static R keep_at_least(R x, float lim, R y) {
    return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(lim), _CMP_GE_OQ), y);
  }
};
}  // namespace
#define ATTEND_HEADS_FN attend_heads_avx2
#include "attend_heads.inc"
}  // namespace sable_cpu_attention
