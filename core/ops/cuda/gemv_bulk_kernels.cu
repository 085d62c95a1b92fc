// The skinny GEMM (decode, M <= 8 rows of bf16 activations) on Hopper's bulk copy engine:
// out[M,N] = x[M,K] · w[N,K]ᵀ (+ bias), or out += that, behind SABLE_GEMV_BULK=1 (A/B; not yet
// measured on a GPU, bench/NOTES.md v14).
//
// Why: the register-streaming kernel (gemv_kernels.cu) reaches 70-91 % of copy bandwidth on the
// 8B projections; each warp's bytes in flight are its registers, and a warp walks its row in
// dependent round trips (down's 28 KB rows: fourteen). Here a persistent grid of two blocks per
// SM streams whole rows into a ring of shared-memory stages with 1-D bulk copies (bulk_copy.cuh),
// issued by one producer warp; the ring (~96 KB a block) is what is in flight, at no register
// cost. Four consumer warps each dot a quarter of a row against x and meet in shared memory. For
// checkpoint weights (core/ops/weight_ranges.h) the producer starts before the wait on the
// previous kernel, so under PDL the ring fills during that kernel's tail.
// Each block owns a contiguous range of rows, so its copies walk memory in order.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/ops/cuda/bulk_copy.cuh"
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/gemv_common.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kConsumers = 4;
constexpr int kMaxStages = 16;
constexpr size_t kRingBytes = size_t(96) << 10;  // two blocks an SM

template <int kM, class TOut>
__global__ void __launch_bounds__((kConsumers + 1) * 32)
    gemv_bulk_kernel(const __nv_bfloat16* __restrict__ x, int64_t ldx,
                     const __nv_bfloat16* __restrict__ w, const TOut* __restrict__ bias,
                     TOut* __restrict__ out, int64_t n, int64_t k, int stages, bool weights_early,
                     bool accumulate) {
  extern __shared__ __align__(128) unsigned char ring[];
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];
  __shared__ float part[2][kConsumers][kM];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const uint32_t row_bytes = uint32_t(k * 2);
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], kConsumers);
    }
    mbar_init_fence();
  }
  __syncthreads();
  const int64_t per_block = (n + gridDim.x - 1) / gridDim.x;
  const int64_t r0 = int64_t(blockIdx.x) * per_block;
  const int64_t rows_here = r0 < n ? (n - r0 < per_block ? n - r0 : per_block) : 0;
  if (warp == kConsumers) {  // the producer: one lane issues every copy of the block
    if (!weights_early) sable::cuda::wait_for_predecessor();
    if (lane == 0) {
      for (int64_t i = 0; i < rows_here; ++i) {
        const int s = int(i % stages);
        if (i >= stages) mbar_wait(&empty[s], uint32_t((i / stages - 1) & 1));
        mbar_expect_tx(&full[s], row_bytes);
        bulk_copy(ring + size_t(s) * row_bytes, w + (r0 + i) * k, row_bytes, &full[s]);
      }
    }
    return;
  }
  sable::cuda::wait_for_predecessor();  // x (and out when accumulating) come from it
  sable::cuda::allow_dependents();
  const int64_t per = k / 8 / kConsumers;  // 16-byte vectors of a row a consumer warp takes
  const int64_t col0 = int64_t(warp) * per;
  for (int64_t i = 0; i < rows_here; ++i) {
    const int s = int(i % stages);
    mbar_wait(&full[s], uint32_t((i / stages) & 1));
    const uint4* st = reinterpret_cast<const uint4*>(ring + size_t(s) * row_bytes) + col0;
    float acc[kM];
#pragma unroll
    for (int m = 0; m < kM; ++m) acc[m] = 0.0f;
    for (int64_t j = lane; j < per; j += 32) {
      const uint4 wv = st[j];
#pragma unroll
      for (int m = 0; m < kM; ++m)
        acc[m] += dot8(wv, *reinterpret_cast<const uint4*>(x + m * ldx + (col0 + j) * 8));
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[s]);  // this warp is done with the stage
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) part[i & 1][warp][m] = v;
    }
    // The consumers meet once a row (named barrier 1; the producer warp is not in it). part is
    // double-buffered: a warp writes row i + 1's slot only after this barrier, and row i + 2's
    // (this slot again) only after the next one, which warp 0 reaches after reading this slot.
    asm volatile("bar.sync 1, %0;" ::"r"(kConsumers * 32));
    if (warp == 0 && lane < kM) {
      const int64_t row = r0 + i;
      float v = 0.0f;
#pragma unroll
      for (int c = 0; c < kConsumers; ++c) v += part[i & 1][c][lane];
      if (bias != nullptr) v += to_f32(bias[row]);
      if (accumulate) v += to_f32(out[int64_t(lane) * n + row]);
      out[int64_t(lane) * n + row] = from_f32<TOut>(v);
    }
  }
}

template <int kM, class TOut>
bool launch_m(const void* x, int64_t ldx, const void* w, const void* bias, void* out, int64_t n,
              int64_t k, bool accumulate, cudaStream_t s) {
  static const bool sized =
      cudaFuncSetAttribute(gemv_bulk_kernel<kM, TOut>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           int(kRingBytes)) == cudaSuccess;
  if (!sized) return false;
  const size_t row_bytes = size_t(k) * 2;
  const int stages = int(std::min<size_t>(kMaxStages, kRingBytes / row_bytes));
  const int64_t blocks = std::min<int64_t>(n, sm_count() * 2);
  const bool early = gemv_early_loads(w, n, k);
  return sable::cuda::launch(
             gemv_bulk_kernel<kM, TOut>, dim3(unsigned(blocks)), dim3((kConsumers + 1) * 32),
             size_t(stages) * row_bytes, s, static_cast<const __nv_bfloat16*>(x), ldx,
             static_cast<const __nv_bfloat16*>(w), static_cast<const TOut*>(bias),
             static_cast<TOut*>(out), n, k, stages, early, accumulate) == cudaSuccess;
}

template <class TOut>
bool launch(const void* x, int64_t ldx, const void* w, const void* bias, void* out, int64_t m,
            int64_t n, int64_t k, bool accumulate, cudaStream_t s) {
  switch (m) {
#define SABLE_BULK_CASE(M) \
  case M:                  \
    return launch_m<M, TOut>(x, ldx, w, bias, out, n, k, accumulate, s);
    SABLE_BULK_CASE(1)
    SABLE_BULK_CASE(2) SABLE_BULK_CASE(3) SABLE_BULK_CASE(4) SABLE_BULK_CASE(5) SABLE_BULK_CASE(6)
        SABLE_BULK_CASE(7) SABLE_BULK_CASE(8)
#undef SABLE_BULK_CASE
            default : return false;
  }
}

}  // namespace

bool gemv_bulk_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SABLE_GEMV_BULK");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

bool gemv_bulk_bf16(const void* x, int64_t ldx, const void* w, const void* bias, void* out,
                    int32_t out_dtype, int64_t m, int64_t n, int64_t k, void* stream,
                    bool accumulate) {
  // Each consumer takes a quarter of a row in 16-byte vectors; at least two stages in the ring.
  if (m < 1 || m > 8 || n < 1 || k % 32 != 0 || size_t(k) * 2 * 2 > kRingBytes || ldx % 8 != 0 ||
      !aligned16(x) || !aligned16(w))
    return false;
  if (out_dtype == SABLE_DTYPE_BF16)
    return launch<__nv_bfloat16>(x, ldx, w, bias, out, m, n, k, accumulate, as_stream(stream));
  if (out_dtype == SABLE_DTYPE_F32)
    return launch<float>(x, ldx, w, bias, out, m, n, k, accumulate, as_stream(stream));
  return false;
}

}  // namespace sable::ops::cuda
