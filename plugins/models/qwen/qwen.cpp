// Model plugin "qwen": Qwen2ForCausalLM and Qwen3ForCausalLM, and their sequence-classification
// (reward) forms, which the shared decoder serves with a score head.
//
// Both are the shared pre-norm decoder (../common/decoder.h). Qwen2 always has q/k/v biases (no
// o_proj bias). Qwen3 drops them (unless `attention_bias`) and RMS-normalises each query and key
// head (q_norm / k_norm over head_dim) before rope; its head_dim may differ from hidden/heads.
// Sliding window applies only when `use_sliding_window` is true.
#include <string>

#include "common/decoder.h"

namespace sable::models {
namespace {

DecoderOptions qwen_options(const cpp::Host& host) {
  const std::string type = host.get_string("model_type").value_or("qwen2");
  DecoderOptions opt;
  if (type == "qwen3") {
    const bool attention_bias = host.get_bool("attention_bias").value_or(false);
    opt.qkv_bias = attention_bias;
    opt.o_bias = attention_bias;
    opt.qk_norm = true;
  } else if (type == "qwen2") {
    opt.qkv_bias = true;
  } else {
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: model_type '" + type + "' is not served by the qwen plugin");
  }
  opt.read_sliding_window = host.get_bool("use_sliding_window").value_or(false);
  return opt;
}

class QwenModel final : public DecoderModel {
 public:
  explicit QwenModel(cpp::Host host) : DecoderModel(host, qwen_options(host)) {}
};

}  // namespace
}  // namespace sable::models

SABLE_MODEL_PLUGIN("qwen", "0.1.0", sable::models::QwenModel, 0, "Qwen2ForCausalLM",
                   "Qwen3ForCausalLM", "Qwen2ForSequenceClassification",
                   "Qwen3ForSequenceClassification")
