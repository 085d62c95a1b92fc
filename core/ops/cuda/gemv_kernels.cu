// Skinny GEMM for decode (M <= 8 rows of bf16 activations): out[M,N] = x[M,K] · w[N,K]ᵀ (+ bias),
// or out += that (accumulate: the residual add of o and down, rounded once).
//
// Decode GEMMs are bound by reading the weights once. cuBLASLt reaches 1.7-2.7 TB/s on these
// shapes on an H100 (bench/NOTES.md); this kernel streams each weight row with 16-byte loads,
// several in flight per lane, one warp per output row, and keeps all M accumulators in registers.
#include <cstdlib>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/gemv_common.cuh"
#include "core/ops/cuda/kernels.h"
#include "core/ops/weight_ranges.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kUnroll = 4;

// One warp per kR consecutive output rows: each x vector loaded serves kR weight rows, and
// kR * kUnroll 16-byte loads per lane are in flight at once.
template <int kM, int kR, int kHint, class TOut>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_kernel(const __nv_bfloat16* __restrict__ x, int64_t ldx,
                const __nv_bfloat16* __restrict__ w, const TOut* __restrict__ bias,
                TOut* __restrict__ out, int64_t n, int64_t k, bool early, bool accumulate,
                bool tail_batch) {
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5)) * kR;
  const int rows = row0 < n ? int(n - row0 < kR ? n - row0 : kR) : 0;
  const int64_t kv = k / 8;  // 16-byte vectors per row
  const uint4* wr[kR];
#pragma unroll
  for (int r = 0; r < kR; ++r)
    wr[r] = reinterpret_cast<const uint4*>(w + (row0 + min(r, max(rows, 1) - 1)) * k);
  // The first batch of weight loads goes out before the wait as well (into registers: they are
  // used by the first iteration below), so the DRAM has work while the predecessor drains.
  uint4 wv[kR][kUnroll];
  // With tail_batch a lane's last batch may be partial (its loads past the row predicated off), so
  // a row of 3.5 batches a lane (K 896: the 0.5B LM head) is one round trip for every lane;
  // without it (the A/B), lanes without a whole batch left go to the one-load loop below, one
  // round trip a load.
  const int64_t short_by = tail_batch ? 0 : 32 * (kUnroll - 1);
  auto load_batch = [&](int64_t base) {
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (base + 32 * u < kv) wv[r][u] = load_weight<kHint>(wr[r] + base + 32 * u);
  };
  const bool early_loads = early && rows > 0 && lane + short_by < kv;
  if (early_loads) load_batch(lane);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (rows == 0) return;
  float acc[kR][kM];
#pragma unroll
  for (int r = 0; r < kR; ++r)
#pragma unroll
    for (int m = 0; m < kM; ++m) acc[r][m] = 0.0f;
  int64_t i = lane;
  for (; i + short_by < kv; i += 32 * kUnroll) {
    if (!early_loads || i != lane) load_batch(i);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (i + 32 * u >= kv) break;
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        const uint4 xv = *reinterpret_cast<const uint4*>(x + m * ldx + (i + 32 * u) * 8);
#pragma unroll
        for (int r = 0; r < kR; ++r) acc[r][m] += dot8(wv[r][u], xv);
      }
    }
  }
  for (; i < kv; i += 32) {
    uint4 wv[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) wv[r] = load_weight<kHint>(wr[r] + i);
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      const uint4 xv = *reinterpret_cast<const uint4*>(x + m * ldx + i * 8);
#pragma unroll
      for (int r = 0; r < kR; ++r) acc[r][m] += dot8(wv[r], xv);
    }
  }
#pragma unroll
  for (int r = 0; r < kR; ++r)
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      const float s = warp_sum(acc[r][m]);
      if (lane == 0 && r < rows) {
        float b = bias ? to_f32(bias[row0 + r]) : 0.0f;
        if (accumulate) b += to_f32(out[m * n + row0 + r]);
        out[m * n + row0 + r] = from_f32<TOut>(s + b);
      }
    }
}

// A/B switches for the device runs (bench/NOTES.md v6), read once: SABLE_GEMV_PREFETCH=0|1,
// SABLE_GEMV_HINT=0|1, SABLE_GEMV_ROWS=1|2|4 (output rows per warp; unset: chosen per shape).
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? std::atoi(v) : fallback;
}

}  // namespace

bool gemv_cache_hint() {
  static const bool on = env_int("SABLE_GEMV_HINT", 1) == 1;
  return on;
}

bool gemv_early_loads(const void* w, int64_t n, int64_t k) {
  static const bool on = env_int("SABLE_GEMV_EARLY", 1) == 1;
  return on && is_weight_range(w, static_cast<size_t>(n * k) * 2);
}

int gemv_max_splits() {
  static const int n = env_int("SABLE_GEMV_MAX_SPLITS", 8) == 4 ? 4 : 8;
  return n;
}

namespace {

// SABLE_GEMV_TAIL_BATCH=0 (A/B, v20): a row's last partial batch of loads one load at a time.
bool gemv_tail_batch() {
  static const bool on = env_int("SABLE_GEMV_TAIL_BATCH", 1) == 1;
  return on;
}

template <int kR, int kHint, class TOut>
bool launch_variant(const __nv_bfloat16* x, int64_t ldx, const __nv_bfloat16* w, const TOut* bias,
                    TOut* out, int64_t m, int64_t n, int64_t k, bool acc, bool early,
                    cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((n + kWarpsPerBlock * kR - 1) / (kWarpsPerBlock * kR));
  switch (m) {
#define SABLE_GEMV_CASE(M)                                                                         \
  case M:                                                                                          \
    return sable::cuda::launch(gemv_kernel<M, kR, kHint, TOut>, blocks, kWarpsPerBlock * 32, 0, s, \
                               x, ldx, w, bias, out, n, k, early, acc,                             \
                               gemv_tail_batch()) == cudaSuccess;
    SABLE_GEMV_CASE(1) SABLE_GEMV_CASE(2) SABLE_GEMV_CASE(3) SABLE_GEMV_CASE(4)
    SABLE_GEMV_CASE(5) SABLE_GEMV_CASE(6) SABLE_GEMV_CASE(7) SABLE_GEMV_CASE(8)
#undef SABLE_GEMV_CASE
    default: return false;
  }
}

// Warps of the one-row, one-x-row kernel that the GPU holds at once.
int64_t resident_warps_m1() {
  static const int64_t warps = [] {
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, gemv_kernel<1, 1, 1, __nv_bfloat16>,
                                                      kWarpsPerBlock * 32, 0) != cudaSuccess)
      blocks = 0;
    return int64_t(blocks) * kWarpsPerBlock * sm_count();
  }();
  return warps;
}

// Output rows per warp. The v6 variant bench (bench/gpu_gemv, H100): one row is best for a single
// x row; with more rows each x vector loaded serves several weight rows, and 2 rows (4 on long
// K) gained 1.3-2.3x at M = 8 over one. One x row takes two rows a warp where one would leave a
// second, partial wave of warps (v21, H100: Llama-3.2-1B batch 1 -1.1 %; the 8B, whose q|k|v it
// was meant for, unchanged). SABLE_GEMV_WAVE_ROWS=0: one row a warp (A/B).
int rows_per_warp(int64_t m, int64_t n, int64_t k) {
  static const int forced = env_int("SABLE_GEMV_ROWS", 0);
  static const bool wave_rows = env_int("SABLE_GEMV_WAVE_ROWS", 1) != 0;
  if (forced == 1 || forced == 2 || forced == 4) return forced;
  if (m == 1) {
    const int64_t resident = wave_rows ? resident_warps_m1() : 0;
    return resident > 0 && n > resident && n <= 2 * resident ? 2 : 1;
  }
  return m > 4 && k >= 4096 ? 4 : 2;
}

template <int kR, class TOut>
bool launch_rows(const __nv_bfloat16* x, int64_t ldx, const __nv_bfloat16* w, const TOut* bias,
                 TOut* out, int64_t m, int64_t n, int64_t k, bool acc, bool early, cudaStream_t s) {
  return gemv_cache_hint() ? launch_variant<kR, 1>(x, ldx, w, bias, out, m, n, k, acc, early, s)
                           : launch_variant<kR, 0>(x, ldx, w, bias, out, m, n, k, acc, early, s);
}

template <class TOut>
bool launch(const void* x, int64_t ldx, const void* w, const void* bias, void* out, int64_t m,
            int64_t n, int64_t k, bool acc, cudaStream_t s) {
  const bool early = gemv_early_loads(w, n, k);
  auto xp = static_cast<const __nv_bfloat16*>(x);
  auto wp = static_cast<const __nv_bfloat16*>(w);
  auto bp = static_cast<const TOut*>(bias);
  auto op = static_cast<TOut*>(out);
  switch (rows_per_warp(m, n, k)) {
    case 4:
      return launch_rows<4>(xp, ldx, wp, bp, op, m, n, k, acc, early, s);
    case 2:
      return launch_rows<2>(xp, ldx, wp, bp, op, m, n, k, acc, early, s);
    default:
      return launch_rows<1>(xp, ldx, wp, bp, op, m, n, k, acc, early, s);
  }
}

}  // namespace

bool gemv_bf16(const void* x, int64_t ldx, const void* w, const void* bias, void* out,
               int32_t out_dtype, int64_t m, int64_t n, int64_t k, void* stream, bool accumulate) {
  if (m < 1 || m > 8 || k % 8 != 0 || ldx % 8 != 0 || !aligned16(x) || !aligned16(w)) return false;
  if (out_dtype == SABLE_DTYPE_BF16)
    return launch<__nv_bfloat16>(x, ldx, w, bias, out, m, n, k, accumulate, as_stream(stream));
  if (out_dtype == SABLE_DTYPE_F32)
    return launch<float>(x, ldx, w, bias, out, m, n, k, accumulate, as_stream(stream));
  return false;
}

}  // namespace sable::ops::cuda
