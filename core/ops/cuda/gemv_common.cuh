// Device helpers of the skinny (decode) GEMMs: gemv_kernels.cu, gemv_fused_kernels.cu and the
// variant bench (bench/gpu_gemv) stream bf16 weight rows with 16-byte loads and dot them against
// bf16 activations. Included only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace sable::ops::cuda {

// Weight loads. kHint 0: through the read-only cache (__ldg). kHint 1: no L1 allocation (each
// weight byte is read once) and a 256-byte L2 fetch per miss, so a warp's 512-byte sweep of a row
// costs two DRAM requests instead of four.
template <int kHint>
__device__ __forceinline__ uint4 load_weight(const uint4* p) {
  if constexpr (kHint == 0) {
    return __ldg(p);
  } else {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
  }
}

// Dot product of 8 bf16 pairs (one 16-byte vector of each side), fp32 accumulation.
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
  const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* y = reinterpret_cast<const __nv_bfloat162*>(&b);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fx = __bfloat1622float2(x[i]), fy = __bfloat1622float2(y[i]);
    s = fmaf(fx.x, fy.x, s);
    s = fmaf(fx.y, fy.y, s);
  }
  return s;
}

}  // namespace sable::ops::cuda
