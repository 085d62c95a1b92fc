// Config and weight helpers shared by the "moe" plugin and the generic "transformers" plugin
// (header-only): the decoder geometry read from config.json, tensor-parallel weight fetches, the
// activation-name table, and the final gather + LM head.
// Thread-safety: free functions over a Host / Ops that belong to one model object.
#pragma once

#include <cmath>
#include <string>

#include "common/tensor_parallel.h"
#include "sable/cpp/plugin.h"

namespace sable::models {

// Integer config value that must be positive; throws naming the key otherwise.
inline int64_t config_positive(const cpp::Host& host, const char* key) {
  const int64_t v = host.require_int(key);
  if (v <= 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              std::string("config.json: '") + key + "' must be positive, got " + std::to_string(v));
  return v;
}

// HF activation names -> SableActivation; anything else is an error naming `key` and the value.
inline int32_t parse_activation(const std::string& name, const char* key) {
  if (name == "silu" || name == "swish") return SABLE_ACT_SILU;
  if (name == "gelu") return SABLE_ACT_GELU;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast")
    return SABLE_ACT_GELU_TANH;
  if (name == "relu") return SABLE_ACT_RELU;
  cpp::fail(SABLE_ERR_UNSUPPORTED,
            std::string("config.json: ") + key + " '" + name + "' is not supported");
}

// The attention/embedding geometry every decoder shares. *_total are whole-model counts; the
// others are per tensor-parallel rank.
struct Geometry {
  int64_t hidden = 0, layers = 0, vocab = 0, max_pos = 0;
  int64_t q_heads_total = 0, kv_heads_total = 0, head_dim = 0, q_heads = 0, kv_heads = 0;
  int64_t kv_start = 0;  // this rank's first KV head (common/tensor_parallel.h)
  int32_t rot_dim = 0, tp_rank = 0, tp_size = 1;
  float eps = 1e-6f;
  bool tied = false;
};

inline Geometry read_geometry(const cpp::Host& host) {
  Geometry g;
  g.hidden = config_positive(host, "hidden_size");
  g.layers = config_positive(host, "num_hidden_layers");
  g.q_heads_total = config_positive(host, "num_attention_heads");
  g.kv_heads_total = host.get_int("num_key_value_heads").value_or(g.q_heads_total);
  g.vocab = config_positive(host, "vocab_size");
  g.max_pos = host.get_int("max_position_embeddings").value_or(4096);
  g.eps = static_cast<float>(host.get_float("rms_norm_eps").value_or(1e-6));
  g.tied = host.get_bool("tie_word_embeddings").value_or(false);
  g.head_dim = host.get_int("head_dim").value_or(0);
  if (g.head_dim <= 0) {
    if (g.hidden % g.q_heads_total != 0)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: hidden_size " + std::to_string(g.hidden) +
                    " is not divisible by num_attention_heads " + std::to_string(g.q_heads_total));
    g.head_dim = g.hidden / g.q_heads_total;
  }
  if (g.kv_heads_total <= 0 || g.q_heads_total % g.kv_heads_total != 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              "config.json: num_key_value_heads " + std::to_string(g.kv_heads_total) +
                  " must divide num_attention_heads " + std::to_string(g.q_heads_total));
  double partial = host.get_float("partial_rotary_factor").value_or(1.0);
  if (host.has("rope_parameters.partial_rotary_factor"))
    partial = host.get_float("rope_parameters.partial_rotary_factor").value_or(partial);
  g.rot_dim = static_cast<int32_t>(static_cast<double>(g.head_dim) * partial);
  if (partial <= 0.0 || partial > 1.0 || g.rot_dim % 2 != 0 || g.rot_dim == 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: partial_rotary_factor " +
                                              std::to_string(partial) +
                                              " gives an odd or empty rotary dim");
  g.tp_size = host.tp_size() > 0 ? host.tp_size() : 1;
  g.tp_rank = host.tp_rank();
  const HeadSplit split = split_heads(g.q_heads_total, g.kv_heads_total, g.tp_rank, g.tp_size);
  g.q_heads = split.q_heads;
  g.kv_heads = split.kv_heads;
  g.kv_start = split.kv_start;
  return g;
}

inline SableModelInfo model_info(const Geometry& g, int64_t sliding_window) {
  SableModelInfo i{};
  i.struct_size = sizeof(SableModelInfo);
  i.num_layers = static_cast<int32_t>(g.layers);
  i.num_q_heads = static_cast<int32_t>(g.q_heads);
  i.num_kv_heads = static_cast<int32_t>(g.kv_heads);
  i.head_dim = static_cast<int32_t>(g.head_dim);
  i.hidden_size = static_cast<int32_t>(g.hidden);
  i.vocab_size = static_cast<int32_t>(g.vocab);
  i.max_position = static_cast<int32_t>(g.max_pos);
  i.sliding_window = static_cast<int32_t>(sliding_window);
  i.output_kind = SABLE_MODEL_OUTPUT_LOGITS;
  return i;
}

inline const SableTensor* opt_bias(const SableTensor& b) { return b.data ? &b : nullptr; }

// Column-parallel weight [total, in]: this rank's block of `per_rank` output rows.
inline SableTensor tp_rows(const cpp::Host& h, const Geometry& g, const std::string& name,
                           int64_t per_rank, int64_t total, int64_t in) {
  if (g.tp_size == 1) return h.weight(name, {total, in});
  return h.weight_slice(name, {total, in}, 0, g.tp_rank * per_rank, per_rank);
}
// Row-parallel weight [out, total]: this rank's block of `per_rank` input columns.
inline SableTensor tp_cols(const cpp::Host& h, const Geometry& g, const std::string& name,
                           int64_t out, int64_t per_rank, int64_t total) {
  if (g.tp_size == 1) return h.weight(name, {out, total});
  return h.weight_slice(name, {out, total}, 1, g.tp_rank * per_rank, per_rank);
}
inline SableTensor tp_vec(const cpp::Host& h, const Geometry& g, const std::string& name,
                          int64_t per_rank, int64_t total) {
  if (g.tp_size == 1) return h.weight(name, {total});
  return h.weight_slice(name, {total}, 0, g.tp_rank * per_rank, per_rank);
}
// k_proj / v_proj [kv_heads_total * D, in] (or their bias, in == 0): the rows of this rank's KV
// heads, which ranks share when KV heads are replicated.
inline SableTensor tp_kv_rows(const cpp::Host& h, const Geometry& g, const std::string& name,
                              int64_t in) {
  const int64_t total = g.kv_heads_total * g.head_dim, len = g.kv_heads * g.head_dim;
  if (in == 0) {
    if (len == total) return h.weight(name, {total});
    return h.weight_slice(name, {total}, 0, g.kv_start * g.head_dim, len);
  }
  if (len == total) return h.weight(name, {total, in});
  return h.weight_slice(name, {total, in}, 0, g.kv_start * g.head_dim, len);
}

// The embedding and lm_head.weight [V, H], or the embedding's rows again when
// tie_word_embeddings (a stored lm_head copy is ignored); split by vocabulary rows with tensor
// parallelism (common/tensor_parallel.h).
inline void load_vocab_tables(const cpp::Host& h, const Geometry& g, VocabTables& tables) {
  const std::string embed = "model.embed_tokens.weight";
  if (g.tied && h.has_weight("lm_head.weight")) h.ignore_weight("lm_head.weight");
  tables.load(h, embed, g.tied ? embed : "lm_head.weight", g.vocab, g.hidden);
}

// Gathers the rows that need outputs from the final-norm output normed[T, H], copies them to
// out.hidden when wanted and writes out.logits = rows · lm_headᵀ * logit_scale.
inline void write_outputs(const cpp::Ops& ops, const SableForwardBatch& batch,
                          const SableTensor& normed, const VocabTables& vocab, float logit_scale,
                          SableForwardOutput& out) {
  const int64_t rows = batch.num_outputs;
  if (rows <= 0) return;
  SableTensor sel = ops.alloc(normed.dtype, {rows, normed.shape[1]});
  ops.gather_rows(normed, batch.output_rows, sel);
  if (out.hidden.data != nullptr) ops.copy(sel, out.hidden);
  if (out.logits.data == nullptr) return;
  vocab.logits(ops, sel, out.logits);
  if (logit_scale != 1.0f) ops.scale(out.logits, logit_scale, out.logits);
}

}  // namespace sable::models
