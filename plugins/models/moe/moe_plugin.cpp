// Model plugin "moe": the native mixture-of-experts architectures. The entry point lists the
// architectures; the config's model_type picks the per-architecture reader.
#include <string>

#include "moe/architectures.h"

namespace sable::models {
namespace {

MoeOptions moe_options(const cpp::Host& host) {
  const std::string type = host.get_string("model_type").value_or("");
  if (type == "qwen2_moe") return qwen2_moe_options(host);
  if (type == "qwen3_moe") return qwen3_moe_options(host);
  if (type == "mixtral") return mixtral_options(host);
  cpp::fail(SABLE_ERR_UNSUPPORTED,
            "config.json: model_type '" + type +
                "' is not served by the moe plugin (qwen2_moe, qwen3_moe, mixtral)");
}

class MoeModel final : public MoeDecoderModel {
 public:
  explicit MoeModel(cpp::Host host) : MoeDecoderModel(host, moe_options(host)) {}
};

}  // namespace
}  // namespace sable::models

SABLE_MODEL_PLUGIN("moe", "0.1.0", sable::models::MoeModel, 0, "Qwen2MoeForCausalLM",
                   "Qwen3MoeForCausalLM", "MixtralForCausalLM")
