// sable::Engine: the offline engine API (SGLang's sglang.Engine in C++), and the request handle the
// HTTP server builds on. One Engine = tokenizer + model runner + scheduler thread, configured by
// the same ServerConfig as `sable serve`.
//
// The four offline modes (spec section 4):
//   generate(inputs)                      blocking, a batch -> results in input order
//   generate_stream(inputs)               a synchronous generator of cumulative updates (with index)
//   async_generate(inputs)                a future of the results
//   async_generate_stream(inputs, cb)     cb(update) on the scheduler thread; a future for the end
// Results have SGLang's shape: text, output_ids and meta_info (id, finish_reason, prompt_tokens,
// completion_tokens, cached_tokens, e2e_latency, logprobs); to_json() in result_json.h.
//
// Embeddings (`is_embedding`): embed(inputs) returns, per input, its hidden states pooled as
// pooling.h chooses (the last token for decoders, [CLS] for encoders, or what sentence-transformers
// records), L2-normalised by default; for a score model (a *ForSequenceClassification checkpoint:
// reward model, cross-encoder) the score row instead (num_labels values, SGLang's /classify and
// /v1/rerank). An input may be a text pair, laid out by the tokenizer's pair template (rerank).
// An embedding engine runs these through its Embedder (embedder.h) and refuses generation; a
// generation engine refuses embed(). A score or encoder model must be served with is_embedding.
//
// Thread-safety: every Engine method may be called from any thread. A RequestHandle is used by one
// consumer thread at a time. Destroying the Engine (or shutdown()) aborts requests in flight;
// destroying an unfinished RequestHandle aborts its request (the consumer went away).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config/server_config.h"
#include "core/lora/lora_manager.h"
#include "core/sampling/sampling_params.h"
#include "core/scheduler/request.h"
#include "core/scheduler/scheduler.h"
#include "sable/model.h"

namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::engine {

using sampling::SamplingParams;
using sampling::ValidationError;
using scheduler::FinishReason;
using scheduler::LogprobOptions;
using scheduler::PositionLogprobs;

// One prompt: text (tokenized by the engine) or input_ids (used as given when non-empty).
struct GenerateInput {
  std::string text;
  std::vector<int32_t> input_ids;
  SamplingParams params;
  LogprobOptions logprobs;
  // The final-norm hidden state of every prompt and output position, in meta_info.hidden_states
  // (needs enable_return_hidden_states).
  bool return_hidden_states = false;
  std::string rid;  // empty: a fresh uuid-like hex id
  std::string lora_path;  // a loaded LoRA adapter's name (SGLang's field name); empty: the base
  // Vision-language models: one reference per image placeholder of the prompt, in order (a path,
  // an http(s) URL, a data: URL or base64; see image_request.h).
  std::vector<std::string> image_data;
};

// One embedding input: text (tokenized with special tokens, as for generation) or input_ids (used
// as given when non-empty).
struct EmbedInput {
  std::string text;
  std::optional<std::string> text_pair;  // a cross-encoder pair (text, text_pair)
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_types;      // with input_ids: empty, or one segment id per id
  int64_t dimensions = 0;  // Matryoshka truncation to the first n values (before normalising);
                           // 0: the full size. Needs a model whose config.json declares
                           // matryoshka_dimensions (then one of them) or is_matryoshka
  bool normalize = true;  // L2-normalise; false: the raw final-norm hidden state
  std::string rid;        // empty: a fresh uuid-like hex id
};

struct EmbeddingResult {
  std::vector<float> embedding;  // [hidden_size], or the scores [num_labels] of a score model
  std::string id;
  int64_t prompt_tokens = 0;
  double e2e_latency = 0.0;  // seconds, from embed() to the end of its forward
};

struct MetaInfo {
  std::string id;
  std::optional<FinishReason> finish_reason;  // nullopt until the final update
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int32_t num_retractions = 0;
  double e2e_latency = 0.0;  // seconds, final update only
  std::string weight_version = "default";
  std::vector<PositionLogprobs> input_logprobs;   // when logprobs.return_logprob
  std::vector<PositionLogprobs> output_logprobs;
  // return_hidden_states (SGLang's shape): one entry per forward of the request, the prefill
  // chunks ([tokens][hidden], every prompt position) then one [hidden] per decode step (the
  // position of each output token but the last, which is never fed back).
  bool return_hidden_states = false;
  std::vector<scheduler::HiddenStates> hidden_states;
};

// The state of one request: cumulative text / output_ids (SGLang's default streaming shape).
struct GenerateResult {
  std::string text;
  std::vector<int32_t> output_ids;
  MetaInfo meta_info;
  int32_t index = 0;  // position in the (n-expanded) batch
  bool finished() const { return meta_info.finish_reason.has_value(); }
};

// MoE expert selection counts (SGLang's expert distribution record, mode "stat").
struct ExpertDistribution {
  std::string mode;        // expert_distribution_recorder_mode
  bool recording = false;  // recording is still on after this dump
  int32_t num_layers = 0;
  int32_t num_experts = 0;
  std::vector<std::vector<int64_t>> counts;  // [num_layers][num_experts]; dense layers stay 0
  int64_t total = 0;                         // sum of counts
};

struct EngineCore;  // shared with handles (engine.cpp)

class RequestHandle {
 public:
  ~RequestHandle();
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;

  const std::string& rid() const { return rid_; }
  int32_t index() const { return index_; }
  // Blocks for the next update (the cumulative state); nullopt after the final one.
  std::optional<GenerateResult> next();
  // Blocks until the request ends; returns the final state.
  GenerateResult wait();
  // Async mode: cb(update) runs on the scheduler thread for every update from now on (updates not
  // yet taken with next() included). Do not block in cb.
  void on_update(std::function<void(const GenerateResult&)> cb);
  // As on_update, but cb gets only what is new since the previous update (text, output_ids,
  // logprobs, hidden states; the counters, finish_reason and fixed fields as on_update): a
  // consumer that sends deltas (the HTTP server) then costs the scheduler thread O(new tokens) a
  // step, not a copy of the whole output so far. The handle keeps no cumulative state in this
  // mode: use one of on_update, on_delta and next() per handle.
  void on_delta(std::function<void(const GenerateResult&)> cb);
  // Ends the request (finish_reason abort) and frees its KV pages.
  void abort();

 private:
  friend class Engine;
  struct State;
  RequestHandle(std::weak_ptr<EngineCore> core, std::string rid, int32_t index,
                std::shared_ptr<scheduler::RequestStream> stream);
  // Results carry meta_info.hidden_states (the request asked for them).
  void report_hidden_states();
  std::weak_ptr<EngineCore> core_;
  std::string rid_;
  int32_t index_;
  std::shared_ptr<scheduler::RequestStream> stream_;
  std::shared_ptr<State> state_;
};

// Synchronous generator over a batch's updates (generate_stream).
class GenerateStream {
 public:
  GenerateStream(GenerateStream&&) noexcept;
  ~GenerateStream();  // aborts what is still running
  // Next update of any item (with .index), in arrival order; nullopt when every item finished.
  std::optional<GenerateResult> next();

 private:
  friend class Engine;
  struct Queue;
  GenerateStream(std::vector<std::unique_ptr<RequestHandle>> handles);
  std::vector<std::unique_ptr<RequestHandle>> handles_;
  std::shared_ptr<Queue> queue_;
};

class Engine {
 public:
  // Loads tokenizer and model (plugins from the built-in folder, config.plugin_dirs and
  // SABLE_PLUGIN_PATH) and starts the scheduler. Throws std::runtime_error / ConfigError naming
  // the problem.
  explicit Engine(const config::ServerConfig& config);
  ~Engine();  // shutdown()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates, tokenizes and queues one request (n > 1 is expanded by the batch calls, not here).
  // Throws ValidationError naming the field for bad input, std::runtime_error after shutdown.
  std::unique_ptr<RequestHandle> submit(GenerateInput input, int32_t index = 0);

  // The four modes. Inputs with params.n > 1 are expanded prompt-major into n samples after one
  // prefill-only request that caches the prompt. Validation errors throw before anything runs.
  std::vector<GenerateResult> generate(std::vector<GenerateInput> inputs);
  std::vector<GenerateResult> generate(const std::vector<std::string>& prompts,
                                       const SamplingParams& params = {});
  GenerateStream generate_stream(std::vector<GenerateInput> inputs);
  std::future<std::vector<GenerateResult>> async_generate(std::vector<GenerateInput> inputs);
  std::future<void> async_generate_stream(std::vector<GenerateInput> inputs,
                                          std::function<void(const GenerateResult&)> on_update);

  // Embeddings (is_embedding engines only): validates every input first (ValidationError naming
  // the field: empty text, ids outside the vocabulary, too long for the context or the KV pool),
  // then blocks until all are computed; results in input order. Throws ValidationError on a
  // generation engine, std::runtime_error after shutdown or when the forward fails.
  std::vector<EmbeddingResult> embed(std::vector<EmbedInput> inputs);
  std::vector<EmbeddingResult> embed(const std::vector<std::string>& texts);
  bool is_embedding() const;
  // What the served model computes, for routes that need one kind and for their errors.
  enum class ModelKind { kGeneration, kEmbedding, kScore };
  ModelKind model_kind() const;
  static const char* model_kind_name(ModelKind kind);  // "generation", "embedding", "score"
  const std::string& architecture() const;  // config.json's first architecture (or model_type)
  // A vision-language model: generate() takes image_data. image_placeholder() is the text that
  // stands for one image in a prompt (empty for a text-only model).
  bool image_input() const;
  const std::string& image_placeholder() const;

  // Server-facing controls.
  void abort(const std::string& rid);
  // Every request in flight ends with finish_reason abort and `message` (no status: answered
  // normally, as a user abort).
  void abort_all(const std::string& message = "Aborted by request");
  bool flush_cache();  // false while requests run or wait
  scheduler::SchedulerStats stats() const;
  struct UpdateWeightsResult {
    bool success = false;
    std::string message;
    int32_t num_paused_requests = 0;
  };
  // Pauses the loop, loads the checkpoint at model_path (same architecture and shapes), swaps it
  // in and flushes the prefix cache.
  UpdateWeightsResult update_weights_from_disk(const std::string& model_path);
  // Expert distribution recording (expert_distribution.cpp), run on the scheduler thread between
  // two steps. start zeroes the counts and records every forward from the next step on; stop
  // keeps the counts; dump returns the counts since start and zeroes them (as SGLang's
  // dump_record), recording or not. All three throw std::invalid_argument when
  // expert_distribution_recorder_mode is empty (recording off, costing nothing).
  void start_expert_distribution_record();
  void stop_expert_distribution_record();
  ExpertDistribution dump_expert_distribution_record();

  // LoRA adapters (engine_lora.cpp), on when enable_lora or lora_paths is set. load throws
  // ValidationError naming lora_name / lora_path (LoRA off, a name in use, anything the adapter
  // loader refuses); unload throws ValidationError for an unknown adapter or one in use.
  bool lora_enabled() const;
  lora::AdapterInfo load_lora_adapter(const std::string& name, const std::string& path);
  void unload_lora_adapter(const std::string& name);
  std::vector<lora::AdapterInfo> lora_adapters() const;

  // Stops the scheduler; in-flight requests end with finish_reason abort. Idempotent.
  void shutdown();

  const config::ServerConfig& config() const;
  const tokenizer::Tokenizer& tokenizer() const;
  const SableModelInfo& model_info() const;
  // Non-empty once the model cannot serve any more (a tensor-parallel rank died while serving):
  // the reason. Every later request fails; the server polls this and stops. Thread-safe.
  std::string fatal_error() const;
  int64_t context_length() const;
  int64_t max_total_tokens() const;  // KV pool size in tokens

 private:
  std::vector<std::unique_ptr<RequestHandle>> submit_batch(std::vector<GenerateInput> inputs);
  std::shared_ptr<EngineCore> core_;
};

}  // namespace sable::engine
