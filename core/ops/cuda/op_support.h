// What the files of the CUDA ops table share (internal to core/ops/cuda): the op error and
// `require`, `run_op` (an op body's exceptions and CUDA errors into a status and the context's
// error text), the checks of tensor views, the process's GEMM engine, and the ops defined outside
// cuda_ops.cpp (lora_ops.cpp, moe_ops.cpp) that its table names.
// Thread-safety: as SableOps (one context per thread); gemm_engine() is per process.
#pragma once

#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cuda/gemm.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/cuda/lora_fork.h"
#include "core/ops/cuda/lora_pending.h"
#include "sable/sable.h"

namespace sable::ops::cuda_op {

namespace k = sable::ops::cuda;

struct CudaOpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Args>
void require(bool ok, fmt::format_string<Args...> f, Args&&... args) {
  if (!ok) throw CudaOpError(fmt::format(f, std::forward<Args>(args)...));
}

// The text behind SableOpsContext::last_error (one per thread, shared by every file of the table).
inline std::string& op_error_text() {
  thread_local std::string text;
  return text;
}

template <class F>
SableStatus run_op(SableOpsContext* ctx, const char* op, F&& body) noexcept {
  try {
    // In a LoRA batch, every op but a GEMM (which records where its x is ready), the LoRA calls
    // (which fork from there) and alloc may write a projection's x: the recorded point is stale.
    if (ctx != nullptr && ctx->lora != nullptr) {
      const std::string_view name(op);
      if (name != "gemm" && name != "lora" && name != "lora_stacked" && name != "alloc")
        k::lora_fork().forget(static_cast<cudaStream_t>(ctx->stream));
    }
    // A pending LoRA delta (lora_pending.h) lands before any op but the rms_norm, act_mul or rope
    // that may take it in (each adds it itself or lands it first).
    if (const std::string_view name(op); name != "rms_norm" && name != "act_mul" && name != "rope")
      require(k::lora_flush_pending(), "adding a pending LoRA delta failed");
    body();
    const cudaError_t e = cudaPeekAtLastError();
    if (e != cudaSuccess) throw CudaOpError(std::string("CUDA: ") + cudaGetErrorString(e));
    return SABLE_OK;
  } catch (const std::exception& e) {
    op_error_text() = fmt::format("{}: {}", op, e.what());
    if (ctx) ctx->last_error = op_error_text().c_str();
    return SABLE_ERR_INVALID_ARGUMENT;
  }
}

// The consuming side of lora_pending.h, for an op that may add a pending LoRA delta in its own
// kernel: takes the thread's pending delta, if any. `fuse(launch)` returns true when the delta is
// the op's own (same stream and dtype already checked) and its kernel with the delta added was
// launched; otherwise the delta lands first by its separate add. True: the op is done.
template <class F>
bool take_pending_lora(SableOpsContext* ctx, int32_t dtype, F&& fuse) {
  k::LoraPendingDelta* p = k::lora_pending();
  if (p == nullptr || !p->active) return false;
  p->active = false;
  if (p->stream == static_cast<cudaStream_t>(ctx->stream) && p->dtype == dtype && fuse(p->launch))
    return true;
  require(k::lora_apply_delta(p->launch, p->dtype, p->stream),
          "adding a pending LoRA delta failed");
  return false;
}

inline const SableTensor& tensor(const SableTensor* t, const char* name) {
  require(t != nullptr, "{} is null", name);
  require(t->device_type == SABLE_DEVICE_CUDA, "{} is not a CUDA tensor", name);
  require(t->ndim >= 0 && t->ndim <= SABLE_MAX_DIMS, "{} has a bad rank", name);
  return *t;
}
inline bool is_float(int32_t d) {
  return d == SABLE_DTYPE_F32 || d == SABLE_DTYPE_BF16 || d == SABLE_DTYPE_F16;
}
inline int64_t last(const SableTensor& t) {
  return t.ndim ? t.shape[t.ndim - 1] : 1;
}
inline int64_t rows_of(const SableTensor& t) {
  return t.ndim ? sable_tensor_numel(&t) / std::max<int64_t>(last(t), 1) : 1;
}
inline void contiguous(const SableTensor& t, const char* name) {
  require(sable_tensor_is_contiguous(&t), "{} must be contiguous", name);
}
// Rows of a 2-D-able view whose last dim is dense and whose rows are uniformly strided.
inline int64_t row_stride(const SableTensor& t, const char* name) {
  if (sable_tensor_is_contiguous(&t)) return last(t);
  require(t.ndim == 2 && t.strides[1] == 1, "{} must be contiguous or a row-strided 2-D view",
          name);
  return t.strides[0];
}
inline k::Gemm& gemm_engine() {
  static k::Gemm g;  // per process; one GPU per process
  return g;
}

// The bias [n] in `dtype`: its own data, or a cast copy in the forward's scratch. NULL: none.
inline const void* bias_in(SableOpsContext* ctx, const SableTensor* bias, int32_t dtype,
                           int64_t n) {
  if (!bias) return nullptr;
  const auto& bb = tensor(bias, "bias");
  if (bb.dtype == dtype) return bb.data;
  void* tmp = ctx->arena->allocate(n * sable_dtype_size(dtype), 256);
  require(tmp != nullptr, "arena exhausted");
  k::cast(bb.data, bb.dtype, tmp, dtype, n, ctx->stream);
  return tmp;
}

// lora_ops.cpp
SableStatus op_lora(SableOpsContext* ctx, int32_t layer, int32_t module, const SableTensor* x,
                    SableTensor* out);
SableStatus op_lora_stacked(SableOpsContext* ctx, int32_t layer, int32_t first_module,
                            int32_t num_modules, const SableTensor* x, SableTensor* outs);
// moe_ops.cpp
SableStatus op_moe_route(SableOpsContext* ctx, int32_t layer, const SableTensor* logits,
                         int32_t top_k, int32_t scoring, int32_t renormalize, SableTensor* weights,
                         SableTensor* ids);
SableStatus op_moe_experts(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w_gate_up,
                           const SableTensor* w_down, const SableTensor* weights,
                           const SableTensor* ids, int32_t act, SableTensor* out);

}  // namespace sable::ops::cuda_op
