// Tensor-core decode attention over the paged bf16 KV pool, with the GQA group packed into the
// MMA rows (the layout FlashInfer's decode uses): one CTA reads each K/V row of its range once for
// every q head of the group, instead of once per q head.
//
// A CTA (4 warps; 8 in the deep pipeline at D 128) owns one decode token (blockIdx.y indexes the
// plan's decode-token list), one KV head (blockIdx.x) and one split of the token's visible
// positions (blockIdx.z). Its Q tile is the group's q heads, zero-padded to 16 rows. KV tiles of
// 16 positions a warp are gathered from the pages with 16-byte cp.async into swizzled shared
// memory, double-buffered (more stages in the deep pipeline); warp w takes positions
// [16w, 16w + 16) of each tile: S = Q·Kᵀ (16 x 16) and O += P·V with mma.sync m16n8k16, online
// softmax in registers (log2 domain). The warps' states are combined through shared memory.
//
// Fused work that other kernels did before: the token's own K/V row is read from the k/v inputs
// (its cache slot is written by split 0 of the same launch when `store_new`, so no append kernel
// runs first), and with several splits the last CTA of a (token, KV head) to finish merges the
// partial results (an atomic ticket per pair, reset by the merger so that graph replays find it 0).
// Only the splits that hold positions run (decode_used_splits); a token whose positions fit one
// split writes its output directly, with no partials and no merge. A member of a cascade group
// (cascade_attention.cu ran first) reads only its own positions and always merges, folding in the
// shared-prefix partials after its splits.
#include <cfloat>
#include <cstdint>

#include "cascade_schedule.h"
#include "decode_schedule.h"
#include "mma.cuh"
#include "paged_attention.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::attention::flash {
namespace {

constexpr int kRows = kDecodeRows;

template <int kD, int kStages, int kW>
constexpr int decode_smem_bytes() {
  return (kRows + 2 * kStages * 16 * kW) * kD * static_cast<int>(sizeof(bf16));  // Q + K/V stages
}

// CTAs per SM the registers must allow: what shared memory allows at D 128 (3, or 2 with three
// stages), 5 at D 64 (104 registers; shared memory would take 6, at 80 registers with spills).
// The deep pipeline's instances: six stages of 4 warps, or more warps a CTA (decode_kernel).
__host__ __device__ constexpr bool deep_variant(int stages, int warps) {
  return stages >= kDeepStages || warps > kDecodeWarps;
}

template <int kD, int kStages, int kW>
__global__ void __launch_bounds__(kW * 32,
                                  decode_ctas_per_sm(kD, deep_variant(kStages, kW) ? kDeepStages
                                                                                   : kStages))
    decode_kernel(AttentionParams p) {
  constexpr int kN = 16 * kW;       // KV positions per tile: 16 per warp
  constexpr int kChunks = kD / 8;   // 16-byte chunks per row
  constexpr int kKSteps = kD / 16;  // k16 steps of Q·Kᵀ
  constexpr int kON = kD / 8;       // n8 blocks of O
  constexpr int kThreads = kW * 32;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + kRows * kD;
  bf16* sV = sK + kStages * kN * kD;
  __shared__ int s_last;

  // Before the wait on the q/k/v projection (PDL): the plan's metadata, uploaded before this
  // step's first kernel, and the page indices of the first K/V tile, so that this chain of
  // dependent loads overlaps the predecessor instead of following it.
  const int kvh = blockIdx.x, split = blockIdx.z;
  const int t = p.decode_tokens[blockIdx.y];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int G = p.group;
  const int end_all = p.meta.end[t];
  // A member of a cascade group reads only its own positions; the shared ones are partials of the
  // cascade pass, merged below like splits (and then even one split merges).
  const int casc = p.casc_chunks != nullptr ? p.casc_chunks[t] : 0;
  const int begin_all = casc > 0 ? p.casc_begin[t] : p.meta.begin[t];
  // Splits past the token's positions leave at once: at short contexts most of a batch-1 grid
  // is such splits, and the merge below then reads only the used ones.
  const int used = decode_used_splits(begin_all, end_all, *p.meta.chunk);
  if (split >= used) return;
  const bool direct = used == 1 && casc == 0;  // the one CTA writes the output
  int begin = 0, end = 0;
  split_range(begin_all, end_all, *p.meta.chunk, split, &begin, &end);
  const int new_pos = end_all - 1;  // the token's own position: its K/V come from the inputs
  const int32_t* pages = p.meta.kv_indices + p.meta.kv_indptr[p.meta.seq[t]];
  const int n_tiles = end > begin ? (end - begin + kN - 1) / kN : 0;
  // The slots of the next tile to copy: a tile's page indices are loaded one tile ahead of its
  // copies (tile_slots, mma.cuh), so issuing them never waits for a memory round trip.
  constexpr int kPer = kTileChunksPerThread<kD, kN, kThreads>;
  // The deep pipeline (kDeepStages) loads the slots of every tile it issues at once instead, all
  // in flight together: a chain of one page-index round trip per tile would cost what the deep
  // pipeline saves.
  constexpr bool kDeep = deep_variant(kStages, kW);
  int32_t slot[kPer];
  int32_t deep_slot[kDeep ? kStages : 1][kPer];
  if constexpr (kDeep) {
#pragma unroll
    for (int st = 0; st < kStages; ++st)
      if (st < n_tiles)
        tile_slots<kD, kN, kThreads>(deep_slot[st], pages, p.page_size, begin + st * kN, end);
  } else {
    if (n_tiles > 0) tile_slots<kD, kN, kThreads>(slot, pages, p.page_size, begin, end);
  }

  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (p.probe == 1) return;
  const bf16* k_new = p.k_new + int64_t(t) * p.k_stride + int64_t(kvh) * kD;
  const bf16* v_new = p.v_new + int64_t(t) * p.v_stride + int64_t(kvh) * kD;

  if (p.store_new && split == 0) {  // nobody in this launch reads the slot from the cache
    const int32_t own = p.meta.slot[t];
    if (own >= 0) {
      const int64_t dst = (int64_t(own) * p.kv_heads + kvh) * kD;
      for (int i = tid; i < 2 * kChunks; i += kThreads) {
        const int c = i % kChunks;
        if (i < kChunks)
          *reinterpret_cast<uint4*>(p.k_cache + dst + c * 8) =
              *reinterpret_cast<const uint4*>(k_new + c * 8);
        else
          *reinterpret_cast<uint4*>(p.v_cache + dst + c * 8) =
              *reinterpret_cast<const uint4*>(v_new + c * 8);
      }
    }
  }

  // Q rows: the group's heads; rows past the group are zero-filled.
  const bf16* q = p.q + int64_t(t) * p.q_stride + int64_t(kvh) * G * kD;
  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    cp_async16(sQ + smem_off(r, c * 8, kD), q + int64_t(r < G ? r : 0) * kD + c * 8, r < G);
  }
  // Copies tile `tile` (its slots in `sl`) into buffer `buf`. The token's own row comes from
  // k_new / v_new (its cache slot may not be written yet).
  auto copy_kv = [&](int tile, int buf, const int32_t(&sl)[kPer]) {
    const int k0 = begin + tile * kN;
    bf16* dk = sK + buf * kN * kD;
    bf16* dv = sV + buf * kN * kD;
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int i = tid + it * kThreads;
      const int r = i / kChunks, c = i % kChunks;
      const bool valid = sl[it] >= 0;
      const bf16 *ks = k_new, *vs = v_new;
      if (valid && k0 + r != new_pos) {
        const int64_t off = (int64_t(sl[it]) * p.kv_heads + kvh) * kD;
        ks = p.k_cache + off;
        vs = p.v_cache + off;
      }
      cp_async16(dk + smem_off(r, c * 8, kD), ks + c * 8, valid);
      cp_async16(dv + smem_off(r, c * 8, kD), vs + c * 8, valid);
    }
  };
  // Tile `tile` into buffer `buf`: the deep pipeline's first kStages tiles from the slots loaded
  // above (st: the compile-time tile index, -1 past them), other tiles from `slot`, whose next
  // tile's slots are then loaded one tile ahead.
  auto load_kv = [&](int tile, int buf, int st) {
    if constexpr (kDeep) {
      if (st >= 0) {  // st is a constant once the callers' loops are unrolled
        copy_kv(tile, buf, deep_slot[st]);
        return;
      }
      tile_slots<kD, kN, kThreads>(slot, pages, p.page_size, begin + tile * kN, end);
      copy_kv(tile, buf, slot);
    } else {
      copy_kv(tile, buf, slot);
      if (tile + 1 < n_tiles)
        tile_slots<kD, kN, kThreads>(slot, pages, p.page_size, begin + (tile + 1) * kN, end);
    }
  };
  // The first kStages - 1 tiles in flight (one cp.async group each, the Q copy in the first; empty
  // groups keep the count uniform).
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n_tiles) load_kv(st, st, st);
    cp_async_commit();
  }

  uint32_t qf[kKSteps][4];
  float o[kON][4];
#pragma unroll
  for (int n = 0; n < kON; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows lane/4 and lane/4 + 8
  int ar, ac, br, bc, vr, vc;
  a_frag_src(lane, &ar, &ac);
  b_frag_src(lane, &br, &bc);
  v_frag_src(lane, &vr, &vc);
  const int wrow = warp * 16;  // the warp's first row in the KV tile

  if (p.probe == 2) {  // the copies issued above land, nothing is computed
    cp_async_wait<0>();
    return;
  }
  for (int j = 0; j < n_tiles; ++j) {
    const int k0 = begin + j * kN;
    // Tile j + kStages - 1 goes into the buffer of tile j - 1 (every warp is done with it: the
    // barrier closing the last step); tile j has landed once at most kStages - 1 later groups are
    // pending. With two stages this is the classic double buffer; three keep more bytes in flight.
    if (j + kStages - 1 < n_tiles) {
      if (kDeep && j == 0)
        load_kv(kStages - 1, kStages - 1, kStages - 1);
      else
        load_kv(j + kStages - 1, (j + kStages - 1) % kStages, -1);
    }
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncthreads();
    if (j == 0) load_q_frags<kD>(qf, sQ, 0, ar, ac);
    const bf16* tk = sK + (j % kStages) * kN * kD;
    const bf16* tv = sV + (j % kStages) * kN * kD;
    if (k0 + wrow < end)  // else every position of this warp's slice is past the range
      attend_slice<2, kD>(qf, tk, tv, wrow, k0, end, p.scale_log2, lane, br, bc, vr, vc, m, l, o);
    __syncthreads();
  }
  cp_async_wait<0>();  // an empty split still has its Q copy in flight
  __syncthreads();
  if (p.probe == 3) return;

  // Combine the warps through shared memory (the K/V stages are free now).
  float* s_o = reinterpret_cast<float*>(sK);     // [warps][kRows][kD]
  float* s_m = s_o + kW * kRows * kD;            // [warps][kRows]
  float* s_l = s_m + kW * kRows;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    float sum = l[hf];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    int r, c;
    acc_pos(lane, 2 * hf, &r, &c);
    float* row = s_o + (warp * kRows + r) * kD;
#pragma unroll
    for (int n = 0; n < kON; ++n) {
      row[n * 8 + c] = o[n][2 * hf];
      row[n * 8 + c + 1] = o[n][2 * hf + 1];
    }
    if ((lane & 3) == 0) {
      s_m[warp * kRows + r] = m[hf];
      s_l[warp * kRows + r] = sum;
    }
  }
  __syncthreads();
  for (int i = tid; i < G * kD; i += kThreads) {
    const int r = i / kD, d = i % kD;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kW; ++w) mx = fmaxf(mx, s_m[w * kRows + r]);
    float sum = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < kW; ++w) {
      const float mw = s_m[w * kRows + r];
      if (mw == -INFINITY) continue;
      const float c = exp2f(mw - mx);
      sum += s_l[w * kRows + r] * c;
      acc += s_o[(w * kRows + r) * kD + d] * c;
    }
    const int qh = kvh * G + r;
    if (direct) {
      p.out[(int64_t(t) * p.q_heads + qh) * kD + d] =
          __float2bfloat16(sum > 0.0f ? acc / sum : 0.0f);
    } else {
      const int64_t idx = (int64_t(t) * p.q_heads + qh) * p.splits + split;
      p.part_acc[idx * kD + d] = acc;
      if (d == 0) {
        p.part_ml[idx * 2] = sum > 0.0f ? mx : -FLT_MAX;
        p.part_ml[idx * 2 + 1] = sum;
      }
    }
  }
  if (direct) return;

  // The last used split of this (token, KV head) to arrive merges (threadFenceReduction pattern).
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int* ticket = p.counters + int64_t(t) * p.kv_heads + kvh;
    const bool last = atomicAdd(ticket, 1) == used - 1;
    if (last) atomicExch(ticket, 0);
    s_last = last;
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  // The merge in three passes, so that the loads of every split are in flight together: (m, l) of
  // all (row, split) pairs at once; per row the max and each split's weight (its rescale with the
  // normalisation folded in); then each output element sums its splits' partials with independent
  // loads. Written as chains of dependent loads per split it took ~17 of the kernel's 22 us at
  // batch 1 (ncu on the H100: SMs busy 15 % of the elapsed cycles, stalled on L1TEX).
  // Parts [0, used) are the splits, [used, used + casc) the cascade chunks (written by the pass
  // that ran before this launch).
  const int parts = used + casc;
  float* s_wm = reinterpret_cast<float*>(sK);   // [kRows][kMaxMergeParts]: m, then the weights
  float* s_wl = s_wm + kRows * kMaxMergeParts;  // [kRows][kMaxMergeParts]: l
  static_assert(2 * kRows * kMaxMergeParts * sizeof(float) <= 2 * kStages * kN * kD * sizeof(bf16));
  const int64_t row0 = (int64_t(t) * p.q_heads + int64_t(kvh) * G) * p.splits;
  for (int i = tid; i < G * parts; i += kThreads) {
    const int r = i / parts, sp = i % parts;
    const float* ml = sp < used
                          ? p.part_ml + (row0 + int64_t(r) * p.splits + sp) * 2
                          : p.casc_ml + cascade_slot(t, p.q_heads, kvh * G + r, sp - used) * 2;
    s_wm[r * kMaxMergeParts + sp] = __ldcg(ml);
    s_wl[r * kMaxMergeParts + sp] = __ldcg(ml + 1);
  }
  __syncthreads();
  if (tid < G) {
    float* wm = s_wm + tid * kMaxMergeParts;
    const float* wl = s_wl + tid * kMaxMergeParts;
    float mx = -INFINITY;
    for (int sp = 0; sp < parts; ++sp)
      if (wl[sp] > 0.0f) mx = fmaxf(mx, wm[sp]);
    float sum = 0.0f;
    for (int sp = 0; sp < parts; ++sp) {
      const float c = wl[sp] > 0.0f ? exp2f(wm[sp] - mx) : 0.0f;
      wm[sp] = c;
      sum += wl[sp] * c;
    }
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int sp = 0; sp < parts; ++sp) wm[sp] *= inv;
  }
  __syncthreads();
  for (int i = tid; i < G * kD; i += kThreads) {
    const int r = i / kD, d = i % kD;
    const float* w = s_wm + r * kMaxMergeParts;
    const float* part = p.part_acc + (row0 + int64_t(r) * p.splits) * kD + d;
    float acc = 0.0f;
#pragma unroll 8
    for (int sp = 0; sp < used; ++sp) acc += w[sp] * __ldcg(part + int64_t(sp) * kD);
    if (casc > 0) {
      const float* shared = p.casc_acc + cascade_slot(t, p.q_heads, kvh * G + r, 0) * kD + d;
      for (int c = 0; c < casc; ++c) acc += w[used + c] * __ldcg(shared + int64_t(c) * kD);
    }
    p.out[(int64_t(t) * p.q_heads + kvh * G + r) * kD + d] = __float2bfloat16(acc);
  }
}

template <int kD, int kStages, int kW = kDecodeWarps>
bool launch_d(const AttentionParams& p, cudaStream_t s) {
  constexpr int smem = decode_smem_bytes<kD, kStages, kW>();
  if (cudaFuncSetAttribute(decode_kernel<kD, kStages, kW>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  const dim3 grid(p.kv_heads, p.num_decode, p.splits);
  return sable::cuda::launch(decode_kernel<kD, kStages, kW>, grid, dim3(kW * 32), smem, s, p) ==
         cudaSuccess;
}

bool aligned16(const void* ptr, int64_t stride) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && stride % 8 == 0;
}

}  // namespace

bool decode_inputs_aligned(const AttentionParams& p) {
  return aligned16(p.q, p.q_stride) && aligned16(p.k_new, p.k_stride) &&
         aligned16(p.v_new, p.v_stride);
}

bool launch_decode(const AttentionParams& p, void* stream) {
  if (p.num_decode == 0) return true;
  if (p.num_decode > 65535 || !decode_supported(p.head_dim, p.group)) return false;
  auto s = static_cast<cudaStream_t>(stream);
  // The deep pipeline: at D 64 six tiles of 64 positions (4 warps); at D 128 three tiles of 128
  // (8 warps, each 16 positions of a tile), the same 384 positions in flight with half the steps
  // in series (six steps of one CTA per SM measured slower than the merge at 8B shapes).
  if (p.decode_stages == kDeepStages)
    return p.head_dim == 64 ? launch_d<64, kDeepStages>(p, s)
                            : launch_d<128, 3, 2 * kDecodeWarps>(p, s);
  if (p.decode_stages == 3)
    return p.head_dim == 64 ? launch_d<64, 3>(p, s) : launch_d<128, 3>(p, s);
  return p.head_dim == 64 ? launch_d<64, 2>(p, s) : launch_d<128, 2>(p, s);
}

}  // namespace sable::attention::flash
