// The base model a LoRA manager checks adapters against (peft_adapter.h BaseModel), described from
// a model runner: its layers, the fused q|k|v and gate|up row splits, the projections its plugin
// applies LoRA to. Shared by the engine (engine_lora.cpp) and the GPU decode bench. Header-only, so
// sable_lora itself does not depend on the runner: only code that links the runner includes it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/hf_config/hf_config.h"
#include "core/lora/peft_adapter.h"
#include "core/runner/model_runner.h"

namespace sable::lora {

// `weight_shape` answers for the checkpoint's weights: the engine's reads through its backend,
// whose runner update_weights may replace, rather than through `r` itself.
inline BaseModel runner_base_model(
    const runner::ModelRunner& r,
    std::function<std::optional<std::vector<int64_t>>(const std::string&)> weight_shape) {
  BaseModel base;
  base.num_layers = r.info().num_layers;
  base.weight_shape = std::move(weight_shape);
  base.q_rows = int64_t{r.info().num_q_heads} * r.info().head_dim;
  base.kv_rows = int64_t{r.info().num_kv_heads} * r.info().head_dim;
  base.inter_rows = r.config().get_int("intermediate_size").value_or(0);
  base.lora_modules = r.lora_modules();
  base.plugin = r.plugin_name();
  return base;
}

}  // namespace sable::lora
