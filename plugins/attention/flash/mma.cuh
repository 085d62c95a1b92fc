// Warp-level building blocks of the tensor-core attention kernels (prefill_attention.cu,
// decode_attention.cu, cascade_attention.cu) on top of the SDK's primitives (sable/cuda/mma.cuh:
// cp.async, ldmatrix, mma.sync m16n8k16, the online softmax): one warp's attention step over a KV
// tile in swizzled shared memory, S = Q·Kᵀ and O += P·V. sm_80+.
// The fragment index math is in prefill_schedule.h (emulated on the CPU by the unit tests).
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "prefill_schedule.h"
#include "sable/cuda/mma.cuh"
#include "sable/cuda/wgmma.cuh"

namespace sable::attention::flash {

using bf16 = __nv_bfloat16;

// The warp primitives and the online softmax step come from the SDK (sable/cuda/mma.cuh).
using sable::cuda::cp_async16;
using sable::cuda::cp_async_commit;
using sable::cuda::cp_async_wait;
using sable::cuda::ldmatrix_x4;
using sable::cuda::ldmatrix_x4_trans;
using sable::cuda::mma_bf16;
using sable::cuda::online_softmax;
using sable::cuda::pack_bf16;
using sable::cuda::smem_addr;

// The pool slots (page * page_size + offset) of the rows one thread copies of a [kRows][kD] tile
// of positions [k0, k0 + kRows) in kThreads threads' 16-byte chunks (chunk i = threadIdx.x +
// it * kThreads: row i / (kD / 8)); -1 for positions at or past `hi`. Every page index is loaded
// before any copy is issued: the copies are asm volatile, so written row by row the compiler
// issued each row's page-index load only after the previous row's copies, one memory round trip
// per row (8 a tile at D 128, page size 1: the SASS showed LDG, LDGSTS, LDG, LDGSTS, ...).
template <int kD, int kRows, int kThreads>
inline constexpr int kTileChunksPerThread = kRows*(kD / 8) / kThreads;

template <int kD, int kRows, int kThreads>
__device__ __forceinline__ void tile_slots(
    int32_t (&slot)[kTileChunksPerThread<kD, kRows, kThreads>], const int32_t* pages, int page_size,
    int k0, int hi) {
  constexpr int kChunks = kD / 8;
  constexpr int kPer = kTileChunksPerThread<kD, kRows, kThreads>;
  static_assert(kRows * kChunks % kThreads == 0, "a tile's chunks divide among the threads");
  const int pos0 = k0 + static_cast<int>(threadIdx.x) / kChunks;
  static_assert(kThreads % kChunks == 0, "a thread copies the same chunk of every row it copies");
  constexpr int kStep = kThreads / kChunks;  // rows between a thread's chunks
  if (page_size == 1) {                      // SGLang's default: the page is the slot
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int pos = pos0 + it * kStep;
      slot[it] = pos < hi ? pages[pos] : -1;
    }
  } else {  // every page index in flight first, then the slots
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int pos = pos0 + it * kStep;
      slot[it] = pos < hi ? pages[pos / page_size] : -1;
    }
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int pos = pos0 + it * kStep;
      if (slot[it] >= 0) slot[it] = slot[it] * page_size + pos % page_size;
    }
  }
}

// The K and V rows of the slots above into one buffer of swizzled [kRows][kD] tiles as cp.async
// copies (slot -1: zero-filled): smem_off's layout, or with kSw128 wgmma's 128-byte swizzle
// (sable/cuda/wgmma.cuh). The caller commits the group.
template <int kD, int kRows, int kThreads, bool kSw128 = false>
__device__ __forceinline__ void copy_tile_slots(
    bf16* dk, bf16* dv, const bf16* k_cache, const bf16* v_cache,
    const int32_t (&slot)[kTileChunksPerThread<kD, kRows, kThreads>], int kv_heads, int kvh) {
  constexpr int kChunks = kD / 8;
#pragma unroll
  for (int it = 0; it < kTileChunksPerThread<kD, kRows, kThreads>; ++it) {
    const int i = static_cast<int>(threadIdx.x) + it * kThreads;
    const int r = i / kChunks, c = i % kChunks;
    const bool valid = slot[it] >= 0;
    const int64_t off = valid ? (int64_t(slot[it]) * kv_heads + kvh) * kD : 0;
    const int dst = kSw128 ? sable::cuda::sw128_off(r, c * 8, kRows) : smem_off(r, c * 8, kD);
    cp_async16(dk + dst, k_cache + off + c * 8, valid);
    cp_async16(dv + dst, v_cache + off + c * 8, valid);
  }
}

// Positions [k0, k0 + kRows) of KV head kvh from the paged pool (`pages`: the sequence's page
// list) into one buffer of swizzled [kRows][kD] K and V tiles, as kThreads threads' 16-byte
// cp.async copies; positions at or past `hi` are zero-filled. The caller commits the group.
template <int kD, int kRows, int kThreads>
__device__ __forceinline__ void load_paged_kv(bf16* dk, bf16* dv, const bf16* k_cache,
                                              const bf16* v_cache, const int32_t* pages,
                                              int page_size, int kv_heads, int kvh, int k0,
                                              int hi) {
  int32_t slot[kTileChunksPerThread<kD, kRows, kThreads>];
  tile_slots<kD, kRows, kThreads>(slot, pages, page_size, k0, hi);
  copy_tile_slots<kD, kRows, kThreads>(dk, dv, k_cache, v_cache, slot, kv_heads, kvh);
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
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[kD / 16][4], const bf16* sQ, int row0,
                                             int ar, int ac) {
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks)
    ldmatrix_x4(qf[ks], sQ + smem_off(row0 + ar, ks * 16 + ac, kD));
}

// S [16 x 8 kSN] = Q·Kᵀ for one warp: qf holds the warp's Q fragments (kD / 16 k-steps); the
// K rows are [krow0, krow0 + 8 kSN) of a swizzled [rows][kD] shared-memory tile. (br, bc) is
// the lane's b_frag_src.
template <int kSN, int kD>
__device__ __forceinline__ void qk_tile(float (&s)[kSN][4], const uint32_t (&qf)[kD / 16][4],
                                        const bf16* tk, int krow0, int br, int bc) {
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

// O [16 x kD] += P·V with P the exponentiated S fragments (register-resident, kSN / 2 k16 steps)
// and V rows [vrow0, vrow0 + 8 kSN) of a swizzled [rows][kD] tile. (vr, vc) is the lane's
// v_frag_src.
template <int kSN, int kD>
__device__ __forceinline__ void pv_tile(float (&o)[kD / 8][4], const float (&s)[kSN][4],
                                        const bf16* tv, int vrow0, int vr, int vc) {
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

// One warp's step over a slice of a K/V tile without a causal mask: S = Q·Kᵀ over positions
// [pos0, pos0 + 8 kSN) of the tile that starts at position k0 (those at or past hi masked), the
// online softmax, O += P·V. The decode and cascade kernels' loop body.
template <int kSN, int kD>
__device__ __forceinline__ void attend_slice(const uint32_t (&qf)[kD / 16][4], const bf16* tk,
                                             const bf16* tv, int pos0, int k0, int hi,
                                             float scale_log2, int lane, int br, int bc, int vr,
                                             int vc, float (&m)[2], float (&l)[2],
                                             float (&o)[kD / 8][4]) {
  float s[kSN][4];
  qk_tile<kSN, kD>(s, qf, tk, pos0, br, bc);
#pragma unroll
  for (int n = 0; n < kSN; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      int r, c;
      acc_pos(lane, i, &r, &c);
      s[n][i] = k0 + pos0 + n * 8 + c < hi ? s[n][i] * scale_log2 : -INFINITY;
    }
  online_softmax<kSN, kD / 8>(s, m, l, o);  // a slice wholly past hi keeps m and l as they were
  pv_tile<kSN, kD>(o, s, tv, pos0, vr, vc);
}

// A prefill warp's scores of the KV tile at k0 scaled into the log2 domain, with the positions its
// rows (row_base + lane / 4, + 8 of `tile`) do not see set to -inf (causal, sliding window; only
// tiles that need_mask pay for the test). Any 8 kSN <= kBN positions: needs_mask judges the whole
// kBN tile from k0, which covers a narrower one.
template <int kSN>
__device__ __forceinline__ void scale_mask_tile(float (&s)[kSN][4], const PrefillTile& tile, int k0,
                                                int window, float scale_log2, int lane,
                                                int row_base) {
  const bool mask = needs_mask(tile, k0, window);
#pragma unroll
  for (int n = 0; n < kSN; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      int r, c;
      acc_pos(lane, i, &r, &c);
      s[n][i] *= scale_log2;
      if (mask && !visible(tile, row_base + r, k0 + n * 8 + c, window)) s[n][i] = -INFINITY;
    }
}

// The end of a query tile for one warp: its O rows (row_base + lane / 4, + 8) divided by their
// softmax sums (l reduced over the quad) as bf16 into out (row r at out + r * out_stride); rows at
// or past `rows` are padding and stay unwritten.
template <int kON>
__device__ __forceinline__ void store_o_rows(const float (&o)[kON][4], const float (&l)[2],
                                             int lane, int row_base, int rows, bf16* out,
                                             int64_t out_stride) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    float sum = l[hf];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    int r, c;
    acc_pos(lane, 2 * hf, &r, &c);
    const int row = row_base + r;
    if (row >= rows) continue;
    bf16* dst = out + row * out_stride;
#pragma unroll
    for (int n = 0; n < kON; ++n)
      *reinterpret_cast<__nv_bfloat162*>(dst + n * 8 + c) =
          __floats2bfloat162_rn(o[n][2 * hf] * inv, o[n][2 * hf + 1] * inv);
  }
}

}  // namespace sable::attention::flash
