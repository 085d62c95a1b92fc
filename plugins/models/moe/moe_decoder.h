// The pre-norm decoder with sparse MoE feed-forward layers that the "moe" plugin's architectures
// share (header-only; one small file per architecture fills MoeOptions from config.json).
//
// Layer l: h = rms_norm(x); x += o(attn(rope(q(h)), rope(k(h)), v(h))); h = rms_norm(x);
// x += sparse_l ? MoeBlock(h) : dense_mlp(h). Which layers are sparse follows Qwen2-MoE's
// `decoder_sparse_step` and `mlp_only_layers` (Mixtral: all). Attention optionally has q/k/v bias
// (Qwen2-MoE) and per-head q/k RMSNorm (Qwen3-MoE). Everything runs through the host ops table.
// Shapes: T tokens, H hidden, Hq/Hk heads per rank, D head dim, V vocab, L rows that need logits.
// Thread-safety: one model object is used by one thread at a time (the SDK's contract).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "moe/moe_block.h"
#include "moe/moe_config.h"

namespace sable::models {

struct MoeOptions {
  bool qkv_bias = false;
  bool o_bias = false;
  bool qk_norm = false;          // per-head RMSNorm of q and k (Qwen3-MoE)
  int64_t sliding_window = 0;    // 0 = none
  std::string block = "mlp.";    // MoE/MLP module name inside a layer ("block_sparse_moe." Mixtral)
  MoeBlockOptions moe;           // prefix/hidden/tp filled per layer by the decoder
  int64_t dense_inter = 0;       // intermediate_size of the dense layers (mlp_only_layers)
  std::vector<bool> sparse;      // [num_layers]: true when the layer's MLP is the MoE block
};

// Which layers are sparse under Qwen2-MoE's rule: not in mlp_only_layers, experts > 0 and
// (l + 1) % decoder_sparse_step == 0.
inline std::vector<bool> sparse_layers(const cpp::Host& host, int64_t layers, int64_t experts) {
  const int64_t step = host.get_int("decoder_sparse_step").value_or(1);
  if (step <= 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              "config.json: decoder_sparse_step must be positive, got " + std::to_string(step));
  std::vector<bool> sparse(static_cast<size_t>(layers), false);
  for (int64_t l = 0; l < layers; ++l) sparse[static_cast<size_t>(l)] = experts > 0 && (l + 1) % step == 0;
  for (int64_t l : host.get_int_list("mlp_only_layers")) {
    if (l < 0 || l >= layers)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: mlp_only_layers entry " +
                                                std::to_string(l) + " is not a layer index");
    sparse[static_cast<size_t>(l)] = false;
  }
  return sparse;
}

class MoeDecoderModel : public cpp::Model {
 public:
  MoeDecoderModel(cpp::Host host, MoeOptions opt) : cpp::Model(host), opt_(std::move(opt)) {
    g_ = read_geometry(host);
    if (opt_.sparse.size() != static_cast<size_t>(g_.layers))
      cpp::fail(SABLE_ERR_INTERNAL, "moe: sparse-layer list does not match num_hidden_layers");
    opt_.moe.hidden = g_.hidden;
    opt_.moe.tp_rank = g_.tp_rank;
    opt_.moe.tp_size = g_.tp_size;
    if (opt_.dense_inter % g_.tp_size != 0)
      cpp::fail(SABLE_ERR_UNSUPPORTED, "tp_size does not divide intermediate_size");
  }

  SableModelInfo info() const override { return model_info(g_, opt_.sliding_window); }

  void load_weights() override {
    const cpp::Host& h = host();
    const int64_t hd = g_.hidden, qd = g_.q_heads * g_.head_dim;
    const int64_t qt = g_.q_heads_total * g_.head_dim;
    load_vocab_tables(h, g_, vocab_tables_);
    final_norm_ = h.weight("model.norm.weight", {hd});
    layer_w_.resize(static_cast<size_t>(g_.layers));
    for (int64_t l = 0; l < g_.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      Layer& w = layer_w_[static_cast<size_t>(l)];
      w.in_norm = h.weight(p + "input_layernorm.weight", {hd});
      w.post_norm = h.weight(p + "post_attention_layernorm.weight", {hd});
      w.q = tp_rows(h, g_, p + "self_attn.q_proj.weight", qd, qt, hd);
      w.k = tp_kv_rows(h, g_, p + "self_attn.k_proj.weight", hd);
      w.v = tp_kv_rows(h, g_, p + "self_attn.v_proj.weight", hd);
      w.o = tp_cols(h, g_, p + "self_attn.o_proj.weight", hd, qd, qt);
      if (opt_.qkv_bias) {
        w.q_bias = tp_vec(h, g_, p + "self_attn.q_proj.bias", qd, qt);
        w.k_bias = tp_kv_rows(h, g_, p + "self_attn.k_proj.bias", 0);
        w.v_bias = tp_kv_rows(h, g_, p + "self_attn.v_proj.bias", 0);
      }
      if (opt_.o_bias) w.o_bias = h.weight(p + "self_attn.o_proj.bias", {hd});
      if (opt_.qk_norm) {
        w.q_norm = h.weight(p + "self_attn.q_norm.weight", {g_.head_dim});
        w.k_norm = h.weight(p + "self_attn.k_norm.weight", {g_.head_dim});
      }
      if (opt_.sparse[static_cast<size_t>(l)]) {
        MoeBlockOptions mo = opt_.moe;
        mo.prefix = p + opt_.block;
        w.moe.load(h, mo);
      } else {
        const int64_t it = opt_.dense_inter, ir = it / g_.tp_size;
        w.gate = tp_rows(h, g_, p + opt_.block + "gate_proj.weight", ir, it, hd);
        w.up = tp_rows(h, g_, p + opt_.block + "up_proj.weight", ir, it, hd);
        w.down = tp_cols(h, g_, p + opt_.block + "down_proj.weight", hd, ir, it);
      }
      const std::string inv_freq = p + "self_attn.rotary_emb.inv_freq";
      if (h.has_weight(inv_freq)) h.ignore_weight(inv_freq);
    }
    // The host's cache carries a scheme's attention factor (yarn) in cos/sin, as transformers
    // does, so the softmax scale stays 1/sqrt(D).
    rope_ = h.rope_cache(g_.rot_dim);
    attn_scale_ = 1.0f / std::sqrt(static_cast<float>(g_.head_dim));
  }

  void forward(const cpp::Ops& ops, const SableForwardBatch& batch,
               SableForwardOutput& out) override {
    const int64_t t = batch.num_tokens, hd = g_.hidden;
    if (t <= 0) return;
    const int32_t dt = host().compute_dtype();
    const int64_t qh = g_.q_heads, kh = g_.kv_heads, d = g_.head_dim;
    SableTensor residual = ops.alloc(dt, {t, hd});
    MoeScratch moe_scratch;  // one set of MoE activations for every sparse layer
    vocab_tables_.embed(ops, batch.token_ids, residual);
    SableTensor h = ops.alloc(dt, {t, hd}), proj = ops.alloc(dt, {t, hd});
    SableTensor q = ops.alloc(dt, {t, qh * d}), k = ops.alloc(dt, {t, kh * d});
    SableTensor v = ops.alloc(dt, {t, kh * d}), attn = ops.alloc(dt, {t, qh * d});
    SableTensor qn{}, kn{};
    if (opt_.qk_norm) {
      qn = ops.alloc(dt, {t * qh, d});
      kn = ops.alloc(dt, {t * kh, d});
    }
    for (int64_t l = 0; l < g_.layers; ++l) {
      Layer& w = layer_w_[static_cast<size_t>(l)];
      if (l == 0)
        ops.rms_norm(residual, nullptr, w.in_norm, g_.eps, h);
      else
        ops.rms_norm(proj, &residual, w.in_norm, g_.eps, h);
      ops.gemm(h, w.q, opt_bias(w.q_bias), q);
      ops.gemm(h, w.k, opt_bias(w.k_bias), k);
      ops.gemm(h, w.v, opt_bias(w.v_bias), v);
      SableTensor q3 = cpp::reshape(q, {t, qh, d}), k3 = cpp::reshape(k, {t, kh, d});
      if (opt_.qk_norm) {
        ops.rms_norm(cpp::reshape(q, {t * qh, d}), nullptr, w.q_norm, g_.eps, qn);
        ops.rms_norm(cpp::reshape(k, {t * kh, d}), nullptr, w.k_norm, g_.eps, kn);
        q3 = cpp::reshape(qn, {t, qh, d});
        k3 = cpp::reshape(kn, {t, kh, d});
      }
      ops.rope(&q3, &k3, batch.positions, rope_, g_.rot_dim, SABLE_ROPE_NEOX);
      SableTensor v3 = cpp::reshape(v, {t, kh, d}), a3 = cpp::reshape(attn, {t, qh, d});
      ops.attention(static_cast<int32_t>(l), q3, k3, v3, attn_scale_, a3);
      ops.gemm(attn, w.o, g_.tp_rank == 0 ? opt_bias(w.o_bias) : nullptr, proj);
      if (g_.tp_size > 1) ops.all_reduce(proj);

      ops.rms_norm(proj, &residual, w.post_norm, g_.eps, h);
      if (opt_.sparse[static_cast<size_t>(l)]) {
        w.moe.forward(ops, static_cast<int32_t>(l), h, proj, &moe_scratch);
      } else {
        const int64_t ir = opt_.dense_inter / g_.tp_size;
        SableTensor gate = ops.alloc(dt, {t, ir}), up = ops.alloc(dt, {t, ir});
        SableTensor act = ops.alloc(dt, {t, ir}), prod = ops.alloc(dt, {t, ir});
        ops.gemm(h, w.gate, nullptr, gate);
        ops.gemm(h, w.up, nullptr, up);
        ops.activation(opt_.moe.act, gate, act);
        ops.mul(act, up, prod);
        ops.gemm(prod, w.down, nullptr, proj);
      }
      if (g_.tp_size > 1) ops.all_reduce(proj);
    }
    ops.rms_norm(proj, &residual, final_norm_, g_.eps, h);
    write_outputs(ops, batch, h, vocab_tables_, 1.0f, out);
  }

 private:
  struct Layer {
    SableTensor in_norm{}, post_norm{}, q{}, k{}, v{}, o{};
    SableTensor q_bias{}, k_bias{}, v_bias{}, o_bias{}, q_norm{}, k_norm{};
    SableTensor gate{}, up{}, down{};
    MoeBlock moe;
  };

  MoeOptions opt_;
  Geometry g_;
  float attn_scale_ = 0.0f;
  VocabTables vocab_tables_;
  SableTensor final_norm_{}, rope_{};
  std::vector<Layer> layer_w_;
};

}  // namespace sable::models
