// Private to core/engine: what an Engine owns, shared with its RequestHandles through a weak_ptr
// (a handle that outlives the engine just stops talking to it).
#pragma once

#include <atomic>
#include <mutex>
#include <random>

#include "core/engine/embedder.h"
#include "core/engine/image_forward.h"
#include "core/engine/image_request.h"
#include "core/engine/engine.h"
#include "core/grammar/grammar_backend.h"
#include "core/plugin/registry.h"
#include "core/lora/lora_manager.h"
#include "core/runner/device_memory.h"
#include "core/runner/model_runner.h"
#include "core/tokenizer/incremental_detokenizer.h"
#include "core/tokenizer/regex.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::engine {

// The scheduler's view of the model runner. The runner can be swapped (weight updates) from the
// scheduler thread between steps.
// On CUDA, logits stay on the device unless a sequence needs prompt logprobs, and sampling runs
// there too (sample_on_device), so only tokens and log-probabilities cross to the host.
class RunnerBackend : public scheduler::ModelBackend {
 public:
  explicit RunnerBackend(std::unique_ptr<runner::ModelRunner> r);
  ~RunnerBackend() override;
  Logits forward(std::span<const Sequence> seqs) override;
  bool replays_decode_graphs() const override;
  bool forward_returns_at_launch(std::span<const Sequence> seqs) const override;
  void sample_on_device(std::span<const int64_t> row_index, std::span<const SableSamplingRow> rows,
                        std::span<SableSampleResult> results) override;
  // Over the CPU ops' thread pool (--cpu-threads), idle between forwards.
  void parallel_rows(int64_t n, const std::function<void(int64_t)>& fn) override;
  runner::ModelRunner& runner() { return *runner_; }
  // The LoRA manager whose adapters the sequences' lora_id name (nullptr: LoRA off).
  void set_lora(lora::LoraManager* lora) { lora_ = lora; }
  void swap(std::unique_ptr<runner::ModelRunner> r) { runner_ = std::move(r); }
  // Why the model cannot run any more (a tensor-parallel rank died), once a forward found out;
  // empty while healthy. Read from any thread.
  std::string fatal_error() const {
    std::lock_guard<std::mutex> lock(fatal_mutex_);
    return fatal_;
  }

 private:
  std::unique_ptr<runner::ModelRunner> runner_;
  mutable std::mutex fatal_mutex_;
  std::string fatal_;
  lora::LoraManager* lora_ = nullptr;
  ImageForward images_;             // vision-language inputs of the forward
  struct Device;                    // the CUDA sampler, when the runner is on a GPU
  std::unique_ptr<Device> device_;
  const float* device_logits_ = nullptr;
  int32_t vocab_ = 0;
};

// Incremental detokenization with stop strings and stop regexes, as the scheduler's OutputDecoder.
// A stop regex is searched in all the text decoded so far; a match ends the request with the
// pattern as the matched stop (the text is not trimmed: a regex match has no fixed end).
class TextDecoder : public scheduler::OutputDecoder {
 public:
  // Throws sampling::ValidationError naming stop_regex when a pattern does not compile.
  TextDecoder(const tokenizer::Tokenizer& tok, const SamplingParams& p);
  std::string push(int32_t token, std::optional<std::string>* matched) override;
  std::string finish() override { return detok_.finish(); }

 private:
  tokenizer::IncrementalDetokenizer detok_;
  std::vector<std::unique_ptr<tokenizer::Regex>> stop_regex_;
  std::string text_;  // everything released so far (searched by the stop regexes)
  bool reported_ = false;
};

struct EngineCore {
  config::ServerConfig config;
  std::unique_ptr<plugin::Registry> registry;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  runner::RunnerOptions runner_options;
  std::unique_ptr<RunnerBackend> backend;
  std::unique_ptr<grammar::GrammarBackend> grammar;  // null: constrained decoding off
  SableModelInfo info{};
  std::string architecture;
  ImageSettings images;  // vision-language models (images.enabled)
  int64_t context_length = 0;
  int64_t max_total_tokens = 0;
  // LoRA (null when off): the pool's memory, then the manager that uses it.
  std::unique_ptr<runner::DeviceMemory> lora_memory;
  std::unique_ptr<lora::LoraManager> lora;
  std::unique_ptr<scheduler::Scheduler> scheduler;
  // is_embedding only: runs embed() requests; its forwards go through scheduler->run_exclusive.
  std::unique_ptr<Embedder> embedder;
  bool score_sigmoid = false;      // sbert_ce_default_activation_function is Sigmoid
  bool pooling_normalize = true;   // the pooling's normalisation (pooling.h)
  bool matryoshka = false;         // config.json: matryoshka_dimensions or is_matryoshka
  std::vector<int64_t> matryoshka_dimensions;
  std::mutex rng_mutex;
  std::mt19937_64 rng;
  std::atomic<uint64_t> next_rid{0};
  std::atomic<bool> shut_down{false};

  uint64_t fresh_seed() {
    std::lock_guard<std::mutex> lock(rng_mutex);
    return rng();
  }
  std::string fresh_rid();
};

// engine_lora.cpp: makes the LoRA manager and loads lora_paths when LoRA is on (startup errors
// throw ConfigError naming the adapter); nothing when it is off.
void start_lora(EngineCore& c);

}  // namespace sable::engine
