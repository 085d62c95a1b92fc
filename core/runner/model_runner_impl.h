// The inside of ModelRunner, shared by the files that implement it: model_runner.cpp (loading one
// rank, the forward) and model_runner_tp.cpp (tensor-parallel ranks, fault injection).
// Not part of the runner's interface: include model_runner.h elsewhere.
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/gguf/gguf_model.h"
#include "core/hf_config/hf_config.h"
#include "core/ops/arena.h"
#include "core/ops/expert_recorder.h"
#include "core/plugin/registry.h"
#include "core/runner/attention_backend.h"
#include "core/runner/kv_pool.h"
#include "core/runner/model_host.h"
#include "core/runner/model_runner.h"
#include "core/runner/tp_group.h"
#include "core/weights/checkpoint.h"

#ifdef SABLE_HAVE_CUDA
#include "core/runner/cuda_exec.h"
#endif

namespace sable::runner {

struct ModelRunner::Staged {
  int64_t tokens = 0;
  bool decode_only = true;
  bool any_types = false;
  bool any_mrope = false;
};

struct ModelRunner::Impl {
  // Ranks 1..N-1 and the communicator (rank 0 only); declared first so it is destroyed last.
  std::unique_ptr<TpGroup> tp;
  int32_t tp_rank = 0, tp_size = 1;
  // Fault injection for the tests of rank failures (SABLE_FAULT_TP_RANK): this rank throws on
  // its fault_forward-th forward (0: never).
  int64_t fault_forward = 0, forwards = 0;
  RunnerOptions options;
  std::unique_ptr<hf::HfConfig> config;
  std::unique_ptr<weights::Checkpoint> checkpoint;  // a safetensors checkpoint, or
  std::unique_ptr<gguf::GgufModel> gguf;            // a GGUF file
  int64_t parameters = 0;
  std::string weights_description;
  int32_t compute_dtype = SABLE_DTYPE_F32;
  std::unique_ptr<WeightSource> source;
  std::unique_ptr<DeviceMemory> memory;
  std::unique_ptr<ModelHost> host;
  const plugin::PluginInfo* plugin = nullptr;
  const SableModelApi* api = nullptr;
  SableModel* model = nullptr;
  SableModelInfo info{};
  int64_t context_length = 0;
  int64_t num_pages = 0;
  std::unique_ptr<KvPool> kv;            // null for an encoder
  std::unique_ptr<AttentionBackend> attention;  // null for an encoder
  ops::Arena arena;
  std::string device;  // resolved: cpu | cuda
  // Expert-distribution recording: the CPU's recorder (CUDA counts in CudaExec), on/off.
  ops::ExpertRecorder expert_recorder;
  bool expert_recording = false;
  int32_t num_experts = 0;
#ifdef SABLE_HAVE_CUDA
  std::unique_ptr<CudaExec> cuda;
  // The CUDA executor's status callback: a failed call throws naming `who` (e.g. "model plugin
  // 'llama'"), what failed and the op's own message when it left one.
  CudaExec::CheckFn check_fn(std::string who) {
    return [this, who = std::move(who)](SableStatus st, const std::string& what, const char* op_error) {
      if (st != SABLE_OK && op_error != nullptr)
        host->check(st, fmt::format("{} {} ({})", who, what, op_error));
      host->check(st, who + " " + what);
    };
  }
#endif

  // Host-side staging of one forward, kept to avoid reallocating every step.
  std::vector<int32_t> token_ids, positions, output_rows, token_types;
  std::vector<int32_t> mrope, embed_spans;  // [3, T] and [spans, 3] (vision-language models)
  std::vector<float> embeds;                // [rows, hidden] spliced image embeddings
  int32_t logits_width = 0;
  std::vector<int32_t> qo_indptr, kv_indptr, kv_indices, kv_lens;

  ~Impl() {
#ifdef SABLE_HAVE_CUDA
    cuda.reset();
#endif
    attention.reset();  // before the pool whose layers it reads
    if (api != nullptr && model != nullptr) api->destroy(model);
  }
};

// SABLE_FAULT_TP_RANK, for the tests of rank failures: "R:start" makes rank R fail after loading,
// "R:forward:K" on its K-th forward. Unset: no fault. Throws std::invalid_argument for a value
// of another form.
struct Fault {
  int32_t rank = -1;
  bool at_start = false;
  int64_t forward = 0;
};
Fault fault_from_env();

}  // namespace sable::runner
