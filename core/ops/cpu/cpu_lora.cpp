// The CPU `lora` op: out[rows of segment g] += (x · A_sᵀ) · B_sᵀ for the adapter slot s of each
// segment, as two BLAS GEMMs per segment (shrink to the rank, then expand); `lora_stacked` is the
// same per module. Kept apart from the base GEMM (cpu_gemm.cpp) so the projection's kernel and the
// adapters' can change independently.
#include <cblas.h>

#include <vector>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/lora_batch.h"

namespace sable::ops::cpu {

SableStatus lora(SableOpsContext* ctx, int32_t layer, int32_t module, const SableTensor* x,
                 SableTensor* out) {
  return run_op(ctx, "lora", [&] {
    require(ctx != nullptr, "context is NULL");
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& ot = check_tensor(out, "out");
    check_dtype(xt, "x", SABLE_DTYPE_F32);
    check_dtype(ot, "out", SABLE_DTYPE_F32);
    require(module >= 0 && module < SABLE_LORA_MODULE_COUNT, "unknown LoRA module {}", module);
    const LoraBatch* lb = ctx->lora;
    if (lb == nullptr) return;  // no row of this batch uses an adapter
    require(layer >= 0 && layer < lb->num_layers, "layer {} outside the model's {} layers", layer,
            lb->num_layers);
    const LoraWeights& w = lb->weights[layer * SABLE_LORA_MODULE_COUNT + module];
    if (w.a == nullptr) return;  // no adapter in the pool targets this projection
    require(lb->dtype == SABLE_DTYPE_F32, "the LoRA pool must hold F32 weights on the CPU");
    const Rows xr = rows_of(xt, "x"), orows = rows_of(ot, "out");
    require(xr.cols == w.k, "x {} must have {} columns (the adapters' input size)", shape_str(xt),
            w.k);
    require(orows.cols == w.n, "out {} must have {} columns (the adapters' output size)",
            shape_str(ot), w.n);
    require(xr.uniform && orows.uniform, "x and out must have uniformly spaced rows");
    require(xr.rows == lb->num_tokens && orows.rows == lb->num_tokens,
            "x {} and out {} must have the batch's {} rows", shape_str(xt), shape_str(ot),
            lb->num_tokens);
    const int64_t r_max = lb->max_rank;
    const auto* a_pool = static_cast<const float*>(w.a);
    const auto* b_pool = static_cast<const float*>(w.b);
    std::vector<float> shrunk;
    for (int32_t g = 0; g < lb->num_segments; ++g) {
      const int32_t slot = lb->seg_slot[g];
      if (slot < 0) continue;
      const int64_t rank = lb->slot_rank[slot * SABLE_LORA_MODULE_COUNT + module];
      if (rank == 0) continue;
      const int64_t first = lb->seg_start[g], rows = lb->seg_start[g + 1] - first;
      const float* a = a_pool + slot * r_max * w.k;  // [rank, K] rows of A_s
      const float* b = b_pool + slot * w.n * r_max;  // [N, R], the first rank columns used
      shrunk.assign(static_cast<size_t>(rows * rank), 0.0f);
      // shrink: s[rows, rank] = x[rows, K] · A_sᵀ
      sgemm_xwt(xr.row<float>(first), xr.stride, a, w.k, nullptr, shrunk.data(), rank, rows, rank,
                w.k);
      // expand: out[rows, N] += s · B_sᵀ (beta 1 accumulates into the projection's output)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                  static_cast<blasint>(w.n), static_cast<blasint>(rank), 1.0f, shrunk.data(),
                  static_cast<blasint>(rank), b, static_cast<blasint>(r_max), 1.0f,
                  orows.row<float>(first), static_cast<blasint>(orows.stride));
    }
  });
}

SableStatus lora_stacked(SableOpsContext* ctx, int32_t layer, int32_t first_module,
                         int32_t num_modules, const SableTensor* x, SableTensor* outs) {
  const SableStatus st = run_op(ctx, "lora_stacked", [&] {
    require(num_modules >= 1 && num_modules <= kLoraMaxStacked && first_module >= 0 &&
                first_module + num_modules <= SABLE_LORA_MODULE_COUNT,
            "modules {}..{} are not {} consecutive LoRA modules (at most {})", first_module,
            first_module + num_modules - 1, num_modules, kLoraMaxStacked);
    require(outs != nullptr, "outs is NULL");
  });
  for (int32_t i = 0; st == SABLE_OK && i < num_modules; ++i) {
    const SableStatus s = lora(ctx, layer, first_module + i, x, &outs[i]);
    if (s != SABLE_OK) return s;
  }
  return st;
}

}  // namespace sable::ops::cpu
