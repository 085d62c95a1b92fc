// mlp_fused (sable/ops.h, ABI 1.8) written once for every device: the checks of its arguments and
// the composed form, the two gemm_fused calls of the same table (gate|up with the norm and the
// gated epilogue into scratch, then down with accumulate into out). The CPU table uses the
// composed form for everything; the CUDA table runs decode batches of small models as one kernel
// (core/ops/cuda/mlp_kernel.cu) and the rest composed, so both compute the same function.
//
// Thread-safety: as the ops themselves (one forward context per thread at a time).
#pragma once

#include <cstdint>
#include <string>

#include "sable/ops.h"

namespace sable::ops {

// The shape facts of one mlp_fused call, read off its arguments by check_mlp_fused.
struct MlpFusedShape {
  int64_t m = 0;       // rows of x and out
  int64_t hidden = 0;  // H: x [m, H], w_down [H, I], out [m, H]
  int64_t inter = 0;   // I: w_gate_up [2I, H]
  bool norm = false;   // fusion->norm_weight set
};

// Validates the arguments (shapes, dtypes, the fusion's fields, out against x); returns "" when
// they are usable, else a message naming the problem. Fills `shape` on success.
std::string check_mlp_fused(const SableTensor* x, const SableTensor* w_gate_up,
                            const SableTensor* gate_up_bias, const SableGemmFusion* fusion,
                            const SableTensor* w_down, const SableTensor* down_bias,
                            const SableTensor* out, MlpFusedShape* shape);

// Runs mlp_fused as two gemm_fused calls of `ops` (the activation in scratch from ops->alloc,
// handed back before it returns). Returns the first failing call's status (its message in
// ctx->last_error).
SableStatus mlp_fused_composed(const SableOps* ops, SableOpsContext* ctx, const SableTensor* x,
                               const SableTensor* w_gate_up, const SableTensor* gate_up_bias,
                               const SableGemmFusion* fusion, const SableTensor* w_down,
                               const SableTensor* down_bias, SableTensor* out) noexcept;

}  // namespace sable::ops
