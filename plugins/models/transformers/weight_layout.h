// Where the generic plugin finds each tensor: checkpoint names matched by pattern, not by a table
// per model. First the layer prefix ("<root>layers.<l>.", e.g. "model.layers.0."), then, per layer,
// which of the known module names exist: q_proj/k_proj/v_proj or a fused qkv_proj; o_proj or dense;
// q_norm/k_norm; gate_proj+up_proj, a fused gate_up_proj, a plain fc1/c_fc, or an MoE block
// (mlp.gate + mlp.experts.N, or Mixtral's block_sparse_moe); and which norms surround the
// sublayers (pre-norm, OLMo2's post-norms, Gemma2's sandwich). Biases are used when present.
// Anything it cannot place is an error naming the layer and what was looked for.
// Thread-safety: plain data; built once at load_weights.
#pragma once

#include <string>
#include <vector>

#include "transformers/generic_spec.h"

namespace sable::models::generic {

// A weight name and its optional bias ("" when the checkpoint has none).
struct Param {
  std::string weight, bias;
  bool present() const { return !weight.empty(); }
};

enum class MlpKind { kGated, kFusedGated, kPlain, kMoe };

struct LayerNames {
  std::string prefix;                 // "model.layers.<l>."
  Param pre_attn_norm, post_attn_norm, pre_mlp_norm, post_mlp_norm;  // absent: not applied
  bool fused_qkv = false;
  Param qkv, q, k, v, o;
  std::string q_norm, k_norm;         // "" when absent
  MlpKind mlp = MlpKind::kGated;
  Param gate, up, gate_up, down;      // dense MLP (gate unused for kPlain)
  MoeBlockOptions moe;                // names for kMoe (sizes from the spec)
};

struct ModelNames {
  std::string embed;
  Param final_norm;
  std::string lm_head;                // "" when tied to the embedding
  std::vector<std::string> ignored;   // present but deliberately unused (rotary inv_freq, tied lm_head)
  std::vector<LayerNames> layers;
};

// Matches the checkpoint's tensor names against the spec; throws naming what is missing.
ModelNames find_weight_names(const cpp::Host& host, const GenericSpec& spec);

}  // namespace sable::models::generic
