// What the generic ("transformers") plugin reads from config.json: one description of a
// Hugging Face style decoder, filled from config fields rather than from a table per model.
//
// read_generic_spec validates while it reads: any field whose value this decoder cannot honour
// (an unknown activation, a rope type the host's rope cache lacks, sliding window on only some
// layers, alibi, logit softcapping, parallel residual, per-head LayerNorm of q/k, MoE scoring other
// than softmax) throws sable::cpp::Error naming the field and its value, so a model is either
// computed as transformers computes it or refused at create().
// Thread-safety: plain data; read once at create().
#pragma once

#include <string>
#include <vector>

#include "moe/moe_decoder.h"

namespace sable::models::generic {

enum class NormKind { kRms, kLayer };

struct GenericSpec {
  Geometry g;                  // hidden, heads, head_dim, rotary dims, eps, TP
  std::string model_type;
  int32_t act = SABLE_ACT_SILU;  // MLP activation
  NormKind norm = NormKind::kRms;
  float norm_eps = 1e-6f;
  float norm_offset = 0.0f;    // 1 for Gemma's (1 + w) RMSNorm
  bool qk_norm_whole = false;  // OLMo2: q/k RMSNorm over the whole projection [T, Hq*D]
  float embed_scale = 1.0f;    // Gemma sqrt(hidden) (in the compute dtype), Granite embedding_multiplier
  float residual_scale = 1.0f; // Granite residual_multiplier (sublayer output scale)
  float attn_scale = 0.0f;     // 0: 1/sqrt(D) (times the rope scheme's mscale^2); else fixed
  float logit_scale = 1.0f;    // 1 / Granite logits_scaling
  int64_t sliding_window = 0;  // uniform window on every layer; 0 = none
  int32_t rope_style = SABLE_ROPE_NEOX;  // interleaved pairs for Helium / GLM / ERNIE 4.5
  int64_t inter = 0;           // dense MLP intermediate size (0 when every layer is MoE)
  // Mixture of experts (Qwen2-MoE / Qwen3-MoE / Mixtral style), selected by num_experts or
  // num_local_experts; the block's names are found in the checkpoint (weight_layout.h).
  int64_t num_experts = 0;
  MoeBlockOptions moe;         // sizes and routing; prefix/names filled per layer
  std::vector<bool> sparse;    // [layers]: layer's MLP is the MoE block
};

// Reads and validates config.json through `host`; throws naming the field on anything unsupported.
GenericSpec read_generic_spec(const cpp::Host& host);

}  // namespace sable::models::generic
