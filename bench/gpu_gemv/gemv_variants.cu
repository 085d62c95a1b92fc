// Finds the fastest skinny-GEMM (decode, M <= 8) shape for streaming bf16 weights on this card.
//
// The production kernel (core/ops/cuda/gemv_kernels.cu) reaches 2.5-3.3 TB/s of the 4.2 TB/s copy
// bandwidth on the Llama-3.1-8B projections (bench/NOTES.md, v5). This bench times variants of it
// side by side — rows per warp, 16-byte loads in flight per lane, the load's cache hints, a
// persistent grid — each inside a CUDA graph of back-to-back launches that cycle through enough
// weight copies to defeat the 50 MB L2 (as a decode step sees its weights: once, cold), and
// checks each against the production kernel's output. Also split-K warps (several warps a row)
// (The production form of a bulk-copy ring, v14, was measured slower in v18 and removed.)
//   usage: sable_gemv_variants [m]   (default 1)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/gemv_common.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/tensor.h"

namespace {

#define CHECK(x)                                                                         \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

using sable::ops::cuda::dot8;
using sable::ops::cuda::load_weight;
using sable::ops::cuda::warp_sum;

// kMode 0 and 1: the production kernel's loads (load_weight); 2: ld.global.nc.L1::no_allocate
// without the L2 fetch-size hint.
template <int kMode>
__device__ __forceinline__ uint4 load_w(const uint4* p) {
  if constexpr (kMode < 2) {
    return load_weight<kMode>(p);
  } else {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
  }
}

// kW warps per block; each warp owns kR consecutive rows at a time and walks the grid's rows with
// a stride of the whole grid (one pass when the grid covers every row, a persistent loop when not).
template <int kM, int kW, int kR, int kU, int kMode>
__global__ void __launch_bounds__(kW * 32)
    gemv_variant(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                 float* __restrict__ out, int64_t n, int64_t k) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * kW;
  const int64_t kv = k / 8;
  for (int64_t row0 = (int64_t(blockIdx.x) * kW + (threadIdx.x >> 5)) * kR; row0 < n;
       row0 += warps * kR) {
    float acc[kR][kM];
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int m = 0; m < kM; ++m) acc[r][m] = 0.0f;
    for (int64_t i = lane; i < kv; i += 32 * kU) {
      uint4 wv[kR][kU];
#pragma unroll
      for (int r = 0; r < kR; ++r)
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          const int64_t c = i + 32 * u;
          wv[r][u] = (c < kv && row0 + r < n)
                         ? load_w<kMode>(reinterpret_cast<const uint4*>(w + (row0 + r) * k) + c)
                         : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int64_t c = i + 32 * u;
        if (c >= kv) break;
#pragma unroll
        for (int m = 0; m < kM; ++m) {
          const uint4 xv = *reinterpret_cast<const uint4*>(x + m * k + c * 8);
#pragma unroll
          for (int r = 0; r < kR; ++r) acc[r][m] += dot8(wv[r][u], xv);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        const float s = warp_sum(acc[r][m]);
        if (lane == 0 && row0 + r < n) out[m * n + row0 + r] = s;
      }
  }
}

// Split K: kS warps of a block share each row, each over a contiguous K slice (4 loads in flight a
// lane), their sums met in shared memory. Long rows (the 8B down projection, K 14336) then cost a
// few round trips per warp instead of fourteen, and more warps stream each row.
template <int kM, int kW, int kS>
__global__ void __launch_bounds__(kW * 32)
    gemv_splitk(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                float* __restrict__ out, int64_t n, int64_t k) {
  constexpr int kRowsPerBlock = kW / kS;
  __shared__ float part[kW][kM];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slice = warp % kS;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + warp / kS;
  const int64_t kv = k / 8;
  const int64_t per = (kv + kS - 1) / kS;
  const int64_t lo = slice * per, hi = lo + per < kv ? lo + per : kv;
  float acc[kM];
#pragma unroll
  for (int m = 0; m < kM; ++m) acc[m] = 0.0f;
  if (row < n) {
    const uint4* wr = reinterpret_cast<const uint4*>(w + row * k);
    for (int64_t i = lo + lane; i < hi; i += 32 * 4) {
      uint4 wv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
        wv[u] = i + 32 * u < hi ? load_w<1>(wr + i + 32 * u) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (i + 32 * u >= hi) break;
#pragma unroll
        for (int m = 0; m < kM; ++m)
          acc[m] += dot8(wv[u], *reinterpret_cast<const uint4*>(x + m * k + (i + 32 * u) * 8));
      }
    }
  }
#pragma unroll
  for (int m = 0; m < kM; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) part[warp][m] = v;
  }
  __syncthreads();
  if (slice == 0 && lane < kM && row < n) {
    float v = 0.0f;
    for (int s2 = 0; s2 < kS; ++s2) v += part[warp + s2][lane];
    out[int64_t(lane) * n + row] = v;
  }
}

template <int kM, int kW, int kS>
void launch_splitk(const __nv_bfloat16* x, const __nv_bfloat16* w, float* out, int64_t n, int64_t k,
                   cudaStream_t s) {
  const int64_t blocks = (n + kW / kS - 1) / (kW / kS);
  gemv_splitk<kM, kW, kS><<<unsigned(blocks), kW * 32, 0, s>>>(x, w, out, n, k);
}

__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t v = uint32_t(i) * 2654435761u ^ seed;
    v ^= v >> 13;
    p[i] = 0x3c00 + (v & 0x3ff) - 0x200;
  }
}

struct Shape {
  const char* name;
  int64_t n, k;
};

using Launch = void (*)(const __nv_bfloat16*, const __nv_bfloat16*, float*, int64_t, int64_t,
                        cudaStream_t);

template <int kM, int kW, int kR, int kU, int kMode, int kPersist>
void launch_variant(const __nv_bfloat16* x, const __nv_bfloat16* w, float* out, int64_t n,
                    int64_t k, cudaStream_t s) {
  auto kernel = gemv_variant<kM, kW, kR, kU, kMode>;
  int64_t blocks = (n + kW * kR - 1) / (kW * kR);
  if (kPersist) {
    static int cap = [&] {
      int per_sm = 0, sms = 0, dev = 0;
      cudaGetDevice(&dev);
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kW * 32, 0);
      return per_sm * sms;
    }();
    blocks = std::min<int64_t>(blocks, cap);
  }
  kernel<<<unsigned(blocks), kW * 32, 0, s>>>(x, w, out, n, k);
}

template <int kM>
void production(const __nv_bfloat16* x, const __nv_bfloat16* w, float* out, int64_t n, int64_t k,
                cudaStream_t s) {
  sable::ops::cuda::gemv_bf16(x, k, w, nullptr, out, SABLE_DTYPE_F32, kM, n, k, s);
}

struct Variant {
  std::string name;
  Launch fn;
};

template <int kM>
std::vector<Variant> variants() {
  return {
      {"production", production<kM>},
      {"w4 r1 u4 ldg", launch_variant<kM, 4, 1, 4, 0, 0>},
      {"w4 r1 u4 nc256", launch_variant<kM, 4, 1, 4, 1, 0>},
      {"w4 r1 u8 nc256", launch_variant<kM, 4, 1, 8, 1, 0>},
      {"w4 r2 u4 nc256", launch_variant<kM, 4, 2, 4, 1, 0>},
      {"w4 r2 u8 nc256", launch_variant<kM, 4, 2, 8, 1, 0>},
      {"w4 r4 u4 nc256", launch_variant<kM, 4, 4, 4, 1, 0>},
      {"w8 r2 u4 nc256", launch_variant<kM, 8, 2, 4, 1, 0>},
      {"w4 r1 u8 nc", launch_variant<kM, 4, 1, 8, 2, 0>},
      {"persist w4 r1 u8 nc256", launch_variant<kM, 4, 1, 8, 1, 1>},
      {"persist w4 r2 u4 nc256", launch_variant<kM, 4, 2, 4, 1, 1>},
      {"persist w8 r2 u8 nc256", launch_variant<kM, 8, 2, 8, 1, 1>},
      {"splitk w8 s2", launch_splitk<kM, 8, 2>},
      {"splitk w8 s4", launch_splitk<kM, 8, 4>},
      {"splitk w8 s8", launch_splitk<kM, 8, 8>},
  };
}

template <int kM>
void run_all(const std::vector<Shape>& shapes) {
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const auto vs = variants<kM>();
  std::printf("M=%d  (GB/s of weight bytes; per-launch us in a graph of back-to-back launches)\n", kM);
  std::printf("%-26s", "variant");
  for (const auto& sh : shapes) std::printf(" %17s", sh.name);
  std::printf("\n");
  std::vector<std::vector<float>> ref(shapes.size());
  for (const auto& v : vs) {
    std::printf("%-26s", v.name.c_str());
    for (size_t si = 0; si < shapes.size(); ++si) {
      const auto& sh = shapes[si];
      const size_t bytes = size_t(sh.n) * sh.k * 2;
      const int copies = int(std::max<size_t>(2, (size_t(320) << 20) / bytes + 1));
      std::vector<__nv_bfloat16*> ws(copies);
      for (int c = 0; c < copies; ++c) {
        CHECK(cudaMalloc(&ws[c], bytes));
        fill<<<2048, 256, 0, s>>>(reinterpret_cast<uint16_t*>(ws[c]), bytes / 2, 7);  // same values
      }
      __nv_bfloat16* x;
      float* out;
      CHECK(cudaMalloc(&x, size_t(kM) * sh.k * 2));
      CHECK(cudaMalloc(&out, size_t(kM) * sh.n * 4));
      fill<<<64, 256, 0, s>>>(reinterpret_cast<uint16_t*>(x), size_t(kM) * sh.k, 11);
      v.fn(x, ws[0], out, sh.n, sh.k, s);
      CHECK(cudaStreamSynchronize(s));
      CHECK(cudaGetLastError());
      std::vector<float> got(size_t(kM) * sh.n);
      CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
      float worst = 0.0f;
      if (ref[si].empty()) {
        ref[si] = got;
      } else {
        for (size_t i = 0; i < got.size(); ++i)
          worst = std::max(worst, std::fabs(got[i] - ref[si][i]) / (std::fabs(ref[si][i]) + 1.0f));
      }
      const int launches = std::max(copies, 48);
      cudaGraph_t g;
      cudaGraphExec_t ge;
      CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
      for (int l = 0; l < launches; ++l) v.fn(x, ws[l % copies], out, sh.n, sh.k, s);
      CHECK(cudaStreamEndCapture(s, &g));
      CHECK(cudaGraphInstantiate(&ge, g, 0));
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      std::vector<float> t;
      for (int rep = 0; rep < 6; ++rep) {
        cudaEventRecord(a, s);
        cudaGraphLaunch(ge, s);
        cudaEventRecord(b, s);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        if (rep > 0) t.push_back(ms);
      }
      std::sort(t.begin(), t.end());
      const double us = t[t.size() / 2] * 1e3 / launches;
      std::printf(" %6.0f %5.1fus%s", bytes / (us * 1e-6) / 1e9, us, worst > 1e-3 ? "!" : " ");
      cudaGraphExecDestroy(ge);
      cudaGraphDestroy(g);
      for (auto* p : ws) cudaFree(p);
      cudaFree(x);
      cudaFree(out);
    }
    std::printf("\n");
  }
  cudaStreamDestroy(s);
}

}  // namespace

int main(int argc, char** argv) {
  const int m = argc > 1 ? std::atoi(argv[1]) : 1;
  const std::vector<Shape> shapes = {
      {"8b.qkv", 6144, 4096},   {"8b.o", 4096, 4096},    {"8b.gate_up", 28672, 4096},
      {"8b.down", 4096, 14336}, {"8b.lm_head", 128256, 4096}, {"05.qkv", 1152, 896},
      {"05.gate_up", 9728, 896}, {"05.down", 896, 4864}, {"05.lm_head", 151936, 896}};
  if (m == 1) run_all<1>(shapes);
  else if (m == 4) run_all<4>(shapes);
  else run_all<8>(shapes);
  return 0;
}
