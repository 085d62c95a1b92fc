// Warp-level building blocks of the tensor-core attention kernels (prefill_attention.cu,
// decode_attention.cu): 16-byte cp.async into shared memory, ldmatrix fragments and
// mma.sync m16n8k16 bf16 -> fp32 (PTX ISA "Matrix Fragments for mma.m16n8k16"), and one warp's
// attention step over a KV tile in shared memory: S = Q·Kᵀ, the online softmax, O += P·V. sm_80+.
// The fragment index math is in prefill_schedule.h (emulated on the CPU by the unit tests).
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "prefill_schedule.h"

namespace sable::attention::flash {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; zero-fills the destination when !valid (src must still be a valid address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

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

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Step j of a double-buffered tile loop over n_tiles tiles: starts the copy of tile j + 1
// (load_next(buffer), one cp.async group) and returns once tile j has landed and every thread of
// the CTA sees it.
template <class LoadNext>
__device__ __forceinline__ void next_tile(int j, int n_tiles, LoadNext&& load_next) {
  if (j + 1 < n_tiles) {
    load_next((j + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();
}

// One warp's Q fragments: rows [row0, row0 + 16) of a swizzled [rows][kD] tile. (ar, ac) is the
// lane's a_frag_src.
template <int kD>
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[kD / 16][4], const bf16* sQ, int row0, int ar,
                                             int ac) {
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) ldmatrix_x4(qf[ks], sQ + smem_off(row0 + ar, ks * 16 + ac, kD));
}

// S [16 x 8 kSN] = Q·Kᵀ for one warp: qf holds the warp's Q fragments (kD / 16 k-steps); the
// K rows are [krow0, krow0 + 8 kSN) of a swizzled [rows][kD] shared-memory tile. (br, bc) is
// the lane's b_frag_src.
template <int kSN, int kD>
__device__ __forceinline__ void qk_tile(float (&s)[kSN][4], const uint32_t (&qf)[kD / 16][4], const bf16* tk,
                                        int krow0, int br, int bc) {
#pragma unroll
  for (int n = 0; n < kSN; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) {
#pragma unroll
    for (int n2 = 0; n2 < kSN / 2; ++n2) {
      uint32_t kf[4];
      ldmatrix_x4(kf, tk + smem_off(krow0 + n2 * 16 + br, ks * 16 + bc, kD));
      mma_bf16(s[2 * n2], qf[ks], kf[0], kf[1]);
      mma_bf16(s[2 * n2 + 1], qf[ks], kf[2], kf[3]);
    }
  }
}

// One online-softmax step over scaled, masked scores s (log2 domain), per row half (elements 0,1
// -> row lane/4; 2,3 -> row lane/4 + 8): s becomes exp2(s - m), m the running max, l the running
// lane-partial sum (reduce it over the quad at the end), o rescaled. Fully masked rows stay at
// m = -inf, l = 0.
template <int kSN, int kON>
__device__ __forceinline__ void online_softmax(float (&s)[kSN][4], float (&m)[2], float (&l)[2],
                                               float (&o)[kON][4]) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSN; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * hf], s[n][2 * hf + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[hf], mx);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float corr = exp2f(m[hf] - m_use);
    float sum = 0.0f;
#pragma unroll
    for (int n = 0; n < kSN; ++n) {
      s[n][2 * hf] = exp2f(s[n][2 * hf] - m_use);
      s[n][2 * hf + 1] = exp2f(s[n][2 * hf + 1] - m_use);
      sum += s[n][2 * hf] + s[n][2 * hf + 1];
    }
    l[hf] = l[hf] * corr + sum;
    m[hf] = m_new;
#pragma unroll
    for (int n = 0; n < kON; ++n) {
      o[n][2 * hf] *= corr;
      o[n][2 * hf + 1] *= corr;
    }
  }
}

// O [16 x kD] += P·V with P the exponentiated S fragments (register-resident, kSN / 2 k16 steps)
// and V rows [vrow0, vrow0 + 8 kSN) of a swizzled [rows][kD] tile. (vr, vc) is the lane's
// v_frag_src.
template <int kSN, int kD>
__device__ __forceinline__ void pv_tile(float (&o)[kD / 8][4], const float (&s)[kSN][4], const bf16* tv,
                                        int vrow0, int vr, int vc) {
#pragma unroll
  for (int kk = 0; kk < kSN / 2; ++kk) {
    uint32_t a[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      int nb, e;
      p_frag_from_acc(kk, r, &nb, &e);
      a[r] = pack_bf16(s[nb][e], s[nb][e + 1]);
    }
#pragma unroll
    for (int n2 = 0; n2 < kD / 16; ++n2) {
      uint32_t vf[4];
      ldmatrix_x4_trans(vf, tv + smem_off(vrow0 + kk * 16 + vr, n2 * 16 + vc, kD));
      mma_bf16(o[2 * n2], a, vf[0], vf[1]);
      mma_bf16(o[2 * n2 + 1], a, vf[2], vf[3]);
    }
  }
}

}  // namespace sable::attention::flash
