// The shared-prefix ("cascade") pass of decode attention: sequences whose page lists start with
// the same pages (the radix cache's shared prompts) read those K/V rows once per group instead of
// once per sequence. Without it, 16 requests on one 2,048-token system prompt read the prompt's
// K/V 16 times per step; decode attention is most of a step at such contexts.
//
// A CTA (4 warps) owns one work item of the plan (cascade_schedule.h: a row tile of a group's
// members, a chunk of the shared positions) and one KV head (blockIdx.x). Its up to 64 MMA rows
// are the members' q heads of that KV head (row r: member r / group, head r % group), in blocks of
// 16 rows; the 64-position K/V tiles are gathered from the shared pages with cp.async,
// double-buffered (the prefill kernel's loop, with no causal mask: every shared position is
// visible to every member). With 3-4 row blocks each warp owns one block and every position; with
// 1-2 blocks (groups of a few members) the warps of a block split each tile's positions and fold
// their softmax states at the end (cascade_warp_role), so no warp idles. Each row's unnormalised
// (acc, m, l) goes to the member's cascade partial slot `chunk`; the decode kernel
// (decode_attention.cu) serves the members' own positions and its merge folds these partials in, so
// the result is the non-cascade one up to the order of the float sums.
//
// CUDA graphs: the grid is (KV heads, max_cascade_items(num_decode)), a function of the batch
// shape; the item count and list live in the metadata block that plan() uploads with one memcpy
// (a graph node re-reading the pinned buffer), so items past the count exit at once. run() always
// launches this pass while capturing a decode-only graph (the graph then serves batches with or
// without groups); eagerly it launches only when there are items. The decode kernel reads the
// members' own range starts only when this pass was launched before it on the same stream.
#include <cfloat>
#include <cstdint>

#include "cascade_schedule.h"
#include "mma.cuh"
#include "paged_attention.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::attention::flash {
namespace {

template <int kD>
constexpr int cascade_smem_bytes() {
  return (kCascadeRows + 4 * kCascadeN) * kD * static_cast<int>(sizeof(bf16));  // Q + 2 x (K, V)
}

template <int kD>
__global__ void __launch_bounds__(kCascadeWarps * 32) cascade_kernel(AttentionParams p) {
  constexpr int kChunks = kD / 8;
  constexpr int kKSteps = kD / 16;
  constexpr int kON = kD / 8;
  constexpr int kThreads = kCascadeWarps * 32;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + kCascadeRows * kD;
  bf16* sV = sK + 2 * kCascadeN * kD;
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();

  if (static_cast<int>(blockIdx.y) >= *p.casc_num_items) return;
  const CascadeItem item = load_cascade_item(p.casc_items, blockIdx.y);
  const int kvh = blockIdx.x, G = p.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int32_t* members = p.casc_members + item.member0;
  const int rows = item.members * G;
  // The shared pages are the same ids in every member's list: read the first member's.
  const int32_t* pages = p.meta.kv_indices + p.meta.kv_indptr[p.meta.seq[members[0]]];

  // Q rows (padding rows repeat the last real one: finite values, never written out).
  for (int i = tid; i < kCascadeRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    int mb, h;
    cascade_row(r < rows ? r : rows - 1, G, item.members, &mb, &h);
    cp_async16(sQ + smem_off(r, c * 8, kD),
               p.q + int64_t(members[mb]) * p.q_stride + int64_t(kvh * G + h) * kD + c * 8, true);
  }
  const int lo = item.lo, hi = item.hi;
  auto load_kv = [&](int k0, int buf) {
    load_paged_kv<kD, kCascadeN, kThreads>(sK + buf * kCascadeN * kD, sV + buf * kCascadeN * kD,
                                           p.k_cache, p.v_cache, pages, p.page_size, p.kv_heads,
                                           kvh, k0, hi);
  };
  load_kv(lo, 0);
  cp_async_commit();

  uint32_t qf[kKSteps][4];
  float o[kON][4];
#pragma unroll
  for (int n = 0; n < kON; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows lane/4 and lane/4 + 8
  int ar, ac, br, bc, vr, vc;
  a_frag_src(lane, &ar, &ac);
  b_frag_src(lane, &br, &bc);
  v_frag_src(lane, &vr, &vc);
  // Small items: the warps of one row block split each tile's positions (cascade_schedule.h).
  const CascadeWarpRole role = cascade_warp_role(rows, warp);
  const int n_tiles = (hi - lo + kCascadeN - 1) / kCascadeN;

  for (int j = 0; j < n_tiles; ++j) {
    const int k0 = lo + j * kCascadeN;
    next_tile(j, n_tiles, [&](int buf) { load_kv(k0 + kCascadeN, buf); });
    if (role.busy) {
      if (j == 0) load_q_frags<kD>(qf, sQ, role.row_base, ar, ac);
      const bf16* tk = sK + (j & 1) * kCascadeN * kD;
      const bf16* tv = sV + (j & 1) * kCascadeN * kD;
      if (role.parts == 4)
        attend_slice<kCascadeN / 32, kD>(qf, tk, tv, role.pos0, k0, hi, p.scale_log2, lane, br, bc,
                                         vr, vc, m, l, o);
      else if (role.parts == 2)
        attend_slice<kCascadeN / 16, kD>(qf, tk, tv, role.pos0, k0, hi, p.scale_log2, lane, br, bc,
                                         vr, vc, m, l, o);
      else
        attend_slice<kCascadeN / 8, kD>(qf, tk, tv, role.pos0, k0, hi, p.scale_log2, lane, br, bc,
                                        vr, vc, m, l, o);
    }
    __syncthreads();
  }

  float quad_l[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    quad_l[hf] = l[hf];
    quad_l[hf] += __shfl_xor_sync(0xffffffffu, quad_l[hf], 1);
    quad_l[hf] += __shfl_xor_sync(0xffffffffu, quad_l[hf], 2);
  }
  if (role.parts == 1) {  // each warp holds whole rows: write them from the registers
    if (!role.busy) return;
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      int r, c;
      acc_pos(lane, 2 * hf, &r, &c);
      int mb, h;
      if (!cascade_row(role.row_base + r, G, item.members, &mb, &h)) continue;
      const int64_t slot = cascade_slot(members[mb], p.q_heads, kvh * G + h, item.chunk);
      float* dst = p.casc_acc + slot * kD;
#pragma unroll
      for (int n = 0; n < kON; ++n)
        *reinterpret_cast<float2*>(dst + n * 8 + c) = make_float2(o[n][2 * hf], o[n][2 * hf + 1]);
      if ((lane & 3) == 0) {
        p.casc_ml[slot * 2] = quad_l[hf] > 0.0f ? m[hf] : -FLT_MAX;
        p.casc_ml[slot * 2 + 1] = quad_l[hf];
      }
    }
    return;
  }

  // Shared rows (one or two row blocks, so every warp is busy): each warp's state goes to shared
  // memory over the K/V tiles (all read: the loop ended at a barrier), then the CTA folds the
  // `parts` states of each row and writes it.
  static_assert((kCascadeWarps * 16 * kD + 2 * kCascadeWarps * 16) * sizeof(float) <=
                    4 * kCascadeN * kD * sizeof(bf16),
                "the fold's scratch must fit in the K/V tiles");
  float* so = reinterpret_cast<float*>(sK);  // [warp][16][kD]
  float* sm = so + kCascadeWarps * 16 * kD;  // [16][warp]
  float* sl = sm + kCascadeWarps * 16;       // [16][warp]
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    int r, c;
    acc_pos(lane, 2 * hf, &r, &c);
    float* dst = so + (warp * 16 + r) * kD;
#pragma unroll
    for (int n = 0; n < kON; ++n)
      *reinterpret_cast<float2*>(dst + n * 8 + c) = make_float2(o[n][2 * hf], o[n][2 * hf + 1]);
    if ((lane & 3) == 0) {
      sm[r * kCascadeWarps + warp] = m[hf];
      sl[r * kCascadeWarps + warp] = quad_l[hf];
    }
  }
  __syncthreads();
  for (int i = tid; i < rows * kD; i += kThreads) {
    const int r = i / kD, d = i % kD;
    const int w0 = (r / 16) * role.parts, rr = r % 16;
    float mx, sum;
    const float acc =
        cascade_fold(role.parts, sm + rr * kCascadeWarps + w0, sl + rr * kCascadeWarps + w0,
                     so + (w0 * 16 + rr) * kD + d, 16 * kD, &mx, &sum);
    int mb, h;
    cascade_row(r, G, item.members, &mb, &h);
    const int64_t slot = cascade_slot(members[mb], p.q_heads, kvh * G + h, item.chunk);
    p.casc_acc[slot * kD + d] = acc;
    if (d == 0) {
      p.casc_ml[slot * 2] = sum > 0.0f ? mx : -FLT_MAX;
      p.casc_ml[slot * 2 + 1] = sum;
    }
  }
}

template <int kD>
bool launch_c(const AttentionParams& p, cudaStream_t s) {
  constexpr int smem = cascade_smem_bytes<kD>();
  if (cudaFuncSetAttribute(cascade_kernel<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) !=
      cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  const dim3 grid(p.kv_heads, p.casc_max_items);
  return sable::cuda::launch(cascade_kernel<kD>, grid, dim3(kCascadeWarps * 32), smem, s, p) ==
         cudaSuccess;
}

}  // namespace

bool launch_cascade(const AttentionParams& p, void* stream) {
  if (p.casc_max_items <= 0 || p.casc_max_items > 65535 || !decode_supported(p.head_dim, p.group))
    return false;
  auto s = static_cast<cudaStream_t>(stream);
  return p.head_dim == 64 ? launch_c<64>(p, s) : launch_c<128>(p, s);
}

}  // namespace sable::attention::flash
