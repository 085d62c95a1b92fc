// The CUDA ops' mixture-of-experts calls (SableOps moe_route / moe_experts): validation of the
// views, the router's top-k with the expert counts recorded, and the grouped expert GEMMs
// (moe_kernels.cu) over scratch from the forward's arena.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/ops/cuda/op_support.h"
#include "core/ops/expert_recorder.h"

namespace sable::ops::cuda_op {

SableStatus op_moe_route(SableOpsContext* ctx, int32_t layer, const SableTensor* logits,
                         int32_t top_k, int32_t scoring, int32_t renormalize, SableTensor* weights,
                         SableTensor* ids) {
  return run_op(ctx, "moe_route", [&] {
    const auto& lg = tensor(logits, "logits");
    auto& w = const_cast<SableTensor&>(tensor(weights, "weights"));
    auto& id = const_cast<SableTensor&>(tensor(ids, "ids"));
    require(is_float(lg.dtype), "logits must be a float tensor, got dtype {}", lg.dtype);
    require(lg.ndim == 2, "logits must be [T, E], got rank {}", lg.ndim);
    contiguous(lg, "logits");
    const int64_t t = lg.shape[0];
    const int32_t e = static_cast<int32_t>(lg.shape[1]);
    require(top_k >= 1 && top_k <= e, "top_k {} must be in [1, {}]", top_k, e);
    require(scoring == SABLE_MOE_SOFTMAX || scoring == SABLE_MOE_SIGMOID, "unknown scoring {}",
            scoring);
    require(w.dtype == SABLE_DTYPE_F32, "weights must be F32, got dtype {}", w.dtype);
    require(id.dtype == SABLE_DTYPE_I32, "ids must be I32, got dtype {}", id.dtype);
    contiguous(w, "weights");
    contiguous(id, "ids");
    require(sable_tensor_numel(&w) == t * top_k && sable_tensor_numel(&id) == t * top_k,
            "weights and ids must be [{}, {}]", t, top_k);
    require(k::moe_route(lg.data, lg.dtype, t, e, top_k, scoring, renormalize != 0,
                         static_cast<float*>(w.data), static_cast<int32_t*>(id.data), ctx->stream),
            "unsupported routing (experts <= 1024, top_k <= 32), got E={} k={}", e, top_k);
    if (ctx->expert_recorder == nullptr || t == 0) return;  // recording off: no work at all
    const auto* id_dev = static_cast<const int32_t*>(id.data);
    if (ctx->expert_counts_device != nullptr) {
      require(layer >= 0 && layer < ctx->expert_counts_layers,
              "layer {} is outside the expert counters' {} layers", layer,
              ctx->expert_counts_layers);
      require(e <= ctx->expert_counts_experts, "{} experts exceed the expert counters' {}", e,
              ctx->expert_counts_experts);
      require(
          k::moe_count_experts(
              id_dev, t * top_k, e,
              ctx->expert_counts_device + int64_t(layer) * ctx->expert_counts_experts, ctx->stream),
          "expert counting supports at most 4096 experts, got {}", e);
      return;
    }
    // No device counters: download the ids and record on the host (waits for the stream).
    auto stream = static_cast<cudaStream_t>(ctx->stream);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    require(cudaStreamIsCapturing(stream, &capture) == cudaSuccess &&
                capture == cudaStreamCaptureStatusNone,
            "expert recording inside CUDA graph capture needs expert_counts_device");
    std::vector<int32_t> host(static_cast<size_t>(t * top_k));
    require(cudaMemcpyAsync(host.data(), id_dev, host.size() * sizeof(int32_t),
                            cudaMemcpyDeviceToHost, stream) == cudaSuccess &&
                cudaStreamSynchronize(stream) == cudaSuccess,
            "copying expert ids to the host failed");
    ctx->expert_recorder->record(layer, std::span<const int32_t>(host));
  });
}

// Fused experts: validation here, the launches in moe_kernels.cu (k::moe_experts).
SableStatus op_moe_experts(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w_gate_up,
                           const SableTensor* w_down, const SableTensor* weights,
                           const SableTensor* ids, int32_t act, SableTensor* out) {
  return run_op(ctx, "moe_experts", [&] {
    auto shape = [](const SableTensor& t) {
      std::string s = "[";
      for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
      return s + "]";
    };
    require(act >= SABLE_ACT_SILU && act <= SABLE_ACT_RELU, "unknown activation {}", act);
    const auto& xt = tensor(x, "x");
    const auto& gt = tensor(w_gate_up, "w_gate_up");
    const auto& dt = tensor(w_down, "w_down");
    const auto& wt = tensor(weights, "weights");
    const auto& it = tensor(ids, "ids");
    auto& ot = const_cast<SableTensor&>(tensor(out, "out"));
    const std::pair<const SableTensor*, const char*> bf16_tensors[] = {
        {&xt, "x"}, {&gt, "w_gate_up"}, {&dt, "w_down"}, {&ot, "out"}};
    for (const auto& [t, name] : bf16_tensors) {
      require(t->dtype == SABLE_DTYPE_BF16, "{} must be BF16 on CUDA, got dtype {}", name,
              t->dtype);
    }
    require(xt.ndim == 2, "x must be [T, H], got {}", shape(xt));
    const int64_t tokens = xt.shape[0], hidden = xt.shape[1];
    const int64_t ldx = row_stride(xt, "x");
    require(gt.ndim == 3 && gt.shape[2] == hidden && gt.shape[1] % 2 == 0,
            "w_gate_up must be [E, 2I, {}], got {}", hidden, shape(gt));
    contiguous(gt, "w_gate_up");
    const int64_t experts = gt.shape[0], inter = gt.shape[1] / 2;
    require(experts >= 1 && experts <= 1024, "CUDA moe_experts supports 1..1024 experts, got {}",
            experts);
    require(dt.ndim == 3 && dt.shape[0] == experts && dt.shape[1] == hidden && dt.shape[2] == inter,
            "w_down must be [{}, {}, {}], got {}", experts, hidden, inter, shape(dt));
    contiguous(dt, "w_down");
    require(ot.ndim == 2 && ot.shape[0] == tokens && ot.shape[1] == hidden,
            "out must be [{}, {}], got {}", tokens, hidden, shape(ot));
    contiguous(ot, "out");
    require(it.ndim == 2 && it.shape[0] == tokens && it.shape[1] >= 1,
            "ids must be [{}, k], got {}", tokens, shape(it));
    const int64_t top_k = it.shape[1];
    require(it.dtype == SABLE_DTYPE_I32, "ids must be I32, got dtype {}", it.dtype);
    require(wt.dtype == SABLE_DTYPE_F32, "weights must be F32, got dtype {}", wt.dtype);
    require(wt.ndim == 2 && wt.shape[0] == tokens && wt.shape[1] == top_k,
            "weights must be [{}, {}], got {}", tokens, top_k, shape(wt));
    contiguous(it, "ids");
    contiguous(wt, "weights");
    const int64_t pairs = tokens * top_k;
    require(
        pairs < (int64_t(1) << 31) && hidden < (int64_t(1) << 31) && 2 * inter < (int64_t(1) << 31),
        "sizes exceed 32-bit indexing (T*k={}, H={}, I={})", pairs, hidden, inter);
    if (tokens == 0) return;
    require(ctx->arena != nullptr, "no arena in the context");

    // Scratch for this op only: rolled back on return (later ops on the stream run after ours).
    struct Scratch {
      ops::Arena* arena;
      ops::Arena::Mark mark;
      ~Scratch() { arena->release(mark); }
      void* get(int64_t elems, size_t elem_size) {
        void* p = arena->allocate(static_cast<size_t>(elems) * elem_size, 256);
        require(p != nullptr, "arena exhausted ({} bytes of MoE scratch)", elems * elem_size);
        return p;
      }
    } scratch{ctx->arena, ctx->arena->mark()};
    k::MoeExpertsArgs a;
    a.x = xt.data;
    a.ldx = ldx;
    a.w_gate_up = gt.data;
    a.w_down = dt.data;
    a.weights = static_cast<const float*>(wt.data);
    a.ids = static_cast<const int32_t*>(it.data);
    a.tokens = tokens;
    a.top_k = static_cast<int32_t>(top_k);
    a.experts = static_cast<int32_t>(experts);
    a.hidden = hidden;
    a.inter = inter;
    a.act = act;
    a.out = ot.data;
    a.offsets = static_cast<int32_t*>(scratch.get(experts + 1, 4));
    a.tile_offsets = static_cast<int32_t*>(scratch.get(experts + 1, 4));
    a.perm = static_cast<int32_t*>(scratch.get(pairs, 4));
    a.inv = static_cast<int32_t*>(scratch.get(pairs, 4));
    a.gate_up = scratch.get(pairs * 2 * inter, 2);
    a.act_out = scratch.get(pairs * inter, 2);
    a.y = scratch.get(pairs * hidden, 2);
    require(k::moe_experts(a, ctx->stream), "unsupported MoE shape (E={}, k={}, H={}, I={})",
            experts, top_k, hidden, inter);
  });
}

}  // namespace sable::ops::cuda_op
