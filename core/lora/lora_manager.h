// The LoRA adapters an engine serves: a registry by name, and a bounded pool of device slots that
// the adapters of each batch are swapped into.
//
// Registry: load(name, path) reads a PEFT adapter from a folder or a Hub id (through the model
// source resolver), checks it against the base model (peft_adapter.h) and keeps it in host memory
// (fp32); unload(name) drops it unless a request still holds it. acquire(name) gives a request its
// hold (a Ref; the adapter stays loaded while any Ref lives) and the adapter's id, which is never
// reused, so the radix cache can key prefixes by it.
// Pool: max_loras_per_batch slots. Per projection (layer, module) that some loaded adapter
// targets, A [S, R, K] and B [S, N, R] in the compute dtype on the device (R = max_lora_rank
// rounded up to ops::kLoraRankAlign), allocated the first time an adapter targeting it is
// installed. prepare() puts the batch's adapters into slots (a free slot, else the least recently
// used one that this batch does not need: eviction of unused adapters), groups the batch's rows
// into segments for the CPU `lora` op and writes the step block the CUDA kernels read (its device
// copy is one buffer at a fixed address; the executor uploads the image on its stream).
//
// Thread-safety: the registry calls (load, unload, acquire, list) are safe from any thread;
// prepare() is called by the one thread that runs forwards. Its uploads into the pool are
// synchronous copies (DeviceMemory::upload, then a download as a fence) that assume the previous
// forward has finished reading the pool, as it has once the engine has read that step's tokens.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/lora/peft_adapter.h"
#include "core/ops/lora_step_block.h"

namespace sable::runner {
class DeviceMemory;
}

namespace sable::lora {

struct LoraOptions {
  int32_t max_loras_per_batch = 8;  // pool slots: distinct adapters one batch may use
  int32_t max_lora_rank = 64;       // the pool's rank R; a larger adapter is refused
  int32_t compute_dtype = 0;        // SableDType of the pool (F32 on CPU, BF16 on CUDA)
  int32_t max_batch_tokens = 0;     // rows of the largest forward
};

// What /v1/models and the load route report of an adapter.
struct AdapterInfo {
  std::string name;
  std::string path;
  int32_t id = 0;
  int32_t rank = 0;
  double alpha = 0.0;
  double scaling = 0.0;
  bool use_rslora = false;
  std::vector<std::string> modules;
};

class LoraManager {
 public:
  // `memory` holds the pool and must outlive the manager.
  LoraManager(const LoraOptions& options, BaseModel base, runner::DeviceMemory& memory);
  ~LoraManager();
  LoraManager(const LoraManager&) = delete;
  LoraManager& operator=(const LoraManager&) = delete;

  // Loads adapter `name` from `path` (a folder or a Hub id). Throws std::invalid_argument naming
  // the adapter and the problem (a name in use, a bad name, anything load_peft_adapter refuses, a
  // Hub id that cannot be resolved).
  AdapterInfo load(const std::string& name, const std::string& path);
  // Throws std::invalid_argument for an unknown name or one that running requests still use.
  void unload(const std::string& name);

  // A request's hold on its adapter.
  struct Ref {
    int32_t id = 0;  // 0: the base model
    std::shared_ptr<const LoraAdapter> adapter;
  };
  // Throws std::invalid_argument "unknown LoRA adapter 'x' (loaded: ...)".
  Ref acquire(const std::string& name) const;
  bool has(const std::string& name) const;
  std::vector<AdapterInfo> list() const;
  const LoraOptions& options() const { return options_; }

  // The batch's LoRA view: seq_adapter[i] is sequence i's adapter id (0: none) and seq_tokens[i]
  // its new rows. nullptr when no sequence uses an adapter. Valid until the next prepare().
  // Throws std::invalid_argument when the batch needs more adapters than there are slots, or an
  // id that is not loaded.
  const ops::LoraBatch* prepare(std::span<const int32_t> seq_adapter,
                                std::span<const int32_t> seq_tokens);

 private:
  struct Pool;  // one projection's slots
  void install(int32_t slot, const LoraAdapter& adapter);
  Pool& pool(int32_t layer, int32_t module, int64_t k, int64_t n);

  LoraOptions options_;
  BaseModel base_;
  runner::DeviceMemory& memory_;

  mutable std::mutex mutex_;  // the registry
  std::map<std::string, Ref> by_name_;
  std::map<int32_t, std::shared_ptr<const LoraAdapter>> by_id_;
  int32_t next_id_ = 1;

  // The pool (forward thread only).
  std::vector<std::unique_ptr<Pool>> pools_;  // [layers * SABLE_LORA_MODULE_COUNT]
  std::vector<ops::LoraWeights> weights_;     // the same, as the op reads it
  std::vector<int32_t> slot_adapter_;         // id in each slot, 0: empty
  std::vector<uint64_t> slot_used_;           // the step that last used each slot
  std::vector<int32_t> slot_rank_;            // [S * COUNT]
  int32_t rank_stride_ = 0;                   // R
  std::vector<int32_t> row_slot_, seg_start_, seg_slot_;
  ops::LoraStepBlock block_;
  void* step_device_ = nullptr;  // null when the pool is host memory (the CPU op reads the host)
  uint64_t step_ = 0;
  ops::LoraBatch batch_;
};

}  // namespace sable::lora
