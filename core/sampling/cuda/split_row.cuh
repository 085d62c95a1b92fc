// How the device sampler's kernels split a row over blocks (sample_kernel.cu, cut_kernels.cu):
// the slices, and the ticket that lets the row's last block to finish go on alone. CUDA C++ only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sable::sampling {

// The length of each split's slice of a row of `vocab` over `splits` blocks: a multiple of 128
// logits; the last slice may be shorter (or empty).
__device__ __forceinline__ int64_t split_slice(int64_t vocab, int splits) {
  return ((vocab + splits - 1) / splits + 127) / 128 * 128;
}

// Whether this block is the row's (blockIdx.x's) last of its launch to finish; every block's global
// writes before the call are visible to that one after it. Resets the row's ticket for the next
// launch (graph replays too). Every thread of the block calls it; with one split it is true.
__device__ inline bool last_of_row(uint32_t* tickets) {
  __shared__ bool last;
  if (gridDim.y == 1) return true;
  __threadfence();  // this block's writes before its ticket
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&tickets[blockIdx.x], 1u) == gridDim.y - 1;
  __syncthreads();
  if (!last) return false;
  __threadfence();  // the other blocks' writes after their tickets
  if (threadIdx.x == 0) tickets[blockIdx.x] = 0;
  return true;
}

}  // namespace sable::sampling
