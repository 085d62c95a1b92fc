// Golden data of the scoring models (tests/golden/models/{llama_reward,xlmr_rerank,bert_embed} and
// the qwen2 hidden states) and the engine configuration that serves them, shared by the CPU suite
// (scoring_golden_test) and the CUDA one (tests/gpu/scoring_golden_gpu_test).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors.h"

namespace sable::scoring_golden {

inline const std::filesystem::path kModels =
    std::filesystem::path(SABLE_TEST_DATA_DIR) / "models";

// An embedding-mode engine over a golden checkpoint on `device`; prompts are ids (the golden
// checkpoints carry no tokenizer).
inline config::ServerConfig config(const std::string& model, const std::string& device = "cpu") {
  config::ServerConfig c;
  c.model_path = (kModels / model).string();
  c.skip_tokenizer_init = true;
  c.plugin_dirs = {SABLE_PLUGIN_DIR};
  c.device = device;
  c.max_total_tokens = 4096;
  c.chunked_prefill_size = 256;
  c.max_running_requests = 8;
  c.random_seed = 1;
  c.log_level = "warning";
  c.is_embedding = true;
  return c;
}

inline std::vector<std::vector<int32_t>> prompts(const std::string& model) {
  std::ifstream f(kModels / model / "golden.json");
  return nlohmann::json::parse(f)["prompts"].get<std::vector<std::vector<int32_t>>>();
}

// The reference tensor `name` of a model's golden.safetensors, as f32.
inline std::vector<float> reference(const std::string& model, const std::string& name) {
  const auto file = weights::SafetensorsFile::open(kModels / model / "golden.safetensors");
  for (const auto& t : file->tensors()) {
    if (t.name != name) continue;
    std::vector<float> out(static_cast<size_t>(t.numel()));
    EXPECT_TRUE(weights::convert(t.dtype, file->bytes(t).data(), SABLE_DTYPE_F32, out.data(),
                                 out.size()));
    return out;
  }
  ADD_FAILURE() << model << ": no reference tensor " << name;
  return {};
}

inline std::vector<engine::EmbedInput> inputs_of(const std::vector<std::vector<int32_t>>& ps) {
  std::vector<engine::EmbedInput> in(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) in[i].input_ids = ps[i];
  return in;
}

}  // namespace sable::scoring_golden
