// Weight loading and forward of the generic decoder (see generic_model.h).
#include "transformers/generic_model.h"

#include <cmath>

namespace sable::models::generic {
namespace {

void need_tp1(const Geometry& g, const std::string& name) {
  if (g.tp_size > 1)
    cpp::fail(SABLE_ERR_UNSUPPORTED, "generic plugin: fused tensor '" + name + "' needs tp_size 1");
}

}  // namespace

GenericModel::GenericModel(cpp::Host host) : cpp::Model(host), spec_(read_generic_spec(host)) {}

GenericModel::Norm GenericModel::load_norm(const Param& p, int64_t n) const {
  Norm out;
  if (!p.present()) return out;
  out.w = host().weight(p.weight, {n});
  if (!p.bias.empty()) out.b = host().weight(p.bias, {n});
  return out;
}

void GenericModel::load_weights() {
  const cpp::Host& h = host();
  const Geometry& g = spec_.g;
  const ModelNames names = find_weight_names(h, spec_);
  const int64_t hd = g.hidden, d = g.head_dim;
  const int64_t qd = g.q_heads * d;
  const int64_t qt = g.q_heads_total * d, kt = g.kv_heads_total * d;
  // Tied (no lm_head name): the embedding's rows; both split by vocabulary rows with TP.
  vocab_tables_.load(h, names.embed, names.lm_head.empty() ? names.embed : names.lm_head, g.vocab,
                     hd);
  final_norm_ = load_norm(names.final_norm, hd);
  for (const auto& n : names.ignored) h.ignore_weight(n);

  layers_.resize(names.layers.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerNames& n = names.layers[l];
    Layer& w = layers_[l];
    w.pre_attn = load_norm(n.pre_attn_norm, hd);
    w.post_attn = load_norm(n.post_attn_norm, hd);
    w.pre_mlp = load_norm(n.pre_mlp_norm, hd);
    w.post_mlp = load_norm(n.post_mlp_norm, hd);
    auto bias = [&](const Param& p, int64_t per_rank, int64_t total) {
      return p.bias.empty() ? SableTensor{} : tp_vec(h, g, p.bias, per_rank, total);
    };
    if (n.fused_qkv) {
      need_tp1(g, n.qkv.weight);
      w.qkv = h.weight(n.qkv.weight, {qt + 2 * kt, hd});
      if (!n.qkv.bias.empty()) w.qkv_b = h.weight(n.qkv.bias, {qt + 2 * kt});
    } else {
      w.q = tp_rows(h, g, n.q.weight, qd, qt, hd);
      w.k = tp_kv_rows(h, g, n.k.weight, hd);
      w.v = tp_kv_rows(h, g, n.v.weight, hd);
      w.q_b = bias(n.q, qd, qt);
      if (!n.k.bias.empty()) w.k_b = tp_kv_rows(h, g, n.k.bias, 0);
      if (!n.v.bias.empty()) w.v_b = tp_kv_rows(h, g, n.v.bias, 0);
    }
    w.o = tp_cols(h, g, n.o.weight, hd, qd, qt);
    if (!n.o.bias.empty()) w.o_b = h.weight(n.o.bias, {hd});
    if (!n.q_norm.empty()) {
      w.q_norm = h.weight(n.q_norm, {spec_.qk_norm_whole ? qt : d});
      w.k_norm = h.weight(n.k_norm, {spec_.qk_norm_whole ? kt : d});
    }
    w.mlp = n.mlp;
    const int64_t it = spec_.inter, ir = it / g.tp_size;
    switch (n.mlp) {
      case MlpKind::kMoe:
        w.moe.load(h, n.moe);
        continue;
      case MlpKind::kFusedGated:
        need_tp1(g, n.gate_up.weight);
        w.gate_up = h.weight(n.gate_up.weight, {2 * it, hd});
        if (!n.gate_up.bias.empty()) w.gate_up_b = h.weight(n.gate_up.bias, {2 * it});
        break;
      case MlpKind::kGated:
        w.gate = tp_rows(h, g, n.gate.weight, ir, it, hd);
        w.gate_b = bias(n.gate, ir, it);
        [[fallthrough]];
      case MlpKind::kPlain:
        w.up = tp_rows(h, g, n.up.weight, ir, it, hd);
        w.up_b = bias(n.up, ir, it);
        break;
    }
    w.down = tp_cols(h, g, n.down.weight, hd, ir, it);
    if (!n.down.bias.empty()) w.down_b = h.weight(n.down.bias, {hd});
  }
  // The host's cache carries a scheme's attention factor (yarn) in cos/sin, as transformers does.
  rope_ = h.rope_cache(g.rot_dim);
  attn_scale_ = spec_.attn_scale > 0 ? spec_.attn_scale
                                     : 1.0f / std::sqrt(static_cast<float>(g.head_dim));
}

void GenericModel::apply_norm(const cpp::Ops& ops, const Norm& n, const SableTensor& x,
                              SableTensor& out) const {
  if (spec_.norm == NormKind::kLayer)
    ops.layer_norm(x, nullptr, &n.w, opt_bias(n.b), spec_.norm_eps, out);
  else
    ops.rms_norm(x, nullptr, n.w, spec_.norm_eps, out, spec_.norm_offset);
}

void GenericModel::attention(const cpp::Ops& ops, int32_t layer, Layer& w, const SableTensor& h,
                             const SableTensor& positions, SableTensor& out) const {
  const Geometry& g = spec_.g;
  const int64_t t = h.shape[0], qh = g.q_heads, kh = g.kv_heads, d = g.head_dim;
  const int32_t dt = h.dtype;
  SableTensor q = ops.alloc(dt, {t, qh * d}), k = ops.alloc(dt, {t, kh * d});
  SableTensor v = ops.alloc(dt, {t, kh * d});
  if (w.qkv.data != nullptr) {
    // Fused [q | k | v] columns, copied out to contiguous tensors.
    SableTensor qkv = ops.alloc(dt, {t, (qh + 2 * kh) * d});
    ops.gemm(h, w.qkv, opt_bias(w.qkv_b), qkv);
    SableTensor parts[] = {cpp::narrow(qkv, 1, 0, qh * d), cpp::narrow(qkv, 1, qh * d, kh * d),
                           cpp::narrow(qkv, 1, (qh + kh) * d, kh * d)};
    lora_stacked(ops, layer, SABLE_LORA_Q, h, parts);
    ops.copy(cpp::narrow(qkv, 1, 0, qh * d), q);
    ops.copy(cpp::narrow(qkv, 1, qh * d, kh * d), k);
    ops.copy(cpp::narrow(qkv, 1, (qh + kh) * d, kh * d), v);
  } else {
    ops.gemm(h, w.q, opt_bias(w.q_b), q);
    ops.gemm(h, w.k, opt_bias(w.k_b), k);
    ops.gemm(h, w.v, opt_bias(w.v_b), v);
    lora(ops, layer, SABLE_LORA_Q, h, q);
    lora(ops, layer, SABLE_LORA_K, h, k);
    lora(ops, layer, SABLE_LORA_V, h, v);
  }
  if (w.q_norm.data != nullptr) {
    // Per head ([T*Hq, D] rows, Qwen3) or over the whole projection ([T, Hq*D] rows, OLMo2).
    SableTensor qn = ops.alloc(dt, {t, qh * d}), kn = ops.alloc(dt, {t, kh * d});
    if (spec_.qk_norm_whole) {
      ops.rms_norm(q, nullptr, w.q_norm, spec_.g.eps, qn);
      ops.rms_norm(k, nullptr, w.k_norm, spec_.g.eps, kn);
    } else {
      SableTensor qn2 = cpp::reshape(qn, {t * qh, d}), kn2 = cpp::reshape(kn, {t * kh, d});
      ops.rms_norm(cpp::reshape(q, {t * qh, d}), nullptr, w.q_norm, spec_.g.eps, qn2,
                   spec_.norm_offset);
      ops.rms_norm(cpp::reshape(k, {t * kh, d}), nullptr, w.k_norm, spec_.g.eps, kn2,
                   spec_.norm_offset);
    }
    q = qn;
    k = kn;
  }
  SableTensor q3 = cpp::reshape(q, {t, qh, d}), k3 = cpp::reshape(k, {t, kh, d});
  ops.rope(&q3, &k3, positions, rope_, g.rot_dim, spec_.rope_style);
  SableTensor v3 = cpp::reshape(v, {t, kh, d});
  SableTensor attn = ops.alloc(dt, {t, qh * d});
  SableTensor a3 = cpp::reshape(attn, {t, qh, d});
  ops.attention(layer, q3, k3, v3, attn_scale_, a3);
  ops.gemm(attn, w.o, g.tp_rank == 0 ? opt_bias(w.o_b) : nullptr, out);
  lora(ops, layer, SABLE_LORA_O, attn, out);
  if (g.tp_size > 1) ops.all_reduce(out);
}

void GenericModel::mlp(const cpp::Ops& ops, int32_t layer, Layer& w, const SableTensor& h,
                       SableTensor& out) const {
  const Geometry& g = spec_.g;
  const int64_t t = h.shape[0], ir = spec_.inter / g.tp_size;
  const int32_t dt = h.dtype;
  if (w.mlp == MlpKind::kMoe) {
    w.moe.forward(ops, layer, h, out);
  } else {
    SableTensor act = ops.alloc(dt, {t, ir});
    if (w.mlp == MlpKind::kFusedGated) {
      SableTensor gu = ops.alloc(dt, {t, 2 * ir});
      ops.gemm(h, w.gate_up, opt_bias(w.gate_up_b), gu);
      SableTensor parts[] = {cpp::narrow(gu, 1, 0, ir), cpp::narrow(gu, 1, ir, ir)};
      lora_stacked(ops, layer, SABLE_LORA_GATE, h, parts);
      ops.act_mul(spec_.act, gu, act);
    } else {
      SableTensor up = ops.alloc(dt, {t, ir});
      ops.gemm(h, w.up, opt_bias(w.up_b), up);
      lora(ops, layer, SABLE_LORA_UP, h, up);
      if (w.mlp == MlpKind::kGated) {
        SableTensor gate = ops.alloc(dt, {t, ir}), ga = ops.alloc(dt, {t, ir});
        ops.gemm(h, w.gate, opt_bias(w.gate_b), gate);
        lora(ops, layer, SABLE_LORA_GATE, h, gate);
        ops.activation(spec_.act, gate, ga);
        ops.mul(ga, up, act);
      } else {
        ops.activation(spec_.act, up, act);
      }
    }
    ops.gemm(act, w.down, g.tp_rank == 0 ? opt_bias(w.down_b) : nullptr, out);
    lora(ops, layer, SABLE_LORA_DOWN, act, out);
  }
  if (g.tp_size > 1) ops.all_reduce(out);
}

void GenericModel::forward(const cpp::Ops& ops, const SableForwardBatch& batch,
                           SableForwardOutput& out) {
  const int64_t t = batch.num_tokens, hd = spec_.g.hidden;
  if (t <= 0) return;
  lora_on_ = SABLE_HAS(&batch, has_lora) && batch.has_lora != 0 && ops.has_lora();
  const int32_t dt = host().compute_dtype();
  SableTensor x = ops.alloc(dt, {t, hd});
  vocab_tables_.embed(ops, batch.token_ids, x);
  if (spec_.embed_scale != 1.0f) ops.scale(x, spec_.embed_scale, x);
  SableTensor h = ops.alloc(dt, {t, hd}), sub = ops.alloc(dt, {t, hd});
  SableTensor normed = ops.alloc(dt, {t, hd});

  // One sublayer: x += residual_scale * post_norm(f(pre_norm(x))).
  auto sublayer = [&](const Norm& pre, const Norm& post, auto&& f) {
    const SableTensor* in = &x;
    if (pre.present()) {
      apply_norm(ops, pre, x, h);
      in = &h;
    }
    f(*in, sub);
    SableTensor* res = &sub;
    if (post.present()) {
      apply_norm(ops, post, sub, normed);
      res = &normed;
    }
    if (spec_.residual_scale != 1.0f) ops.scale(*res, spec_.residual_scale, *res);
    ops.add(x, *res, x);
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& w = layers_[l];
    const auto layer = static_cast<int32_t>(l);
    sublayer(w.pre_attn, w.post_attn, [&](const SableTensor& in, SableTensor& o) {
      attention(ops, layer, w, in, batch.positions, o);
    });
    sublayer(w.pre_mlp, w.post_mlp,
             [&](const SableTensor& in, SableTensor& o) { mlp(ops, layer, w, in, o); });
  }
  apply_norm(ops, final_norm_, x, h);
  write_outputs(ops, batch, h, vocab_tables_, spec_.logit_scale, out);
}

}  // namespace sable::models::generic
