// The CPU ops table, the boundary helpers shared by the CPU op files, and the small ops that only
// dispatch (alloc, attention, tensor-parallel collectives, stream, plugins' parallel_for).
#include "core/ops/cpu/cpu_ops.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>

#include "core/ops/arena.h"
#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/thread_pool.h"
#include "core/ops/gemm_fused.h"

namespace sable::ops::cpu {

SableStatus report(SableOpsContext* ctx, SableStatus status, const char* op, const char* message) {
  thread_local std::string last;
  last = fmt::format("{}: {}", op, message);
  if (ctx != nullptr) ctx->last_error = last.c_str();
  spdlog::error("cpu ops: {}", last);
  return status;
}

const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case SABLE_DTYPE_F32: return "F32";
    case SABLE_DTYPE_F16: return "F16";
    case SABLE_DTYPE_BF16: return "BF16";
    case SABLE_DTYPE_I32: return "I32";
    case SABLE_DTYPE_I64: return "I64";
    case SABLE_DTYPE_U8: return "U8";
    case SABLE_DTYPE_U32: return "U32";
    case SABLE_DTYPE_Q8_0: return "Q8_0";
    case SABLE_DTYPE_Q4_0: return "Q4_0";
    case SABLE_DTYPE_Q4_1: return "Q4_1";
    case SABLE_DTYPE_Q4_K: return "Q4_K";
    case SABLE_DTYPE_Q5_K: return "Q5_K";
    case SABLE_DTYPE_Q6_K: return "Q6_K";
    default: return "unknown dtype";
  }
}


const SableTensor& check_tensor(const SableTensor* t, const char* name) {
  require(t != nullptr, "{} is NULL", name);
  require(t->device_type == SABLE_DEVICE_CPU, "{} is not a CPU tensor (device_type {})", name,
          t->device_type);
  require(t->ndim >= 0 && t->ndim <= SABLE_MAX_DIMS, "{} has invalid rank {}", name, t->ndim);
  require(sable_dtype_size(t->dtype) > 0 || sable_dtype_block_elems(t->dtype) > 0,
          "{} has invalid dtype {}", name, t->dtype);
  for (int32_t i = 0; i < t->ndim; ++i) {
    require(t->shape[i] >= 0, "{} has a negative dim: {}", name, shape_str(*t));
  }
  require(t->data != nullptr || sable_tensor_numel(t) == 0, "{} has no data", name);
  return *t;
}

void check_dtype(const SableTensor& t, const char* name, int32_t dtype) {
  require(t.dtype == dtype, "{} must be {}, got {}", name, dtype_name(dtype), dtype_name(t.dtype));
}

void check_float(const SableTensor& t, const char* name) {
  require(t.dtype == SABLE_DTYPE_F32 || t.dtype == SABLE_DTYPE_BF16 || t.dtype == SABLE_DTYPE_F16,
          "{} must be a float tensor (F32/BF16/F16), got {}", name, dtype_name(t.dtype));
}

Rows rows_of(const SableTensor& t, const char* name) {
  Rows r;
  r.data = static_cast<char*>(t.data);
  r.dtype = t.dtype;
  r.esize = static_cast<int64_t>(sable_dtype_size(t.dtype));
  if (t.ndim == 0) return r;
  const int32_t last = t.ndim - 1;
  r.cols = t.shape[last];
  require(t.strides[last] == 1 || t.shape[last] <= 1,
          "{} {} must have a unit stride in its last dim (stride {})", name, shape_str(t),
          t.strides[last]);
  r.rows = 1;
  for (int32_t d = 0; d < last; ++d) r.rows *= t.shape[d];
  // Only leading dims with more than one element matter; uniform when they collapse to one stride.
  int32_t nontrivial[SABLE_MAX_DIMS];
  int32_t n = 0;
  for (int32_t d = 0; d < last; ++d) {
    if (t.shape[d] > 1) nontrivial[n++] = d;
  }
  r.uniform = true;
  r.stride = n > 0 ? t.strides[nontrivial[n - 1]] : r.cols;
  for (int32_t i = 0; i + 1 < n; ++i) {
    const int32_t a = nontrivial[i], b = nontrivial[i + 1];
    if (t.strides[a] != t.strides[b] * t.shape[b]) r.uniform = false;
  }
  if (!r.uniform) {
    r.nlead = n;
    for (int32_t i = 0; i < n; ++i) {
      r.lead_shape[i] = t.shape[nontrivial[i]];
      r.lead_stride[i] = t.strides[nontrivial[i]];
    }
  }
  return r;
}

void to_f32(const void* src, int32_t dtype, float* dst, int64_t n) {
  if (dtype == SABLE_DTYPE_F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (dtype == SABLE_DTYPE_BF16) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
  } else {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
  }
}

SableStatus alloc(SableOpsContext* ctx, int32_t dtype, int32_t ndim, const int64_t* shape,
                  SableTensor* out) {
  return run_op(ctx, "alloc", [&] {
    require(ctx != nullptr, "context is NULL");
    require(ctx->arena != nullptr, "the forward context has no arena");
    require(out != nullptr, "out is NULL");
    require(sable_dtype_size(dtype) > 0, "invalid dtype {}", dtype);
    require(ndim >= 0 && ndim <= SABLE_MAX_DIMS, "invalid rank {}", ndim);
    require(ndim == 0 || shape != nullptr, "shape is NULL");
    SableTensor t{};
    t.struct_size = sizeof(SableTensor);
    t.dtype = dtype;
    t.device_type = ctx->arena->device_type();
    t.device_index = ctx->device_index;
    t.ndim = ndim;
    int64_t numel = 1;
    for (int32_t i = 0; i < ndim; ++i) {
      require(shape[i] >= 0, "negative dim {} at index {}", shape[i], i);
      t.shape[i] = shape[i];
      require(shape[i] == 0 || numel <= (int64_t{1} << 40) / shape[i], "tensor too large");
      numel *= shape[i];
    }
    int64_t stride = 1;
    for (int32_t i = ndim - 1; i >= 0; --i) {
      t.strides[i] = stride;
      stride *= t.shape[i];
    }
    const size_t bytes = static_cast<size_t>(numel) * sable_dtype_size(dtype);
    t.data = ctx->arena->allocate(bytes, 64);
    if (t.data == nullptr) {
      throw OpError(SABLE_ERR_OUT_OF_MEMORY,
                    fmt::format("scratch arena cannot hold {} more bytes", bytes));
    }
    *out = t;
  });
}

SableStatus attention(SableOpsContext* ctx, int32_t layer, const SableTensor* q,
                      const SableTensor* k, const SableTensor* v, float scale, SableTensor* out) {
  return run_op(ctx, "attention", [&] {
    require(ctx != nullptr, "context is NULL");
    require(ctx->attention_api != nullptr && ctx->attention != nullptr &&
                ctx->attention_api->run != nullptr,
            "no attention backend is planned in this forward context");
    const SableTensor& qt = check_tensor(q, "q");
    check_tensor(k, "k");
    check_tensor(v, "v");
    check_tensor(out, "out");
    require(qt.ndim == 3 && qt.shape[2] > 0, "q must be [T, Hq, D], got {}", shape_str(qt));
    require(layer >= 0, "negative layer {}", layer);
    const float s = scale > 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(qt.shape[2]));
    const SableStatus rs = ctx->attention_api->run(ctx->attention, ctx, layer, q, k, v, s, out);
    if (rs != SABLE_OK) {
      throw OpError(rs, fmt::format("attention backend failed on layer {} (status {})", layer, rs));
    }
  });
}

// The communicator's failure as an op error with its message.
void comm_check(SableOpsContext* ctx, SableStatus st, const char* what) {
  if (st != SABLE_OK)
    throw OpError(st, fmt::format("{}: {}", what, ctx->comm_api->last_error(ctx->comm)));
}

// More than one rank needs the group's endpoint in the context (the runner puts it there).
bool tensor_parallel(SableOpsContext* ctx) {
  if (ctx->tp_size <= 1) return false;
  if (ctx->comm_api == nullptr || ctx->comm == nullptr)
    throw OpError(SABLE_ERR_INVALID_ARGUMENT,
                  fmt::format("tp_size={} but the context has no communicator", ctx->tp_size));
  return true;
}

SableStatus all_reduce(SableOpsContext* ctx, SableTensor* x) {
  return run_op(ctx, "all_reduce", [&] {
    require(ctx != nullptr, "context is NULL");
    check_tensor(x, "x");
    if (tensor_parallel(ctx))
      comm_check(ctx, ctx->comm_api->all_reduce(ctx->comm, x, SABLE_REDUCE_SUM, nullptr),
                 "communicator all_reduce");
  });
}

SableStatus all_gather(SableOpsContext* ctx, const SableTensor* x, int32_t dim, SableTensor* out) {
  bool gathered = false;
  SableStatus st = run_op(ctx, "all_gather", [&] {
    require(ctx != nullptr, "context is NULL");
    const SableTensor& xt = check_tensor(x, "x");
    check_tensor(out, "out");
    require(dim >= 0 && dim < xt.ndim, "dim {} out of range for x {}", dim, shape_str(xt));
    if (tensor_parallel(ctx)) {
      comm_check(ctx, ctx->comm_api->all_gather(ctx->comm, x, dim, out, nullptr),
                 "communicator all_gather");
      gathered = true;
    }
  });
  if (st != SABLE_OK || gathered) return st;
  return copy(ctx, x, out);  // one rank: the gathered tensor is x itself
}

void* stream(SableOpsContext* ctx) { return ctx != nullptr ? ctx->stream : nullptr; }

// The CPU's device memory is host memory: a plain copy.
SableStatus upload(SableOpsContext* ctx, const void* src, SableTensor* dst) {
  return run_op(ctx, "upload", [&] {
    const SableTensor& dt = check_tensor(dst, "dst");
    require(src != nullptr || sable_tensor_numel(&dt) == 0, "src is NULL");
    require(sable_tensor_is_contiguous(&dt) && sable_dtype_size(dt.dtype) > 0,
            "dst must be contiguous with a plain dtype");
    std::memcpy(dt.data, src, static_cast<size_t>(sable_tensor_numel(&dt)) * sable_dtype_size(dt.dtype));
  });
}

// A plugin's own host loop on the ops' pool (ABI 1.6). Indices are claimed one at a time up to
// kMaxClaims, in contiguous runs past it (a claim is one compare-and-swap; the pool's count is 24 bits).
SableStatus plugin_parallel_for(SableOpsContext* ctx, int64_t n, SableParallelFn fn, void* user) {
  return run_op(ctx, "parallel_for", [&] {
    require(n >= 0, "n = {} is negative", n);
    require(fn != nullptr, "fn is NULL");
    constexpr int64_t kMaxClaims = 4096;
    const int64_t chunks = std::min(n, kMaxClaims);
    if (chunks == 0) return;
    const int64_t base = n / chunks, extra = n % chunks;  // the first `extra` runs take one more
    parallel_for(chunks, threads(), [&](int64_t c) {
      const int64_t begin = c * base + std::min(c, extra);
      const int64_t end = begin + base + (c < extra ? 1 : 0);
      for (int64_t i = begin; i < end; ++i) fn(user, i);
    });
  });
}

// The CPU has no launches to save: gemm_fused runs as its separate ops (core/ops/gemm_fused.h).
SableStatus gemm_fused(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                       const SableTensor* bias, const SableGemmFusion* fusion, SableTensor* out) {
  return gemm_fused_composed(cpu_ops(), ctx, x, w, bias, fusion, out);
}

}  // namespace sable::ops::cpu

namespace sable::ops {

const SableOps* cpu_ops() {
  static const SableOps table = [] {
    SableOps t{};
    t.struct_size = sizeof(SableOps);
    t.alloc = &cpu::alloc;
    t.embedding = &cpu::embedding;
    t.gemm = &cpu::gemm;
    t.rms_norm = &cpu::rms_norm;
    t.layer_norm = &cpu::layer_norm;
    t.rope = &cpu::rope;
    t.act_mul = &cpu::act_mul;
    t.activation = &cpu::activation;
    t.add = &cpu::add;
    t.mul = &cpu::mul;
    t.scale = &cpu::scale;
    t.sigmoid = &cpu::sigmoid;
    t.copy = &cpu::copy;
    t.cast = &cpu::cast;
    t.gather_rows = &cpu::gather_rows;
    t.attention = &cpu::attention;
    t.moe_route = &cpu::moe_route;
    t.moe_experts = &cpu::moe_experts;
    t.all_reduce = &cpu::all_reduce;
    t.all_gather = &cpu::all_gather;
    t.argmax = &cpu::argmax;
    t.stream = &cpu::stream;
    t.gemm_fused = &cpu::gemm_fused;
    t.lora = &cpu::lora;
    t.attention_bidirectional = &cpu::attention_bidirectional;
    t.upload = &cpu::upload;
    t.embedding_shard = &cpu::embedding_shard;
    t.lora_stacked = &cpu::lora_stacked;
    t.parallel_for = &cpu::plugin_parallel_for;
    return t;
  }();
  return &table;
}

}  // namespace sable::ops
