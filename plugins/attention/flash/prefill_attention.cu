// FlashAttention-2 style prefill over the paged bf16 KV pool (tensor cores, sm_80+ instructions).
//
// A CTA (4 warps) owns one query tile of the plan's work list (up to kBM = 64 consecutive new
// tokens of one sequence) and one q head; blockIdx.x is the q head so the CTAs of one GQA group run
// side by side and share K/V tiles in L2. Each warp owns 16 query rows. KV tiles of kBN = 64
// positions are gathered row by row from the pages (any page size) with 16-byte cp.async into
// swizzled shared memory, double-buffered. S = Q·Kᵀ and O += P·V use mma.sync m16n8k16 bf16 -> fp32
// with ldmatrix fragments (V through ldmatrix.trans); the online softmax runs in registers in the
// log2 domain. Index math lives in prefill_schedule.h (checked on the CPU by
// attention_flash_schedule_test).
#include <cfloat>
#include <cstdint>

#include "mma.cuh"
#include "paged_attention.cuh"
#include "prefill_schedule.h"
#include "sable/cuda/launch.cuh"

namespace sable::attention::flash {
namespace {

template <int kD>
constexpr int smem_bytes() {
  return (kBM + 4 * kBN) * kD * static_cast<int>(sizeof(bf16));  // Q + double-buffered K and V
}

template <int kD>
__global__ void __launch_bounds__(kPrefillWarps * 32) prefill_kernel(AttentionParams p) {
  constexpr int kChunks = kD / 8;   // 16-byte chunks per row
  constexpr int kKSteps = kD / 16;  // k16 steps of Q·Kᵀ
  constexpr int kSN = kBN / 8;      // n8 blocks of S
  constexpr int kON = kD / 8;       // n8 blocks of O
  constexpr int kThreads = kPrefillWarps * 32;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + kBM * kD;
  bf16* sV = sK + 2 * kBN * kD;
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();

  const int h = blockIdx.x;
  if (static_cast<int>(blockIdx.y) >= *p.num_tiles) return;
  const PrefillTile tile = load_tile(p.tiles, blockIdx.y);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  bf16* out = p.out + (int64_t(tile.q0) * p.q_heads + h) * kD;
  const int64_t out_stride = int64_t(p.q_heads) * kD;

  if (tile.pos0 < 0) {  // padding sequence: zeros
    for (int i = tid; i < tile.rows * kChunks; i += kThreads)
      *reinterpret_cast<uint4*>(out + (i / kChunks) * out_stride + (i % kChunks) * 8) =
          uint4{0, 0, 0, 0};
    return;
  }
  int lo = 0, hi = 0;
  kv_range(tile, p.window, &lo, &hi);
  const int n_tiles = kv_tiles(lo, hi);
  const int kvh = h / p.group;
  const int32_t* pages = p.meta.kv_indices + p.meta.kv_indptr[tile.seq];

  // Q tile (rows past tile.rows repeat the last row: finite values, never written out).
  for (int i = tid; i < kBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int rr = r < tile.rows ? r : tile.rows - 1;
    cp_async16(sQ + smem_off(r, c * 8, kD),
               p.q + int64_t(tile.q0 + rr) * p.q_stride + int64_t(h) * kD + c * 8, true);
  }
  // K/V tiles: a tile's page indices are loaded one tile ahead of its copies (tile_slots), so
  // issuing the copies of tile j + 1 never waits for a memory round trip.
  int32_t slot[kTileChunksPerThread<kD, kBN, kThreads>];
  auto copy_kv = [&](int buf) {
    copy_tile_slots<kD, kBN, kThreads>(sK + buf * kBN * kD, sV + buf * kBN * kD, p.k_cache,
                                       p.v_cache, slot, p.kv_heads, kvh);
  };
  tile_slots<kD, kBN, kThreads>(slot, pages, p.page_size, lo, hi);
  copy_kv(0);
  cp_async_commit();
  if (n_tiles > 1) tile_slots<kD, kBN, kThreads>(slot, pages, p.page_size, lo + kBN, hi);

  uint32_t qf[kKSteps][4];
  float o[kON][4];
#pragma unroll
  for (int n = 0; n < kON; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows lane/4 and lane/4 + 8
  int ar, ac, br, bc, vr, vc;
  a_frag_src(lane, &ar, &ac);
  b_frag_src(lane, &br, &bc);
  v_frag_src(lane, &vr, &vc);
  const int row_base = warp * 16;

  for (int j = 0; j < n_tiles; ++j) {
    const int k0 = lo + j * kBN;
    next_tile(j, n_tiles, [&](int buf) {
      copy_kv(buf);
      if (j + 2 < n_tiles)
        tile_slots<kD, kBN, kThreads>(slot, pages, p.page_size, k0 + 2 * kBN, hi);
    });
    if (j == 0) load_q_frags<kD>(qf, sQ, row_base, ar, ac);
    const bf16* tk = sK + (j & 1) * kBN * kD;
    const bf16* tv = sV + (j & 1) * kBN * kD;

    float s[kSN][4];
    qk_tile<kSN, kD>(s, qf, tk, 0, br, bc);
    scale_mask_tile<kSN>(s, tile, k0, p.window, p.scale_log2, lane, row_base);
    online_softmax<kSN, kON>(s, m, l, o);
    pv_tile<kSN, kD>(o, s, tv, 0, vr, vc);
    __syncthreads();
  }

  store_o_rows<kON>(o, l, lane, row_base, tile.rows, out, out_stride);
}

template <int kD>
bool launch_d(const AttentionParams& p, cudaStream_t s) {
  // Per launch, not once: the opt-in is per device (several GPUs in one process), and it is a host
  // call that stream capture allows.
  if (cudaFuncSetAttribute(prefill_kernel<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           smem_bytes<kD>()) != cudaSuccess) {
    (void)cudaGetLastError();  // clear it; the caller falls back to the per-token kernel
    return false;
  }
  const dim3 grid(p.q_heads, p.max_tiles);
  return sable::cuda::launch(prefill_kernel<kD>, grid, dim3(kPrefillWarps * 32), smem_bytes<kD>(),
                             s, p) == cudaSuccess;
}

}  // namespace

bool prefill_supported(int32_t head_dim, const void* q, int64_t q_stride) {
  return (head_dim == 64 || head_dim == 128) && reinterpret_cast<uintptr_t>(q) % 16 == 0 &&
         q_stride % 8 == 0;
}

bool launch_prefill(const AttentionParams& p, void* stream) {
  if (p.num_tokens == 0 || p.max_tiles == 0) return true;
  if (p.max_tiles > 65535) return false;
  auto s = static_cast<cudaStream_t>(stream);
  if (p.head_dim == 64) return launch_d<64>(p, s);
  if (p.head_dim == 128) return launch_d<128>(p, s);
  return false;
}

}  // namespace sable::attention::flash
