// gemm_fused: argument checks and the composed form (see gemm_fused.h).
#include "core/ops/gemm_fused.h"

#include <fmt/format.h>

#include <exception>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "sable/cpp/tensor.h"

namespace sable::ops {
namespace {

int64_t last_dim(const SableTensor& t) { return t.ndim ? t.shape[t.ndim - 1] : 1; }
int64_t rows(const SableTensor& t) {
  const int64_t l = last_dim(t);
  return l > 0 ? sable_tensor_numel(&t) / l : 0;
}

SableStatus fail(SableOpsContext* ctx, const std::string& message) {
  thread_local std::string last;
  last = "gemm_fused: " + message;
  if (ctx != nullptr) ctx->last_error = last.c_str();
  return SABLE_ERR_INVALID_ARGUMENT;
}

}  // namespace

std::string check_gemm_fused(const SableTensor* x, const SableTensor* w, const SableTensor* bias,
                             const SableGemmFusion* f, const SableTensor* out,
                             GemmFusedShape* shape) {
  if (x == nullptr || w == nullptr || out == nullptr) return "x, w and out must not be NULL";
  if (f != nullptr && f->struct_size < sizeof(uint32_t)) return "fusion.struct_size is 0";
  if (w->ndim != 2) return fmt::format("w must be [N, K], got rank {}", w->ndim);
  GemmFusedShape s;
  s.m = rows(*x);
  s.k = last_dim(*x);
  s.n = w->shape[0];
  if (w->shape[1] != s.k) return fmt::format("w is [{}, {}] but x has K={}", s.n, w->shape[1], s.k);
  if (bias != nullptr && sable_tensor_numel(bias) != s.n)
    return fmt::format("bias must have N={} elements", s.n);
  auto has = [&](size_t end) { return f != nullptr && f->struct_size >= end; };
  if (has(offsetof(SableGemmFusion, norm_offset) + sizeof(float)) && f->norm_weight != nullptr) {
    s.norm = true;
    if (sable_tensor_numel(f->norm_weight) != s.k)
      return fmt::format("norm_weight must have K={} elements", s.k);
    if (!(f->norm_eps >= 0.0f)) return "norm_eps must be >= 0";
  }
  if (has(offsetof(SableGemmFusion, act) + sizeof(int32_t)) && f->gated != 0) {
    s.gated = true;
    if (s.n % 2 != 0) return fmt::format("gated needs an even N, got {}", s.n);
    if (f->act < SABLE_ACT_SILU || f->act > SABLE_ACT_RELU)
      return fmt::format("unknown activation {}", f->act);
  }
  if (has(offsetof(SableGemmFusion, cos_sin) + sizeof(void*)) && f->rope_cols > 0) {
    s.rope = true;
    const int32_t d = f->rope_head_dim, r = f->rope_dim;
    if (d <= 0 || f->rope_cols % d != 0 || f->rope_cols > s.n)
      return fmt::format("rope_cols {} must be a multiple of rope_head_dim {} within N={}",
                         f->rope_cols, d, s.n);
    if (r <= 0 || r % 2 != 0 || r > d)
      return fmt::format("rope_dim {} must be even and within the head dim {}", r, d);
    if (f->rope_style != SABLE_ROPE_NEOX && f->rope_style != SABLE_ROPE_INTERLEAVED)
      return fmt::format("unknown rope_style {}", f->rope_style);
    if (s.gated) return "rope and the gated epilogue cannot be combined";
    if (f->positions == nullptr || f->positions->dtype != SABLE_DTYPE_I32 ||
        sable_tensor_numel(f->positions) != s.m)
      return fmt::format("positions must be I32 with M={} elements", s.m);
    if (f->cos_sin == nullptr || f->cos_sin->dtype != SABLE_DTYPE_F32 || f->cos_sin->ndim != 2 ||
        f->cos_sin->shape[1] != r)
      return fmt::format("cos_sin must be F32 [max_pos, {}]", r);
  }
  s.accumulate = has(offsetof(SableGemmFusion, accumulate) + sizeof(int32_t)) && f->accumulate;
  s.out_cols = s.gated ? s.n / 2 : s.n;
  if (rows(*out) != s.m || last_dim(*out) != s.out_cols)
    return fmt::format("out must be [{}, {}]", s.m, s.out_cols);
  if (!sable_tensor_is_contiguous(out)) return "out must be contiguous";
  if (out->dtype != x->dtype) return "out must have x's dtype";
  *shape = s;
  return "";
}

namespace {

SableStatus composed(const SableOps* ops, SableOpsContext* ctx, const SableTensor* x,
                     const SableTensor* w, const SableTensor* bias, const SableGemmFusion* f,
                     SableTensor* out) {
  GemmFusedShape s;
  if (std::string e = check_gemm_fused(x, w, bias, f, out, &s); !e.empty()) return fail(ctx, e);
  auto scratch = [&](int64_t r, int64_t c, SableTensor* t) {
    const int64_t shape[2] = {r, c};
    return ops->alloc(ctx, x->dtype, 2, shape, t);
  };
  SableStatus st = SABLE_OK;
  SableTensor xin = *x;
  if (s.norm) {
    SableTensor normed;
    if ((st = scratch(s.m, s.k, &normed)) != SABLE_OK) return st;
    const SableTensor x2 = x->ndim == 2 ? *x : cpp::reshape(*x, {s.m, s.k});
    st = ops->rms_norm(ctx, &x2, nullptr, f->norm_weight, f->norm_eps, f->norm_offset, &normed);
    if (st != SABLE_OK) return st;
    xin = normed;
  }
  // The product goes straight to `out` unless an epilogue still has to read it.
  SableTensor y = *out;
  const bool direct = !s.gated && !s.accumulate;
  if (!direct && (st = scratch(s.m, s.n, &y)) != SABLE_OK) return st;
  if ((st = ops->gemm(ctx, &xin, w, bias, &y)) != SABLE_OK) return st;
  if (s.rope) {
    SableTensor heads = cpp::narrow(cpp::reshape(y, {s.m, s.n}), 1, 0, f->rope_cols);
    heads = cpp::split_last(heads, f->rope_cols / f->rope_head_dim, f->rope_head_dim);
    st = ops->rope(ctx, &heads, nullptr, f->positions, f->cos_sin, f->rope_dim, f->rope_style);
    if (st != SABLE_OK) return st;
  }
  if (s.gated) {
    SableTensor act;
    if (s.accumulate) {
      if ((st = scratch(s.m, s.out_cols, &act)) != SABLE_OK) return st;
    } else {
      act = *out;
    }
    if ((st = ops->act_mul(ctx, f->act, &y, &act)) != SABLE_OK) return st;
    y = act;
  }
  if (s.accumulate) {
    SableTensor o2 = cpp::reshape(*out, {s.m, s.out_cols});
    const SableTensor y2 = cpp::reshape(y, {s.m, s.out_cols});
    return ops->add(ctx, &o2, &y2, &o2);
  }
  return SABLE_OK;
}

}  // namespace

SableStatus gemm_fused_composed(const SableOps* ops, SableOpsContext* ctx, const SableTensor* x,
                                const SableTensor* w, const SableTensor* bias,
                                const SableGemmFusion* f, SableTensor* out) noexcept {
  // The intermediates (normalised x, the product before its epilogue) live only inside this call:
  // hand their scratch back when it returns. Kept until the end of the forward, a prefill's
  // scratch grew by ~0.76 GB per 8B layer at 8448 tokens (24 GB over 32 layers, doubled by the
  // arena's growth), which the KV pool then could not have: on the H100 it got 10 of 80 GB.
  // Later ops reuse the bytes in stream order (one stream per forward), as with any scratch.
  Arena* arena = ctx != nullptr ? ctx->arena : nullptr;
  const Arena::Mark mark = arena != nullptr ? arena->mark() : Arena::Mark{};
  SableStatus st;
  try {
    st = composed(ops, ctx, x, w, bias, f, out);
  } catch (const std::exception& e) {  // the view helpers throw on a view they cannot make
    st = fail(ctx, e.what());
  }
  if (arena != nullptr) arena->release(mark);
  return st;
}

}  // namespace sable::ops
