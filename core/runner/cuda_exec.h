// Runs a model plugin's forward on a CUDA device for the model runner: uploads the batch, keeps the
// logits on the device, and replays decode-only batches as CUDA graphs.
//
// Decode batches (every sequence one token, last-token logits only) are padded to a batch-size
// bucket (1, 2, 4, 8, 16, 24, 32, ... up to graph_max_bs); on the first such batch every bucket is
// captured once (largest first, after one eager warm-up that sizes the graph arena; the arena then
// stops growing so captured addresses stay valid), and later batches replay the bucket's graph.
// Padding sequences have kv_len 0: the attention backend writes nothing for them (attention.h).
// Decode batches with LoRA adapters have their own graphs (the model's LoRA path, with its own
// arena), captured on the first such batch: the `lora` kernels read the batch's adapters from the
// LoRA step block (core/ops/lora_batch.h), a device buffer at a fixed address that run() refreshes
// on the stream before every forward, so one capture serves any mix of adapters; they are
// recaptured if the block moves (another LoRA manager), and a failed capture leaves LoRA batches
// eager. Everything else (prefill, mixed batches, hidden-state requests) runs eagerly.
// Expert-distribution counters (Options::expert_layers/expert_experts > 0): device int64
// [layers, experts], passed to moe_route in every captured graph (so graphs record without a host
// round trip) and in eager forwards while recording is on. Counts that graph replays add while
// recording is off are discarded when it turns on; while recording, a decode batch that would need
// padding rows runs eagerly (the padding would be counted). With no counters nothing is recorded.

// Ownership: owns its stream, arenas, pinned staging and device buffers. Borrows the model, the
// attention backend and the ops table per call. Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sable/model.h"

namespace sable::ops {
struct LoraBatch;
}

namespace sable::runner {

class AttentionBackend;

// Host-side arrays of one forward, as the runner builds them.
struct ExecBatch {
  std::span<const int32_t> token_ids, positions, output_rows;
  std::span<const int32_t> qo_indptr, kv_indptr, kv_indices, kv_lens;
  std::span<const int32_t> token_types;  // empty: every token is segment 0 (eager forwards only)
  bool decode_only = false;
  const ops::LoraBatch* lora = nullptr;  // the batch's adapters (null: none)
  // Vision-language inputs (SableForwardBatch.mrope_positions / embeds); such batches run eagerly.
  std::span<const int32_t> mrope;        // [3, T], or empty
  std::span<const float> embeds;         // [E, hidden] f32, cast to the compute dtype on upload
  std::span<const int32_t> embed_spans;  // [spans, 3] (row, count, embeds row)
};

class CudaExec {
 public:
  struct Options {
    int32_t device_index = 0;
    int32_t max_batch_tokens = 0;
    int32_t max_seqs = 0;
    int32_t vocab = 0;
    int32_t hidden = 0;
    int32_t compute_dtype = SABLE_DTYPE_BF16;
    bool graphs = true;
    int32_t graph_max_bs = 0;  // 0: max_seqs capped at 256
    int32_t expert_layers = 0;   // > 0 with expert_experts: allocate the expert counters
    int32_t expert_experts = 0;
    // Tensor parallelism: this rank's place and communicator endpoint (NCCL), put into every
    // forward context; null on one rank.
    int32_t tp_rank = 0;
    int32_t tp_size = 1;
    const SableCommApi* comm_api = nullptr;
    SableComm* comm = nullptr;
  };
  // Reports a failed plugin call: (status, what, op error text or nullptr); must throw.
  using CheckFn = std::function<void(SableStatus, const std::string&, const char*)>;

  CudaExec(const Options& options, const SableOps* ops);
  ~CudaExec();
  CudaExec(const CudaExec&) = delete;
  CudaExec& operator=(const CudaExec&) = delete;

  void* stream() const;
  // Runs the forward (from any thread: it makes the device current first); returns device logits [output_rows.size(), vocab] F32, valid until the next
  // run. With hidden_host, the final-norm rows are also downloaded there as F32 (eager only).
  // `attention` is null for an encoder (no KV cache, no backend; always eager).
  const float* run(const SableModelApi* api, SableModel* model, AttentionBackend* attention,
                   const ExecBatch& batch, float* hidden_host, const CheckFn& check);
  // The model's encode_images over preprocessed images (host f32 [patches, patch_dim] and host
  // grid_thw [images, 3]): uploads the pixels, runs the vision tower on the stream and downloads
  // its `units` x hidden rows into out_host as f32 (synchronous). Eager, on the forward arena.
  void encode_images(const SableModelApi* api, SableModel* model, std::span<const float> pixels,
                     int64_t patch_dim, std::span<const int32_t> grid_thw, int64_t units,
                     float* out_host, const CheckFn& check);
  // Copies `rows` rows of device logits to the host (synchronous).
  void download(const float* device_logits, int64_t rows, float* host) const;
  // Decode graphs captured so far: the base model's, or (lora) those of batches with adapters.
  int32_t graphs_captured(bool lora = false) const;
  // Bytes the forward arena holds (eager forwards and encode_images share it; it keeps its peak).
  size_t arena_bytes() const;
  // Waits for the stream; throws on a device error.
  void synchronize() const;

  // Expert counters (no-ops without them). Counting while on; the counts survive off/on;
  // expert_counts() is [expert_layers * expert_experts] row-major (synchronous download).
  bool has_expert_counters() const;
  void set_expert_recording(bool on);
  std::vector<int64_t> expert_counts() const;
  void reset_expert_counts();

 private:
  // Captures every bucket's graph, of the base model or (lora) of the LoRA path; on failure
  // logs and turns those graphs off.
  void capture_all_or_disable(const SableModelApi* api, SableModel* model,
                              AttentionBackend& attention, const ExecBatch& batch,
                              const CheckFn& check, bool lora);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Number of CUDA devices visible (0 without a driver or device).
int32_t cuda_device_count();
// (free, total) bytes of device memory on the current device.
std::pair<size_t, size_t> cuda_memory_info();

}  // namespace sable::runner
