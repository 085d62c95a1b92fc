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
  read_qwen_moe_block(host, "qwen2_moe", opt);
  opt.moe.shared_inter = host.get_int("shared_expert_intermediate_size").value_or(0);
  opt.moe.shared_gate = opt.moe.shared_inter > 0;
  return opt;
}

}  // namespace sable::models
