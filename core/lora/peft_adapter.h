// A LoRA adapter in PEFT's format, read and checked against the base model it will serve on.
//
// PEFT saves `adapter_config.json` (peft_type LORA, r, lora_alpha, use_rslora, target_modules)
// and `adapter_model.safetensors` with, per targeted projection,
//   base_model.model.<module path>.lora_A.weight [r, K]   and   .lora_B.weight [N, r],
// the delta being W x + scaling · B (A x), scaling = lora_alpha / r (or / sqrt(r) with use_rslora).
// The loader keeps A and B as fp32 with the scaling folded into B, one entry per (layer, module)
// of the seven projections Sable's decoders route through the `lora` op (q/k/v/o/gate/up/down). A
// fused target (qkv_proj, gate_up_proj, as Phi-3 checkpoints store them) is split into its parts,
// which share A. MoE experts, embeddings and lm_head are not served (an error says so).
//
// Every problem is an std::invalid_argument naming the adapter and the problem: a missing file,
// a non-LoRA or DoRA config, rank above max_lora_rank, a target the model lacks or the plugin does
// not apply LoRA to, or a tensor whose shape does not fit the base projection.
// Thread-safety: pure functions; a loaded adapter is immutable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sable::lora {

// What the loader needs to know of the base model.
struct BaseModel {
  int32_t num_layers = 0;
  // The stored shape [N, K] of a base weight by its checkpoint name ("model.layers.0.mlp.up_proj
  // .weight"), nullopt when the checkpoint has no such tensor.
  std::function<std::optional<std::vector<int64_t>>(const std::string&)> weight_shape;
  // Rows of q and of k (= v) in a fused qkv_proj, and of gate (= up) in a fused gate_up_proj.
  int64_t q_rows = 0, kv_rows = 0, inter_rows = 0;
  uint32_t lora_modules = 0;  // bit (1 << SableLoraModule): projections the plugin applies LoRA to
  std::string plugin;         // the model plugin's name, for messages
};

// One projection's adapter weights.
struct LoraTarget {
  int32_t layer = 0;
  int32_t module = 0;  // SableLoraModule
  int64_t k = 0, n = 0;
  std::vector<float> a;  // [rank, K]
  std::vector<float> b;  // [N, rank], scaling folded in
};

struct LoraAdapter {
  std::string name;
  std::string path;   // what the user gave (a folder or a Hub id)
  int32_t rank = 0;
  double alpha = 0.0;
  bool use_rslora = false;
  double scaling = 0.0;
  std::string base_model;            // base_model_name_or_path of the config ("" when absent)
  std::vector<std::string> modules;  // the target module names found, sorted ("q_proj", ...)
  std::vector<LoraTarget> targets;   // sorted by (layer, module)
};

// Reads `dir` (adapter_config.json + adapter_model.safetensors) as adapter `name`.
LoraAdapter load_peft_adapter(const std::string& name, const std::filesystem::path& dir,
                              const BaseModel& base, int32_t max_lora_rank);

// The PEFT module name of a SableLoraModule ("q_proj", ...).
const char* module_name(int32_t module);

}  // namespace sable::lora
