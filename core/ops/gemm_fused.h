// gemm_fused (sable/ops.h, ABI 1.1) written once for every device: the checks of its arguments,
// and the composed form that runs it as the separate ops of the same table (rms_norm, gemm, rope,
// act_mul, add). The CPU table uses the composed form for everything; the CUDA table uses its
// one-kernel form for decode-sized batches and the composed form otherwise, so both devices
// compute the same function and the CPU goldens pin it.
//
// Thread-safety: as the ops themselves (one forward context per thread at a time).
#pragma once

#include <cstdint>
#include <string>

#include "sable/ops.h"

namespace sable::ops {

// The shape facts of one gemm_fused call, read off its arguments by check_gemm_fused.
struct GemmFusedShape {
  int64_t m = 0, n = 0, k = 0;  // x [m, k], w [n, k]
  int64_t out_cols = 0;         // n, or n / 2 when gated
  bool norm = false, rope = false, gated = false, accumulate = false;
};

// Validates the arguments (shapes, dtypes, the fusion's fields); returns "" when they are
// usable, else a message naming the problem. Fills `shape` on success.
std::string check_gemm_fused(const SableTensor* x, const SableTensor* w, const SableTensor* bias,
                             const SableGemmFusion* fusion, const SableTensor* out,
                             GemmFusedShape* shape);

// Runs gemm_fused as the separate ops of `ops` (scratch from ops->alloc). Returns the first
// failing op's status (its message in ctx->last_error).
SableStatus gemm_fused_composed(const SableOps* ops, SableOpsContext* ctx, const SableTensor* x,
                                const SableTensor* w, const SableTensor* bias,
                                const SableGemmFusion* fusion, SableTensor* out) noexcept;

}  // namespace sable::ops
