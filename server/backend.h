// What the HTTP layer needs from the engine, as one small interface: submit a tokenized request and
// read its output as a series of deltas, abort, flush the cache, swap weights, and report figures
// for /get_server_info and /metrics.
//
// The server is written against this interface, not against the engine's classes, so that the
// routes, the JSON shaping and the streaming can be tested with a scripted fake (tests/unit) and the
// engine adapter (engine_backend.cpp) stays the only file that knows the engine.
//
// Thread-safety: every Backend method may be called from any HTTP worker thread at once. A
// Generation is used by the one handler thread that submitted it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sampling/sampling_params.h"
#include "core/scheduler/request.h"

namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::server {

// One log-probability: (logprob, token id). A NaN logprob is reported as null (the first prompt
// token has none).
struct Logprob {
  float logprob = 0.0f;
  int32_t token = 0;
};

// The log-probabilities of one position: the chosen token, the top-N (best first) and the ones the
// request asked for by id (token_ids_logprob).
struct PositionLogprobs {
  Logprob chosen;
  std::vector<Logprob> top;
  std::vector<Logprob> token_ids;
};

// Why a request ended (SGLang's finish_reason object).
struct Finish {
  enum class Type { kStop, kLength, kAbort };
  Type type = Type::kStop;
  std::optional<int32_t> matched_token;    // kStop by EOS / stop token
  std::optional<std::string> matched_text;  // kStop by stop string
  int64_t length = 0;                       // kLength: tokens generated
  std::string message;                      // kAbort
  int32_t status_code = 0;                  // kAbort: 400/500/503 for errors, 0 for user aborts
};

// Output produced since the previous delta of the same request. Counters are cumulative.
struct Delta {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<PositionLogprobs> output_logprobs;
  std::vector<PositionLogprobs> input_logprobs;  // with the first delta, when asked for
  std::vector<scheduler::HiddenStates> hidden_states;  // return_hidden_states: one per forward
  std::optional<Finish> finish;                  // on the last delta only
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int32_t num_retractions = 0;
  double e2e_latency = 0.0;  // seconds, on the last delta
};

// One tokenized request as the server hands it over (parameters already validated).
struct GenerateInput {
  std::string rid;
  std::vector<int32_t> input_ids;
  sampling::SamplingParams params;
  bool return_logprob = false;
  int32_t logprob_start_len = -1;  // -1: output tokens only
  int32_t top_logprobs_num = 0;
  std::vector<int32_t> token_ids_logprob;
  std::string lora_path;  // a loaded LoRA adapter's name (SGLang's field); empty: the base model
  bool return_hidden_states = false;
  // Vision-language models: one image reference (path, http(s) URL, data: URL, base64) per image
  // placeholder of the prompt, in order.
  std::vector<std::string> image_data;
};

// A submitted request. Destroying it before its last delta was read aborts the request (a client
// that went away frees its KV pages).
class Generation {
 public:
  virtual ~Generation() = default;
  // Waits up to `timeout` for output. nullopt on timeout, and after the final delta was returned.
  virtual std::optional<Delta> next(std::chrono::milliseconds timeout) = 0;
  // The final delta has been returned.
  virtual bool done() const = 0;
  // `notify(final)` runs (on the engine's thread, so it must not block) each time output becomes
  // ready for next(), and right away when some already is; `final` says the output ends the
  // request. Lets one thread wait for many generations (the Python binding's async calls).
  virtual void set_notify(std::function<void(bool final)> notify) = 0;
};

// Fixed facts about the served model.
struct ModelFacts {
  std::string model_path;
  std::string tokenizer_path;
  int64_t context_length = 0;       // longest sequence, prompt + output
  int64_t vocab_size = 0;           // the model's logits width
  int64_t max_total_num_tokens = 0; // KV pool capacity in tokens
  bool is_generation = true;        // false: an embedding model (is_embedding)
  std::string model_kind = "generation";  // generation | embedding | score (model_kind.h)
  std::string architecture;               // config.json's first architecture
  int64_t hidden_size = 0;          // the length of an embedding (0: unknown)
  bool image_input = false;         // a vision-language model: image_data / image_url accepted
  std::string image_placeholder;    // the prompt text of one image (chat image_url parts)
};

// One embedding input as the server hands it over (tokenized, ids checked).
struct EmbedItem {
  std::string rid;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_types;  // empty, or one segment id per id (cross-encoder pairs)
  int64_t dimensions = 0;            // Matryoshka truncation (0: full), checked by the engine
};

// One embedding: the pooled hidden states (normalised as the server is configured), or the scores
// of a score model.
struct EmbedOutput {
  std::vector<float> embedding;  // [hidden_size], or [num_labels] scores
  std::string id;
  int64_t prompt_tokens = 0;
  double e2e_latency = 0.0;  // seconds
};

// Runtime figures (snapshots; counters are cumulative since start).
struct BackendStats {
  int64_t running = 0;
  int64_t queued = 0;
  int64_t used_tokens = 0;        // KV tokens held by requests (not by the idle prefix cache)
  int64_t cached_tokens_in_pool = 0;  // KV tokens held by the radix cache
  double kv_usage = 0.0;          // used / capacity
  double cache_hit_rate = 0.0;    // cached prompt tokens / prompt tokens
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t jump_forward_tokens = 0;  // of those, appended by jump-forward without a decode step
  int64_t cached_prompt_tokens = 0;
  int64_t finished_requests = 0;
  int64_t num_retractions = 0;
  int64_t forward_steps = 0;   // scheduler steps run (cumulative)
  int64_t extend_steps = 0;    // of those, with a sequence of several tokens (prefill, jump)
  int64_t max_batch_size = 0;  // most requests one step has run
  // Scheduler thread time per step that ran a forward (microseconds, averaged since start): the
  // whole loop cycle, and of it the model's forward + sampling; their difference is host work the
  // device waits through. 0 when nothing ran yet or the backend does not report it.
  double step_time_us = 0.0;
  double model_time_us = 0.0;
  // KV pool pages. At rest (nothing running or queued) every page is free or an evictable page of
  // the prefix cache: kv_pages_free + kv_pages_evictable == kv_pages_total; a page missing from
  // that sum has leaked. 0 everywhere when the backend does not report pages.
  int64_t kv_pages_total = 0;
  int64_t kv_pages_free = 0;
  int64_t kv_pages_cached = 0;     // held by the prefix (radix) cache
  int64_t kv_pages_evictable = 0;  // of those, used by no request
  std::string weight_version = "default";
};

// A LoRA adapter the backend serves.
struct LoraAdapterInfo {
  std::string name;
  std::string path;  // the folder or Hub id it was loaded from
  int32_t rank = 0;
  double scaling = 0.0;
  std::vector<std::string> modules;
};

struct WeightUpdateResult {
  bool success = false;
  std::string message;
  int64_t num_paused_requests = 0;
};

// MoE expert selection counts since the record started (SGLang's expert distribution, "stat").
struct ExpertDistributionDump {
  std::string mode;
  bool recording = false;  // still recording after the dump
  int32_t num_layers = 0;
  int32_t num_experts = 0;
  std::vector<std::vector<int64_t>> counts;  // [num_layers][num_experts]
  int64_t total = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const tokenizer::Tokenizer& tokenizer() const = 0;
  virtual ModelFacts facts() const = 0;
  // Queues a request. Throws sampling::ValidationError for input the engine rejects.
  virtual std::unique_ptr<Generation> submit(GenerateInput input) = 0;
  // Ends the request with finish_reason abort (unknown rids are ignored).
  virtual void abort(const std::string& rid) = 0;
  // Every request ends with finish_reason abort and `message` (/abort_request: "Aborted by request").
  virtual void abort_all(const std::string& message) = 0;
  // False (nothing done) while requests are running or waiting.
  virtual bool flush_cache() = 0;
  // Same architecture and sizes only; on failure the old weights keep serving.
  virtual WeightUpdateResult update_weights_from_disk(const std::string& model_path) = 0;
  virtual BackendStats stats() const = 0;
  // Embeds every item (one batch; results in item order) and blocks until done. Throws
  // sampling::ValidationError for input the engine rejects, or when the model is not served for
  // embeddings (the default here).
  virtual std::vector<EmbedOutput> embed(std::vector<EmbedItem> items) {
    (void)items;
    throw sampling::ValidationError("input", kNoEmbeddings);
  }
  // Expert distribution record: start (from zero), stop (keeping the counts), dump (returns the
  // counts and zeroes them). Throw std::invalid_argument when recording is off; a backend without
  // recording keeps these defaults.
  virtual void start_expert_distribution_record() { throw std::invalid_argument(kNoExperts); }
  virtual void stop_expert_distribution_record() { throw std::invalid_argument(kNoExperts); }
  virtual ExpertDistributionDump dump_expert_distribution_record() {
    throw std::invalid_argument(kNoExperts);
  }
  // LoRA adapters. A backend without them keeps these defaults: none listed, load and unload
  // refused (sampling::ValidationError naming lora_name).
  virtual std::vector<LoraAdapterInfo> lora_adapters() const { return {}; }
  virtual LoraAdapterInfo load_lora_adapter(const std::string& name, const std::string& path) {
    (void)name;
    (void)path;
    throw sampling::ValidationError("lora_name", kNoLora);
  }
  virtual void unload_lora_adapter(const std::string& name) {
    (void)name;
    throw sampling::ValidationError("lora_name", kNoLora);
  }

 private:
  static constexpr const char* kNoExperts = "this backend does not record expert distributions";
  static constexpr const char* kNoEmbeddings = "this backend does not serve embeddings";
  static constexpr const char* kNoLora = "lora_name: this backend does not serve LoRA adapters";
};

}  // namespace sable::server
