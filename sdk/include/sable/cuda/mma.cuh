// Warp-level tensor-core building blocks for CUDA kernels in Sable and in plugins (sm_80+):
// 16-byte cp.async into shared memory, ldmatrix fragments, mma.sync m16n8k16 bf16 -> fp32, and the
// online softmax step of FlashAttention-style kernels.
// Fragment layouts are the PTX ISA's ("Matrix Fragments for mma.m16n8k16"): for lane l, g = l / 4
// and t = l % 4; A rows g and g + 8, columns 2t, 2t + 1 (+ 8); B column g, rows 2t, 2t + 1 (+ 8);
// C rows g and g + 8, columns 2t, 2t + 1. Header-only, device code only; no state.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace sable::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async global -> shared copy; writes zeros when !valid (src must still be mapped).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives
// matrix i's fragment (row l / 4, columns 2 (l % 4), + 1). `_trans` transposes each matrix.
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c[16x8] += a[16x16] · b[16x8], bf16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one bf16x2 register (lo in the low half), round to nearest.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One online-softmax step of a warp's 16 attention rows over scaled, masked scores s in the log2
// domain (C fragments: elements 0, 1 -> row lane / 4; 2, 3 -> row lane / 4 + 8): s becomes
// exp2(s - m), m the running row max, l the running lane-partial sum (reduce it over the quad at
// the end), and corr[h] the factor the output rows of half h must be rescaled by. Fully masked
// rows stay at m = -inf, l = 0.
template <int kSN>
__device__ __forceinline__ void softmax_rows(float (&s)[kSN][4], float (&m)[2], float (&l)[2],
                                             float (&corr)[2]) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSN; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * hf], s[n][2 * hf + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[hf], mx);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    corr[hf] = exp2f(m[hf] - m_use);
    float sum = 0.0f;
#pragma unroll
    for (int n = 0; n < kSN; ++n) {
      s[n][2 * hf] = exp2f(s[n][2 * hf] - m_use);
      s[n][2 * hf + 1] = exp2f(s[n][2 * hf + 1] - m_use);
      sum += s[n][2 * hf] + s[n][2 * hf + 1];
    }
    l[hf] = l[hf] * corr[hf] + sum;
    m[hf] = m_new;
  }
}

// The output accumulators' rows rescaled by softmax_rows' factors.
template <int kON>
__device__ __forceinline__ void rescale_rows(float (&o)[kON][4], const float (&corr)[2]) {
#pragma unroll
  for (int n = 0; n < kON; ++n) {
    o[n][0] *= corr[0];
    o[n][1] *= corr[0];
    o[n][2] *= corr[1];
    o[n][3] *= corr[1];
  }
}

// softmax_rows, then the output accumulators o rescaled.
template <int kSN, int kON>
__device__ __forceinline__ void online_softmax(float (&s)[kSN][4], float (&m)[2], float (&l)[2],
                                               float (&o)[kON][4]) {
  float corr[2];
  softmax_rows<kSN>(s, m, l, corr);
  rescale_rows<kON>(o, corr);
}

}  // namespace sable::cuda
