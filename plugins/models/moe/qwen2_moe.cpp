// Qwen2MoeForCausalLM: Qwen2 attention (q/k/v bias) with a sparse MoE block whose routing is a
// softmax top-k *without* renormalisation unless `norm_topk_prob`, plus a shared expert
// (shared_expert_intermediate_size) scaled per token by sigmoid(shared_expert_gate · x).
// Layers listed in mlp_only_layers, or off the decoder_sparse_step grid, use a dense MLP of
// intermediate_size.
#include "moe/architectures.h"

namespace sable::models {

MoeOptions qwen2_moe_options(const cpp::Host& host) {
  MoeOptions opt;
  opt.qkv_bias = host.get_bool("qkv_bias").value_or(true);
  if (host.get_bool("use_sliding_window").value_or(false))
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: use_sliding_window true is not supported for qwen2_moe (window on "
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
  opt.moe.shared_inter = host.get_int("shared_expert_intermediate_size").value_or(0);
  opt.moe.shared_gate = opt.moe.shared_inter > 0;
  return opt;
}

}  // namespace sable::models
