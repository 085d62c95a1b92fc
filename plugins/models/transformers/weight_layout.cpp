// Tensor-name discovery for the generic plugin (see weight_layout.h).
#include "transformers/weight_layout.h"

#include <set>

namespace sable::models::generic {
namespace {

class Names {
 public:
  explicit Names(const cpp::Host& host) {
    for (auto& n : host.weight_names()) all_.insert(std::move(n));
  }
  bool has(const std::string& n) const { return all_.count(n) != 0; }
  const std::set<std::string>& all() const { return all_; }
  // `base`.weight (+ `base`.bias when present), or an absent Param.
  Param param(const std::string& base) const {
    Param p;
    if (!has(base + ".weight")) return p;
    p.weight = base + ".weight";
    if (has(base + ".bias")) p.bias = base + ".bias";
    return p;
  }
  // The first of `bases` that exists.
  Param first(const std::string& prefix, std::initializer_list<const char*> bases) const {
    for (const char* b : bases)
      if (Param p = param(prefix + b); p.present()) return p;
    return {};
  }

 private:
  std::set<std::string> all_;
};

[[noreturn]] void missing(const std::string& where, const std::string& what) {
  cpp::fail(SABLE_ERR_NOT_FOUND,
            "generic plugin: cannot find " + what + " under '" + where + "' in the checkpoint");
}

// "<root>layers." from the first tensor of layer 0 (e.g. "model.layers.").
std::string layer_prefix(const Names& names, std::string* root) {
  for (const auto& n : names.all()) {
    const size_t pos = n.find("layers.0.");
    if (pos == std::string::npos || (pos > 0 && n[pos - 1] != '.')) continue;
    *root = n.substr(0, pos);
    return n.substr(0, pos) + "layers.";
  }
  cpp::fail(SABLE_ERR_NOT_FOUND, "generic plugin: no '<prefix>layers.0.' tensors in the checkpoint");
}

void find_norms(const Names& n, LayerNames& l) {
  const Param in = n.param(l.prefix + "input_layernorm");
  const Param post_attn = n.param(l.prefix + "post_attention_layernorm");
  const Param pre_ff = n.param(l.prefix + "pre_feedforward_layernorm");
  const Param post_ff = n.param(l.prefix + "post_feedforward_layernorm");
  if (in.present() && post_attn.present() && !pre_ff.present() && !post_ff.present()) {
    l.pre_attn_norm = in;  // Llama: post_attention_layernorm is the pre-MLP norm
    l.pre_mlp_norm = post_attn;
  } else if (in.present() && pre_ff.present()) {
    l.pre_attn_norm = in;  // Gemma2 sandwich
    l.post_attn_norm = post_attn;
    l.pre_mlp_norm = pre_ff;
    l.post_mlp_norm = post_ff;
  } else if (!in.present() && post_attn.present() && post_ff.present()) {
    l.post_attn_norm = post_attn;  // OLMo2: norms after each sublayer only
    l.post_mlp_norm = post_ff;
  } else {
    missing(l.prefix, "a known norm layout (input_layernorm + post_attention_layernorm, "
                      "+ pre/post_feedforward_layernorm, or OLMo2's post norms); a layer with a "
                      "single norm means a parallel residual, which is not implemented");
  }
}

void find_attention(const Names& n, LayerNames& l) {
  const std::string a = l.prefix + "self_attn.";
  l.qkv = n.param(a + "qkv_proj");
  if (l.qkv.present()) {
    l.fused_qkv = true;
  } else {
    l.q = n.param(a + "q_proj");
    l.k = n.param(a + "k_proj");
    l.v = n.param(a + "v_proj");
    if (!l.q.present() || !l.k.present() || !l.v.present())
      missing(a, "q_proj/k_proj/v_proj or qkv_proj");
  }
  l.o = n.first(a, {"o_proj", "dense"});
  if (!l.o.present()) missing(a, "o_proj or dense");
  if (n.has(a + "q_norm.weight")) l.q_norm = a + "q_norm.weight";
  if (n.has(a + "k_norm.weight")) l.k_norm = a + "k_norm.weight";
  if (l.q_norm.empty() != l.k_norm.empty()) missing(a, "both q_norm and k_norm");
}

void find_mlp(const Names& n, const GenericSpec& s, size_t index, LayerNames& l) {
  const std::string m = l.prefix + "mlp.";
  if (s.sparse[index]) {
    l.mlp = MlpKind::kMoe;
    l.moe = s.moe;
    if (n.has(l.prefix + "block_sparse_moe.gate.weight")) {  // Mixtral naming
      l.moe.prefix = l.prefix + "block_sparse_moe.";
      l.moe.gate_name = "w1";
      l.moe.up_name = "w3";
      l.moe.down_name = "w2";
    } else if (n.has(m + "gate.weight")) {
      l.moe.prefix = m;
    } else {
      missing(l.prefix, "the MoE router (mlp.gate or block_sparse_moe.gate)");
    }
    if (l.moe.shared_inter > 0) {
      if (!n.has(l.moe.prefix + "shared_expert.gate_proj.weight"))
        missing(l.moe.prefix, "shared_expert (shared_expert_intermediate_size is set)");
      l.moe.shared_gate = n.has(l.moe.prefix + "shared_expert_gate.weight");
    }
    return;
  }
  if (n.has(m + "gate.weight")) missing(m, "a dense MLP (found an MoE router but the config has no experts)");
  l.down = n.first(m, {"down_proj", "fc2", "c_proj"});
  if (!l.down.present()) missing(m, "down_proj, fc2 or c_proj");
  if ((l.gate_up = n.param(m + "gate_up_proj")).present()) {
    l.mlp = MlpKind::kFusedGated;
  } else if ((l.gate = n.param(m + "gate_proj")).present()) {
    l.mlp = MlpKind::kGated;
    l.up = n.param(m + "up_proj");
    if (!l.up.present()) missing(m, "up_proj next to gate_proj");
  } else if ((l.up = n.first(m, {"up_proj", "fc1", "c_fc"})).present()) {
    l.mlp = MlpKind::kPlain;
  } else {
    missing(m, "gate_proj/up_proj, gate_up_proj, fc1 or c_fc");
  }
}

}  // namespace

ModelNames find_weight_names(const cpp::Host& host, const GenericSpec& s) {
  const Names n(host);
  ModelNames out;
  std::string root;
  const std::string prefix = layer_prefix(n, &root);
  out.embed = root + "embed_tokens.weight";
  if (!n.has(out.embed)) missing(root, "embed_tokens");
  out.final_norm = n.first(root, {"norm", "final_layernorm", "final_norm"});
  if (!out.final_norm.present()) missing(root, "the final norm (norm or final_layernorm)");
  // Tied when the config says so, or when it is silent and the checkpoint has no lm_head.
  const bool tied = host.get_bool("tie_word_embeddings").value_or(!n.has("lm_head.weight"));
  if (tied) {
    if (n.has("lm_head.weight")) out.ignored.push_back("lm_head.weight");
  } else {
    if (!n.has("lm_head.weight")) missing("", "lm_head.weight (tie_word_embeddings is false)");
    out.lm_head = "lm_head.weight";
  }
  out.layers.resize(static_cast<size_t>(s.g.layers));
  for (size_t l = 0; l < out.layers.size(); ++l) {
    LayerNames& ln = out.layers[l];
    ln.prefix = prefix + std::to_string(l) + ".";
    find_norms(n, ln);
    find_attention(n, ln);
    find_mlp(n, s, l, ln);
    const std::string inv_freq = ln.prefix + "self_attn.rotary_emb.inv_freq";
    if (n.has(inv_freq)) out.ignored.push_back(inv_freq);
  }
  if (n.has(prefix + std::to_string(s.g.layers) + ".input_layernorm.weight"))
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "checkpoint has more layers than num_hidden_layers " +
                                              std::to_string(s.g.layers));
  return out;
}

}  // namespace sable::models::generic
