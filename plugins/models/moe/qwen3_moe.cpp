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
  read_qwen_moe_block(host, "qwen3_moe", opt);
  return opt;
}

}  // namespace sable::models
