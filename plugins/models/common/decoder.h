// The pre-norm transformer decoder that Llama, Mistral, Qwen2 and Qwen3 share, written once and
// compiled into each model plugin (header-only; plugins include only sdk/ and this folder).
//
// An architecture file turns its config.json into DecoderOptions and derives from DecoderModel.
// Everything runs through the host's ops table (sable::cpp::Ops), so the same code serves CPU and
// CUDA. Shapes: T tokens, H hidden, Hq/Hk query/key heads per rank, D head dim, I intermediate
// per rank, V vocab, L rows that need logits.
//
// Weights are fetched by their Hugging Face names. When the host can load into plugin memory
// (weight_get_into), q/k/v are fused into one [(Hq + 2Hk)·D, H] weight and gate/up into one
// [2I, H] weight, so an attention block runs one projection GEMM and the MLP one GEMM plus a fused
// act·mul: fewer, larger kernels (decode on a GPU is launch- and bandwidth-bound). A host that
// keeps weights packed (the CPU with GGUF files) has no weight_get_into; on one rank it stacks
// q|k|v and gate|up itself (weight_get_stacked, ABI 1.7) where they share a block-quantized format,
// layer by layer, so the layer's input is quantized once per fused GEMM. Where neither applies
// (formats differ, older hosts, tensor parallelism over packed weights) the tensors stay separate
// GEMMs.
// LoRA: every projection's output goes through ops->lora (all seven modules are declared in
// lora_modules); a batch with adapters takes the unfused path, where the delta lands between the
// projection and its rope / act·mul / residual add. With fused q|k|v or gate|up weights the
// modules' deltas are added into their column views of the fused output, in one lora_stacked
// call where the host has it.
// Sequence classification (*ForSequenceClassification, e.g. reward models): a checkpoint with a
// `score.weight` [num_labels, H] and no lm_head is a score model; its head replaces the LM head
// and scores the last token of each sequence (SGLang's reward models; HF picks the last non-pad
// token, the same for unpadded prompts).
// Tensor parallelism (common/tensor_parallel.h): q/k/v and gate/up are split by output rows (KV
// heads replicated when there are fewer than ranks), o_proj and down_proj by input columns,
// followed by an all-reduce; the embedding and the LM head are split by vocabulary rows (the
// embedding's rows summed by an all-reduce, the logits gathered; VocabTables). A score head is
// replicated.
// Thread-safety: one model object is used by one thread at a time (the SDK's contract).
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/classifier.h"
#include "common/tensor_parallel.h"
#include "sable/cpp/plugin.h"

namespace sable::models {

// What distinguishes one decoder architecture from another (all read from config.json).
struct DecoderOptions {
  bool qkv_bias = false;  // q/k/v_proj.bias (Qwen2 always; Llama/Qwen3 when attention_bias)
  bool o_bias = false;    // o_proj.bias (Llama/Qwen3 when attention_bias)
  bool mlp_bias = false;  // gate/up/down_proj.bias (Llama's mlp_bias)
  bool qk_norm = false;   // per-head RMSNorm of q and k before rope (Qwen3)
  bool read_sliding_window = true;  // honour config `sliding_window` (when use_sliding_window
                                    // is absent or true)
};

// Integer config value that must be positive; throws naming the key otherwise.
inline int64_t positive_int(const cpp::Host& host, const char* key) {
  const int64_t v = host.require_int(key);
  if (v <= 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              std::string("config.json: '") + key + "' must be positive, got " + std::to_string(v));
  return v;
}

class DecoderModel : public cpp::Model {
 public:
  DecoderModel(cpp::Host host, const DecoderOptions& opt) : cpp::Model(host), opt_(opt) {
    hidden_ = positive_int(host, "hidden_size");
    layers_ = positive_int(host, "num_hidden_layers");
    q_heads_total_ = positive_int(host, "num_attention_heads");
    kv_heads_total_ = host.get_int("num_key_value_heads").value_or(q_heads_total_);
    vocab_ = positive_int(host, "vocab_size");
    inter_total_ = positive_int(host, "intermediate_size");
    max_pos_ = host.get_int("max_position_embeddings").value_or(4096);
    eps_ = static_cast<float>(host.get_float("rms_norm_eps").value_or(1e-6));
    tied_ = host.get_bool("tie_word_embeddings").value_or(false);
    head_dim_ = host.get_int("head_dim").value_or(0);
    if (head_dim_ <= 0) {
      if (hidden_ % q_heads_total_ != 0)
        cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                  "config.json: hidden_size " + std::to_string(hidden_) +
                      " is not divisible by num_attention_heads " + std::to_string(q_heads_total_));
      head_dim_ = hidden_ / q_heads_total_;
    }
    if (kv_heads_total_ <= 0 || q_heads_total_ % kv_heads_total_ != 0)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: num_key_value_heads " + std::to_string(kv_heads_total_) +
                    " must divide num_attention_heads " + std::to_string(q_heads_total_));
    const double partial = host.get_float("partial_rotary_factor").value_or(1.0);
    rot_dim_ = static_cast<int32_t>(static_cast<double>(head_dim_) * partial);
    if (partial <= 0.0 || partial > 1.0 || rot_dim_ % 2 != 0)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: partial_rotary_factor " +
                                                std::to_string(partial) +
                                                " gives an odd or empty rotary dim");
    act_ = parse_activation(host.get_string("hidden_act").value_or("silu"));
    if (host.has_weight("score.weight") && !host.has_weight("lm_head.weight"))
      num_labels_ = config_num_labels(host);
    if (opt.read_sliding_window && host.get_bool("use_sliding_window").value_or(true))
      sliding_window_ = host.get_int("sliding_window").value_or(0);

    // Tensor parallelism: heads and the intermediate size are split evenly across ranks.
    tp_size_ = host.tp_size() > 0 ? host.tp_size() : 1;
    tp_rank_ = host.tp_rank();
    const HeadSplit split = split_heads(q_heads_total_, kv_heads_total_, tp_rank_, tp_size_);
    if (inter_total_ % tp_size_ != 0)
      cpp::fail(SABLE_ERR_UNSUPPORTED, "tp_size " + std::to_string(tp_size_) +
                                           " does not divide intermediate_size " +
                                           std::to_string(inter_total_));
    q_heads_ = split.q_heads;
    kv_heads_ = split.kv_heads;
    kv_start_ = split.kv_start;
    inter_ = inter_total_ / tp_size_;
  }

  SableModelInfo info() const override {
    SableModelInfo i{};
    i.struct_size = sizeof(SableModelInfo);
    i.num_layers = static_cast<int32_t>(layers_);
    i.num_q_heads = static_cast<int32_t>(q_heads_);
    i.num_kv_heads = static_cast<int32_t>(kv_heads_);
    i.head_dim = static_cast<int32_t>(head_dim_);
    i.hidden_size = static_cast<int32_t>(hidden_);
    i.vocab_size = static_cast<int32_t>(vocab_);
    i.max_position = static_cast<int32_t>(max_pos_);
    i.sliding_window = static_cast<int32_t>(sliding_window_);
    i.output_kind = SABLE_MODEL_OUTPUT_LOGITS;
    i.lora_modules = (1u << SABLE_LORA_MODULE_COUNT) - 1u;
    if (num_labels_ > 0) set_score_output(i, num_labels_, SABLE_SCORE_LAST_TOKEN);
    return i;
  }

  void load_weights() override {
    const cpp::Host& h = host();
    fused_ = h.can_load_into();
    // Packed weights (no weight_get_into): stacked by the host where it can, layer by layer.
    const bool stack = !fused_ && tp_size_ == 1 && h.can_stack();
    joined_qkv_ = split_qkv_ = joined_gate_up_ = split_gate_up_ = false;
    const std::string embed = "model.embed_tokens.weight";
    if (num_labels_ > 0) {
      vocab_tables_.load(h, embed, "", vocab_, hidden_);
      score_ = h.weight("score.weight", {num_labels_, hidden_});
    } else {
      if (tied_ && h.has_weight("lm_head.weight")) h.ignore_weight("lm_head.weight");
      vocab_tables_.load(h, embed, tied_ ? embed : "lm_head.weight", vocab_, hidden_);
    }
    final_norm_ = h.weight("model.norm.weight", {hidden_});
    const int64_t qd = q_heads_ * head_dim_, kd = kv_heads_ * head_dim_;
    layer_w_.resize(static_cast<size_t>(layers_));
    for (int64_t l = 0; l < layers_; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerWeights& w = layer_w_[static_cast<size_t>(l)];
      w.in_norm = h.weight(p + "input_layernorm.weight", {hidden_});
      w.post_norm = h.weight(p + "post_attention_layernorm.weight", {hidden_});
      if (fused_) {
        w.qkv = h.alloc_persistent(h.compute_dtype(), {qd + 2 * kd, hidden_});
        rows_into(p + "self_attn.q_proj.weight", q_row0(), qd, hidden_, q_heads_total_ * head_dim_,
                  cpp::narrow(w.qkv, 0, 0, qd));
        rows_into(p + "self_attn.k_proj.weight", kv_row0(), kd, hidden_, kv_heads_total_ * head_dim_,
                  cpp::narrow(w.qkv, 0, qd, kd));
        rows_into(p + "self_attn.v_proj.weight", kv_row0(), kd, hidden_, kv_heads_total_ * head_dim_,
                  cpp::narrow(w.qkv, 0, qd + kd, kd));
      } else if (auto qkv = stack ? h.weight_stacked({p + "self_attn.q_proj.weight",
                                                      p + "self_attn.k_proj.weight",
                                                      p + "self_attn.v_proj.weight"},
                                                     {qd, kd, kd}, hidden_)
                                  : std::nullopt) {
        w.qkv = *qkv;
        if (opt_.qkv_bias)
          w.qkv_bias = stacked_vector({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias",
                                       p + "self_attn.v_proj.bias"},
                                      {qd, kd, kd});
      } else {
        w.q = rows(p + "self_attn.q_proj.weight", q_row0(), qd, hidden_, q_heads_total_ * head_dim_);
        w.k = rows(p + "self_attn.k_proj.weight", kv_row0(), kd, hidden_, kv_heads_total_ * head_dim_);
        w.v = rows(p + "self_attn.v_proj.weight", kv_row0(), kd, hidden_, kv_heads_total_ * head_dim_);
      }
      w.o = cols(p + "self_attn.o_proj.weight", hidden_, qd, q_heads_total_ * head_dim_);
      if (opt_.qkv_bias && fused_) {
        w.qkv_bias = h.alloc_persistent(h.compute_dtype(), {qd + 2 * kd});
        vec_into(p + "self_attn.q_proj.bias", q_row0(), qd, q_heads_total_ * head_dim_,
                 cpp::narrow(w.qkv_bias, 0, 0, qd));
        vec_into(p + "self_attn.k_proj.bias", kv_row0(), kd, kv_heads_total_ * head_dim_,
                 cpp::narrow(w.qkv_bias, 0, qd, kd));
        vec_into(p + "self_attn.v_proj.bias", kv_row0(), kd, kv_heads_total_ * head_dim_,
                 cpp::narrow(w.qkv_bias, 0, qd + kd, kd));
      } else if (opt_.qkv_bias && w.qkv.data == nullptr) {
        w.q_bias = vec(p + "self_attn.q_proj.bias", q_row0(), qd, q_heads_total_ * head_dim_);
        w.k_bias = vec(p + "self_attn.k_proj.bias", kv_row0(), kd, kv_heads_total_ * head_dim_);
        w.v_bias = vec(p + "self_attn.v_proj.bias", kv_row0(), kd, kv_heads_total_ * head_dim_);
      }
      if (opt_.o_bias) w.o_bias = replicated_bias(p + "self_attn.o_proj.bias", hidden_);
      if (opt_.qk_norm) {
        w.q_norm = h.weight(p + "self_attn.q_norm.weight", {head_dim_});
        w.k_norm = h.weight(p + "self_attn.k_norm.weight", {head_dim_});
      }
      if (fused_) {
        w.gate_up = h.alloc_persistent(h.compute_dtype(), {2 * inter_, hidden_});
        rows_into(p + "mlp.gate_proj.weight", inter_row0(), inter_, hidden_, inter_total_,
                  cpp::narrow(w.gate_up, 0, 0, inter_));
        rows_into(p + "mlp.up_proj.weight", inter_row0(), inter_, hidden_, inter_total_,
                  cpp::narrow(w.gate_up, 0, inter_, inter_));
      } else if (auto gate_up = stack ? h.weight_stacked(
                                            {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"},
                                            {inter_, inter_}, hidden_)
                                      : std::nullopt) {
        w.gate_up = *gate_up;
        if (opt_.mlp_bias)
          w.gate_up_bias =
              stacked_vector({p + "mlp.gate_proj.bias", p + "mlp.up_proj.bias"}, {inter_, inter_});
      } else {
        w.gate = rows(p + "mlp.gate_proj.weight", inter_row0(), inter_, hidden_, inter_total_);
        w.up = rows(p + "mlp.up_proj.weight", inter_row0(), inter_, hidden_, inter_total_);
      }
      w.down = cols(p + "mlp.down_proj.weight", hidden_, inter_, inter_total_);
      if (opt_.mlp_bias && fused_) {
        w.gate_up_bias = h.alloc_persistent(h.compute_dtype(), {2 * inter_});
        vec_into(p + "mlp.gate_proj.bias", inter_row0(), inter_, inter_total_,
                 cpp::narrow(w.gate_up_bias, 0, 0, inter_));
        vec_into(p + "mlp.up_proj.bias", inter_row0(), inter_, inter_total_,
                 cpp::narrow(w.gate_up_bias, 0, inter_, inter_));
        w.down_bias = replicated_bias(p + "mlp.down_proj.bias", hidden_);
      } else if (opt_.mlp_bias) {
        if (w.gate_up.data == nullptr) {
          w.gate_bias = vec(p + "mlp.gate_proj.bias", inter_row0(), inter_, inter_total_);
          w.up_bias = vec(p + "mlp.up_proj.bias", inter_row0(), inter_, inter_total_);
        }
        w.down_bias = replicated_bias(p + "mlp.down_proj.bias", hidden_);
      }
      (w.qkv.data != nullptr ? joined_qkv_ : split_qkv_) = true;
      (w.gate_up.data != nullptr ? joined_gate_up_ : split_gate_up_) = true;
      const std::string inv_freq = p + "self_attn.rotary_emb.inv_freq";
      if (h.has_weight(inv_freq)) h.ignore_weight(inv_freq);
    }
    // The host's cache already carries a scheme's attention factor (yarn) in cos and sin, as
    // transformers does, so the softmax scale stays 1/sqrt(D).
    rope_ = h.rope_cache(rot_dim_);
    attn_scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  }

  void forward(const cpp::Ops& ops, const SableForwardBatch& batch,
               SableForwardOutput& out) override {
    const int64_t t = batch.num_tokens;
    if (t <= 0) return;
    const bool lora = SABLE_HAS(&batch, has_lora) && batch.has_lora != 0 && ops.has_lora();
    if (fused_ && tp_size_ == 1 && ops.has_gemm_fused() && !lora && !needs_unfused(batch))
      return forward_fused(ops, batch, out);
    // The adapters' delta of module m of layer l into `y` (a projection's output or a view of it).
    auto delta = [&](int64_t l, int32_t m, const SableTensor& x, SableTensor y) {
      if (lora) ops.lora(static_cast<int32_t>(l), m, x, y);
    };
    // The deltas of modules first.. (q|k|v or gate|up) into their views of a fused output: one
    // call where the host has lora_stacked (ABI 1.5), else one per module.
    auto stacked = [&](int64_t l, int32_t first, const SableTensor& x, std::span<SableTensor> ys) {
      if (!lora) return;
      if (ops.has_lora_stacked()) return ops.lora_stacked(static_cast<int32_t>(l), first, x, ys);
      for (size_t i = 0; i < ys.size(); ++i) delta(l, first + static_cast<int32_t>(i), x, ys[i]);
    };
    const int32_t dt = host().compute_dtype();
    const int64_t qd = q_heads_ * head_dim_, kd = kv_heads_ * head_dim_;

    // residual starts as the embedding; every norm below adds its input into it first.
    SableTensor residual = ops.alloc(dt, {t, hidden_});
    vocab_tables_.embed(ops, batch.token_ids, residual);
    splice_embeds(ops, batch, residual);
    SableTensor h = ops.alloc(dt, {t, hidden_});
    const int64_t qkv_w = qd + 2 * kd;
    SableTensor q, k, v, qkv, gate_up;
    if (joined_qkv_) qkv = ops.alloc(dt, {t, qkv_w});
    if (joined_gate_up_) gate_up = ops.alloc(dt, {t, 2 * inter_});
    if (split_qkv_) {
      q = ops.alloc(dt, {t, qd});
      k = ops.alloc(dt, {t, kd});
      v = ops.alloc(dt, {t, kd});
    }
    SableTensor attn = ops.alloc(dt, {t, qd});
    SableTensor proj = ops.alloc(dt, {t, hidden_});
    SableTensor gate, up;
    if (split_gate_up_) {
      gate = ops.alloc(dt, {t, inter_});
      up = ops.alloc(dt, {t, inter_});
    }
    SableTensor act = ops.alloc(dt, {t, inter_});
    SableTensor qn, kn;
    if (opt_.qk_norm) {
      qn = ops.alloc(dt, {t * q_heads_, head_dim_});
      kn = ops.alloc(dt, {t * kv_heads_, head_dim_});
    }

    for (int64_t l = 0; l < layers_; ++l) {
      const LayerWeights& w = layer_w_[static_cast<size_t>(l)];
      if (l == 0)
        ops.rms_norm(residual, nullptr, w.in_norm, eps_, h);
      else
        ops.rms_norm(proj, &residual, w.in_norm, eps_, h);

      // --- attention
      SableTensor q3, k3, v3;
      if (w.qkv.data != nullptr) {
        // One projection; q, k and v are column views of it: [T, heads, D] with row stride qkv_w.
        ops.gemm(h, w.qkv, bias(w.qkv_bias), qkv);
        SableTensor parts[] = {cpp::narrow(qkv, 1, 0, qd), cpp::narrow(qkv, 1, qd, kd),
                               cpp::narrow(qkv, 1, qd + kd, kd)};
        stacked(l, SABLE_LORA_Q, h, parts);
        q3 = cpp::split_last(cpp::narrow(qkv, 1, 0, qd), q_heads_, head_dim_);
        k3 = cpp::split_last(cpp::narrow(qkv, 1, qd, kd), kv_heads_, head_dim_);
        v3 = cpp::split_last(cpp::narrow(qkv, 1, qd + kd, kd), kv_heads_, head_dim_);
      } else {
        ops.gemm(h, w.q, bias(w.q_bias), q);
        ops.gemm(h, w.k, bias(w.k_bias), k);
        ops.gemm(h, w.v, bias(w.v_bias), v);
        delta(l, SABLE_LORA_Q, h, q);
        delta(l, SABLE_LORA_K, h, k);
        delta(l, SABLE_LORA_V, h, v);
        q3 = cpp::reshape(q, {t, q_heads_, head_dim_});
        k3 = cpp::reshape(k, {t, kv_heads_, head_dim_});
        v3 = cpp::reshape(v, {t, kv_heads_, head_dim_});
      }
      if (opt_.qk_norm) norm_qk(ops, w, t, qn, kn, q3, k3);
      apply_rope(ops, batch, q3, k3);
      SableTensor attn3 = cpp::reshape(attn, {t, q_heads_, head_dim_});
      ops.attention(static_cast<int32_t>(l), q3, k3, v3, attn_scale_, attn3);
      ops.gemm(attn, w.o, rank0_bias(w.o_bias), proj);
      delta(l, SABLE_LORA_O, attn, proj);
      if (tp_size_ > 1) ops.all_reduce(proj);

      // --- MLP: down(act(gate(h)) * up(h))
      ops.rms_norm(proj, &residual, w.post_norm, eps_, h);
      if (w.gate_up.data != nullptr) {
        ops.gemm(h, w.gate_up, bias(w.gate_up_bias), gate_up);
        SableTensor parts[] = {cpp::narrow(gate_up, 1, 0, inter_),
                               cpp::narrow(gate_up, 1, inter_, inter_)};
        stacked(l, SABLE_LORA_GATE, h, parts);
        ops.act_mul(act_, gate_up, act);
      } else {
        ops.gemm(h, w.gate, bias(w.gate_bias), gate);
        ops.gemm(h, w.up, bias(w.up_bias), up);
        delta(l, SABLE_LORA_GATE, h, gate);
        delta(l, SABLE_LORA_UP, h, up);
        ops.activation(act_, gate, act);
        ops.mul(act, up, act);
      }
      ops.gemm(act, w.down, rank0_bias(w.down_bias), proj);
      delta(l, SABLE_LORA_DOWN, act, proj);
      if (tp_size_ > 1) ops.all_reduce(proj);
    }
    ops.rms_norm(proj, &residual, final_norm_, eps_, h);
    emit(ops, batch, h, out);
  }

 protected:
  // The same layers with every projection's neighbours fused into it (ops gemm_fused, ABI 1.1):
  // the norms into the projection that reads them, rope into q|k|v (unless q/k are normed per
  // head first), act·mul into gate|up, and the residual add into o and down, which accumulate
  // into the residual stream. A decode step is then 4 projections and attention per layer. Used
  // on one rank with fused weights (the all-reduce must come before a residual add).
  void forward_fused(const cpp::Ops& ops, const SableForwardBatch& batch, SableForwardOutput& out) {
    const int64_t t = batch.num_tokens;
    const int32_t dt = host().compute_dtype();
    const int64_t qd = q_heads_ * head_dim_, kd = kv_heads_ * head_dim_;
    SableTensor residual = ops.alloc(dt, {t, hidden_});
    vocab_tables_.embed(ops, batch.token_ids, residual);
    splice_embeds(ops, batch, residual);
    SableTensor qkv = ops.alloc(dt, {t, qd + 2 * kd});
    SableTensor attn = ops.alloc(dt, {t, qd});
    SableTensor act = ops.alloc(dt, {t, inter_});
    SableTensor qn, kn;
    if (opt_.qk_norm) {
      qn = ops.alloc(dt, {t * q_heads_, head_dim_});
      kn = ops.alloc(dt, {t * kv_heads_, head_dim_});
    }
    auto fusion = [] {
      SableGemmFusion f{};
      f.struct_size = sizeof(f);
      return f;
    };
    for (int64_t l = 0; l < layers_; ++l) {
      const LayerWeights& w = layer_w_[static_cast<size_t>(l)];
      SableGemmFusion fq = fusion();
      fq.norm_weight = &w.in_norm;
      fq.norm_eps = eps_;
      if (!opt_.qk_norm) {
        fq.rope_cols = static_cast<int32_t>(qd + kd);
        fq.rope_head_dim = static_cast<int32_t>(head_dim_);
        fq.rope_dim = rot_dim_;
        fq.rope_style = SABLE_ROPE_NEOX;
        fq.positions = &batch.positions;
        fq.cos_sin = &rope_;
      }
      ops.gemm_fused(residual, w.qkv, bias(w.qkv_bias), fq, qkv);
      SableTensor q3 = cpp::split_last(cpp::narrow(qkv, 1, 0, qd), q_heads_, head_dim_);
      SableTensor k3 = cpp::split_last(cpp::narrow(qkv, 1, qd, kd), kv_heads_, head_dim_);
      SableTensor v3 = cpp::split_last(cpp::narrow(qkv, 1, qd + kd, kd), kv_heads_, head_dim_);
      if (opt_.qk_norm) {  // rope follows the per-head norms, so it was not fused above
        norm_qk(ops, w, t, qn, kn, q3, k3);
        ops.rope(&q3, &k3, batch.positions, rope_, rot_dim_, SABLE_ROPE_NEOX);
      }
      SableTensor attn3 = cpp::reshape(attn, {t, q_heads_, head_dim_});
      ops.attention(static_cast<int32_t>(l), q3, k3, v3, attn_scale_, attn3);
      SableGemmFusion fo = fusion();
      fo.accumulate = 1;
      ops.gemm_fused(attn, w.o, bias(w.o_bias), fo, residual);
      SableGemmFusion fg = fusion();
      fg.norm_weight = &w.post_norm;
      fg.norm_eps = eps_;
      fg.gated = 1;
      fg.act = act_;
      ops.gemm_fused(residual, w.gate_up, bias(w.gate_up_bias), fg, act);
      ops.gemm_fused(act, w.down, bias(w.down_bias), fo, residual);
    }
    SableTensor h = ops.alloc(dt, {t, hidden_});
    ops.rms_norm(residual, nullptr, final_norm_, eps_, h);
    emit(ops, batch, h, out);
  }

  // Logits (and hidden states when asked) of the rows that need them, from the final norm `h`.
  void emit(const cpp::Ops& ops, const SableForwardBatch& batch, const SableTensor& h,
            SableForwardOutput& out) const {
    const int64_t rows_out = batch.num_outputs;
    if (rows_out <= 0) return;
    SableTensor sel = ops.alloc(host().compute_dtype(), {rows_out, hidden_});
    ops.gather_rows(h, batch.output_rows, sel);
    if (out.hidden.data != nullptr) ops.copy(sel, out.hidden);
    if (out.logits.data == nullptr) return;
    if (num_labels_ > 0) return ops.gemm(sel, score_, nullptr, out.logits);
    vocab_tables_.logits(ops, sel, out.logits);
  }

  const DecoderOptions& options() const { return opt_; }

  // Rotary embedding of one layer's q/k; a model with its own position scheme (M-RoPE) overrides
  // it, and needs_unfused keeps its batches off forward_fused, whose projection applies the rope.
  virtual void apply_rope(const cpp::Ops& ops, const SableForwardBatch& batch, SableTensor& q3,
                          SableTensor& k3) {
    ops.rope(&q3, &k3, batch.positions, rope_, rot_dim_, SABLE_ROPE_NEOX);
  }
  virtual bool needs_unfused(const SableForwardBatch&) const { return false; }

  // ABI 1.3: the rows of batch.embeds (image embeddings) replace the token embeddings of the
  // placeholder rows that batch.embed_spans names (after the vocabulary all-reduce, so every rank
  // holds them once).
  void splice_embeds(const cpp::Ops& ops, const SableForwardBatch& batch, SableTensor& residual) const {
    if (!SABLE_HAS(&batch, embed_spans) || batch.num_embed_spans <= 0) return;
    for (int32_t i = 0; i < batch.num_embed_spans; ++i) {
      const int32_t* span = batch.embed_spans + 3 * i;
      SableTensor dst = cpp::narrow(residual, 0, span[0], span[1]);
      ops.copy(cpp::narrow(batch.embeds, 0, span[2], span[1]), dst);
    }
  }

  const SableTensor& rope_cache_table() const { return rope_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t hidden_size() const { return hidden_; }
  int32_t rot_dim() const { return rot_dim_; }

 private:
  struct LayerWeights {
    SableTensor in_norm{}, post_norm{};
    SableTensor q{}, k{}, v{}, o{};
    SableTensor q_bias{}, k_bias{}, v_bias{}, o_bias{};
    SableTensor q_norm{}, k_norm{};
    SableTensor gate{}, up{}, down{};
    SableTensor gate_bias{}, up_bias{}, down_bias{};
    SableTensor qkv{}, qkv_bias{}, gate_up{}, gate_up_bias{};  // fused layout
  };

  // Qwen3's per-head RMS norms of q and k into qn/kn; q3/k3 then view those.
  void norm_qk(const cpp::Ops& ops, const LayerWeights& w, int64_t t, SableTensor& qn,
               SableTensor& kn, SableTensor& q3, SableTensor& k3) const {
    ops.rms_norm(q3, nullptr, w.q_norm, eps_, qn);
    ops.rms_norm(k3, nullptr, w.k_norm, eps_, kn);
    q3 = cpp::reshape(qn, {t, q_heads_, head_dim_});
    k3 = cpp::reshape(kn, {t, kv_heads_, head_dim_});
  }

  static int32_t parse_activation(const std::string& name) {
    if (name == "silu" || name == "swish") return SABLE_ACT_SILU;
    if (name == "gelu") return SABLE_ACT_GELU;
    if (name == "gelu_pytorch_tanh" || name == "gelu_new") return SABLE_ACT_GELU_TANH;
    if (name == "relu") return SABLE_ACT_RELU;
    cpp::fail(SABLE_ERR_UNSUPPORTED, "config.json: hidden_act '" + name + "' is not supported");
  }

  static const SableTensor* bias(const SableTensor& b) { return b.data ? &b : nullptr; }
  // The biases of a stacked projection, stacked alike (a host that stacked the matrices must).
  SableTensor stacked_vector(std::initializer_list<std::string> names,
                             std::initializer_list<int64_t> lens) const {
    auto v = host().weight_stacked(names, lens, 0);
    if (!v) cpp::fail(SABLE_ERR_UNSUPPORTED, "the host stacked matrices but not their biases");
    return *v;
  }
  // A row-parallel layer's bias is added once, on rank 0, before the all-reduce sums the ranks.
  const SableTensor* rank0_bias(const SableTensor& b) const {
    return (b.data && tp_rank_ == 0) ? &b : nullptr;
  }

  // This rank's first row of a column-parallel projection: q and gate/up by rank, k/v by the
  // KV head it holds (the same head on several ranks when replicated).
  int64_t q_row0() const { return tp_rank_ * q_heads_ * head_dim_; }
  int64_t kv_row0() const { return kv_start_ * head_dim_; }
  int64_t inter_row0() const { return tp_rank_ * inter_; }

  // Column-parallel weight [len, in]: rows [start, start + len) of the [total, in] tensor.
  SableTensor rows(const std::string& name, int64_t start, int64_t len, int64_t in,
                   int64_t total) const {
    if (len == total) return host().weight(name, {total, in});
    return host().weight_slice(name, {total, in}, 0, start, len);
  }
  // Row-parallel weight [out, in_per_rank]: this rank's block of input columns.
  SableTensor cols(const std::string& name, int64_t out, int64_t per_rank, int64_t total) const {
    if (tp_size_ == 1) return host().weight(name, {out, total});
    return host().weight_slice(name, {out, total}, 1, tp_rank_ * per_rank, per_rank);
  }
  // The same rows, loaded into `dst` (a row block of a fused weight).
  void rows_into(const std::string& name, int64_t start, int64_t len, int64_t in, int64_t total,
                 SableTensor dst) const {
    if (len == total) return host().weight_into(name, {total, in}, dst);
    host().weight_into(name, {total, in}, dst, 0, start, len);
  }
  void vec_into(const std::string& name, int64_t start, int64_t len, int64_t total,
                SableTensor dst) const {
    if (len == total) return host().weight_into(name, {total}, dst);
    host().weight_into(name, {total}, dst, 0, start, len);
  }
  SableTensor vec(const std::string& name, int64_t start, int64_t len, int64_t total) const {
    if (len == total) return host().weight(name, {total});
    return host().weight_slice(name, {total}, 0, start, len);
  }
  SableTensor replicated_bias(const std::string& name, int64_t n) const {
    return host().weight(name, {n});
  }

  DecoderOptions opt_;
  int64_t hidden_ = 0, layers_ = 0, vocab_ = 0, max_pos_ = 0, sliding_window_ = 0;
  int64_t q_heads_total_ = 0, kv_heads_total_ = 0, inter_total_ = 0, head_dim_ = 0;
  int64_t q_heads_ = 0, kv_heads_ = 0, kv_start_ = 0, inter_ = 0;
  int64_t num_labels_ = 0;  // > 0: a sequence-classification head (score.weight) for lm_head
  int32_t tp_size_ = 1, tp_rank_ = 0, rot_dim_ = 0, act_ = SABLE_ACT_SILU;
  float eps_ = 1e-6f, attn_scale_ = 0.0f;
  bool tied_ = false;
  bool fused_ = false;  // every layer's q|k|v and gate|up fused in the compute dtype
  // Layers with q|k|v (gate|up) in one weight, fused or stacked packed, and layers without.
  bool joined_qkv_ = false, split_qkv_ = false, joined_gate_up_ = false, split_gate_up_ = false;
  VocabTables vocab_tables_;
  SableTensor score_{}, final_norm_{}, rope_{};
  std::vector<LayerWeights> layer_w_;
};

}  // namespace sable::models
