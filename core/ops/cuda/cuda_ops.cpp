// SableOps on CUDA (see cuda_ops.h): validation of the views on the host, then one launch each. The
// LoRA and MoE calls live in lora_ops.cpp and moe_ops.cpp, the shared helpers in op_support.h.
#include "core/ops/cuda/cuda_ops.h"

#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/ops/context.h"
#include "core/ops/cuda/gemm.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/cuda/lora_fork.h"
#include "core/ops/cuda/lora_pending.h"
#include "core/ops/cuda/op_support.h"
#include "core/ops/gemm_fused.h"
#include "sable/cpp/tensor.h"

namespace sable::ops {
namespace {

using namespace cuda_op;  // NOLINT: the table's shared helpers (op_support.h)

SableStatus op_alloc(SableOpsContext* ctx, int32_t dtype, int32_t ndim, const int64_t* shape,
                     SableTensor* out) {
  return run_op(ctx, "alloc", [&] {
    require(ctx && ctx->arena, "no arena in the context");
    require(ndim >= 0 && ndim <= SABLE_MAX_DIMS && sable_dtype_size(dtype) > 0, "bad dtype/rank");
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) {
      require(shape[i] >= 0, "negative dim");
      n *= shape[i];
    }
    void* p = ctx->arena->allocate(static_cast<size_t>(n) * sable_dtype_size(dtype), 256);
    require(p != nullptr || n == 0, "arena exhausted ({} bytes)", n * sable_dtype_size(dtype));
    SableTensor t{};
    t.struct_size = sizeof(SableTensor);
    t.dtype = dtype;
    t.device_type = SABLE_DEVICE_CUDA;
    t.device_index = ctx->device_index;
    t.ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      t.shape[i] = shape[i];
      t.strides[i] = s;
      s *= shape[i];
    }
    t.data = p;
    *out = t;
  });
}

SableStatus op_embedding(SableOpsContext* ctx, const SableTensor* table, const SableTensor* ids,
                         SableTensor* out) {
  return run_op(ctx, "embedding", [&] {
    const auto& tb = tensor(table, "table");
    const auto& id = tensor(ids, "ids");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    require(tb.ndim == 2 && id.dtype == SABLE_DTYPE_I32 && o.dtype == tb.dtype, "bad shapes/dtypes");
    contiguous(tb, "table");
    contiguous(o, "out");
    const int64_t t = sable_tensor_numel(&id);
    require(rows_of(o) == t && last(o) == tb.shape[1], "out must be [T, H]");
    k::embedding(tb.data, tb.dtype, static_cast<const int32_t*>(id.data), t, tb.shape[1],
                 tb.shape[0], o.data, ctx->stream);
  });
}

SableStatus op_embedding_shard(SableOpsContext* ctx, const SableTensor* table,
                               const SableTensor* ids, int64_t first_id, SableTensor* out) {
  return run_op(ctx, "embedding_shard", [&] {
    const auto& tb = tensor(table, "table");
    const auto& id = tensor(ids, "ids");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    require(tb.ndim == 2 && id.dtype == SABLE_DTYPE_I32 && o.dtype == tb.dtype, "bad shapes/dtypes");
    require(first_id >= 0, "first_id must be >= 0, got {}", first_id);
    contiguous(tb, "table");
    contiguous(id, "ids");
    contiguous(o, "out");
    const int64_t t = sable_tensor_numel(&id);
    require(rows_of(o) == t && last(o) == tb.shape[1], "out must be [T, H]");
    require(k::embedding_shard(tb.data, tb.dtype, static_cast<const int32_t*>(id.data), t,
                               tb.shape[1], first_id, tb.shape[0], o.data, ctx->stream),
            "unsupported dtype for embedding_shard");
  });
}

// out = x · wᵀ (+ bias), or out += that with `accumulate` (gemm_fused's residual epilogue).
SableStatus gemm_into(SableOpsContext* ctx, const char* op, const SableTensor* x,
                      const SableTensor* w, const SableTensor* bias, SableTensor* out,
                      bool accumulate) {
  return run_op(ctx, op, [&] {
    const auto& a = tensor(x, "x");
    const auto& b = tensor(w, "w");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    require(b.ndim == 2 && a.dtype == b.dtype && is_float(a.dtype), "x/w dtype or rank mismatch");
    contiguous(b, "w");
    contiguous(o, "out");
    const int64_t m = rows_of(a), kdim = last(a), n = b.shape[0];
    require(b.shape[1] == kdim, "w is [{}, {}] but x has K={}", b.shape[0], b.shape[1], kdim);
    require(rows_of(o) == m && last(o) == n, "out must be [{}, {}]", m, n);
    require(o.dtype == a.dtype || o.dtype == SABLE_DTYPE_F32, "out dtype must be x's or F32");
    const int64_t ldx = row_stride(a, "x");
    if (bias) require(sable_tensor_numel(&tensor(bias, "bias")) == n, "bias must have N={} elements", n);
    const void* bias_ptr = bias_in(ctx, bias, o.dtype, n);
    if (ctx->lora != nullptr && k::lora_fork_enabled() && m > 0) {
      const auto* xb = static_cast<const char*>(a.data);
      const auto* ob = static_cast<const char*>(o.data);
      const size_t xs = sable_dtype_size(a.dtype), os = sable_dtype_size(o.dtype);
      k::lora_fork().before_gemm(static_cast<cudaStream_t>(ctx->stream), xb,
                                 xb + ((m - 1) * ldx + kdim) * xs, ob, ob + m * n * os);
    }
    std::string err;
    require(gemm_engine().run(a.data, ldx, a.dtype, b.data, bias_ptr, o.data, o.dtype, m, n, kdim,
                              ctx->stream, &err, accumulate),
            "{}", err);
  });
}

SableStatus op_gemm(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                    const SableTensor* bias, SableTensor* out) {
  return gemm_into(ctx, "gemm", x, w, bias, out, /*accumulate=*/false);
}

SableStatus op_rms_norm(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                        const SableTensor* weight, float eps, float offset, SableTensor* out) {
  return run_op(ctx, "rms_norm", [&] {
    const auto& a = tensor(x, "x");
    const auto& w = tensor(weight, "weight");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    const int64_t h = last(a), rows = rows_of(a);
    require(is_float(a.dtype) && w.dtype == a.dtype && o.dtype == a.dtype, "dtype mismatch");
    require(sable_tensor_numel(&w) == h && rows_of(o) == rows && last(o) == h, "shape mismatch");
    contiguous(o, "out");
    void* r = nullptr;
    if (residual) {
      const auto& rr = tensor(residual, "residual");
      contiguous(rr, "residual");
      require(rr.dtype == a.dtype && sable_tensor_numel(&rr) == rows * h, "residual mismatch");
      r = rr.data;
    }
    int64_t stride = 0, inner = 1, inner_stride = 0;
    if (a.ndim == 3 && a.strides[2] == 1 && !sable_tensor_is_contiguous(&a)) {
      stride = a.strides[0];  // [T, heads, D] view of a fused projection
      inner = a.shape[1];
      inner_stride = a.strides[1];
    } else {
      stride = row_stride(a, "x");
    }
    // The pending LoRA delta of the projection this norm adds to the residual goes into the
    // norm's own kernel (lora_pending.h); any other lands first.
    if (take_pending_lora(ctx, a.dtype, [&](const k::LoraLaunch& l) {
          return l.count == 1 && l.out[0] == a.data && r != nullptr && inner == 1 && stride == h &&
                 l.ldo[0] == h && l.n[0] == h && l.rows == rows &&
                 k::rms_norm_delta(a.data, l.delta, r, w.data, a.dtype, rows, h, eps, offset,
                                   o.data, ctx->stream);
        }))
      return;
    require(k::rms_norm(a.data, stride, inner, inner_stride, r, w.data, a.dtype, rows, h, eps,
                        offset, o.data, ctx->stream),
            "unsupported dtype");
  });
}

SableStatus op_layer_norm(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                          const SableTensor* weight, const SableTensor* bias, float eps,
                          SableTensor* out) {
  return run_op(ctx, "layer_norm", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    const int64_t h = last(a), rows = rows_of(a);
    require(is_float(a.dtype) && o.dtype == a.dtype && rows_of(o) == rows && last(o) == h,
            "shape/dtype mismatch");
    contiguous(o, "out");
    const void* wp = weight ? tensor(weight, "weight").data : nullptr;
    const void* bp = bias ? tensor(bias, "bias").data : nullptr;
    void* r = residual ? tensor(residual, "residual").data : nullptr;
    require(k::layer_norm(a.data, row_stride(a, "x"), r, wp, bp, a.dtype, rows, h, eps, o.data,
                          ctx->stream),
            "unsupported dtype");
  });
}

SableStatus op_rope(SableOpsContext* ctx, SableTensor* q, SableTensor* kk,
                    const SableTensor* positions, const SableTensor* cos_sin, int32_t rot_dim,
                    int32_t style) {
  return run_op(ctx, "rope", [&] {
    const auto& pos = tensor(positions, "positions");
    const auto& cs = tensor(cos_sin, "cos_sin");
    require(pos.dtype == SABLE_DTYPE_I32 && cs.dtype == SABLE_DTYPE_F32 && cs.ndim == 2 &&
                cs.shape[1] == rot_dim && rot_dim % 2 == 0,
            "positions must be I32, cos_sin F32 [max_pos, rot_dim]");
    const int64_t t = sable_tensor_numel(&pos);
    auto view = [&](SableTensor* v, const char* name, int64_t* stride, int32_t* heads,
                    int32_t* d) -> void* {
      if (!v) return nullptr;
      const auto& tv = tensor(v, name);
      require(tv.ndim == 3 && tv.shape[0] == t && tv.strides[2] == 1 &&
                  tv.strides[1] == tv.shape[2],
              "{} must be [T, heads, D] with dense heads", name);
      *stride = tv.strides[0];
      *heads = static_cast<int32_t>(tv.shape[1]);
      *d = static_cast<int32_t>(tv.shape[2]);
      return tv.data;
    };
    int64_t qs = 0, ks = 0;
    int32_t qh = 0, kh = 0, qd = 0, kd = 0;
    void* qp = view(q, "q", &qs, &qh, &qd);
    void* kp = view(kk, "k", &ks, &kh, &kd);
    const int32_t d = qp ? qd : kd;
    require(!(qp && kp) || qd == kd, "q and k head dims differ");
    require(rot_dim <= d, "rot_dim {} > head dim {}", rot_dim, d);
    const int32_t dtype = q ? q->dtype : kk->dtype;
    // q|k|v's pending LoRA delta (lora_pending.h, lora_qkv_into_rope) goes into this kernel
    // when q and k are the first two column blocks of the fused rows it was computed for.
    if (take_pending_lora(ctx, dtype, [&](const k::LoraLaunch& l) {
          const int64_t es = sable_dtype_size(dtype);
          return l.count == 3 && qp != nullptr && kp != nullptr && l.out[0] == qp &&
                 l.out[1] == kp && static_cast<char*>(qp) + l.n[0] * es == kp &&
                 l.out[2] == static_cast<char*>(kp) + l.n[1] * es && qs == ks &&
                 (t == 1 || (l.ldo[0] == qs && l.ldo[1] == qs && l.ldo[2] == qs)) &&
                 l.n[0] == int64_t(qh) * d && l.n[1] == int64_t(kh) * d && l.n[2] == l.n[1] &&
                 l.rows == t &&
                 k::rope_qkv_delta(qp, qs, qh, kh, l.delta, dtype, d, rot_dim,
                                   static_cast<const int32_t*>(pos.data), t,
                                   static_cast<const float*>(cs.data), style, ctx->stream);
        }))
      return;
    require(k::rope(qp, qs, qh, kp, ks, kh, dtype, d, rot_dim,
                    static_cast<const int32_t*>(pos.data), t, static_cast<const float*>(cs.data),
                    style, ctx->stream),
            "unsupported dtype");
  });
}

SableStatus op_act_mul(SableOpsContext* ctx, int32_t act, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "act_mul", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(a, "x");
    contiguous(o, "out");
    const int64_t inter = last(o), t = rows_of(o);
    require(last(a) == 2 * inter && rows_of(a) == t && a.dtype == o.dtype, "x must be [T, 2I]");
    // gate|up's pending LoRA delta goes into this kernel (lora_pending.h); any other lands first.
    if (take_pending_lora(ctx, a.dtype, [&](const k::LoraLaunch& l) {
          const auto* base = static_cast<const char*>(a.data);
          return l.count == 2 && l.out[0] == a.data &&
                 l.out[1] == base + inter * sable_dtype_size(a.dtype) && l.n[0] == inter &&
                 l.n[1] == inter && (t == 1 || (l.ldo[0] == 2 * inter && l.ldo[1] == 2 * inter)) &&
                 l.rows == t &&
                 k::act_mul_delta(act, a.data, l.delta, a.dtype, t, inter, o.data, ctx->stream);
        }))
      return;
    require(k::act_mul(act, a.data, a.dtype, t, inter, o.data, ctx->stream), "unsupported dtype");
  });
}

SableStatus op_activation(SableOpsContext* ctx, int32_t act, const SableTensor* x,
                          SableTensor* out) {
  return run_op(ctx, "activation", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(a, "x");
    contiguous(o, "out");
    require(sable_tensor_numel(&a) == sable_tensor_numel(&o) && a.dtype == o.dtype, "mismatch");
    require(k::activation(act, a.data, a.dtype, sable_tensor_numel(&a), o.data, ctx->stream),
            "unsupported dtype");
  });
}

SableStatus binary_op(SableOpsContext* ctx, int op, const char* name, const SableTensor* a,
                      const SableTensor* b, SableTensor* out) {
  return run_op(ctx, name, [&] {
    const auto& x = tensor(a, "a");
    const auto& y = tensor(b, "b");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(x, "a");
    contiguous(y, "b");
    contiguous(o, "out");
    const int64_t rows = rows_of(x), cols = last(x);
    const int64_t br = rows_of(y), bc = last(y);
    require((br == rows || br == 1) && (bc == cols || bc == 1), "b does not broadcast to a");
    require(x.dtype == y.dtype && o.dtype == x.dtype && sable_tensor_numel(&o) == rows * cols,
            "dtype/shape mismatch");
    require(k::binary(op, x.data, y.data, br, bc, x.dtype, rows, cols, o.data, ctx->stream),
            "unsupported dtype");
  });
}
SableStatus op_add(SableOpsContext* c, const SableTensor* a, const SableTensor* b, SableTensor* o) {
  return binary_op(c, 0, "add", a, b, o);
}
SableStatus op_mul(SableOpsContext* c, const SableTensor* a, const SableTensor* b, SableTensor* o) {
  return binary_op(c, 1, "mul", a, b, o);
}

SableStatus op_scale(SableOpsContext* ctx, const SableTensor* x, float s, SableTensor* out) {
  return run_op(ctx, "scale", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(a, "x");
    contiguous(o, "out");
    require(sable_tensor_numel(&a) == sable_tensor_numel(&o) && a.dtype == o.dtype, "mismatch");
    require(k::scale(a.data, s, a.dtype, sable_tensor_numel(&a), o.data, ctx->stream), "dtype");
  });
}

SableStatus op_sigmoid(SableOpsContext* ctx, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "sigmoid", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(a, "x");
    contiguous(o, "out");
    require(sable_tensor_numel(&a) == sable_tensor_numel(&o) && a.dtype == o.dtype, "mismatch");
    require(k::sigmoid(a.data, a.dtype, sable_tensor_numel(&a), o.data, ctx->stream), "dtype");
  });
}

SableStatus op_copy(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst) {
  return run_op(ctx, "copy", [&] {
    const auto& s = tensor(src, "src");
    auto& d = const_cast<SableTensor&>(tensor(dst, "dst"));
    require(s.dtype == d.dtype && s.ndim == d.ndim, "src/dst dtype or rank differ");
    for (int i = 0; i < s.ndim; ++i) require(s.shape[i] == d.shape[i], "shapes differ");
    if (sable_tensor_is_contiguous(&s) && sable_tensor_is_contiguous(&d)) {
      require(cudaMemcpyAsync(d.data, s.data, sable_tensor_numel(&s) * sable_dtype_size(s.dtype),
                              cudaMemcpyDeviceToDevice,
                              static_cast<cudaStream_t>(ctx->stream)) == cudaSuccess,
              "cudaMemcpyAsync failed");
      return;
    }
    require(s.ndim >= 1 && s.ndim <= 4, "strided copy supports rank 1-4");
    require(k::copy_strided(s.data, s.strides, d.data, d.strides, s.shape, s.ndim, s.dtype,
                            ctx->stream),
            "unsupported dtype");
  });
}

SableStatus op_cast(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst) {
  return run_op(ctx, "cast", [&] {
    const auto& s = tensor(src, "src");
    auto& d = const_cast<SableTensor&>(tensor(dst, "dst"));
    contiguous(s, "src");
    contiguous(d, "dst");
    require(sable_tensor_numel(&s) == sable_tensor_numel(&d), "element counts differ");
    require(k::cast(s.data, s.dtype, d.data, d.dtype, sable_tensor_numel(&s), ctx->stream),
            "unsupported dtype pair");
  });
}

SableStatus op_gather_rows(SableOpsContext* ctx, const SableTensor* x, const SableTensor* rows,
                           SableTensor* out) {
  return run_op(ctx, "gather_rows", [&] {
    const auto& a = tensor(x, "x");
    const auto& r = tensor(rows, "rows");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(o, "out");
    require(r.dtype == SABLE_DTYPE_I32 && o.dtype == a.dtype, "rows I32, out dtype of x");
    const int64_t n = sable_tensor_numel(&r);
    require(rows_of(o) == n && last(o) == last(a), "out must be [L, H]");
    require(k::gather_rows(a.data, a.dtype, row_stride(a, "x"), static_cast<const int32_t*>(r.data),
                           n, last(a), o.data, ctx->stream),
            "unsupported dtype");
  });
}

SableStatus op_attention(SableOpsContext* ctx, int32_t layer, const SableTensor* q,
                         const SableTensor* kk, const SableTensor* v, float scale,
                         SableTensor* out) {
  if (!ctx || !ctx->attention_api || !ctx->attention) {
    return run_op(ctx, "attention", [] { require(false, "no attention backend planned"); });
  }
  if (scale <= 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(q->shape[q->ndim - 1]));
  return ctx->attention_api->run(ctx->attention, ctx, layer, q, kk, v, scale, out);
}

SableStatus op_attention_bidirectional(SableOpsContext* ctx, const SableTensor* q,
                                       const SableTensor* kk, const SableTensor* v,
                                       const SableTensor* positions, float scale,
                                       SableTensor* out) {
  return run_op(ctx, "attention_bidirectional", [&] {
    const auto& qt = tensor(q, "q");
    const auto& kt = tensor(kk, "k");
    const auto& vt = tensor(v, "v");
    const auto& ot = tensor(out, "out");
    const auto& pt = tensor(positions, "positions");
    require(qt.ndim == 3 && kt.ndim == 3 && vt.ndim == 3 && ot.ndim == 3,
            "q, k, v and out must be [T, heads, D]");
    const int64_t t = qt.shape[0], d = qt.shape[2];
    for (const SableTensor* x : {&qt, &kt, &vt, &ot}) {
      require(x->shape[0] == t && x->shape[2] == d && x->strides[2] == 1 && x->dtype == qt.dtype,
              "q, k, v and out must share T, D and dtype with unit-stride head dims");
    }
    require(kt.shape[1] == vt.shape[1] && kt.shape[1] > 0 && qt.shape[1] % kt.shape[1] == 0 &&
                ot.shape[1] == qt.shape[1],
            "k/v heads must divide q heads, out must have q's heads");
    require(pt.dtype == SABLE_DTYPE_I32 && pt.ndim == 1 && pt.shape[0] == t,
            "positions must be [T] I32");
    if (t == 0) return;
    k::EncoderAttentionArgs a;
    a.q = qt.data;
    a.k = kt.data;
    a.v = vt.data;
    a.out = ot.data;
    a.q_stride = qt.strides[0];
    a.q_head_stride = qt.strides[1];
    a.k_stride = kt.strides[0];
    a.k_head_stride = kt.strides[1];
    a.v_stride = vt.strides[0];
    a.v_head_stride = vt.strides[1];
    a.out_stride = ot.strides[0];
    a.out_head_stride = ot.strides[1];
    a.positions = static_cast<const int32_t*>(pt.data);
    a.tokens = t;
    a.q_heads = static_cast<int32_t>(qt.shape[1]);
    a.group = static_cast<int32_t>(qt.shape[1] / kt.shape[1]);
    a.head_dim = static_cast<int32_t>(d);
    a.dtype = qt.dtype;
    a.scale = scale > 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(d));
    require(k::encoder_attention(a, ctx->stream),
            "unsupported shape or dtype (head dim {} must be at most 256)", d);
  });
}

// Tensor parallelism: the rank's communicator endpoint (NCCL) ordered on the forward's stream.
bool tensor_parallel(SableOpsContext* ctx) {
  if (ctx->tp_size <= 1) return false;
  require(ctx->comm_api != nullptr && ctx->comm != nullptr,
          "tp_size={} but the context has no communicator", ctx->tp_size);
  return true;
}

SableStatus op_all_reduce(SableOpsContext* ctx, SableTensor* x) {
  return run_op(ctx, "all_reduce", [&] {
    tensor(x, "x");
    if (!tensor_parallel(ctx)) return;
    const SableStatus st = ctx->comm_api->all_reduce(ctx->comm, x, SABLE_REDUCE_SUM, ctx->stream);
    require(st == SABLE_OK, "communicator all_reduce: {}", ctx->comm_api->last_error(ctx->comm));
  });
}
SableStatus op_all_gather(SableOpsContext* ctx, const SableTensor* x, int32_t dim, SableTensor* out) {
  return run_op(ctx, "all_gather", [&] {
    tensor(x, "x");
    tensor(out, "out");
    if (!tensor_parallel(ctx)) {
      require(op_copy(ctx, x, out) == SABLE_OK, "copy failed");
      return;
    }
    const SableStatus st = ctx->comm_api->all_gather(ctx->comm, x, dim, out, ctx->stream);
    require(st == SABLE_OK, "communicator all_gather: {}", ctx->comm_api->last_error(ctx->comm));
  });
}

SableStatus op_argmax(SableOpsContext* ctx, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "argmax", [&] {
    const auto& a = tensor(x, "x");
    auto& o = const_cast<SableTensor&>(tensor(out, "out"));
    contiguous(a, "x");
    require(o.dtype == SABLE_DTYPE_I32 && sable_tensor_numel(&o) == rows_of(a), "out [T] I32");
    require(k::argmax(a.data, a.dtype, rows_of(a), last(a), static_cast<int32_t*>(o.data),
                      ctx->stream),
            "unsupported dtype");
  });
}

void* op_stream(SableOpsContext* ctx) { return ctx ? ctx->stream : nullptr; }

// Pageable host memory: cudaMemcpyAsync stages it before returning, so `src` may be reused.
SableStatus op_upload(SableOpsContext* ctx, const void* src, SableTensor* dst) {
  return run_op(ctx, "upload", [&] {
    const auto& dt = tensor(dst, "dst");
    const size_t bytes = static_cast<size_t>(sable_tensor_numel(&dt)) * sable_dtype_size(dt.dtype);
    require(sable_tensor_is_contiguous(&dt) && sable_dtype_size(dt.dtype) > 0,
            "dst must be contiguous with a plain dtype");
    require(src != nullptr || bytes == 0, "src is NULL");
    if (bytes == 0) return;
    require(cudaMemcpyAsync(dt.data, src, bytes, cudaMemcpyHostToDevice,
                            static_cast<cudaStream_t>(ctx->stream)) == cudaSuccess,
            "cudaMemcpyAsync failed");
  });
}

extern const SableOps kCudaOps;

// Decode-sized batches with small weights run as one kernel (gemv_fused_kernels.cu); the rest,
// and what that kernel does not take (dtypes, strides), as the separate ops of this table.
// Measured on an H200 (bench/NOTES.md, v5): the one kernel wins where launches dominate (every
// projection of a 0.5B model, <= 17 MB) and streams large weights slower than the plain GEMV
// (every 8B projection, >= 33 MB), so it takes weights up to kFusedMaxBytes.
// SABLE_FUSED_GEMV=0 never fuses, =1 always fuses, =2 (A/B, bench/NOTES.md v14) fuses large
// weights' rope or act·mul epilogue only, after a separate rms_norm: the one kernel's norm
// prologue is what spills at its 64-register cap and re-reads x in every warp.
constexpr int64_t kFusedMaxBytes = int64_t(24) << 20;
SableStatus op_gemm_fused(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                          const SableTensor* bias, const SableGemmFusion* f, SableTensor* out) {
  static const int mode = [] {  // -1 never, 0 by weight size, 1 always, 2 large: epilogue only
    const char* v = std::getenv("SABLE_FUSED_GEMV");
    if (v == nullptr) return 0;
    const std::string m = v;
    return m == "0" ? -1 : m == "1" ? 1 : m == "2" ? 2 : 0;
  }();
  GemmFusedShape s;
  bool launched = false;
  const Arena::Mark mark =
      ctx != nullptr && ctx->arena != nullptr ? ctx->arena->mark() : Arena::Mark{};
  const SableStatus st = run_op(ctx, "gemm_fused", [&] {
    const std::string err = check_gemm_fused(x, w, bias, f, out, &s);
    require(err.empty(), "{}", err);
    const auto& a = tensor(x, "x");
    const auto& b = tensor(w, "w");
    const auto& o = tensor(out, "out");
    const bool bf16 = a.dtype == SABLE_DTYPE_BF16 && b.dtype == SABLE_DTYPE_BF16 &&
                      o.dtype == SABLE_DTYPE_BF16 && sable_tensor_is_contiguous(&b);
    if (mode < 0 || !bf16 || s.m > k::kGemvFusedMaxM) return;
    const bool large = s.n * s.k * 2 > kFusedMaxBytes;
    if ((mode == 0 && large) || (mode == 2 && large && !s.rope && !s.gated)) return;
    const bool norm_first = mode == 2 && large && s.norm;
    if (a.ndim != 2 && !sable_tensor_is_contiguous(&a)) return;
    if (a.ndim == 2 && a.strides[1] != 1) return;
    k::GemvFusedArgs g;
    g.x = a.data;
    g.ldx = a.ndim == 2 ? a.strides[0] : s.k;
    if (norm_first) {  // the normalised rows into scratch, then the kernel without its prologue
      const int64_t shape[2] = {s.m, s.k};
      SableTensor normed;
      require(op_alloc(ctx, SABLE_DTYPE_BF16, 2, shape, &normed) == SABLE_OK, "arena exhausted");
      const SableTensor x2 = a.ndim == 2 ? a : cpp::reshape(a, {s.m, s.k});
      require(op_rms_norm(ctx, &x2, nullptr, f->norm_weight, f->norm_eps, f->norm_offset,
                          &normed) == SABLE_OK,
              "rms_norm before the fused projection failed");
      g.x = normed.data;
      g.ldx = s.k;
    }
    g.w = b.data;
    g.out = o.data;
    g.ldo = s.out_cols;
    g.m = s.m;
    g.n = s.n;
    g.k = s.k;
    g.bias = bias_in(ctx, bias, SABLE_DTYPE_BF16, s.n);
    if (s.norm && !norm_first) {
      const auto& nw = tensor(f->norm_weight, "norm_weight");
      if (nw.dtype != SABLE_DTYPE_BF16 || !sable_tensor_is_contiguous(&nw)) return;
      g.norm_w = nw.data;
      g.eps = f->norm_eps;
      g.norm_offset = f->norm_offset;
    }
    if (s.gated) {
      g.mode = k::GemvFusedArgs::kGated;
      g.act = f->act;
    } else if (s.rope) {
      g.mode = f->rope_style == SABLE_ROPE_NEOX ? k::GemvFusedArgs::kRopeNeox
                                                : k::GemvFusedArgs::kRopeInterleaved;
      g.rope_cols = f->rope_cols;
      g.head_dim = f->rope_head_dim;
      g.rot_dim = f->rope_dim;
      g.positions = static_cast<const int32_t*>(tensor(f->positions, "positions").data);
      g.cos_sin = static_cast<const float*>(tensor(f->cos_sin, "cos_sin").data);
    }
    g.accumulate = s.accumulate ? 1 : 0;
    launched = k::gemv_fused(g, ctx->stream);
    require(launched || !norm_first, "the fused projection after rms_norm did not launch");
  });
  // Scratch (the normalised rows) is reused in stream order after this call.
  if (ctx != nullptr && ctx->arena != nullptr) ctx->arena->release(mark);
  if (st != SABLE_OK || launched) return st;
  // A projection whose only epilogue is the residual add (o, down): one GEMM with out += x · wᵀ
  // (the skinny kernel's accumulate, cuBLASLt's beta = 1) instead of a product in scratch and an
  // add kernel reading it back.
  if (s.accumulate && !s.norm && !s.gated && !s.rope)
    return gemm_into(ctx, "gemm_fused", x, w, bias, out, /*accumulate=*/true);
  return gemm_fused_composed(&kCudaOps, ctx, x, w, bias, f, out);
}

const SableOps kCudaOps = {
    sizeof(SableOps), 0,           &op_alloc,    &op_embedding,  &op_gemm,      &op_rms_norm,
    &op_layer_norm,   &op_rope,    &op_act_mul,  &op_activation, &op_add,       &op_mul,
    &op_scale,        &op_sigmoid, &op_copy,     &op_cast,       &op_gather_rows, &op_attention,
    &op_moe_route,    &op_moe_experts, &op_all_reduce, &op_all_gather, &op_argmax, &op_stream,
    &op_gemm_fused,   &op_lora,     &op_attention_bidirectional, &op_upload,
    &op_embedding_shard, &op_lora_stacked,
    nullptr};  // parallel_for (ABI 1.6): no CPU pool behind the CUDA table; plugins loop inline

}  // namespace

const SableOps* cuda_ops() { return &kCudaOps; }

void* CudaBacking::allocate(size_t bytes) {
  void* p = nullptr;
  return cudaMalloc(&p, bytes) == cudaSuccess ? p : nullptr;
}
void CudaBacking::deallocate(void* ptr, size_t) noexcept { cudaFree(ptr); }
int32_t CudaBacking::device_type() const { return SABLE_DEVICE_CUDA; }

}  // namespace sable::ops
