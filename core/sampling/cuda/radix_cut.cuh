// Top-k and top-p cuts by one thread block, by radix selection (the device twin of
// core/sampling/top_cut.h), for cut_kernels.cu: among a row's candidates in shared memory, or over
// a whole row whose candidates do not fit.
//
// The kept tokens are a prefix of the order by q_i = exp((l_i - max) / T) in [0, 1], descending,
// equal values by lower index first. The bits of q (a non-negative float orders as its bits) are
// histogrammed a digit at a time (11, 11, 10 bits) in shared memory, three passes, plus one
// ordered pass that finds where the prefix ends among tokens of exactly equal q. Masses are summed
// in fixed point (q * 2^40 in 64-bit integers): shared-memory atomics in any order give the same
// sums, so a seeded draw is reproducible. Every thread of the block must call these together.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

namespace sable::sampling::radix {

// A prefix of the order: kept when bits(q) > key, or == key with index <= last_tie.
struct Cut {
  uint32_t key = 0;
  int last_tie = INT_MAX;
  __device__ bool keeps(float q, int i) const {
    const uint32_t b = __float_as_uint(q);
    return b > key || (b == key && i <= last_tie);
  }
};

constexpr int kBuckets = 2048;

__device__ inline unsigned long long fixed_mass(float q) {
  return __float2ull_rd(q * 1099511627776.0f);  // q * 2^40, exact for q's 24-bit mantissa
}

// Sum of v over the block; every thread gets it. sh: 32 slots.
template <int kThreads>
__device__ unsigned long long block_sum_u64(unsigned long long v, unsigned long long* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < kThreads / 32 ? sh[threadIdx.x] : 0ull;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) sh[0] = v;
  }
  __syncthreads();
  v = sh[0];
  __syncthreads();
  return v;
}

// Exclusive scan of v over the block in thread order; every thread gets the block's total in
// *total. sh: 32 slots.
template <int kThreads>
__device__ unsigned long long block_exclusive_scan_u64(unsigned long long v, unsigned long long* sh,
                                                       unsigned long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long x = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += x;
  }
  __syncthreads();
  if (lane == 31) sh[warp] = incl;
  __syncthreads();
  unsigned long long before = incl - v, all = 0;
  for (int w = 0; w < kThreads / 32; ++w) {
    const unsigned long long x = sh[w];
    before += w < warp ? x : 0ull;
    all += x;
  }
  __syncthreads();
  *total = all;
  return before;
}

struct Shared {
  unsigned int count[kBuckets];
  unsigned long long mass[kBuckets];
  unsigned long long sums[32];
  unsigned long long need;
  int boundary;
  int last_tie;
};

// The fixed-point mass of the tokens `within` keeps.
template <int kThreads, class Q>
__device__ unsigned long long kept_mass(Q q, int64_t vocab, const Cut& within, Shared& sh) {
  unsigned long long m = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = q(i);
    if (within.keeps(v, static_cast<int>(i))) m += fixed_mass(v);
  }
  return block_sum_u64<kThreads>(m, sh.sums);
}

// The shortest prefix (within `within`, itself a prefix) holding `need` tokens (kMass false) or
// `need` fixed-point mass (kMass true). need >= 1 and at most what `within` holds.
template <int kThreads, bool kMass, class Q>
__device__ Cut cut_prefix(Q q, int64_t vocab, const Cut& within, unsigned long long need,
                          Shared& sh) {
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kMask[3] = {0x7ff, 0x7ff, 0x3ff};
  const int tid = threadIdx.x;
  uint32_t prefix = 0;
#pragma unroll
  for (int level = 0; level < 3; ++level) {
    const int shift = kShift[level];
    const uint32_t mask = kMask[level];
    for (int b = tid; b < kBuckets; b += kThreads) {
      sh.count[b] = 0;
      sh.mass[b] = 0;
    }
    __syncthreads();
    // Runs of one digit are added at once: a flat row's tokens share their upper digits, and one
    // shared atomic per token on one address would serialize the block.
    int run = -1;
    unsigned int run_count = 0;
    unsigned long long run_mass = 0;
    for (int64_t i = tid; i < vocab; i += kThreads) {
      const float v = q(i);
      const uint32_t b = __float_as_uint(v);
      if (!within.keeps(v, static_cast<int>(i))) continue;
      if (level > 0 && (b >> kShift[level - 1]) != (prefix >> kShift[level - 1])) continue;
      const int d = static_cast<int>((b >> shift) & mask);
      if (d != run) {
        if (run >= 0) {
          atomicAdd(&sh.count[run], run_count);
          if (kMass) atomicAdd(&sh.mass[run], run_mass);
        }
        run = d;
        run_count = 0;
        run_mass = 0;
      }
      ++run_count;
      if (kMass) run_mass += fixed_mass(v);
    }
    if (run >= 0) {
      atomicAdd(&sh.count[run], run_count);
      if (kMass) atomicAdd(&sh.mass[run], run_mass);
    }
    __syncthreads();
    // The boundary digit, from the largest down: warp 0, 64 buckets a lane (lane 0 the largest).
    if (tid < 32) {
      constexpr int kPerLane = kBuckets / 32;
      const int top = kBuckets - 1 - tid * kPerLane;
      auto weight = [&](int b) -> unsigned long long {
        return kMass ? sh.mass[b] : static_cast<unsigned long long>(sh.count[b]);
      };
      unsigned long long mine = 0;
      for (int k = 0; k < kPerLane; ++k) mine += weight(top - k);
      unsigned long long incl = mine;  // inclusive scan over lanes
      for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long x = __shfl_up_sync(0xffffffffu, incl, o);
        if (tid >= o) incl += x;
      }
      const unsigned reach = __ballot_sync(0xffffffffu, incl >= need);
      const int lane = reach ? __ffs(reach) - 1 : 31;
      if (tid == lane) {
        unsigned long long acc = incl - mine;
        int boundary = -1;
        for (int k = 0; k < kPerLane; ++k) {
          const int b = top - k;
          if (sh.count[b] == 0) continue;
          boundary = b;
          if (acc + weight(b) >= need) break;
          acc += weight(b);
        }
        sh.boundary = boundary < 0 ? 0 : boundary;
        sh.need = need - acc;
      }
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(sh.boundary) << shift;
    need = sh.need;
    __syncthreads();
  }
  // The prefix ends among the tokens whose bits equal `prefix`: the first `keep` in index order.
  unsigned long long keep = need;
  if (kMass) {
    const unsigned long long each = fixed_mass(__uint_as_float(prefix));
    keep = each == 0 ? 1 : (need + each - 1) / each;
  }
  // Contiguous chunks a thread, counted, scanned in thread order, then walked by the thread whose
  // chunk holds the keep-th tie.
  const int64_t chunk = (vocab + kThreads - 1) / kThreads;
  const int64_t c0 = tid * chunk, c1 = c0 + chunk < vocab ? c0 + chunk : vocab;
  unsigned long long ties = 0;
  for (int64_t i = c0; i < c1; ++i) {
    const float v = q(i);
    ties += __float_as_uint(v) == prefix && within.keeps(v, static_cast<int>(i));
  }
  if (tid == 0) sh.last_tie = INT_MAX;
  unsigned long long all_ties = 0;
  const unsigned long long before = block_exclusive_scan_u64<kThreads>(ties, sh.sums, &all_ties);
  if (ties > 0 && before < keep && keep <= before + ties) {
    unsigned long long seen = before;
    for (int64_t i = c0; i < c1; ++i) {
      const float v = q(i);
      if (__float_as_uint(v) == prefix && within.keeps(v, static_cast<int>(i)) && ++seen == keep) {
        sh.last_tie = static_cast<int>(i);
        break;
      }
    }
  }
  __syncthreads();
  Cut cut;
  cut.key = prefix;
  cut.last_tie = sh.last_tie;
  __syncthreads();
  return cut;
}

}  // namespace sable::sampling::radix
