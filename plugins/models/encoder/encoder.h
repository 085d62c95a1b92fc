// The post-norm transformer encoder that BERT, RoBERTa and XLM-RoBERTa share, written once for the
// "encoder" model plugin (one file per architecture family turns config.json into EncoderOptions).
//
// Forward: word + learned absolute position (+ position_offset, RoBERTa's padding_idx + 1) + token
// type embeddings, LayerNorm; then per layer: fused q|k|v projection, bidirectional attention
// within each sequence (ops attention_bidirectional, no KV cache), output projection, residual +
// LayerNorm, GELU MLP, residual + LayerNorm. What leaves the last layer is the "hidden state".
// Heads (chosen by the checkpoint's tensors, as transformers' classes name them):
//   none                     embedding model (BertModel, XLMRobertaModel): hidden states only;
//   classifier.dense/out_proj RoBERTa classification head on the first token (<s>): dense, tanh,
//                            out_proj -> num_labels scores (cross-encoder rerankers);
//   pooler + classifier      BERT: pooler dense + tanh on [CLS], then classifier -> scores.
// A pooler of an embedding checkpoint is unused (sentence-transformers pools the hidden states).
// Assumes no padding token inside a prompt (transformers would skip its position).
// One device, no tensor parallelism. Thread-safety: one model object, one thread at a time.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "common/classifier.h"
#include "sable/cpp/plugin.h"

namespace sable::models {

struct EncoderOptions {
  int64_t position_offset = 0;  // RoBERTa family: padding_idx + 1
  const char* family = "bert";  // names the family in errors
};

// Refuses a position_embedding_type other than "absolute" (relative_key and friends).
inline void require_absolute_positions(const cpp::Host& host) {
  const std::string type = host.get_string("position_embedding_type").value_or("absolute");
  if (type != "absolute")
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: position_embedding_type '" + type + "' is not supported (absolute)");
}

EncoderOptions bert_options(const cpp::Host& host);     // bert.cpp
EncoderOptions roberta_options(const cpp::Host& host);  // roberta.cpp

class EncoderModel : public cpp::Model {
 public:
  EncoderModel(cpp::Host host, const EncoderOptions& opt);
  SableModelInfo info() const override;
  void load_weights() override;
  void forward(const cpp::Ops& ops, const SableForwardBatch& batch,
               SableForwardOutput& out) override;

 private:
  enum class Head { kNone, kRoberta, kBert };
  struct Layer {
    SableTensor qkv{}, qkv_bias{}, q{}, k{}, v{}, q_bias{}, k_bias{}, v_bias{};
    SableTensor o{}, o_bias{}, attn_norm{}, attn_norm_bias{};
    SableTensor up{}, up_bias{}, down{}, down_bias{}, out_norm{}, out_norm_bias{};
  };

  SableTensor w(const std::string& name, std::initializer_list<int64_t> shape) const {
    return host().weight(prefix_ + name, shape);
  }
  void ignore_prefixed(const std::string& start) const;
  // The classifier of a score head on the selected rows `sel` [L, H] -> out.logits [L, labels].
  void classify(const cpp::Ops& ops, const SableTensor& sel, SableForwardOutput& out) const;

  EncoderOptions opt_;
  std::string prefix_;  // "bert." / "roberta." in *ForSequenceClassification checkpoints
  Head head_ = Head::kNone;
  int64_t hidden_ = 0, layers_ = 0, heads_ = 0, head_dim_ = 0, inter_ = 0, vocab_ = 0;
  int64_t max_pos_ = 0, type_vocab_ = 0, num_labels_ = 0;
  float eps_ = 1e-12f, attn_scale_ = 1.0f;
  int32_t act_ = SABLE_ACT_GELU;
  bool fused_ = false;
  SableTensor word_{}, pos_{}, type_{}, emb_norm_{}, emb_norm_bias_{};
  SableTensor head_dense_{}, head_dense_bias_{}, head_out_{}, head_out_bias_{};
  std::vector<Layer> layer_w_;
};

}  // namespace sable::models
