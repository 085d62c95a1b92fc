// The CUDA `lora` op's kernels: for each row t of the batch whose slot s = row_slot[t] is an
// adapter that targets this projection (rank r = slot_rank[s * COUNT + module] > 0),
//   shrink  tmp[t, j] = x[t, :] · A[s, j, :]          j < r      (one warp per (row, j))
//   expand  out[t, c] += sum_j tmp[t, j] · B[s, c, j]            (one thread per (row, column))
// with fp32 accumulation and tmp in fp32. This is the per-row (BGMV) form of the segmented
// shrink/expand: rows find their adapter through row_slot, so one launch serves every segment
// and the launch shape does not depend on the adapters (graph-capturable). Correct first, not
// tuned: bench/NOTES.md has the plan.
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/ops.h"

namespace sable::ops::cuda {
namespace {

constexpr int kShrinkWarps = 4;
constexpr int kExpandThreads = 256;
constexpr int kModules = SABLE_LORA_MODULE_COUNT;

template <class T>
__global__ void __launch_bounds__(kShrinkWarps * 32)
    lora_shrink(const T* __restrict__ x, int64_t ldx, const T* __restrict__ a, int64_t k,
                int32_t r_max, const int32_t* __restrict__ row_slot,
                const int32_t* __restrict__ slot_rank, int32_t module, int64_t tokens,
                float* __restrict__ tmp) {
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.y * kShrinkWarps + (threadIdx.x >> 5);
  if (j >= r_max) return;
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const int32_t slot = row_slot[t];
    float acc = 0.0f;
    if (slot >= 0 && j < slot_rank[slot * kModules + module]) {
      const T* arow = a + (static_cast<int64_t>(slot) * r_max + j) * k;
      const T* xrow = x + t * ldx;
      for (int64_t i = lane; i < k; i += 32) acc = fmaf(to_f32(xrow[i]), to_f32(arow[i]), acc);
      acc = warp_sum(acc);
    }
    if (lane == 0) tmp[t * r_max + j] = acc;
  }
}

template <class T>
__global__ void __launch_bounds__(kExpandThreads)
    lora_expand(const float* __restrict__ tmp, const T* __restrict__ b, int64_t n, int32_t r_max,
                const int32_t* __restrict__ row_slot, const int32_t* __restrict__ slot_rank,
                int32_t module, int64_t tokens, T* __restrict__ out, int64_t ldo) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kExpandThreads + threadIdx.x;
  if (c >= n) return;
  for (int64_t t = blockIdx.y; t < tokens; t += gridDim.y) {
    const int32_t slot = row_slot[t];
    if (slot < 0) continue;
    const int32_t rank = slot_rank[slot * kModules + module];
    if (rank == 0) continue;
    const T* brow = b + (static_cast<int64_t>(slot) * n + c) * r_max;
    const float* s = tmp + t * r_max;
    float acc = 0.0f;
    for (int32_t j = 0; j < rank; ++j) acc = fmaf(s[j], to_f32(brow[j]), acc);
    T* o = out + t * ldo + c;
    *o = from_f32<T>(to_f32(*o) + acc);
  }
}

}  // namespace

bool lora_shrink_expand(const void* x, int64_t ldx, const void* a, const void* b, int32_t dtype,
                        int64_t tokens, int64_t k, int64_t n, int32_t r_max,
                        const int32_t* row_slot, const int32_t* slot_rank, int32_t module,
                        float* tmp, void* out, int64_t ldo, void* stream) {
  if (tokens <= 0 || n <= 0 || r_max <= 0) return true;
  if (module < 0 || module >= kModules) return false;
  const cudaStream_t s = as_stream(stream);
  const unsigned row_blocks = static_cast<unsigned>(tokens < 65535 ? tokens : 65535);
  return dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const dim3 sgrid(static_cast<unsigned>(tokens < (1LL << 30) ? tokens : (1LL << 30)),
                     static_cast<unsigned>((r_max + kShrinkWarps - 1) / kShrinkWarps));
    lora_shrink<T><<<sgrid, kShrinkWarps * 32, 0, s>>>(static_cast<const T*>(x), ldx,
                                                       static_cast<const T*>(a), k, r_max,
                                                       row_slot, slot_rank, module, tokens, tmp);
    const dim3 egrid(static_cast<unsigned>((n + kExpandThreads - 1) / kExpandThreads), row_blocks);
    lora_expand<T><<<egrid, kExpandThreads, 0, s>>>(tmp, static_cast<const T*>(b), n, r_max,
                                                     row_slot, slot_rank, module, tokens,
                                                     static_cast<T*>(out), ldo);
  });
}

}  // namespace sable::ops::cuda
