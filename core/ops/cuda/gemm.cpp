// cuBLASLt-backed GEMM (see gemm.h). Row-major out = x · wᵀ is computed as the column-major
// product outᵀ[N,M] = w(opT)[N,K] · xᵀ[K,M], so no transposed copies are ever made.
#include "core/ops/cuda/gemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/ops/cuda/kernels.h"
#include "sable/tensor.h"

namespace sable::ops::cuda {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

// SABLE_GEMM_TUNE=1 (opt-in until measured): the first call of a small-batch shape (9 to
// kTuneMaxM rows: decode and short prefills, where cuBLASLt's first choice streamed its weights
// at 64-86 % of copy bandwidth, bench/NOTES.md v12), when it is eager, times up to
// kTuneCandidates of the heuristic's algorithms on its own operands into a scratch output and
// keeps the fastest; a shape first met inside a graph capture keeps the heuristic's choice (so
// with the switch on, the runner runs each decode bucket once eagerly before capturing it).
// Either way the algorithm is fixed at a shape's first call: a GEMM's rounding may differ
// between runs (split-K or not), never between calls of one process, so eager and graph calls
// of one shape give the same bits. Each new shape's first eager call pays the timing (a few ms):
// short prefills of new lengths too, one reason it is not the default.
constexpr int kTuneCandidates = 8;
constexpr int64_t kTuneMaxM = 512;
constexpr int kTuneRuns = 5;
std::atomic<int64_t> g_timed{0}, g_untimed{0};

cudaDataType_t to_cuda(int32_t dtype) {
  switch (dtype) {
    case SABLE_DTYPE_BF16: return CUDA_R_16BF;
    case SABLE_DTYPE_F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int32_t, int32_t, bool>;

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  // The heuristic's candidates until the plan's first call (tune) has chosen among them.
  std::vector<cublasLtMatmulAlgo_t> candidates;
};

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::mutex mu;
  std::map<Key, Plan> plans;

  ~Impl() {
    for (auto& [k, p] : plans) {
      if (p.op) cublasLtMatmulDescDestroy(p.op);
      if (p.a) cublasLtMatrixLayoutDestroy(p.a);
      if (p.b) cublasLtMatrixLayoutDestroy(p.b);
      if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    }
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }

  Plan* plan_for(int64_t m, int64_t n, int64_t k, int64_t ldx, int32_t in, int32_t out,
                 bool fused_bias, std::string* error) {
    const Key key{m, n, k, ldx, in, out, fused_bias};
    auto it = plans.find(key);
    if (it != plans.end()) return &it->second;
    Plan p;
    cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
    if (fused_bias) {
      const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
      const cudaDataType_t bt = to_cuda(out);
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt));
    }
    cublasLtMatrixLayoutCreate(&p.a, to_cuda(in), k, n, k);    // w stored [N,K]: col-major K×N
    cublasLtMatrixLayoutCreate(&p.b, to_cuda(in), k, m, ldx);  // x stored [M,K]: col-major K×M
    cublasLtMatrixLayoutCreate(&p.c, to_cuda(out), n, m, n);   // out [M,N]: col-major N×M
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    size_t ws = kWorkspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                         sizeof(ws));
    cublasLtMatmulHeuristicResult_t results[kTuneCandidates] = {};
    const bool tune = gemm_tune_enabled() && m > 8 && m <= kTuneMaxM;
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        handle, p.op, p.a, p.b, p.c, p.c, pref, tune ? kTuneCandidates : 1, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    const cublasLtMatmulHeuristicResult_t& result = results[0];
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      *error = "cuBLASLt found no algorithm for gemm M=" + std::to_string(m) +
               " N=" + std::to_string(n) + " K=" + std::to_string(k);
      cublasLtMatmulDescDestroy(p.op);
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.c);
      return nullptr;
    }
    p.algo = result.algo;
    p.has_algo = true;
    if (found > 1)
      for (int i = 0; i < found; ++i)
        if (results[i].state == CUBLAS_STATUS_SUCCESS) p.candidates.push_back(results[i].algo);
    return &plans.emplace(key, p).first->second;
  }

  // Times p's candidates on these operands (beta 0, into a scratch output: out may be accumulated
  // into) and keeps the fastest in p->algo. Each timed run follows a write of twice the L2's size,
  // so the weights come from device memory as they do in a forward (an o projection's 32 MB fit
  // an H100's 50 MB L2 and would time L2 reads). Called once per plan, at its first call; while
  // `stream` is being captured (nothing may synchronize then) it times nothing and the heuristic's
  // first choice stays. Any CUDA failure keeps that choice too.
  void tune(Plan* p, const void* x, const void* w, int64_t m, int64_t n, int32_t out_dtype,
            cudaStream_t stream) {
    std::vector<cublasLtMatmulAlgo_t> candidates;
    candidates.swap(p->candidates);  // this call decides, whatever happens below
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess ||
        capture != cudaStreamCaptureStatusNone) {
      g_untimed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const size_t out_bytes = static_cast<size_t>(m * n) * (out_dtype == SABLE_DTYPE_F32 ? 4 : 2);
    int dev = 0, l2 = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
    const size_t flush_bytes = 2 * static_cast<size_t>(std::max(l2, 1 << 20));
    void *scratch = nullptr, *flush = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    if (cudaMalloc(&scratch, out_bytes) != cudaSuccess ||
        cudaMalloc(&flush, flush_bytes) != cudaSuccess || cudaEventCreate(&start) != cudaSuccess ||
        cudaEventCreate(&stop) != cudaSuccess) {
      cudaGetLastError();  // the failed allocation's error, not the next launch's to report
      g_untimed.fetch_add(1, std::memory_order_relaxed);
    } else {
      g_timed.fetch_add(1, std::memory_order_relaxed);
      const float alpha = 1.0f, beta = 0.0f;
      float best = 0.0f;
      for (const cublasLtMatmulAlgo_t& algo : candidates) {
        auto once = [&] {
          return cublasLtMatmul(handle, p->op, &alpha, w, p->a, x, p->b, &beta, scratch, p->c,
                                scratch, p->c, &algo, workspace, kWorkspaceBytes,
                                stream) == CUBLAS_STATUS_SUCCESS;
        };
        if (!once()) continue;  // warm-up; an algorithm that fails here is never chosen
        float ms[kTuneRuns] = {};
        bool ok = true;
        for (float& t : ms) {
          ok = ok && cudaMemsetAsync(flush, 0, flush_bytes, stream) == cudaSuccess &&
               cudaEventRecord(start, stream) == cudaSuccess && once() &&
               cudaEventRecord(stop, stream) == cudaSuccess &&
               cudaEventSynchronize(stop) == cudaSuccess &&
               cudaEventElapsedTime(&t, start, stop) == cudaSuccess;
        }
        if (!ok) continue;
        std::nth_element(ms, ms + kTuneRuns / 2, ms + kTuneRuns);
        if (best == 0.0f || ms[kTuneRuns / 2] < best) {
          best = ms[kTuneRuns / 2];
          p->algo = algo;
        }
      }
      cudaStreamSynchronize(stream);
    }
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    if (scratch != nullptr) cudaFree(scratch);
    if (flush != nullptr) cudaFree(flush);
  }
};

bool gemm_tune_enabled() {
  thread_local const bool on = [] {
    const char* v = std::getenv("SABLE_GEMM_TUNE");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

GemmTuneCounts gemm_tune_counts() {
  return {g_timed.load(std::memory_order_relaxed), g_untimed.load(std::memory_order_relaxed)};
}

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {}
Gemm::~Gemm() = default;

bool Gemm::run(const void* x, int64_t ldx, int32_t in_dtype, const void* w, const void* bias,
               void* out, int32_t out_dtype, int64_t m, int64_t n, int64_t k, void* stream,
               std::string* error, bool accumulate) {
  if (m == 0) return true;
  // Decode-sized problems: our bandwidth-bound skinny kernel (see gemv_kernels.cu).
  if (in_dtype == SABLE_DTYPE_BF16 && m <= 8 &&
      gemv_bf16(x, ldx, w, bias, out, out_dtype, m, n, k, stream, accumulate))
    return true;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->handle) {
    if (cublasLtCreate(&impl_->handle) != CUBLAS_STATUS_SUCCESS ||
        cudaMalloc(&impl_->workspace, kWorkspaceBytes) != cudaSuccess) {
      *error = "cuBLASLt initialisation failed";
      return false;
    }
  }
  const bool fused_bias = bias != nullptr && in_dtype == out_dtype;
  Plan* p = impl_->plan_for(m, n, k, ldx, in_dtype, out_dtype, fused_bias, error);
  if (!p) return false;
  if (fused_bias)
    cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
  if (!p->candidates.empty())
    impl_->tune(p, x, w, m, n, out_dtype, static_cast<cudaStream_t>(stream));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const cublasStatus_t st =
      cublasLtMatmul(impl_->handle, p->op, &alpha, w, p->a, x, p->b, &beta, out, p->c, out, p->c,
                     &p->algo, impl_->workspace, kWorkspaceBytes, static_cast<cudaStream_t>(stream));
  if (st != CUBLAS_STATUS_SUCCESS) {
    *error = "cublasLtMatmul failed with status " + std::to_string(static_cast<int>(st));
    return false;
  }
  if (bias != nullptr && !fused_bias) {
    // The caller passes a bias of the output dtype (it casts first when out is F32).
    return binary(0, out, bias, 1, n, out_dtype, m, n, out, stream);
  }
  return true;
}

}  // namespace sable::ops::cuda
