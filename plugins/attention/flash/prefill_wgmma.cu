// Hopper prefill attention: the work split of prefill_attention.cu (query tiles of kBM = 64 new
// tokens, KV tiles of kBN = 64 positions gathered from the pages with 16-byte cp.async) with both
// products on warpgroup tensor cores (wgmma, sm_90a).
//
// A CTA is kHeads warpgroups, one q head each, of one GQA group: they share every K/V tile (one
// gather and one shared-memory copy for kHeads heads). A group kHeads does not divide (Qwen2.5's 7)
// ends on a CTA with spare warpgroups, which wgmma_heads_for_group weighs against smaller CTAs
// (SABLE_PREFILL_WGMMA_PARTIAL=0: only sizes that divide the group). In a warpgroup, warp w owns
// query rows 16w..16w+15, as in the mma.sync kernel, so the masking, the online softmax and the
// output write are the same code. Per KV tile and warpgroup:
//   S [64 x 64] = Q·Kᵀ   wgmma m64n64k16 x D/16, Q and K from shared memory (K-major)
//   O [64 x D] += P·V    wgmma m64nDk16 x 4, P from registers (the softmax's accumulators packed
//                        to bf16), V from shared memory (MN-major, imm-trans-b)
// Q, K and V sit in shared memory in wgmma's 128-byte swizzled layout (sable/cuda/wgmma.cuh), K/V
// in kStages buffers (D 128, 2 heads, 2 stages: 96 KB, two CTAs a SM, so one CTA's softmax runs
// while the other's wgmma do). The page indices of the next tile are loaded a tile ahead of its
// copies (as in prefill_attention.cu), so issuing copies never waits for a memory round trip.
// Built for sm_90a; the sm_90 / PTX pass compiles an empty body, and prefill_wgmma_usable() says
// whether the device runs the sm_90a code.
#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "mma.cuh"
#include "paged_attention.cuh"
#include "prefill_schedule.h"
#include "sable/cuda/launch.cuh"
#include "sable/cuda/wgmma.cuh"

namespace sable::attention::flash {
namespace {

using sable::cuda::sw128_desc;
using sable::cuda::sw128_off;

constexpr int kWgThreads = 128;   // one warpgroup
constexpr int kSmemAlign = 1024;  // a swizzled block's alignment

template <int kD, int kStages, int kHeads>
constexpr int wgmma_smem_bytes() {
  return (kHeads * kBM + 2 * kStages * kBN) * kD * static_cast<int>(sizeof(bf16)) + kSmemAlign;
}

template <int kD, int kStages, int kHeads, bool kOverlap>
__global__ void __launch_bounds__(kHeads* kWgThreads, 1) prefill_wgmma_kernel(AttentionParams p) {
#if SABLE_HAVE_WGMMA
  using namespace sable::cuda;
  constexpr int kThreads = kHeads * kWgThreads;
  constexpr int kChunks = kD / 8;
  constexpr int kON = kD / 8;   // n8 blocks of O
  constexpr int kTile = kBN * kD;
  constexpr int kPer = kTileChunksPerThread<kD, kBN, kThreads>;
  extern __shared__ unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>((reinterpret_cast<uintptr_t>(smem_raw) + kSmemAlign - 1) &
                                     ~uintptr_t(kSmemAlign - 1));
  bf16* sK = sQ + kHeads * kBM * kD;
  bf16* sV = sK + kStages * kTile;
  wait_for_predecessor();
  allow_dependents();

  // The CTA's heads: kHeads consecutive q heads of one GQA group, sharing its KV head; a group
  // that kHeads does not divide ends on a CTA with fewer `live` heads, whose other warpgroups
  // repeat its last head and write nothing.
  const int per_group = (p.group + kHeads - 1) / kHeads;
  const int kvh = static_cast<int>(blockIdx.x) / per_group;
  const int h0 = kvh * p.group + static_cast<int>(blockIdx.x) % per_group * kHeads;
  const int live = min(kHeads, (kvh + 1) * p.group - h0);
  if (static_cast<int>(blockIdx.y) >= *p.num_tiles) return;
  const PrefillTile tile = load_tile(p.tiles, blockIdx.y);
  const int tid = threadIdx.x, wg = tid / kWgThreads, warp = (tid >> 5) & 3, lane = tid & 31;
  const int64_t out_stride = int64_t(p.q_heads) * kD;
  bf16* out = p.out + (int64_t(tile.q0) * p.q_heads + h0 + wg) * kD;

  if (tile.pos0 < 0) {  // padding sequence: zeros
    bf16* zero = p.out + (int64_t(tile.q0) * p.q_heads + h0) * kD;
    for (int i = tid; i < tile.rows * live * kChunks; i += kThreads) {
      const int r = i / (live * kChunks), c = i % (live * kChunks);
      *reinterpret_cast<uint4*>(zero + r * out_stride + c * 8) = uint4{0, 0, 0, 0};
    }
    return;
  }
  int lo = 0, hi = 0;
  kv_range(tile, p.window, &lo, &hi);
  const int n_tiles = kv_tiles(lo, hi);
  const int32_t* pages = p.meta.kv_indices + p.meta.kv_indptr[tile.seq];

  // Q of each head (rows past tile.rows repeat the last row: finite values, never written out)
  // joins the first K/V tile's copy group; the prologue fills kStages - 1 stages.
  for (int i = tid; i < kHeads * kBM * kChunks; i += kThreads) {
    const int hq = i / (kBM * kChunks), r = i / kChunks % kBM, c = i % kChunks;
    const int rr = r < tile.rows ? r : tile.rows - 1;
    cp_async16(
        sQ + hq * kBM * kD + sw128_off(r, c * 8, kBM),
        p.q + int64_t(tile.q0 + rr) * p.q_stride + int64_t(h0 + min(hq, live - 1)) * kD + c * 8,
        true);
  }
  int32_t slot[kPer];
  auto issue = [&](int j) {  // copies of tile j with the slots in hand, then the next tile's slots
    if (j < n_tiles) {
      const int st = j % kStages;
      copy_tile_slots<kD, kBN, kThreads, true>(sK + st * kTile, sV + st * kTile, p.k_cache,
                                               p.v_cache, slot, p.kv_heads, kvh);
      if (j + 1 < n_tiles)
        tile_slots<kD, kBN, kThreads>(slot, pages, p.page_size, lo + (j + 1) * kBN, hi);
    }
    cp_async_commit();
  };
  tile_slots<kD, kBN, kThreads>(slot, pages, p.page_size, lo, hi);
  constexpr int kLead = wgmma_lead(kStages, kOverlap);
#pragma unroll
  for (int j = 0; j < kLead; ++j) issue(j);

  float o[kON][4];
#pragma unroll
  for (int n = 0; n < kON; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows lane/4 and lane/4 + 8
  const int row_base = warp * 16;
  const uint32_t q_addr = smem_addr(sQ + wg * kBM * kD);

  // Positions a product covers: the whole tile, except at 4 heads and D 128 without the overlap,
  // where halves of 32 keep S at 16 registers (the 128-register cap of 512 threads otherwise
  // spills and serializes the wgmma, ptxas C7512).
  constexpr int kSub = !kOverlap && kHeads == 4 && kD == 128 ? 32 : kBN;
  constexpr int kSubN = kSub / 8;  // n8 blocks of S
  float s[kSubN][4];
  uint32_t a[kSubN / 2][4];
  // S = Q·Kᵀ over the kSub positions from row `row0` of the K tile at k_addr, issued (the caller
  // commits). The tile's column blocks stay kBN rows apart.
  auto issue_s = [&](uint32_t k_addr, int row0) {
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks)  // k16 step ks: column block ks / 4, chunk pair ks % 4
      wgmma_ss<kSub>(s, sw128_desc(q_addr + (ks >> 2) * kBM * 128 + (ks & 3) * 32, 16, 1024),
                     sw128_desc(k_addr + (ks >> 2) * kBN * 128 + (ks & 3) * 32 + row0 * 128, 16,
                                1024),
                     ks > 0 ? 1 : 0);
  };
  // O += P·V with P in `a` and the kSub V rows from `row0` of the tile at v_addr (16 positions =
  // 16 rows of 128 bytes a k16 step).
  auto issue_pv = [&](uint32_t v_addr, int row0) {
#pragma unroll
    for (int kk = 0; kk < kSubN / 2; ++kk)
      wgmma_rs_tb<kD>(o, a[kk], sw128_desc(v_addr + (row0 + kk * 16) * 128, kBN * 128, 1024), 1);
  };
  auto pack_p = [&] {
#pragma unroll
    for (int kk = 0; kk < kSubN / 2; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        int nb, e;
        p_frag_from_acc(kk, r, &nb, &e);
        a[kk][r] = pack_bf16(s[nb][e], s[nb][e + 1]);
      }
  };

  if constexpr (!kOverlap) {
    for (int j = 0; j < n_tiles; ++j) {
      // Tile j has landed for every thread, and every warp finished tile j - 1's products, whose
      // stage the copies issued next overwrite.
      cp_async_wait<wgmma_pending(kStages, kOverlap)>();
      fence_proxy_async();
      __syncthreads();
      issue(j + kLead);
      const int st = j % kStages;
      const uint32_t k_addr = smem_addr(sK + st * kTile), v_addr = smem_addr(sV + st * kTile);
#pragma unroll
      for (int r0 = 0; r0 < kBN; r0 += kSub) {
        wgmma_fence();
        issue_s(k_addr, r0);
        wgmma_commit();
        wgmma_wait<0>();
        fence_operand(s);
        scale_mask_tile<kSubN>(s, tile, lo + j * kBN + r0, p.window, p.scale_log2, lane,
                               row_base);
        online_softmax<kSubN, kON>(s, m, l, o);
        pack_p();
        wgmma_fence();
        issue_pv(v_addr, r0);
        wgmma_commit();
        wgmma_wait<0>();
        fence_operand(o);
      }
    }
  } else {
    // FlashAttention-3's overlap inside a warpgroup: tile j's S = Q·Kᵀ and tile j - 1's P·V run
    // on the tensor cores while the softmax of tile j waits only for S; O is rescaled once P·V
    // is done. Tile j - 1's V stays in use through iteration j, so the copies run kStages - 2
    // tiles ahead (stage of tile j - 2 refilled at iteration j).
    static_assert(kStages >= 3, "the overlap keeps two tiles in use");
    // Tile 0 alone (no P·V before it), then the loop with one control flow: ptxas serializes the
    // wgmma when a path may read accumulators of a wgmma in flight (C7514).
    auto land = [&](int jj) {  // tile jj has landed; the stage of tile jj - 2 is free
      cp_async_wait<wgmma_pending(kStages, kOverlap)>();
      fence_proxy_async();
      __syncthreads();
      issue(jj + kLead);
    };
    land(0);
    wgmma_fence();
    issue_s(smem_addr(sK), 0);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operand(s);
    scale_mask_tile<kSubN>(s, tile, lo, p.window, p.scale_log2, lane, row_base);
    online_softmax<kSubN, kON>(s, m, l, o);  // O is still zero
    pack_p();
    uint32_t v_prev = smem_addr(sV);
    for (int j = 1; j < n_tiles; ++j) {
      land(j);
      const int st = j % kStages;
      wgmma_fence();
      issue_s(smem_addr(sK + st * kTile), 0);
      wgmma_commit();
      issue_pv(v_prev, 0);
      wgmma_commit();
      wgmma_wait<1>();
      fence_operand(s);
      scale_mask_tile<kSubN>(s, tile, lo + j * kBN, p.window, p.scale_log2, lane, row_base);
      float corr[2];
      softmax_rows<kSubN>(s, m, l, corr);
      wgmma_wait<0>();
      fence_operand(o);
      rescale_rows<kON>(o, corr);
      pack_p();
      v_prev = smem_addr(sV + st * kTile);
    }
    wgmma_fence();
    issue_pv(v_prev, 0);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operand(o);
  }
  cp_async_wait<0>();  // the empty groups of the last iterations

  if (wg < live) store_o_rows<kON>(o, l, lane, row_base, tile.rows, out, out_stride);
#endif  // SABLE_HAVE_WGMMA
}

template <int kD, int kStages, int kHeads, bool kOverlap = false>
bool launch_d(const AttentionParams& p, cudaStream_t s) {
  constexpr int bytes = wgmma_smem_bytes<kD, kStages, kHeads>();
  auto kernel = prefill_wgmma_kernel<kD, kStages, kHeads, kOverlap>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) !=
      cudaSuccess) {
    (void)cudaGetLastError();  // the caller falls back to the mma.sync kernel
    return false;
  }
  const dim3 grid(p.kv_heads * ((p.group + kHeads - 1) / kHeads), p.max_tiles);
  return sable::cuda::launch(kernel, grid, dim3(kHeads * kWgThreads), bytes, s, p) == cudaSuccess;
}

// The kernel for a shape: heads a CTA (up to wgmma_heads, where the group divides by them), stages
// (2-4; the overlapped loop takes 3 or 4), overlap (wgmma_overlap < 0: with fewer than 4 heads,
// where it measured faster; at 4 heads it was slower: bench/NOTES.md v16). Every shape fits a
// block's 227 KB of shared memory (the largest, 4 heads and 4 stages at D 128, takes 193 KB).
template <int kD, int kHeads>
bool launch_stages(const AttentionParams& p, cudaStream_t s) {
  const bool overlap = p.wgmma_overlap < 0 ? kHeads < 4 : p.wgmma_overlap != 0;
  const int stages = std::clamp(p.wgmma_stages, overlap ? 3 : 2, 4);
  if (overlap)
    return stages == 4 ? launch_d<kD, 4, kHeads, true>(p, s) : launch_d<kD, 3, kHeads, true>(p, s);
  if (stages == 4) return launch_d<kD, 4, kHeads>(p, s);
  return stages == 3 ? launch_d<kD, 3, kHeads>(p, s) : launch_d<kD, 2, kHeads>(p, s);
}

template <int kD>
bool launch_heads(const AttentionParams& p, cudaStream_t s) {
  const int heads = wgmma_heads_for_group(p.group, p.wgmma_heads, p.wgmma_partial != 0);
  if (heads == 4) return launch_stages<kD, 4>(p, s);
  if (heads == 2) return launch_stages<kD, 2>(p, s);
  return launch_stages<kD, 1>(p, s);
}

}  // namespace

bool prefill_wgmma_usable(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return prop.major == 9 && prop.minor == 0;  // the sm_90a code runs on compute capability 9.0 only
}

bool launch_prefill_wgmma(const AttentionParams& p, void* stream) {
  if (p.num_tokens == 0 || p.max_tiles == 0) return true;
  if (p.max_tiles > 65535) return false;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.head_dim == 64) return launch_heads<64>(p, s);
  if (p.head_dim == 128) return launch_heads<128>(p, s);
  return false;
}

}  // namespace sable::attention::flash
