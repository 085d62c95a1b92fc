// Model plugin "llama": LlamaForCausalLM and MistralForCausalLM, and their sequence-classification
// (reward) forms, which the shared decoder serves with a score head.
//
// Both are the shared pre-norm decoder (../common/decoder.h) with rotate-half rope; they differ
// only in which config keys switch biases on. Llama: `attention_bias` (q/k/v/o) and `mlp_bias`.
// Mistral: no biases; `sliding_window` (null in most checkpoints) is passed on to attention.
#include <string>

#include "common/decoder.h"

namespace sable::models {
namespace {

DecoderOptions llama_options(const cpp::Host& host) {
  const std::string type = host.get_string("model_type").value_or("llama");
  DecoderOptions opt;
  if (type == "mistral") {
    opt.read_sliding_window = true;
    return opt;
  }
  const bool attention_bias = host.get_bool("attention_bias").value_or(false);
  opt.qkv_bias = attention_bias;
  opt.o_bias = attention_bias;
  opt.mlp_bias = host.get_bool("mlp_bias").value_or(false);
  opt.read_sliding_window = false;  // Llama has no sliding-window attention
  return opt;
}

class LlamaModel final : public DecoderModel {
 public:
  explicit LlamaModel(cpp::Host host) : DecoderModel(host, llama_options(host)) {
    const auto pretraining_tp = host.get_int("pretraining_tp");
    if (pretraining_tp && *pretraining_tp < 1)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: pretraining_tp must be >= 1");
  }
};

}  // namespace
}  // namespace sable::models

SABLE_MODEL_PLUGIN("llama", "0.1.0", sable::models::LlamaModel, 0, "LlamaForCausalLM",
                   "MistralForCausalLM", "LlamaForSequenceClassification",
                   "MistralForSequenceClassification")
