// The model runner: loads a checkpoint through the model plugin that claims it and runs forwards
// over batches of sequences whose KV lives in pages of the runner's KV pool.
//
// A forward takes, per sequence, its new tokens, how many tokens of it are already cached, and the
// page ids that cover cached + new tokens (in order; the caller, normally the engine's scheduler,
// owns the page accounting). Prefill chunks and decode steps mix freely in one batch. The runner
// builds the token/position/output-row tensors, plans the attention backend, calls the plugin's
// forward and returns fp32 logits on the host.
// Ownership: the runner owns the model object, its host, the KV pool and the attention backend; it
// borrows the plugin Registry, which must outlive it.
// Thread-safety: one thread at a time (a forward is not reentrant).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sable/model.h"

namespace sable::hf {
class HfConfig;
}
namespace sable::plugin {
class Registry;
}
namespace sable::ops {
struct LoraBatch;
}

namespace sable::runner {

struct KvGeometry;

// The vision tower's largest call (RunnerOptions::vision), as the engine derives it from the
// image processor's settings (core/engine/image_request.h).
struct VisionBudget {
  int64_t max_patches = 0;  // 0: unbounded, no warm-up
  int32_t merge = 2;        // spatial merge: grids are multiples of it, merge² patches per token
  int32_t patch_dim = 0;    // pixel values per patch (C · T · P · P)
};

struct RunnerOptions {
  // A checkpoint directory with config.json, or a GGUF file (or a folder holding one .gguf).
  std::filesystem::path model_path;
  std::string device = "cpu";                  // cpu | cuda | auto (cuda when a GPU is present)
  std::string dtype = "auto";                  // auto | float32 (CPU) | bfloat16 (CUDA)
  std::string impl = "auto";                   // auto | native | sglang | transformers
  std::string attention_backend = "auto";      // a plugin name, or auto: the best probe score
  int32_t page_size = 1;                       // tokens per KV page
  int64_t num_pages = 0;                       // 0: enough for max_total_tokens
  int64_t max_total_tokens = 0;                // 0 with num_pages 0: 4 x context length
  int32_t max_batch_tokens = 8192;             // largest number of new tokens in one forward
  int32_t max_seqs = 256;                      // largest number of sequences in one forward
  int64_t context_length = 0;                  // 0: the model's max_position_embeddings
  const plugin::Registry* registry = nullptr;  // required; must outlive the runner
  // Tensor-parallel ranks (core/runner/tp_group.h): each loads its slice of the weights and keeps
  // its own KV pool; on CUDA rank r runs on device device_index + r, on the CPU every rank is a
  // thread of this process. 1: one rank, no communicator.
  int32_t tp_size = 1;
  // CPU only.
  int32_t cpu_threads = 0;     // threads of the CPU ops (0: the physical cores)
  bool packed_weights = true;  // keep quantized / bf16 / f16 matrices packed (false: fp32 copies)
  bool int8_activations = false;  // decode GEMMs on quantized weights: int8 activations
  // CUDA only.
  int32_t device_index = 0;
  bool cuda_graphs = true;           // replay decode batches as CUDA graphs
  int32_t cuda_graph_max_bs = 0;     // largest graph batch; 0: min(max_seqs, 256)
  double mem_fraction_static = 0.0;  // weights + KV share of device memory; 0: 0.85
  // Expert-distribution recording is possible (expert_distribution_recorder_mode set): on CUDA the
  // device counters [layers, experts] int64 are allocated at creation and captured into the decode
  // graphs. Recording itself starts off (set_expert_recording). False: no recording, no cost.
  bool expert_recording = false;
  // Vision-language models (image_input()): the largest vision-tower call, `max_patches` rows of
  // `patch_dim` pixel values (the processor's patches, merged merge x merge). On CUDA the startup
  // warm-up runs one call of that size before the KV pool is sized, so the tower's scratch stays
  // reserved; encode_images refuses a larger call. max_patches 0: no limit, no vision warm-up.
  VisionBudget vision;
};

class ModelRunner {
 public:
  // Image embeddings (from encode_images) that replace the embeddings of a sequence's new tokens
  // [row, row + count): `data` holds count rows of hidden_size floats.
  struct EmbedSpan {
    int32_t row = 0;
    int32_t count = 0;
    const float* data = nullptr;
  };

  // One sequence of a forward.
  struct Sequence {
    std::span<const int32_t> new_tokens;  // tokens to run now (a prefill chunk, or 1 decode token)
    int32_t num_cached = 0;               // tokens of this sequence already in the KV cache
    std::span<const int32_t> pages;       // pages covering num_cached + new tokens, in order
    bool all_logits = false;              // logits for every new token, else only the last
    bool first_token = false;             // the one output row is the first new token (a
                                          // classifier on [CLS]); ignored with all_logits
    std::span<const int32_t> token_types; // empty, or one segment id per new token (BERT pairs)
    // Vision-language models (image_input()): the M-RoPE positions of the new tokens, 3 x n
    // (all time positions, then height, then width), empty when they all equal the token's
    // position; and the image embeddings spliced in.
    std::span<const int32_t> mrope_positions;
    std::span<const EmbedSpan> embeds;
  };

  struct ForwardResult {
    int64_t rows = 0;  // for each sequence: all new positions if all_logits, else 1
    int32_t vocab = 0;          // the logits row width (logits_width())
    std::vector<float> logits;  // [rows, vocab] fp32
    int32_t hidden_size = 0;
    std::vector<float> hidden;  // [rows, hidden] final-norm output, when asked for
    // With device_logits on CUDA: logits stay on the device ([rows, vocab] F32, valid until the
    // next forward) and `logits` is empty.
    const float* device_logits = nullptr;
    std::span<const float> row(int64_t r) const {
      return std::span<const float>(logits).subspan(static_cast<size_t>(r * vocab),
                                                    static_cast<size_t>(vocab));
    }
  };

  // Loads the model. Throws std::runtime_error / std::invalid_argument with a message naming the
  // problem (no plugin claims the architecture, missing / unexpected / misshapen tensor, ...).
  static std::unique_ptr<ModelRunner> create(const RunnerOptions& options);
  ~ModelRunner();

  const SableModelInfo& info() const;
  const hf::HfConfig& config() const;
  const std::string& plugin_name() const;
  // What was loaded, for the startup line: the total parameter count of the checkpoint, its
  // format and quantization ("safetensors BF16", "GGUF Q4_1 (Q4_1 x210, F32 x61)").
  int64_t parameter_count() const;
  const std::string& weights_description() const;
  const std::string& device() const;  // cpu | cuda
  int32_t compute_dtype() const;      // SableDType
  int64_t num_pages() const;
  int32_t page_size() const;
  int64_t context_length() const;
  // Width of a logits row: the vocabulary for a causal LM, num_labels for a score model, 0 for an
  // encoder that only gives hidden states.
  int32_t logits_width() const;

  // Runs one forward. Throws std::invalid_argument naming the sequence and the problem for bad
  // input (no tokens, token id out of range, too few pages, page id out of range, positions past
  // the context length, batch too large); std::runtime_error when the plugin fails.
  // `lora` (from a LoraManager's prepare for these sequences) adds the adapters' deltas; nullptr:
  // the base model for every row.
  ForwardResult forward(std::span<const Sequence> seqs, bool want_hidden = false,
                        bool device_logits = false, const ops::LoraBatch* lora = nullptr);

  // True for a vision-language model (SableModelInfo.image_input): encode_images works and
  // sequences may carry mrope_positions and embeds.
  bool image_input() const;
  // Runs the vision tower over preprocessed images: pixel_values [sum t*h*w, patch_dim] f32 (the
  // processor's rows, image after image) and grid_thw [images, 3]. Returns the merged embeddings
  // [sum t*h*w / merge², hidden_size] f32, image after image. Throws std::invalid_argument for a
  // model without image input or inconsistent shapes, std::runtime_error when the plugin fails.
  // More patches than RunnerOptions::vision.max_patches in one call are refused (invalid_argument).
  std::vector<float> encode_images(std::span<const float> pixel_values,
                                   std::span<const int32_t> grid_thw, int64_t merge);
  // The most patches one encode_images call may take (RunnerOptions::vision.max_patches; 0: any).
  int64_t max_image_patches() const;

  // LoRA support: the stored shape of a checkpoint tensor (nullopt when absent), and the
  // projections the model plugin applies LoRA to (SableModelInfo.lora_modules; 0 for none).
  std::optional<std::vector<int64_t>> weight_shape(const std::string& name) const;
  uint32_t lora_modules() const;
  // CUDA decode graphs captured so far, of batches without adapters or (lora) with; 0 on the CPU.
  int32_t cuda_graphs_captured(bool lora) const;

  // Expert-distribution recording (MoE models; see RunnerOptions::expert_recording). While on, every
  // forward adds each token's top-k expert choices per MoE layer to counts indexed
  // [layer][expert] (num_layers x num_experts; dense layers stay 0). Turning it on or off keeps
  // the counts; reset_expert_counts() zeroes them. Reading on CUDA downloads the device counters
  // (call between forwards, like every runner method). set_expert_recording throws
  // std::invalid_argument when recording was not enabled at creation, or on CUDA when the model's
  // config.json names no expert count (num_experts, num_local_experts or n_routed_experts).
  void set_expert_recording(bool on);
  bool expert_recording() const;
  std::vector<std::vector<int64_t>> expert_counts() const;
  void reset_expert_counts();
  // Routed experts per MoE layer from config.json (0 for a dense model or an unknown key).
  int32_t num_experts() const;

  // Tensor parallelism: the number of ranks, and why the group stopped once a rank failed
  // (nullopt while healthy, and always on one rank). After a failure every forward throws.
  int32_t tp_size() const;
  std::optional<std::string> tp_failure() const;
  // Bytes of weights (and other long-lived model tensors) this rank's host holds.
  int64_t weight_bytes() const;

  // The device the model runs on (SableDeviceType) and, on CUDA, its stream (cudaStream_t).
  int32_t device_type() const;
  void* stream() const;

 private:
  struct Impl;
  struct Staged;
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  // CUDA: sizes the forward arena with the largest forward and vision-tower call before the KV
  // pool is sized (warm_up.h); throws std::runtime_error naming what did not fit.
  static void warm_up(Impl& r, const KvGeometry& geometry);
  // One rank of a model: rank `rank` of `size`, with its communicator endpoint (null for size 1).
  static std::unique_ptr<ModelRunner> create_rank(const RunnerOptions& options, int32_t rank,
                                                  int32_t size, const SableCommApi* comm_api,
                                                  SableComm* comm);
  // Checks the sequences and builds the host-side batch arrays (throws std::invalid_argument).
  Staged stage(std::span<const Sequence> seqs);
  ForwardResult execute(std::span<const Sequence> seqs, const Staged& staged, bool want_hidden,
                        bool device_logits, const ops::LoraBatch* lora);
  std::unique_ptr<Impl> impl_;
};

// "auto" -> "cuda" when this build has CUDA and a device is visible, else "cpu"; "cpu"/"cuda" are
// checked (cuda without a device is an error naming the problem).
std::string resolve_device(const std::string& device);

// Greedy argmax of one logits row (lowest index wins ties), for tests and tools.
int32_t argmax(std::span<const float> row);

}  // namespace sable::runner
