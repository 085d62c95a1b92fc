// The per-architecture config readers of the "moe" plugin: each turns config.json into the
// MoeOptions of the shared MoE decoder (moe_decoder.h). One .cpp file per architecture.
#pragma once

#include "moe/moe_decoder.h"

namespace sable::models {

MoeOptions qwen2_moe_options(const cpp::Host& host);  // qwen2_moe.cpp
MoeOptions qwen3_moe_options(const cpp::Host& host);  // qwen3_moe.cpp
MoeOptions mixtral_options(const cpp::Host& host);    // mixtral.cpp

// The sparse-block fields Qwen2-MoE and Qwen3-MoE share: experts (num_experts, or transformers 5's
// num_local_experts), top-k, sizes, norm_topk_prob, activation, which layers are sparse; refuses
// use_sliding_window (a window on only some layers). `model` names the family in errors.
inline void read_qwen_moe_block(const cpp::Host& host, const char* model, MoeOptions& opt) {
  if (host.get_bool("use_sliding_window").value_or(false))
    cpp::fail(SABLE_ERR_UNSUPPORTED, std::string("config.json: use_sliding_window true is not "
                                                 "supported for ") +
                                         model + " (window on only some layers, see max_window_layers)");
  const int64_t layers = config_positive(host, "num_hidden_layers");
  const int64_t experts = host.get_int("num_experts").value_or(
      host.get_int("num_local_experts").value_or(0));
  opt.sparse = sparse_layers(host, layers, experts);
  opt.dense_inter = host.get_int("intermediate_size").value_or(0);
  opt.moe.num_experts = experts;
  opt.moe.top_k = host.get_int("num_experts_per_tok").value_or(0);
  opt.moe.expert_inter = host.get_int("moe_intermediate_size").value_or(0);
  opt.moe.renormalize = host.get_bool("norm_topk_prob").value_or(false);
  opt.moe.act = parse_activation(host.get_string("hidden_act").value_or("silu"), "hidden_act");
}

}  // namespace sable::models
