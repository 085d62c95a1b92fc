// MixtralForCausalLM: Mistral attention (no biases, optional uniform sliding window) with every
// layer's feed-forward a sparse MoE block `block_sparse_moe`: router `gate`, experts N with
// w1 (gate) [I, H], w3 (up) [I, H], w2 (down) [H, I]; softmax top-k (2), always renormalised.
#include "moe/architectures.h"

namespace sable::models {

MoeOptions mixtral_options(const cpp::Host& host) {
  MoeOptions opt;
  opt.sliding_window = host.get_int("sliding_window").value_or(0);
  const int64_t layers = config_positive(host, "num_hidden_layers");
  opt.sparse.assign(static_cast<size_t>(layers), true);
  opt.block = "block_sparse_moe.";
  opt.moe.num_experts = config_positive(host, "num_local_experts");
  opt.moe.top_k = config_positive(host, "num_experts_per_tok");
  opt.moe.expert_inter = config_positive(host, "intermediate_size");
  opt.moe.renormalize = true;
  opt.moe.gate_name = "w1";
  opt.moe.up_name = "w3";
  opt.moe.down_name = "w2";
  opt.moe.act = parse_activation(host.get_string("hidden_act").value_or("silu"), "hidden_act");
  return opt;
}

}  // namespace sable::models
