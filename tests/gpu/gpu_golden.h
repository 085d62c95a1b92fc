// The golden causal checkpoints (tests/golden/models/<name>) on CUDA: their prompts, reference
// greedy continuations and fp32 logits, and a bf16 model runner over one of them, shared by the
// single-GPU golden suite and the tensor-parallel one.
#pragma once

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/unit/built_plugins.h"

namespace sable::gputest {

inline std::string model_dir(const std::string& name) {
  return std::string(SABLE_TEST_DATA_DIR) + "/models/" + name;
}

// A CUDA runner of `name`, a golden model or a folder's path (16-token pages, 4096 tokens of KV,
// 1024-token batches, 16 sequences).
inline std::unique_ptr<runner::ModelRunner> make_cuda_runner(const std::string& name, bool graphs,
                                                             int32_t tp_size = 1) {
  runner::RunnerOptions o;
  o.model_path = name.find('/') == std::string::npos ? model_dir(name) : name;
  o.device = "cuda";
  o.page_size = 16;
  o.max_total_tokens = 4096;
  o.max_batch_tokens = 1024;
  o.max_seqs = 16;
  o.cuda_graphs = graphs;
  o.tp_size = tp_size;
  o.registry = &test_support::registry();
  return runner::ModelRunner::create(o);
}

struct Golden {
  std::vector<std::vector<int32_t>> prompts, greedy;
  std::unique_ptr<weights::SafetensorsFile> tensors;  // null for qwen2_tok (no logits)
  std::vector<float> f32(const std::string& name) const {
    for (const auto& t : tensors->tensors())
      if (t.name == name) {
        auto b = tensors->bytes(t);
        std::vector<float> v(b.size() / 4);
        std::memcpy(v.data(), b.data(), b.size());
        return v;
      }
    return {};
  }
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  std::ifstream in(model_dir(name) + "/golden.json");
  const auto j = nlohmann::json::parse(in);
  if (j.contains("prompts")) {
    g.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
    g.greedy = j.at("greedy").get<std::vector<std::vector<int32_t>>>();
    g.tensors = weights::SafetensorsFile::open(model_dir(name) + "/golden.safetensors");
  } else {  // qwen2_tok: texts with their ids and 16 greedy ids, no logits
    g.prompts = j.at("ids").get<std::vector<std::vector<int32_t>>>();
    g.greedy = j.at("greedy_ids").get<std::vector<std::vector<int32_t>>>();
  }
  return g;
}

// The MoE checkpoints, whose bf16 logits the suites hold to a looser bound.
inline bool is_moe(const std::string& name) {
  return name == "qwen2_moe" || name == "mixtral" || name == "qwen3_moe";
}

}  // namespace sable::gputest
