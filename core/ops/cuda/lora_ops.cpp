// The CUDA ops' LoRA calls (SableOps lora / lora_stacked): the per-module deltas of a batch's
// adapters, launched as a shrink and an expand (lora_kernels.cu) forked beside the base GEMM
// (lora_fork.h); the expand's fp32 sums are added into the GEMM's output after the join, by a
// small kernel or by the op that reads that output next (lora_pending.h).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/ops/cuda/lora_fork.h"
#include "core/ops/cuda/lora_pending.h"
#include "core/ops/cuda/op_support.h"
#include "core/ops/lora_batch.h"
#include "core/ops/lora_step_block.h"

namespace sable::ops::cuda_op {
namespace {

// LoRA deltas of `count` projections that read x (ctx->lora's adapters, lora_kernels.cu). The
// launches do not depend on the batch's adapters (the kernels skip empty tiles, slots and pools on
// the device), so a captured decode step fits any later batch of its size. Only an eager call
// skips projections that no adapter in the pool has targeted yet.
//
// Timing only (wrong deltas; bench/NOTES.md v14): SABLE_LORA_SKIP=shrink|expand|both leaves that
// kernel out for the calls whose first module is in SABLE_LORA_SKIP_MODULES (a bit mask of
// SableLoraModule, default all), so that step-time differences price each launch in the graph
// (e.g. mask 72 = o and down: what folding their expand into the base GEMM could save).
struct LoraProbe {
  bool no_shrink = false, no_expand = false;
  uint32_t modules = ~0u;
};
LoraProbe lora_probe() {
  static const LoraProbe probe = [] {
    LoraProbe p;
    const char* v = std::getenv("SABLE_LORA_SKIP");
    const std::string what = v != nullptr ? v : "";
    p.no_shrink = what == "shrink" || what == "both";
    p.no_expand = what == "expand" || what == "both";
    const char* m = std::getenv("SABLE_LORA_SKIP_MODULES");
    if (m != nullptr && m[0] != '\0')
      p.modules = static_cast<uint32_t>(std::strtoul(m, nullptr, 0));
    return p;
  }();
  return probe;
}

static_assert(k::kLoraBesideMaxRows <= k::kLoraZeroMaxRows,
              "the expand zeroes any beside call's rows");

void lora_deltas(SableOpsContext* ctx, int32_t layer, int32_t first, int32_t count,
                 const SableTensor* x, SableTensor* outs) {
  require(ctx != nullptr, "context is null");
  require(count >= 1 && count <= kLoraMaxStacked && first >= 0 &&
              first + count <= SABLE_LORA_MODULE_COUNT,
          "modules {}..{} are not {} consecutive LoRA modules (at most {})", first,
          first + count - 1, count, kLoraMaxStacked);
  require(outs != nullptr, "outs is null");
  const auto& xt = tensor(x, "x");
  const LoraBatch* lb = ctx->lora;
  if (lb == nullptr) return;
  require(layer >= 0 && layer < lb->num_layers, "layer {} outside the model's {} layers", layer,
          lb->num_layers);
  require(lb->step_device != nullptr, "the LoRA batch has no device step block");
  require(xt.ndim == 2 && xt.strides[1] == 1, "x must be a 2-D row view with unit column stride");
  require(xt.dtype == lb->dtype, "x and the LoRA pool must share the compute dtype");
  const int64_t t = lb->num_tokens;
  require(xt.shape[0] == t, "x must have the batch's {} rows, got {}", t, xt.shape[0]);
  k::LoraLaunch l;
  l.x = xt.data;
  l.k = xt.shape[1];
  l.ldx = t > 1 ? xt.strides[0] : l.k;
  l.count = count;
  l.layer = layer;
  l.rank_stride = lb->max_rank;
  l.max_tiles = lora_max_tiles(t, lb->num_slots);
  l.view = lb->device;
  l.rows = t;
  bool any_pool = false;
  for (int32_t i = 0; i < count; ++i) {
    const auto& ot = tensor(&outs[i], "out");
    require(ot.ndim == 2 && ot.strides[1] == 1 && ot.dtype == lb->dtype && ot.shape[0] == t,
            "out {} must be a [{}, N] row view in the compute dtype", i, t);
    const LoraWeights& w = lb->weights[layer * SABLE_LORA_MODULE_COUNT + first + i];
    if (w.a != nullptr)
      require(w.k == l.k && w.n == ot.shape[1],
              "x [{}, {}] / out [{}, {}] do not fit the "
              "adapters' [{}, {}] of module {}",
              t, l.k, t, ot.shape[1], w.k, w.n, first + i);
    any_pool = any_pool || w.a != nullptr;
    l.module[i] = first + i;
    l.out[i] = ot.data;
    l.ldo[i] = t > 1 ? ot.strides[0] : ot.shape[1];
    l.n[i] = ot.shape[1];
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  require(cudaStreamIsCapturing(static_cast<cudaStream_t>(ctx->stream), &capture) == cudaSuccess,
          "cudaStreamIsCapturing failed");
  // The shrink's partial sums live only for this call (stream-ordered reuse after it). Allocated
  // even when nothing is launched, so an eager warm-up sizes the arena for a capture.
  const Arena::Mark mark = ctx->arena->mark();
  const size_t floats = k::lora_scratch_floats(l, lb->dtype);
  auto* scratch = static_cast<float*>(ctx->arena->allocate(std::max<size_t>(floats, 1) * 4, 256));
  require(scratch != nullptr, "scratch arena cannot hold the LoRA partial sums ({} floats)",
          floats);
  if (any_pool || capture != cudaStreamCaptureStatusNone) {
    // The shrink beside the base projection's GEMM when that GEMM recorded x ready (lora_fork.h).
    // The scratch is above everything allocated when the GEMM was enqueued, and the GEMM takes no
    // arena memory, so the two branches touch disjoint memory.
    const auto stream = static_cast<cudaStream_t>(ctx->stream);
    const LoraProbe probe = lora_probe();
    // In the probe's mask and a kernel left out: the mask alone (all modules by default) is not a
    // skip (it once kept every call off v22's one-launch path).
    const bool skip = (probe.no_shrink || probe.no_expand) && ((probe.modules >> first) & 1u);
    cudaStream_t side = k::lora_fork_enabled() ? k::lora_fork().fork(stream, l.x) : nullptr;
    // The expand beside the GEMM too (v18): its sums to an fp32 buffer, added into the outs after
    // the join with the expand's one rounding (the same bits). Where the next op takes the add in
    // (lora_pending.h) it adds every row's delta, so the buffer is zeroed first (rows without an
    // adapter are in no tile); the separate add touches only the tiles' rows.
    // Decode batches only (at most kLoraBesideMaxRows rows): a prefill's expand is not
    // latency-bound, and its buffer ([T, N] floats) would be large. Where the arena cannot hold the
    // buffer, the expand runs after the GEMM as before.
    bool beside = side != nullptr && k::lora_expand_mode() != k::LoraExpandMode::kAfter &&
                  t <= k::kLoraBesideMaxRows && !(skip && probe.no_expand);
    const size_t delta_floats = k::lora_delta_floats(l);
    if (beside) {
      l.delta =
          static_cast<float*>(ctx->arena->allocate(std::max<size_t>(delta_floats, 1) * 4, 256));
      beside = l.delta != nullptr;
    }
    k::LoraPendingDelta* pending =
        beside && k::lora_pending_allows(first, count) ? k::lora_pending() : nullptr;
    // The consumer reads every row's delta: the expand zeroes the rows outside its tiles itself
    // (SABLE_LORA_ZERO_FILL=0: a memset first).
    if (beside) l.zero_rest = pending != nullptr && k::lora_zero_fill();
    if (!(skip && probe.no_shrink))
      require(k::lora_shrink(l, lb->dtype, scratch, side != nullptr ? side : stream),
              "lora shrink: unsupported dtype or shape (rank stride {}), or the launch failed",
              l.rank_stride);
    if (beside) {
      if (pending != nullptr && !l.zero_rest)
        require(cudaMemsetAsync(l.delta, 0, delta_floats * 4, side) == cudaSuccess,
                "zeroing the LoRA deltas failed");
      require(k::lora_expand_to_delta(l, lb->dtype, scratch, side),
              "lora expand (deltas): the launch failed");
    }
    if (side != nullptr)
      require(k::lora_fork().join(stream), "joining the LoRA side stream failed");
    if (pending != nullptr)  // the next op adds it (lora_pending.h); run_op flushed any older one
      *pending = {true, l, lb->dtype, stream};
    else if (beside)
      require(k::lora_apply_delta(l, lb->dtype, stream), "lora expand (apply): the launch failed");
    else if (!(skip && probe.no_expand))
      require(k::lora_expand(l, lb->dtype, scratch, stream), "lora expand: the launch failed");
  }
  ctx->arena->release(mark);
}

}  // namespace

SableStatus op_lora(SableOpsContext* ctx, int32_t layer, int32_t module, const SableTensor* x,
                    SableTensor* out) {
  return run_op(ctx, "lora", [&] { lora_deltas(ctx, layer, module, 1, x, out); });
}

SableStatus op_lora_stacked(SableOpsContext* ctx, int32_t layer, int32_t first_module,
                            int32_t num_modules, const SableTensor* x, SableTensor* outs) {
  return run_op(ctx, "lora_stacked",
                [&] { lora_deltas(ctx, layer, first_module, num_modules, x, outs); });
}

}  // namespace sable::ops::cuda_op
