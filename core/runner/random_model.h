// Random checkpoints at real shapes (`sable make-random-model`): the exact tensor names and shapes
// a model plugin loads, filled with small random bf16 values, so benchmarks run at the size of a
// real model without downloading one.
//
// The tensor list comes from the plugin itself: its load_weights runs against a host whose weight
// source records every name and shape it asks for (memory stays lazily mapped zero pages, so even
// an 8B shape costs no RAM). Values: norm weights ("...norm.weight") are 1, everything else is
// drawn from a bell-shaped distribution with standard deviation 0.02.
// Thread-safety: plain functions; no shared state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/runner/weight_source.h"

namespace sable::hf {
class HfConfig;
}
namespace sable::plugin {
class Registry;
}

namespace sable::runner {

// The tensors the model plugin selected for `config` (by impl, as the runner selects) loads, in
// the order it asks for them. Throws std::runtime_error with the plugin's message when the config
// is rejected.
std::vector<RecordedTensor> record_model_tensors(const hf::HfConfig& config,
                                                 const plugin::Registry& registry,
                                                 const std::string& impl = "auto");

struct RandomModelOptions {
  std::filesystem::path config_json;  // a Hugging Face config.json
  std::filesystem::path out_dir;      // created if missing; gets config.json + safetensors
  std::string impl = "auto";
  uint64_t seed = 0;
  // Tensor bytes per safetensors file; above it the checkpoint is sharded with an index.json.
  uint64_t max_shard_bytes = 4ull << 30;
};

struct RandomModelSummary {
  size_t num_tensors = 0;
  int64_t num_params = 0;
  std::vector<std::string> files;  // safetensors files written (names inside out_dir)
  std::string plugin;              // the plugin whose load_weights defined the tensors
};

// Writes the random checkpoint. Throws with a message naming the problem.
RandomModelSummary write_random_model(const RandomModelOptions& options,
                                      const plugin::Registry& registry);

}  // namespace sable::runner
