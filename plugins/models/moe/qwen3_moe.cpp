// Qwen3MoeForCausalLM: Qwen3 attention (per-head q/k RMSNorm before rope, no q/k/v bias unless
// `attention_bias`, explicit head_dim) with a sparse MoE block: softmax top-k, renormalised when
// `norm_topk_prob`; no shared expert. decoder_sparse_step / mlp_only_layers as in Qwen2-MoE.
#include "moe/architectures.h"

namespace sable::models {

MoeOptions qwen3_moe_options(const cpp::Host& host) {
  MoeOptions opt;
  const bool bias = host.get_bool("attention_bias").value_or(false);
  opt.qkv_bias = bias;
  opt.o_bias = bias;
  opt.qk_norm = true;
  if (host.get_bool("use_sliding_window").value_or(false))
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: use_sliding_window true is not supported for qwen3_moe (window on "
              "only some layers, see max_window_layers)");
  const int64_t layers = config_positive(host, "num_hidden_layers");
  // transformers 5 writes num_local_experts for Qwen3-MoE; older checkpoints num_experts.
  const int64_t experts = host.get_int("num_experts").value_or(
      host.get_int("num_local_experts").value_or(0));
  opt.sparse = sparse_layers(host, layers, experts);
  opt.dense_inter = host.get_int("intermediate_size").value_or(0);
  opt.moe.num_experts = experts;
  opt.moe.top_k = host.get_int("num_experts_per_tok").value_or(0);
  opt.moe.expert_inter = host.get_int("moe_intermediate_size").value_or(0);
  opt.moe.renormalize = host.get_bool("norm_topk_prob").value_or(false);
  opt.moe.act = parse_activation(host.get_string("hidden_act").value_or("silu"), "hidden_act");
  return opt;
}

}  // namespace sable::models
