// The sparse mixture-of-experts feed-forward block shared by the MoE model plugins (Qwen2-MoE,
// Qwen3-MoE, Mixtral) and the generic transformers-style plugin (header-only).
//
// Per token: router logits [T, E] = x · gateᵀ; the host's moe_route picks top-k experts (softmax,
// optionally renormalised) and passes the decoder layer index to the expert recorder; the host's
// moe_experts computes sum_j w[t,j] * down_e(act(gate_e(x)) * up_e(x)). An optional shared expert
// (Qwen2-MoE) is a dense gated MLP added to that, scaled per token by sigmoid(x · shared_gateᵀ).
//
// Weights: checkpoints store each expert separately (experts.N.gate_proj / up_proj / down_proj, or
// Mixtral's w1 / w3 / w2). moe_experts wants them stacked as w_gate_up [E, 2I, H] ([gate | up]
// rows) and w_down [E, H, I]. load() fetches the per-expert tensors and allocates the stacked
// tensors in persistent memory; the first forward fills them with ops.copy, so the stacking runs
// on whatever device the ops table drives (no host-side memcpy of device memory).
// Tensor parallelism: each rank keeps its slice of every expert's intermediate dim (gate/up rows,
// down columns) and of the shared expert; the caller all-reduces the block output.
// Thread-safety: one block belongs to one model object (one thread at a time).
#pragma once

#include <string>
#include <vector>

#include "sable/cpp/plugin.h"

namespace sable::models {

// Names and sizes of one MoE block. Expert tensor names are `prefix + experts.<j>.<name>.weight`.
struct MoeBlockOptions {
  std::string prefix;          // e.g. "model.layers.3.mlp." (ends with '.')
  std::string router = "gate";  // router weight [E, H]: prefix + router + ".weight"
  std::string gate_name = "gate_proj", up_name = "up_proj", down_name = "down_proj";
  int64_t hidden = 0;
  int64_t num_experts = 0;
  int64_t top_k = 0;
  int64_t expert_inter = 0;  // I per expert, whole model (sliced by TP)
  bool renormalize = false;  // divide the top-k weights by their sum
  int32_t act = SABLE_ACT_SILU;
  int64_t shared_inter = 0;  // shared expert's intermediate size; 0 = none
  std::string shared_name = "shared_expert";
  bool shared_gate = false;  // sigmoid(prefix + shared_expert_gate [1, H]) scales the shared expert
  int32_t tp_rank = 0, tp_size = 1;
};

// Activations one MoE layer needs; a decoder makes one per forward and passes it to every layer,
// so the arena holds one set instead of one per layer.
struct MoeScratch {
  int64_t t = -1, e = 0, k = 0, shared_i = 0, h = 0;
  SableTensor logits{}, weights{}, ids{}, gate{}, up{}, act{}, prod{}, shared{}, g{}, sg{}, scaled{};
};

class MoeBlock {
 public:
  void load(const cpp::Host& host, const MoeBlockOptions& opt) {
    opt_ = opt;
    const int64_t e = opt.num_experts, h = opt.hidden, tp = opt.tp_size;
    if (e <= 0 || opt.top_k <= 0 || opt.top_k > e)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: num_experts_per_tok " + std::to_string(opt.top_k) +
                    " must be in [1, " + std::to_string(e) + "]");
    if (opt.expert_inter % tp != 0 || opt.shared_inter % tp != 0)
      cpp::fail(SABLE_ERR_UNSUPPORTED, "tp_size " + std::to_string(tp) +
                                           " does not divide the experts' intermediate size");
    inter_ = opt.expert_inter / tp;
    const int32_t dt = host.compute_dtype();
    router_ = host.weight(opt.prefix + opt.router + ".weight", {e, h});
    parts_.clear();
    w_gate_up_ = host.alloc_persistent(dt, {e, 2 * inter_, h});
    w_down_ = host.alloc_persistent(dt, {e, h, inter_});
    // Load each expert straight into its slot of the stacked tensors when the host can
    // (weight_get_into): no second copy of the expert weights, which are most of an MoE model.
    stacked_ = host.can_load_into();
    for (int64_t j = 0; j < e; ++j) {
      const std::string p = opt.prefix + "experts." + std::to_string(j) + ".";
      const std::string gate = p + opt.gate_name + ".weight", up = p + opt.up_name + ".weight";
      const std::string down = p + opt.down_name + ".weight";
      if (stacked_) {
        SableTensor gu = cpp::reshape(cpp::narrow(w_gate_up_, 0, j, 1), {2 * inter_, h});
        rows_into(host, gate, inter_, opt.expert_inter, h, cpp::narrow(gu, 0, 0, inter_));
        rows_into(host, up, inter_, opt.expert_inter, h, cpp::narrow(gu, 0, inter_, inter_));
        cols_into(host, down, h, inter_, opt.expert_inter,
                  cpp::reshape(cpp::narrow(w_down_, 0, j, 1), {h, inter_}));
        continue;
      }
      parts_.push_back(rows(host, gate, inter_, opt.expert_inter, h));
      parts_.push_back(rows(host, up, inter_, opt.expert_inter, h));
      parts_.push_back(cols(host, down, h, inter_, opt.expert_inter));
    }
    if (opt.shared_inter > 0) {
      shared_i_ = opt.shared_inter / tp;
      const std::string p = opt.prefix + opt.shared_name + ".";
      sh_gate_ = rows(host, p + "gate_proj.weight", shared_i_, opt.shared_inter, h);
      sh_up_ = rows(host, p + "up_proj.weight", shared_i_, opt.shared_inter, h);
      sh_down_ = cols(host, p + "down_proj.weight", h, shared_i_, opt.shared_inter);
      if (opt.shared_gate) sh_router_ = host.weight(opt.prefix + opt.shared_name + "_gate.weight", {1, h});
    }
  }

  // out[T, H] = MoE(x[T, H]); `layer` is the decoder layer index (for the expert recorder).
  // The result is this rank's partial sum when tp_size > 1.
  // `scratch` (may be null: this call allocates its own) is reused when its shapes fit.
  void forward(const cpp::Ops& ops, int32_t layer, const SableTensor& x, SableTensor& out,
               MoeScratch* scratch = nullptr) {
    if (!stacked_) stack(ops);
    const int64_t t = x.shape[0], e = opt_.num_experts, k = opt_.top_k, h = opt_.hidden;
    const int32_t dt = x.dtype;
    MoeScratch local;
    MoeScratch& s = scratch != nullptr ? *scratch : local;
    if (s.t != t || s.e != e || s.k != k || s.shared_i != shared_i_ || s.h != h) {
      s = MoeScratch{t, e, k, shared_i_, h};
      s.logits = ops.alloc(SABLE_DTYPE_F32, {t, e});  // F32 router: fewer bf16 near-tie flips
      s.weights = ops.alloc(SABLE_DTYPE_F32, {t, k});
      s.ids = ops.alloc(SABLE_DTYPE_I32, {t, k});
      if (opt_.shared_inter > 0) {
        s.gate = ops.alloc(dt, {t, shared_i_});
        s.up = ops.alloc(dt, {t, shared_i_});
        s.act = ops.alloc(dt, {t, shared_i_});
        s.prod = ops.alloc(dt, {t, shared_i_});
        s.shared = ops.alloc(dt, {t, h});
        s.g = ops.alloc(dt, {t, 1});
        s.sg = ops.alloc(dt, {t, 1});
        s.scaled = ops.alloc(dt, {t, h});
      }
    }
    ops.gemm(x, router_, nullptr, s.logits);
    ops.moe_route(layer, s.logits, static_cast<int32_t>(k), SABLE_MOE_SOFTMAX, opt_.renormalize,
                  s.weights, s.ids);
    ops.moe_experts(x, w_gate_up_, w_down_, s.weights, s.ids, opt_.act, out);
    if (opt_.shared_inter <= 0) return;

    ops.gemm(x, sh_gate_, nullptr, s.gate);
    ops.gemm(x, sh_up_, nullptr, s.up);
    ops.activation(opt_.act, s.gate, s.act);
    ops.mul(s.act, s.up, s.prod);
    ops.gemm(s.prod, sh_down_, nullptr, s.shared);
    SableTensor* shared = &s.shared;
    if (opt_.shared_gate) {
      ops.gemm(x, sh_router_, nullptr, s.g);
      ops.sigmoid(s.g, s.sg);
      ops.mul(s.shared, s.sg, s.scaled);
      shared = &s.scaled;
    }
    ops.add(out, *shared, out);
  }

 private:
  // Fills the stacked expert tensors from the per-expert ones (once, on the ops' device).
  void stack(const cpp::Ops& ops) {
    const int64_t e = opt_.num_experts, h = opt_.hidden, i = inter_;
    const size_t es = sable_dtype_size(w_gate_up_.dtype);
    for (int64_t j = 0; j < e; ++j) {
      char* gu = static_cast<char*>(w_gate_up_.data) + static_cast<size_t>(j * 2 * i * h) * es;
      char* dn = static_cast<char*>(w_down_.data) + static_cast<size_t>(j * h * i) * es;
      SableTensor g = view(gu, {i, h}), u = view(gu + static_cast<size_t>(i * h) * es, {i, h});
      SableTensor d = view(dn, {h, i});
      ops.copy(parts_[static_cast<size_t>(3 * j)], g);
      ops.copy(parts_[static_cast<size_t>(3 * j + 1)], u);
      ops.copy(parts_[static_cast<size_t>(3 * j + 2)], d);
    }
    stacked_ = true;
  }
  SableTensor view(void* p, std::initializer_list<int64_t> shape) const {
    return cpp::make_tensor(p, w_gate_up_.dtype, shape, w_gate_up_.device_type,
                            w_gate_up_.device_index);
  }
  void rows_into(const cpp::Host& host, const std::string& name, int64_t per_rank, int64_t total,
                 int64_t in, SableTensor dst) const {
    if (opt_.tp_size == 1) return host.weight_into(name, {total, in}, dst);
    host.weight_into(name, {total, in}, dst, 0, opt_.tp_rank * per_rank, per_rank);
  }
  void cols_into(const cpp::Host& host, const std::string& name, int64_t out, int64_t per_rank,
                 int64_t total, SableTensor dst) const {
    if (opt_.tp_size == 1) return host.weight_into(name, {out, total}, dst);
    host.weight_into(name, {out, total}, dst, 1, opt_.tp_rank * per_rank, per_rank);
  }
  SableTensor rows(const cpp::Host& host, const std::string& name, int64_t per_rank, int64_t total,
                   int64_t in) const {
    if (opt_.tp_size == 1) return host.weight(name, {total, in});
    return host.weight_slice(name, {total, in}, 0, opt_.tp_rank * per_rank, per_rank);
  }
  SableTensor cols(const cpp::Host& host, const std::string& name, int64_t out, int64_t per_rank,
                   int64_t total) const {
    if (opt_.tp_size == 1) return host.weight(name, {out, total});
    return host.weight_slice(name, {out, total}, 1, opt_.tp_rank * per_rank, per_rank);
  }

  MoeBlockOptions opt_;
  int64_t inter_ = 0, shared_i_ = 0;
  bool stacked_ = false;
  SableTensor router_{}, w_gate_up_{}, w_down_{};
  std::vector<SableTensor> parts_;  // per expert: gate [I, H], up [I, H], down [H, I]
  SableTensor sh_gate_{}, sh_up_{}, sh_down_{}, sh_router_{};
};

}  // namespace sable::models
