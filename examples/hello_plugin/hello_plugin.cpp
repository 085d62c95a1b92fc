// A minimal model plugin written with the SDK's C++ wrappers, to show the shape of a plugin:
// a class derived from sable::cpp::Model and one SABLE_MODEL_PLUGIN line that exports
// sable_plugin_entry. It claims the made-up architecture "HelloForCausalLM", reads and validates
// its config.json through the host, and declares its KV geometry; it computes nothing, so forward
// reports SABLE_ERR_UNSUPPORTED with a message (a real plugin calls the host's ops there).
#include <sable/cpp/plugin.h>

#include <string>

namespace {

class HelloModel : public sable::cpp::Model {
 public:
  explicit HelloModel(sable::cpp::Host host) : Model(host) {
    // The constructor reads the config; anything unsupported is an error naming the field.
    vocab_size_ = host_.require_int("vocab_size");
    hidden_size_ = host_.require_int("hidden_size");
    if (vocab_size_ <= 0 || hidden_size_ <= 0) {
      sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: vocab_size and hidden_size must be > 0");
    }
  }

  SableModelInfo info() const override {
    SableModelInfo info{};
    info.struct_size = sizeof(SableModelInfo);
    info.num_layers = 0;  // no KV cache
    info.num_q_heads = 1;
    info.num_kv_heads = 1;
    info.head_dim = static_cast<int32_t>(hidden_size_);
    info.hidden_size = static_cast<int32_t>(hidden_size_);
    info.vocab_size = static_cast<int32_t>(vocab_size_);
    info.max_position = 2048;
    info.output_kind = SABLE_MODEL_OUTPUT_LOGITS;
    return info;
  }

  void load_weights() override {
    // Every checkpoint tensor must be claimed: this example uses none of them.
    const int32_t count = host_.api()->weight_count(host_.handle());
    for (int32_t i = 0; i < count; ++i) {
      host_.ignore_weight(host_.api()->weight_name(host_.handle(), i));
    }
  }

  void forward(const sable::cpp::Ops&, const SableForwardBatch&, SableForwardOutput&) override {
    sable::cpp::fail(SABLE_ERR_UNSUPPORTED, "the hello example plugin does not compute logits");
  }

 private:
  int64_t vocab_size_ = 0;
  int64_t hidden_size_ = 0;
};

}  // namespace

SABLE_MODEL_PLUGIN("hello", "0.1.0", HelloModel, 0, "HelloForCausalLM")
