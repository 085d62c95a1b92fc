// mlp_fused: argument checks and the composed form (see mlp_fused.h).
#include "core/ops/mlp_fused.h"

#include <fmt/format.h>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/gemm_fused.h"

namespace sable::ops {
namespace {

SableStatus fail(SableOpsContext* ctx, const std::string& message) {
  thread_local std::string last;
  last = "mlp_fused: " + message;
  if (ctx != nullptr) ctx->last_error = last.c_str();
  return SABLE_ERR_INVALID_ARGUMENT;
}

// True when the bytes of a and b overlap (both contiguous spans of their numel).
bool overlaps(const SableTensor& a, const SableTensor& b) {
  const auto* pa = static_cast<const char*>(a.data);
  const auto* pb = static_cast<const char*>(b.data);
  const size_t na = static_cast<size_t>(sable_tensor_numel(&a)) * sable_dtype_size(a.dtype);
  const size_t nb = static_cast<size_t>(sable_tensor_numel(&b)) * sable_dtype_size(b.dtype);
  return pa < pb + nb && pb < pa + na;
}

}  // namespace

std::string check_mlp_fused(const SableTensor* x, const SableTensor* w_gate_up,
                            const SableTensor* gate_up_bias, const SableGemmFusion* f,
                            const SableTensor* w_down, const SableTensor* down_bias,
                            const SableTensor* out, MlpFusedShape* shape) {
  if (x == nullptr || w_gate_up == nullptr || w_down == nullptr || out == nullptr || f == nullptr)
    return "x, w_gate_up, fusion, w_down and out must not be NULL";
  if (f->struct_size < offsetof(SableGemmFusion, act) + sizeof(int32_t) || f->gated == 0)
    return "fusion.gated must be set (the gate|up projection's act(gate) * up)";
  if (f->struct_size >= offsetof(SableGemmFusion, rope_cols) + sizeof(int32_t) && f->rope_cols)
    return "fusion.rope_cols must be 0 (no rotary embedding in an MLP)";
  if (f->struct_size >= offsetof(SableGemmFusion, accumulate) + sizeof(int32_t) && f->accumulate)
    return "fusion.accumulate must be 0 (the residual add is the down projection's)";
  if (w_down->ndim != 2) return fmt::format("w_down must be [H, I], got rank {}", w_down->ndim);
  if (w_gate_up->ndim != 2)
    return fmt::format("w_gate_up must be [2I, H], got rank {}", w_gate_up->ndim);
  MlpFusedShape s;
  s.hidden = w_down->shape[0];
  s.inter = w_down->shape[1];
  if (w_gate_up->shape[0] != 2 * s.inter || w_gate_up->shape[1] != s.hidden)
    return fmt::format("w_gate_up is [{}, {}] but w_down [{}, {}] needs [{}, {}]",
                       w_gate_up->shape[0], w_gate_up->shape[1], s.hidden, s.inter, 2 * s.inter,
                       s.hidden);
  const int64_t x_cols = x->ndim ? x->shape[x->ndim - 1] : 1;
  if (x_cols != s.hidden)
    return fmt::format("x has {} columns, the MLP's hidden size is {}", x_cols, s.hidden);
  s.m = x_cols > 0 ? sable_tensor_numel(x) / x_cols : 0;
  if (down_bias != nullptr && sable_tensor_numel(down_bias) != s.hidden)
    return fmt::format("down_bias must have H={} elements", s.hidden);
  // The first projection's own checks (norm weight, act, bias) against a stand-in for the
  // activation [m, I], and the second's with out.
  SableTensor act = *out;
  act.ndim = 2;
  act.shape[0] = s.m;
  act.shape[1] = s.inter;
  act.strides[0] = s.inter;
  act.strides[1] = 1;
  GemmFusedShape g;
  if (std::string e = check_gemm_fused(x, w_gate_up, gate_up_bias, f, &act, &g); !e.empty())
    return e;
  s.norm = g.norm;
  SableGemmFusion acc{};
  acc.struct_size = sizeof(acc);
  acc.accumulate = 1;
  if (std::string e = check_gemm_fused(&act, w_down, down_bias, &acc, out, &g); !e.empty())
    return e;
  if (out->data != x->data && overlaps(*out, *x)) return "out overlaps x without being x";
  *shape = s;
  return "";
}

SableStatus mlp_fused_composed(const SableOps* ops, SableOpsContext* ctx, const SableTensor* x,
                               const SableTensor* w_gate_up, const SableTensor* gate_up_bias,
                               const SableGemmFusion* f, const SableTensor* w_down,
                               const SableTensor* down_bias, SableTensor* out) noexcept {
  MlpFusedShape s;
  const std::string e = check_mlp_fused(x, w_gate_up, gate_up_bias, f, w_down, down_bias, out, &s);
  if (!e.empty()) return fail(ctx, e);
  // The activation lives only inside this call: its scratch goes back when it returns, and
  // later ops reuse the bytes in stream order (one stream per forward).
  Arena* arena = ctx != nullptr ? ctx->arena : nullptr;
  const Arena::Mark mark = arena != nullptr ? arena->mark() : Arena::Mark{};
  const int64_t shape[2] = {s.m, s.inter};
  SableTensor act;
  SableStatus st = ops->alloc(ctx, out->dtype, 2, shape, &act);
  if (st == SABLE_OK) st = ops->gemm_fused(ctx, x, w_gate_up, gate_up_bias, f, &act);
  if (st == SABLE_OK) {
    SableGemmFusion acc{};
    acc.struct_size = sizeof(acc);
    acc.accumulate = 1;
    st = ops->gemm_fused(ctx, &act, w_down, down_bias, &acc, out);
  }
  if (arena != nullptr) arena->release(mark);
  return st;
}

}  // namespace sable::ops
