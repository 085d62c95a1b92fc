// Config reading and validation for the generic plugin (see generic_spec.h).
#include "transformers/generic_spec.h"

#include <cmath>
#include <cstring>

namespace sable::models::generic {
namespace {

[[noreturn]] void unsupported(const std::string& field, const std::string& value,
                              const std::string& why) {
  cpp::fail(SABLE_ERR_UNSUPPORTED, "config.json: " + field + " = " + value +
                                       " is not supported by the generic plugin (" + why + ")");
}

// The value rounded to the compute dtype, as HF does when it casts a scalar to the hidden dtype.
float round_to_dtype(float v, int32_t dtype) {
  if (dtype != SABLE_DTYPE_BF16) return v;
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;  // round to nearest even
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

void check_rope(const cpp::Host& host) {
  static const char* const kKeys[] = {"rope_parameters.rope_type", "rope_scaling.rope_type",
                                      "rope_scaling.type"};
  for (const char* key : kKeys) {
    const auto type = host.get_string(key);
    if (!type) continue;
    if (*type != "default" && *type != "linear" && *type != "dynamic" && *type != "llama3" &&
        *type != "yarn" && *type != "longrope" && *type != "su")
      unsupported(key, "'" + *type + "'",
                  "the rope cache knows default, linear, dynamic, llama3, yarn, longrope");
  }
}

// Families whose transformers code rotates interleaved pairs (x[2i], x[2i+1]) instead of halves.
bool interleaved_rope(const std::string& model_type) {
  static const char* const kTypes[] = {"helium", "glm", "glm4", "ernie4_5", "ernie4_5_moe"};
  for (const char* t : kTypes)
    if (model_type == t) return true;
  return false;
}

void check_attention(const cpp::Host& host, GenericSpec& s) {
  if (const auto pe = host.get_string("position_embedding_type"); pe && *pe != "rope")
    unsupported("position_embedding_type", "'" + *pe + "'", "only rotary positions");
  if (host.get_bool("alibi").value_or(false)) unsupported("alibi", "true", "only rotary positions");
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"})
    if (const auto cap = host.get_float(key); cap && *cap != 0.0)
      unsupported(key, std::to_string(*cap), "logit softcapping is not implemented");
  for (const char* key : {"use_parallel_residual", "parallel_attn"})
    if (host.get_bool(key).value_or(false))
      unsupported(key, "true", "only sequential attention then MLP");
  if (host.get_bool("qk_layernorm").value_or(false))
    unsupported("qk_layernorm", "true", "per-head LayerNorm of q/k is not implemented");

  // Sliding window: honoured only when it covers every layer. The host cannot list layer_types
  // (strings), so a window next to layer_types or a pattern key is refused rather than guessed.
  const int64_t window = host.get_int("sliding_window").value_or(0);
  if (host.has("use_sliding_window")) {
    if (host.get_bool("use_sliding_window").value_or(false)) {
      // Qwen2 style: layers l >= max_window_layers slide.
      const int64_t mwl = host.get_int("max_window_layers").value_or(0);
      if (mwl > 0 && mwl < s.g.layers)
        unsupported("max_window_layers", std::to_string(mwl), "sliding window on only some layers");
      if (mwl <= 0) s.sliding_window = window;
    }
  } else if (window > 0) {
    for (const char* key : {"sliding_window_pattern", "layer_types", "sliding_window_layers"})
      if (host.has(key)) unsupported(key, "set with sliding_window " + std::to_string(window),
                                     "sliding window on only some layers");
    s.sliding_window = window;  // Mistral / Phi-3 style: one window for every layer
  }
  if (s.sliding_window < 0) unsupported("sliding_window", std::to_string(s.sliding_window), "negative");
}

void read_moe(const cpp::Host& host, GenericSpec& s) {
  s.num_experts = host.get_int("num_experts").value_or(host.get_int("num_local_experts").value_or(0));
  if (s.num_experts <= 0) return;
  if (const auto f = host.get_string("scoring_func"); f && *f != "softmax")
    unsupported("scoring_func", "'" + *f + "'", "only softmax routing");
  for (const char* key : {"n_group", "topk_group", "n_routed_experts"})
    if (host.has(key)) unsupported(key, "set", "grouped / DeepSeek-style routing is not implemented");
  s.sparse = sparse_layers(host, s.g.layers, s.num_experts);
  s.moe.num_experts = s.num_experts;
  s.moe.top_k = config_positive(host, "num_experts_per_tok");
  s.moe.expert_inter = host.get_int("moe_intermediate_size").value_or(s.inter);
  // Qwen-MoE configs always carry norm_topk_prob; Mixtral-style ones renormalise without it.
  s.moe.renormalize = host.get_bool("norm_topk_prob").value_or(true);
  s.moe.act = s.act;
  s.moe.shared_inter = host.get_int("shared_expert_intermediate_size").value_or(0);
  s.moe.hidden = s.g.hidden;
  s.moe.tp_rank = s.g.tp_rank;
  s.moe.tp_size = s.g.tp_size;
}

}  // namespace

GenericSpec read_generic_spec(const cpp::Host& host) {
  GenericSpec s;
  s.g = read_geometry(host);
  s.model_type = host.get_string("model_type").value_or("");
  const bool gemma = s.model_type.rfind("gemma", 0) == 0;
  const bool olmo = s.model_type == "olmo2" || s.model_type == "olmo3";

  if (const auto a = host.get_string("hidden_activation"))
    s.act = parse_activation(*a, "hidden_activation");
  else
    s.act = parse_activation(host.get_string("hidden_act").value_or("silu"), "hidden_act");

  // LayerNorm checkpoints (StableLM, Phi-2, ...) name their epsilon layer_norm_eps.
  if (!host.has("rms_norm_eps") && (host.has("layer_norm_eps") || host.has("layer_norm_epsilon"))) {
    s.norm = NormKind::kLayer;
    s.norm_eps = static_cast<float>(host.get_float("layer_norm_eps").value_or(
        host.get_float("layer_norm_epsilon").value_or(1e-5)));
  } else {
    s.norm_eps = s.g.eps;
  }
  if (gemma) {
    s.norm_offset = 1.0f;
    s.embed_scale = round_to_dtype(std::sqrt(static_cast<float>(s.g.hidden)), host.compute_dtype());
  }
  s.qk_norm_whole = olmo;
  if (olmo && s.g.tp_size > 1)
    cpp::fail(SABLE_ERR_UNSUPPORTED, "model_type '" + s.model_type +
                                         "': q/k norm over the whole projection needs tp_size 1");
  if (const auto m = host.get_float("embedding_multiplier")) s.embed_scale *= static_cast<float>(*m);
  if (const auto m = host.get_float("residual_multiplier")) s.residual_scale = static_cast<float>(*m);
  if (const auto m = host.get_float("attention_multiplier")) s.attn_scale = static_cast<float>(*m);
  if (const auto q = host.get_float("query_pre_attn_scalar"); q && *q > 0)
    s.attn_scale = static_cast<float>(1.0 / std::sqrt(*q));
  if (const auto ls = host.get_float("logits_scaling")) {
    if (*ls == 0.0) unsupported("logits_scaling", "0", "division by zero");
    s.logit_scale = static_cast<float>(1.0 / *ls);
  }
  check_rope(host);
  if (interleaved_rope(s.model_type) || host.get_bool("rope_interleave").value_or(false))
    s.rope_style = SABLE_ROPE_INTERLEAVED;
  check_attention(host, s);
  s.inter = host.get_int("intermediate_size").value_or(0);
  if (s.inter % s.g.tp_size != 0)
    cpp::fail(SABLE_ERR_UNSUPPORTED, "tp_size does not divide intermediate_size");
  read_moe(host, s);
  if (s.sparse.empty()) s.sparse.assign(static_cast<size_t>(s.g.layers), false);
  return s;
}

}  // namespace sable::models::generic
