// The generic ("transformers") model: one configurable decoder that computes, from config.json
// fields and the checkpoint's tensor names, the Hugging Face decoder families: Llama, Mistral,
// Qwen2/3, Helium, Gemma, OLMo2, Granite, Phi-3, StableLM and the Qwen2-MoE / Mixtral style MoE.
//
// Layer l, residual stream x [T, H] (starts as embedding * embed_scale):
//   h = pre_attn_norm ? norm(x) : x;  a = o(attention(rope(q(h)), rope(k(h)), v(h)))
//   a = post_attn_norm ? norm(a) : a;  x += a * residual_scale
//   h = pre_mlp_norm ? norm(x) : x;   m = mlp(h) (gated, fused gated, plain or MoE)
//   m = post_mlp_norm ? norm(m) : m;  x += m * residual_scale
// then logits = final_norm(x) · lm_headᵀ * logit_scale for the rows that need them.
// norm is RMSNorm (with Gemma's +1 weight offset) or LayerNorm (with bias when present).
// Shapes: T tokens, H hidden, Hq/Hk heads per rank, D head dim, I intermediate per rank.
// Tensor parallelism: separate q/k/v and gate/up are split by rows, o/down by columns, the
// embedding and LM head by vocabulary rows (common/tensor_parallel.h); fused projections need
// tp_size 1. LoRA: every q/k/v/o and dense gate/up/down projection's output
// goes through ops->lora when the batch has adapters (a fused q|k|v or gate|up output in one
// lora_stacked call where the host has it); MoE experts take none. Thread-safety: one thread at a time (the SDK's contract).
#pragma once

#include <span>
#include <vector>

#include "transformers/weight_layout.h"

namespace sable::models::generic {

class GenericModel final : public cpp::Model {
 public:
  explicit GenericModel(cpp::Host host);

  SableModelInfo info() const override {
    SableModelInfo i = model_info(spec_.g, spec_.sliding_window);
    i.lora_modules = (1u << SABLE_LORA_MODULE_COUNT) - 1u;
    return i;
  }
  void load_weights() override;
  void forward(const cpp::Ops& ops, const SableForwardBatch& batch,
               SableForwardOutput& out) override;

 private:
  struct Norm {
    SableTensor w{}, b{};
    bool present() const { return w.data != nullptr; }
  };
  struct Layer {
    Norm pre_attn, post_attn, pre_mlp, post_mlp;
    SableTensor qkv{}, qkv_b{}, q{}, q_b{}, k{}, k_b{}, v{}, v_b{}, o{}, o_b{};
    SableTensor q_norm{}, k_norm{};
    MlpKind mlp = MlpKind::kGated;
    SableTensor gate{}, gate_b{}, up{}, up_b{}, gate_up{}, gate_up_b{}, down{}, down_b{};
    MoeBlock moe;
  };

  Norm load_norm(const Param& p, int64_t n) const;
  void apply_norm(const cpp::Ops& ops, const Norm& n, const SableTensor& x, SableTensor& out) const;
  void attention(const cpp::Ops& ops, int32_t layer, Layer& w, const SableTensor& h,
                 const SableTensor& positions, SableTensor& out) const;
  void mlp(const cpp::Ops& ops, int32_t layer, Layer& w, const SableTensor& h,
           SableTensor& out) const;

  GenericSpec spec_;
  float attn_scale_ = 0.0f;
  Norm final_norm_;
  VocabTables vocab_tables_;
  SableTensor rope_{};
  std::vector<Layer> layers_;
  // The adapters' delta of `module` into `y` when this forward's batch has LoRA adapters.
  void lora(const cpp::Ops& ops, int32_t layer, int32_t module, const SableTensor& x,
            SableTensor y) const {
    if (lora_on_) ops.lora(layer, module, x, y);
  }
  // The deltas of modules first.. (q|k|v, gate|up) into their views of a fused output: one call
  // where the host has lora_stacked (ABI 1.5), else one per module.
  void lora_stacked(const cpp::Ops& ops, int32_t layer, int32_t first, const SableTensor& x,
                    std::span<SableTensor> ys) const {
    if (!lora_on_) return;
    if (ops.has_lora_stacked()) return ops.lora_stacked(layer, first, x, ys);
    for (size_t i = 0; i < ys.size(); ++i) lora(ops, layer, first + static_cast<int32_t>(i), x, ys[i]);
  }
  bool lora_on_ = false;  // set per forward
};

}  // namespace sable::models::generic
