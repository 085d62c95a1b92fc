// The shared encoder of the "encoder" plugin (see encoder.h).
#include "encoder/encoder.h"

namespace sable::models {

namespace {

int64_t positive(const cpp::Host& host, const char* key) {
  const int64_t v = host.require_int(key);
  if (v <= 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              std::string("config.json: '") + key + "' must be positive, got " + std::to_string(v));
  return v;
}

int32_t encoder_activation(const std::string& name) {
  if (name == "gelu") return SABLE_ACT_GELU;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return SABLE_ACT_GELU_TANH;
  if (name == "relu") return SABLE_ACT_RELU;
  cpp::fail(SABLE_ERR_UNSUPPORTED, "config.json: hidden_act '" + name + "' is not supported");
}

const SableTensor* opt_bias(const SableTensor& b) { return b.data ? &b : nullptr; }

}  // namespace

EncoderModel::EncoderModel(cpp::Host host, const EncoderOptions& opt)
    : cpp::Model(host), opt_(opt) {
  hidden_ = positive(host, "hidden_size");
  layers_ = positive(host, "num_hidden_layers");
  heads_ = positive(host, "num_attention_heads");
  inter_ = positive(host, "intermediate_size");
  vocab_ = positive(host, "vocab_size");
  max_pos_ = positive(host, "max_position_embeddings");
  type_vocab_ = host.get_int("type_vocab_size").value_or(2);
  eps_ = static_cast<float>(host.get_float("layer_norm_eps").value_or(1e-12));
  act_ = encoder_activation(host.get_string("hidden_act").value_or("gelu"));
  if (hidden_ % heads_ != 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: hidden_size " + std::to_string(hidden_) +
                                              " is not divisible by num_attention_heads " +
                                              std::to_string(heads_));
  head_dim_ = hidden_ / heads_;
  if (max_pos_ <= opt_.position_offset)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              "config.json: max_position_embeddings " + std::to_string(max_pos_) +
                  " leaves no position after the offset " + std::to_string(opt_.position_offset));
  if (host.tp_size() > 1)
    cpp::fail(SABLE_ERR_UNSUPPORTED, std::string("tensor parallelism is not supported for ") +
                                         opt_.family + " encoders (tp_size " +
                                         std::to_string(host.tp_size()) + ")");
  for (const char* p : {"bert.", "roberta."}) {
    if (host.has_weight(std::string(p) + "embeddings.word_embeddings.weight")) prefix_ = p;
  }
  if (host.has_weight("classifier.out_proj.weight")) {
    head_ = Head::kRoberta;
  } else if (host.has_weight("classifier.weight")) {
    head_ = Head::kBert;
    if (!host.has_weight(prefix_ + "pooler.dense.weight"))
      cpp::fail(SABLE_ERR_NOT_FOUND,
                "checkpoint: a BERT classifier needs the pooler (" + prefix_ + "pooler.dense.weight)");
  }
  if (head_ != Head::kNone) num_labels_ = config_num_labels(host);
}

SableModelInfo EncoderModel::info() const {
  SableModelInfo i{};
  i.struct_size = sizeof(SableModelInfo);
  i.num_layers = 0;  // no KV cache
  i.num_q_heads = static_cast<int32_t>(heads_);
  i.num_kv_heads = static_cast<int32_t>(heads_);
  i.head_dim = static_cast<int32_t>(head_dim_);
  i.hidden_size = static_cast<int32_t>(hidden_);
  i.vocab_size = static_cast<int32_t>(vocab_);
  i.max_position = static_cast<int32_t>(max_pos_ - opt_.position_offset);
  i.output_kind = SABLE_MODEL_OUTPUT_HIDDEN;
  if (head_ != Head::kNone) set_score_output(i, num_labels_, SABLE_SCORE_FIRST_TOKEN);
  i.bidirectional = 1;
  return i;
}

void EncoderModel::ignore_prefixed(const std::string& start) const {
  for (const std::string& name : host().weight_names()) {
    if (name.rfind(start, 0) == 0) host().ignore_weight(name);
  }
}

void EncoderModel::load_weights() {
  const cpp::Host& h = host();
  fused_ = h.can_load_into();
  word_ = w("embeddings.word_embeddings.weight", {vocab_, hidden_});
  // The position and token-type tables are added, not multiplied: they come in the compute dtype,
  // never packed (a CPU host keeps bf16/f16 matrices packed for its GEMMs).
  pos_ = h.weight(prefix_ + "embeddings.position_embeddings.weight", {max_pos_, hidden_},
                  h.compute_dtype());
  type_ = h.weight(prefix_ + "embeddings.token_type_embeddings.weight", {type_vocab_, hidden_},
                   h.compute_dtype());
  emb_norm_ = w("embeddings.LayerNorm.weight", {hidden_});
  emb_norm_bias_ = w("embeddings.LayerNorm.bias", {hidden_});
  const std::string position_ids = prefix_ + "embeddings.position_ids";
  if (h.has_weight(position_ids)) h.ignore_weight(position_ids);
  layer_w_.resize(static_cast<size_t>(layers_));
  for (int64_t l = 0; l < layers_; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    Layer& L = layer_w_[static_cast<size_t>(l)];
    const std::string self = p + "attention.self.";
    if (fused_) {
      L.qkv = h.alloc_persistent(h.compute_dtype(), {3 * hidden_, hidden_});
      L.qkv_bias = h.alloc_persistent(h.compute_dtype(), {3 * hidden_});
      const char* parts[] = {"query", "key", "value"};
      for (int64_t i = 0; i < 3; ++i) {
        SableTensor rows = cpp::narrow(L.qkv, 0, i * hidden_, hidden_);
        h.weight_into(prefix_ + self + parts[i] + ".weight", {hidden_, hidden_}, rows);
        SableTensor b = cpp::narrow(L.qkv_bias, 0, i * hidden_, hidden_);
        h.weight_into(prefix_ + self + parts[i] + ".bias", {hidden_}, b);
      }
    } else {
      L.q = w(self + "query.weight", {hidden_, hidden_});
      L.k = w(self + "key.weight", {hidden_, hidden_});
      L.v = w(self + "value.weight", {hidden_, hidden_});
      L.q_bias = w(self + "query.bias", {hidden_});
      L.k_bias = w(self + "key.bias", {hidden_});
      L.v_bias = w(self + "value.bias", {hidden_});
    }
    L.o = w(p + "attention.output.dense.weight", {hidden_, hidden_});
    L.o_bias = w(p + "attention.output.dense.bias", {hidden_});
    L.attn_norm = w(p + "attention.output.LayerNorm.weight", {hidden_});
    L.attn_norm_bias = w(p + "attention.output.LayerNorm.bias", {hidden_});
    L.up = w(p + "intermediate.dense.weight", {inter_, hidden_});
    L.up_bias = w(p + "intermediate.dense.bias", {inter_});
    L.down = w(p + "output.dense.weight", {hidden_, inter_});
    L.down_bias = w(p + "output.dense.bias", {hidden_});
    L.out_norm = w(p + "output.LayerNorm.weight", {hidden_});
    L.out_norm_bias = w(p + "output.LayerNorm.bias", {hidden_});
  }
  if (head_ == Head::kRoberta) {
    head_dense_ = h.weight("classifier.dense.weight", {hidden_, hidden_});
    head_dense_bias_ = h.weight("classifier.dense.bias", {hidden_});
    head_out_ = h.weight("classifier.out_proj.weight", {num_labels_, hidden_});
    head_out_bias_ = h.weight("classifier.out_proj.bias", {num_labels_});
  } else if (head_ == Head::kBert) {
    head_dense_ = w("pooler.dense.weight", {hidden_, hidden_});
    head_dense_bias_ = w("pooler.dense.bias", {hidden_});
    head_out_ = h.weight("classifier.weight", {num_labels_, hidden_});
    head_out_bias_ = h.weight("classifier.bias", {num_labels_});
  } else {
    ignore_prefixed(prefix_ + "pooler.");  // sentence-transformers pools the hidden states
  }
  attn_scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim_));
}

void EncoderModel::forward(const cpp::Ops& ops, const SableForwardBatch& batch,
                           SableForwardOutput& out) {
  const int64_t t = batch.num_tokens;
  if (t <= 0) return;
  if (!ops.has_attention_bidirectional())
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "the host's ops table has no attention_bidirectional (ABI 1.2) for encoders");
  const int32_t dt = host().compute_dtype();
  // Embeddings: word + position (offset rows of the table) + token type, then LayerNorm.
  SableTensor emb = ops.alloc(dt, {t, hidden_});
  SableTensor part = ops.alloc(dt, {t, hidden_});
  ops.embedding(word_, batch.token_ids, emb);
  ops.embedding(cpp::narrow(pos_, 0, opt_.position_offset, max_pos_ - opt_.position_offset),
                batch.positions, part);
  ops.add(emb, part, emb);
  const bool typed = SABLE_HAS(&batch, token_type_ids) && batch.token_type_ids.data != nullptr;
  if (typed) {
    ops.embedding(type_, batch.token_type_ids, part);
    ops.add(emb, part, emb);
  } else {
    ops.add(emb, cpp::narrow(type_, 0, 0, 1), emb);  // every token is type 0
  }
  SableTensor x = ops.alloc(dt, {t, hidden_});  // the stream between layers
  ops.layer_norm(emb, nullptr, &emb_norm_, &emb_norm_bias_, eps_, x);

  SableTensor y = ops.alloc(dt, {t, hidden_});  // the stream after attention
  SableTensor qkv, q, k, v;
  if (fused_) {
    qkv = ops.alloc(dt, {t, 3 * hidden_});
  } else {
    q = ops.alloc(dt, {t, hidden_});
    k = ops.alloc(dt, {t, hidden_});
    v = ops.alloc(dt, {t, hidden_});
  }
  SableTensor attn = ops.alloc(dt, {t, hidden_});
  SableTensor proj = ops.alloc(dt, {t, hidden_});
  SableTensor up = ops.alloc(dt, {t, inter_});
  SableTensor act = ops.alloc(dt, {t, inter_});
  for (const Layer& L : layer_w_) {
    SableTensor q3, k3, v3;
    if (fused_) {
      ops.gemm(x, L.qkv, &L.qkv_bias, qkv);
      q3 = cpp::split_last(cpp::narrow(qkv, 1, 0, hidden_), heads_, head_dim_);
      k3 = cpp::split_last(cpp::narrow(qkv, 1, hidden_, hidden_), heads_, head_dim_);
      v3 = cpp::split_last(cpp::narrow(qkv, 1, 2 * hidden_, hidden_), heads_, head_dim_);
    } else {
      ops.gemm(x, L.q, opt_bias(L.q_bias), q);
      ops.gemm(x, L.k, opt_bias(L.k_bias), k);
      ops.gemm(x, L.v, opt_bias(L.v_bias), v);
      q3 = cpp::reshape(q, {t, heads_, head_dim_});
      k3 = cpp::reshape(k, {t, heads_, head_dim_});
      v3 = cpp::reshape(v, {t, heads_, head_dim_});
    }
    SableTensor attn3 = cpp::reshape(attn, {t, heads_, head_dim_});
    ops.attention_bidirectional(q3, k3, v3, batch.positions, attn_scale_, attn3);
    ops.gemm(attn, L.o, &L.o_bias, proj);
    ops.layer_norm(proj, &x, &L.attn_norm, &L.attn_norm_bias, eps_, y);  // x += proj; y = LN(x)
    ops.gemm(y, L.up, &L.up_bias, up);
    ops.activation(act_, up, act);
    ops.gemm(act, L.down, &L.down_bias, proj);
    ops.layer_norm(proj, &y, &L.out_norm, &L.out_norm_bias, eps_, x);  // y += proj; x = LN(y)
  }
  const int64_t rows = batch.num_outputs;
  if (rows <= 0) return;
  SableTensor sel = ops.alloc(dt, {rows, hidden_});
  ops.gather_rows(x, batch.output_rows, sel);
  if (out.hidden.data != nullptr) ops.copy(sel, out.hidden);
  if (head_ != Head::kNone && out.logits.data != nullptr) classify(ops, sel, out);
}

void EncoderModel::classify(const cpp::Ops& ops, const SableTensor& sel,
                            SableForwardOutput& out) const {
  const int32_t dt = host().compute_dtype();
  const int64_t rows = sel.shape[0];
  SableTensor dense = ops.alloc(dt, {rows, hidden_});
  SableTensor pooled = ops.alloc(dt, {rows, hidden_});
  ops.gemm(sel, head_dense_, &head_dense_bias_, dense);
  ops.activation(SABLE_ACT_TANH, dense, pooled);
  ops.gemm(pooled, head_out_, &head_out_bias_, out.logits);
}

}  // namespace sable::models
