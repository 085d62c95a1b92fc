// The top-k / top-p cut and the draw of CudaSampler's sampled rows, over every split block of a
// row (sample_kernel.h).
//
// A cut keeps a prefix of the order by q_i = exp((l_i - max) / T), descending, equal values by
// lower index first; the draw walks the kept tokens in index order (as the CPU sampler does). One
// block per row doing it read the row ~30 times from one SM (bisection; ~0.45 ms a 152k row on an
// H100, half a 0.5B batch-1 step). Here the row's split blocks each read their slice twice:
//   1. cut_histogram_kernel: each block histograms its slice's q into kCutBuckets buckets (the
//      bits of q: 128 a binary octave over [2^-32, 1]; count and fixed-point mass) and adds them
//      into the row's histogram; the row's last block finds the buckets where top-k's count and
//      top-p's mass are reached: the candidate range [blo, bhi].
//   2. cut_draw_kernel: each block sums the mass of its tokens below blo (kept whatever the exact
//      cut) and writes its candidates (buckets blo..bhi, usually a few thousand tokens) to the
//      row's list, in index order within its part; the row's last block loads the parts in slice
//      order (index order overall), resolves the exact cut among them by radix selection
//      (radix_cut.cuh), adds each slice's kept candidates to its sure mass, picks the slice that
//      holds the draw and walks that slice alone.
// Masses are fixed point (radix::fixed_mass) in 64-bit integers: sums in any order agree, so a
// seeded draw is reproducible. Rows with more candidates than kCutCandidates (a near-uniform
// row, or a top-k reaching past q = 2^-32) are cut over the whole row by the last block instead.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>

#include "core/sampling/cuda/radix_cut.cuh"
#include "core/sampling/cuda/sample_kernel.h"
#include "core/sampling/cuda/split_row.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::sampling {
namespace {

constexpr int kThreads = 1024;
using u64 = unsigned long long;

// The bucket of q in [0, 1], by its bits: 0 for q == 1, then 128 a binary octave down to 2^-32,
// then kCutBuckets - 1 below. A lower bucket holds larger q (bits), so the buckets order the cut.
__device__ __forceinline__ int cut_bucket(float q) {
  const int v = static_cast<int>(__float_as_uint(q) >> 16) - ((127 - 32) << 7);
  return v < 0 ? kCutBuckets - 1 : max(0, 4096 - v);
}

// The fixed-point mass top-p keeps of `total`, at least 1 (the histogram's range and the exact
// cut must agree on it).
__device__ __forceinline__ u64 top_p_need(float top_p, u64 total) {
  const double want = ceil(static_cast<double>(top_p) * static_cast<double>(total));
  return want < 1.0 ? 1ull : static_cast<u64>(want);
}

// The row a block samples, its slice and its q.
struct RowView {
  const float* row;
  float mx, inv_t;
  int64_t lo, hi;  // this split's slice (the statistics kernel's)
  __device__ float q(int64_t i) const { return __expf((row[i] - mx) * inv_t); }
};

__device__ RowView row_view(const float* logits, int64_t ld, int64_t vocab,
                            const SampleRowParams& p, const SampleRowCut& c) {
  const int64_t slice = split_slice(vocab, static_cast<int>(gridDim.y));
  RowView v;
  v.row = logits + p.row * ld;
  v.mx = c.mx;
  v.inv_t = 1.0f / p.temperature;
  v.lo = min(vocab, blockIdx.y * slice);
  v.hi = min(vocab, v.lo + slice);
  return v;
}

// Thread-contiguous chunks of [lo, hi): this thread's [c0, c1).
__device__ void thread_chunk(int64_t lo, int64_t hi, int64_t& c0, int64_t& c1) {
  const int64_t per = (hi - lo + kThreads - 1) / kThreads;
  c0 = min(hi, lo + threadIdx.x * per);
  c1 = min(hi, c0 + per);
}

// The first bucket where the running sum of w reaches need (kCutBuckets if none), and the sums of
// count and mass before it. The block's chunk sums and their exclusive scans come in.
struct Located {
  int bucket;
  u64 count_before, mass_before;
};

__device__ Located locate(const uint32_t* count, const u64* mass, bool by_mass, u64 need, int b0,
                          int b1, u64 count_before, u64 mass_before, u64 count_mine, u64 mass_mine,
                          Located* sh) {
  if (threadIdx.x == 0) *sh = Located{kCutBuckets, count_before, mass_before};
  __syncthreads();
  const u64 before = by_mass ? mass_before : count_before;
  const u64 mine = by_mass ? mass_mine : count_mine;
  if (mine > 0 && before < need && need <= before + mine) {
    u64 c = count_before, m = mass_before;
    for (int b = b0; b < b1; ++b) {
      if ((by_mass ? m + mass[b] : c + count[b]) >= need) {
        *sh = Located{b, c, m};
        break;
      }
      c += count[b];
      m += mass[b];
    }
  }
  __syncthreads();
  const Located r = *sh;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads)
    cut_histogram_kernel(const float* logits, int64_t ld, int64_t vocab,
                         const SampleRowParams* params, SampleCutScratch s) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  extern __shared__ u64 dyn[];
  u64* mass = dyn;  // kCutBuckets
  uint32_t* count = reinterpret_cast<uint32_t*>(mass + kCutBuckets);
  __shared__ u64 sums[32];
  __shared__ Located found;
  const SampleRowParams p = params[blockIdx.x];
  const SampleRowCut c = s.cuts[blockIdx.x];
  const bool use_k = p.top_k > 0 && p.top_k < vocab, use_p = p.top_p < 1.0f;
  if (!c.deferred || !(use_k || use_p)) return;
  const RowView v = row_view(logits, ld, vocab, p, c);
  const int tid = threadIdx.x;
  for (int b = tid; b < kCutBuckets; b += kThreads) {
    mass[b] = 0;
    count[b] = 0;
  }
  __syncthreads();
  // Runs of one bucket are added at once (a flat row's neighbours often share theirs).
  int run = -1;
  uint32_t run_count = 0;
  u64 run_mass = 0;
  for (int64_t i = v.lo + tid; i < v.hi; i += kThreads) {
    const float q = v.q(i);
    const int b = cut_bucket(q);
    if (b != run) {
      if (run >= 0) {
        atomicAdd(&count[run], run_count);
        atomicAdd(&mass[run], run_mass);
      }
      run = b;
      run_count = 0;
      run_mass = 0;
    }
    ++run_count;
    run_mass += radix::fixed_mass(q);
  }
  if (run >= 0) {
    atomicAdd(&count[run], run_count);
    atomicAdd(&mass[run], run_mass);
  }
  __syncthreads();
  if (gridDim.y > 1) {  // into the row's histogram; its last block takes it (and zeroes it)
    uint32_t* gc = s.hist_count + blockIdx.x * kCutBuckets;
    u64* gm = s.hist_mass + blockIdx.x * kCutBuckets;
    for (int b = tid; b < kCutBuckets; b += kThreads) {
      if (count[b] == 0) continue;
      atomicAdd(&gc[b], count[b]);
      atomicAdd(&gm[b], mass[b]);
    }
    if (!last_of_row(s.tickets)) return;
    for (int b = tid; b < kCutBuckets; b += kThreads) {
      count[b] = __ldcg(&gc[b]);
      mass[b] = __ldcg(&gm[b]);
      gc[b] = 0;
      gm[b] = 0;
    }
    __syncthreads();
  }
  // Chunk sums of count and mass, scanned in bucket order.
  constexpr int kPer = (kCutBuckets + kThreads - 1) / kThreads;
  const int b0 = min(kCutBuckets, tid * kPer), b1 = min(kCutBuckets, b0 + kPer);
  u64 cm = 0, mm = 0;
  for (int b = b0; b < b1; ++b) {
    cm += count[b];
    mm += mass[b];
  }
  u64 all_count = 0, total = 0;
  const u64 cb = radix::block_exclusive_scan_u64<kThreads>(cm, sums, &all_count);
  const u64 mb = radix::block_exclusive_scan_u64<kThreads>(mm, sums, &total);
  auto at = [&](bool by_mass, u64 need) {
    return locate(count, mass, by_mass, need, b0, b1, cb, mb, cm, mm, &found);
  };
  // The candidate range: top-k alone, its count's bucket; top-p alone, its mass's; both, from the
  // top-p bucket of the smallest total top-k may leave (the mass before top-k's bucket) down to
  // top-k's bucket (the top-p cut lies in between, whatever the exact top-k cut).
  Located lo{kCutBuckets, 0, 0};
  int hi = -1;
  if (use_k) {
    lo = at(false, static_cast<u64>(p.top_k));
    hi = lo.bucket;
  }
  if (use_p) {
    const Located lp = at(true, top_p_need(p.top_p, use_k ? lo.mass_before : total));
    if (!use_k) hi = lp.bucket;
    if (!use_k || lp.bucket < lo.bucket) lo = lp;
  }
  if (tid == 0) {
    SampleRowCut& w = s.cuts[blockIdx.x];
    const bool found_all = lo.bucket < kCutBuckets && hi < kCutBuckets;
    w.blo = found_all ? lo.bucket : kCutBuckets;  // not found (non-finite logits): no cut
    w.bhi = found_all ? hi : -1;
    w.above_count = lo.count_before;
    w.above_mass = lo.mass_before;
    w.total_mass = total;
  }
}

// The exact cut among n items (q(k), index order k) of which `above` (count, mass) precede them
// all in the order: top-k's count, then top-p's mass of what top-k keeps. Cut indices are k's.
template <class Q>
__device__ radix::Cut resolve_cut(Q q, int64_t n, const SampleRowParams& p, bool use_k, bool use_p,
                                  u64 above_count, u64 above_mass, u64 row_total,
                                  radix::Shared& rsh) {
  radix::Cut cut;
  if (use_k) {
    const u64 k = static_cast<u64>(p.top_k);
    cut = radix::cut_prefix<kThreads, false>(q, n, radix::Cut{},
                                             k > above_count ? k - above_count : 1, rsh);
  }
  if (use_p) {
    const u64 total = use_k ? above_mass + radix::kept_mass<kThreads>(q, n, cut, rsh) : row_total;
    const u64 need = top_p_need(p.top_p, total);
    cut = radix::cut_prefix<kThreads, true>(q, n, cut, need > above_mass ? need - above_mass : 1,
                                            rsh);
  }
  return cut;
}

// The draw's fixed-point mass of token i: kept by the cut and by min-p (q >= min_p, q_max = 1).
struct Keep {
  radix::Cut cut;
  float min_p;
  __device__ u64 mass(float q, int i) const {
    return q >= min_p && cut.keeps(q, i) ? radix::fixed_mass(q) : 0ull;
  }
};

// The token of [lo, hi) where the running kept mass, in index order, passes `target` (below the
// range's kept mass); -1 if none (it cannot be, but a token is always written).
__device__ int block_walk(const RowView& v, const Keep& keep, int64_t lo, int64_t hi, u64 target,
                          u64* sums) {
  __shared__ int chosen;
  int64_t c0, c1;
  thread_chunk(lo, hi, c0, c1);
  u64 mine = 0;
  for (int64_t i = c0; i < c1; ++i) mine += keep.mass(v.q(i), static_cast<int>(i));
  if (threadIdx.x == 0) chosen = -1;
  u64 all = 0;
  u64 acc = radix::block_exclusive_scan_u64<kThreads>(mine, sums, &all);
  if (mine > 0 && acc <= target && target < acc + mine) {
    for (int64_t i = c0; i < c1; ++i) {
      acc += keep.mass(v.q(i), static_cast<int>(i));
      if (acc > target) {
        chosen = static_cast<int>(i);
        break;
      }
    }
  }
  __syncthreads();
  return chosen;
}

struct DrawShared {
  radix::Shared rsh;
  u64 kept[kMaxSampleSplits];
  uint32_t first[kMaxSampleSplits + 1];  // the splits' candidates at first[s] .. first[s + 1]
  SampleCutPart part[kMaxSampleSplits];
  float cand_q[kCutCandidates];
  int32_t cand_idx[kCutCandidates];
};

__global__ void __launch_bounds__(kThreads)
    cut_draw_kernel(const float* logits, int64_t ld, int64_t vocab, const SampleRowParams* params,
                    SampleRowOut* out, SampleCutScratch s) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  extern __shared__ u64 dyn[];
  DrawShared& sh = *reinterpret_cast<DrawShared*>(dyn);
  __shared__ u64 sums[32];
  __shared__ uint32_t base;
  const SampleRowParams p = params[blockIdx.x];
  const SampleRowCut c = s.cuts[blockIdx.x];
  if (!c.deferred) return;
  const RowView v = row_view(logits, ld, vocab, p, c);
  const int tid = threadIdx.x;
  const int splits = static_cast<int>(gridDim.y);
  const int64_t slice = split_slice(vocab, splits);
  const bool use_k = p.top_k > 0 && p.top_k < vocab, use_p = p.top_p < 1.0f;
  const bool cut = c.blo < kCutBuckets;
  const Keep sure{radix::Cut{}, p.min_p};
  // This slice: the sure mass (below blo) and the candidates, counted then written in index order.
  int64_t c0, c1;
  thread_chunk(v.lo, v.hi, c0, c1);
  u64 above = 0, mine = 0;
  for (int64_t i = c0; i < c1; ++i) {
    const float q = v.q(i);
    const int b = cut ? cut_bucket(q) : 0;
    if (b < c.blo)
      above += sure.mass(q, static_cast<int>(i));
    else
      mine += b <= c.bhi;
  }
  u64 n_slice = 0;
  u64 at = radix::block_exclusive_scan_u64<kThreads>(mine, sums, &n_slice);
  const u64 slice_above = radix::block_sum_u64<kThreads>(above, sums);
  int32_t* cand_idx = s.cand_idx + blockIdx.x * s.cand_cap;
  float* cand_q = s.cand_q + blockIdx.x * s.cand_cap;
  if (n_slice > 0) {
    if (tid == 0) base = atomicAdd(&s.cand_count[blockIdx.x], static_cast<uint32_t>(n_slice));
    __syncthreads();
    at += base;
    if (base + n_slice <= static_cast<u64>(s.cand_cap) && mine > 0) {
      for (int64_t i = c0; i < c1; ++i) {
        const float q = v.q(i);
        const int b = cut_bucket(q);
        if (b < c.blo || b > c.bhi) continue;
        cand_idx[at] = static_cast<int32_t>(i);
        cand_q[at++] = q;
      }
    }
  }
  const SampleCutPart part{slice_above, n_slice > 0 ? base : 0u, static_cast<uint32_t>(n_slice)};
  if (splits > 1) {
    if (tid == 0) s.parts[blockIdx.x * kMaxSampleSplits + blockIdx.y] = part;
    if (!last_of_row(s.tickets)) return;
  }
  // The row's last block: every split's part, in slice order.
  for (int k = tid; k < splits; k += kThreads) {
    if (splits == 1) {
      sh.part[k] = part;
    } else {
      const SampleCutPart* g = s.parts + blockIdx.x * kMaxSampleSplits + k;
      sh.part[k] = SampleCutPart{__ldcg(&g->above), __ldcg(&g->base), __ldcg(&g->count)};
    }
  }
  __syncthreads();
  if (tid == 0) {
    uint32_t n = 0;
    for (int k = 0; k < splits; ++k) {
      sh.first[k] = n;
      n += sh.part[k].count;
    }
    sh.first[splits] = n;
    s.cand_count[blockIdx.x] = 0;  // for the next launch
  }
  __syncthreads();
  const uint32_t n = sh.first[splits];
  Keep keep{radix::Cut{}, p.min_p};
  if (cut && n > 0 && n <= s.cand_cap) {
    for (int k = 0; k < splits; ++k) {
      const SampleCutPart& pk = sh.part[k];
      for (uint32_t j = tid; j < pk.count; j += kThreads) {
        sh.cand_idx[sh.first[k] + j] = __ldcg(&cand_idx[pk.base + j]);
        sh.cand_q[sh.first[k] + j] = __ldcg(&cand_q[pk.base + j]);
      }
    }
    if (tid < splits) sh.kept[tid] = sh.part[tid].above;
    __syncthreads();
    auto qc = [&](int64_t k) { return sh.cand_q[k]; };
    const radix::Cut at_k =
        resolve_cut(qc, n, p, use_k, use_p, c.above_count, c.above_mass, c.total_mass, sh.rsh);
    // Each slice's kept candidates join its sure mass.
    const Keep by_position{at_k, p.min_p};
    for (uint32_t j = tid; j < n; j += kThreads) {
      const u64 m = by_position.mass(sh.cand_q[j], static_cast<int>(j));
      if (m == 0) continue;
      int k = 0;
      while (sh.first[k + 1] <= j) ++k;
      atomicAdd(&sh.kept[k], m);
    }
    keep.cut.key = at_k.key;  // the same prefix, its last tie by token index
    keep.cut.last_tie = at_k.last_tie == INT_MAX ? INT_MAX : sh.cand_idx[at_k.last_tie];
  } else if (cut) {  // too many candidates: the cut over the whole row, its slices summed again
    auto qr = [&](int64_t i) { return v.q(i); };
    keep.cut = resolve_cut(qr, vocab, p, use_k, use_p, 0, 0, c.total_mass, sh.rsh);
    for (int k = 0; k < splits; ++k) {
      u64 m = 0;
      for (int64_t i = min(vocab, k * slice) + tid; i < min(vocab, (k + 1) * slice); i += kThreads)
        m += keep.mass(v.q(i), static_cast<int>(i));
      sh.kept[k] = radix::block_sum_u64<kThreads>(m, sums);
    }
  } else if (tid < splits) {
    sh.kept[tid] = sh.part[tid].above;
  }
  __syncthreads();
  // The slice that holds the draw, then the token within it.
  __shared__ int pick;
  __shared__ u64 target;
  if (tid == 0) {
    u64 total = 0;
    for (int k = 0; k < splits; ++k) total += sh.kept[k];
    u64 t = static_cast<u64>(p.u * static_cast<double>(total));
    t = t < total ? t : total - 1;
    pick = splits - 1;
    for (int k = 0; k < splits; ++k) {
      if (t < sh.kept[k]) {
        pick = k;
        break;
      }
      t -= sh.kept[k];
    }
    target = t;
  }
  __syncthreads();
  const int64_t lo = min(vocab, pick * slice), hi = min(vocab, lo + slice);
  const int token = block_walk(v, keep, lo, hi, target, sums);
  if (tid == 0) {
    const int t = token >= 0 ? token : c.mi;  // (rounding cannot get here; the argmax if it did)
    out[blockIdx.x].token = t;
    out[blockIdx.x].logprob = v.row[t] - c.lse;
  }
}

}  // namespace

void launch_cut_kernels(const float* logits, int64_t ld, int64_t vocab, int64_t rows,
                        const SampleRowParams* params, SampleRowOut* out, int splits,
                        const SampleCutScratch& scratch, bool cut, void* stream) {
  constexpr size_t kHistBytes = kCutBuckets * (sizeof(u64) + sizeof(uint32_t));
  constexpr size_t kDrawBytes = sizeof(DrawShared);
  // Above the 48 KB a block gets unasked; set on every call (per device, and cheap). A failure
  // stays in the last-error state, which the caller checks.
  cudaFuncSetAttribute(cut_histogram_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(kHistBytes));
  cudaFuncSetAttribute(cut_draw_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(kDrawBytes));
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(splits));
  const auto s = static_cast<cudaStream_t>(stream);
  // Launch errors are left in the runtime's last-error state; the caller checks cudaGetLastError.
  if (cut)
    sable::cuda::launch(cut_histogram_kernel, grid, kThreads, kHistBytes, s, logits, ld, vocab,
                        params, scratch);
  sable::cuda::launch(cut_draw_kernel, grid, kThreads, kDrawBytes, s, logits, ld, vocab, params,
                      out, scratch);
}

}  // namespace sable::sampling
