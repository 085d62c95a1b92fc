// The CUDA ops' mlp_fused (SableOps, ABI 1.8): decode batches of up to kMlpFusedMaxM rows whose
// MLP fits the GPU's shared memory run as one kernel (mlp_kernel.cu); everything else, and what
// that kernel does not take (dtypes, strides, biases), runs as its two gemm_fused calls
// (core/ops/mlp_fused.h). SABLE_MLP_FUSED=0 always takes the two calls (A/B, bench/NOTES.md v19).
#include <cstdlib>
#include <string>

#include "core/ops/cuda/cuda_ops.h"
#include "core/ops/cuda/op_support.h"
#include "core/ops/mlp_fused.h"

namespace sable::ops::cuda_op {
namespace {

bool one_kernel_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SABLE_MLP_FUSED");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

bool plain_bf16(const SableTensor& t) {
  return t.dtype == SABLE_DTYPE_BF16 && sable_tensor_is_contiguous(&t);
}

}  // namespace

SableStatus op_mlp_fused(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w_gate_up,
                         const SableTensor* gate_up_bias, const SableGemmFusion* f,
                         const SableTensor* w_down, const SableTensor* down_bias,
                         SableTensor* out) {
  MlpFusedShape s;
  bool launched = false;
  const Arena::Mark mark =
      ctx != nullptr && ctx->arena != nullptr ? ctx->arena->mark() : Arena::Mark{};
  const SableStatus st = run_op(ctx, "mlp_fused", [&] {
    const std::string err =
        check_mlp_fused(x, w_gate_up, gate_up_bias, f, w_down, down_bias, out, &s);
    require(err.empty(), "{}", err);
    if (!one_kernel_enabled() || gate_up_bias != nullptr || down_bias != nullptr ||
        !k::mlp_fused_fits(s.m, s.hidden, s.inter))
      return;
    const auto& a = tensor(x, "x");
    if (a.dtype != SABLE_DTYPE_BF16 || !plain_bf16(tensor(w_gate_up, "w_gate_up")) ||
        !plain_bf16(tensor(w_down, "w_down")) || !plain_bf16(tensor(out, "out")))
      return;
    if (a.ndim != 2 && !sable_tensor_is_contiguous(&a)) return;
    if (a.ndim == 2 && a.strides[1] != 1) return;
    k::MlpFusedArgs g;
    if (s.norm) {
      const auto& nw = tensor(f->norm_weight, "norm_weight");
      if (!plain_bf16(nw)) return;
      g.norm_w = nw.data;
      g.eps = f->norm_eps;
      g.norm_offset = f->norm_offset;
    }
    const int64_t shape[2] = {s.m, s.inter};
    SableTensor act;
    require(cuda_ops()->alloc(ctx, SABLE_DTYPE_BF16, 2, shape, &act) == SABLE_OK,
            "arena exhausted");
    g.x = a.data;
    g.ldx = a.ndim == 2 ? a.strides[0] : s.hidden;
    g.w_gate_up = w_gate_up->data;
    g.w_down = w_down->data;
    g.act = act.data;
    g.out = out->data;
    g.ldo = s.hidden;
    g.m = s.m;
    g.hidden = s.hidden;
    g.inter = s.inter;
    g.act_kind = f->act;
    g.early = k::gemv_early_loads(w_gate_up->data, 2 * s.inter, s.hidden) &&
              k::gemv_early_loads(w_down->data, s.hidden, s.inter);
    launched = k::mlp_fused(g, ctx->stream);
  });
  // The activation's scratch is reused in stream order after this call.
  if (ctx != nullptr && ctx->arena != nullptr) ctx->arena->release(mark);
  if (st != SABLE_OK || launched) return st;
  return mlp_fused_composed(cuda_ops(), ctx, x, w_gate_up, gate_up_bias, f, w_down, down_bias, out);
}

}  // namespace sable::ops::cuda_op
