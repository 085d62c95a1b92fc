// Server configuration: every option of `sable serve`, defined ONCE in the field table below.
//
// The table drives the ServerConfig struct members, YAML parsing (snake_case keys), the CLI11 flags
// (kebab-case, core/config/cli_flags.h), validation, --help text, docs/configuration.md and the
// JSON of /get_server_info. To add an option, add one line to SABLE_SERVER_CONFIG_FIELDS.
//
// Precedence: built-in defaults < the YAML file (--config) < flags on the command line.
// Errors (unknown key, wrong type, out of range, bad choice) throw ConfigError naming the key, where
// it came from, and what was expected. Thread-safety: ServerConfig is a plain value; the functions
// here are pure (no globals) and may run on any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sable::config {

// The value types a field may have.
namespace field_type {
using Str = std::string;
using Int = int64_t;
using Float = double;
using Bool = bool;
using StrList = std::vector<std::string>;
}  // namespace field_type

// X(type, name, default, aliases, help, check)
//   type     Str | Int | Float | Bool | StrList
//   aliases  other accepted names, '|'-separated ("model" gives --model and YAML key model)
//   check    Any() | Range(lo, hi) | OneOf("a|b|c") | JsonObject() | Secret() (see server_config.cpp)
// Names and defaults follow SGLang's server arguments (spec/sglang_api.md section 6).
#define SABLE_SERVER_CONFIG_FIELDS(X)                                                              \
  X(Str, model_path, "", "model",                                                                  \
    "Model folder (config.json, *.safetensors, tokenizer), .gguf file, or Hub id ORG/NAME", Any()) \
  X(Str, tokenizer_path, "", "", "Tokenizer folder, .gguf file or Hub id (empty: model_path)", Any()) \
  X(Str, revision, "main", "",                                                                     \
    "Hub revision (branch, tag or commit) of a model_path given as ORG/NAME", Any())               \
  X(Str, host, "127.0.0.1", "", "Address the HTTP server listens on", Any())                       \
  X(Int, port, 30000, "", "HTTP port", Range(1, 65535))                                            \
  X(Int, tp_size, 1, "tensor_parallel_size", "Tensor-parallel degree (GPUs per model)",            \
    Range(1, 64))                                                                                  \
  X(Float, mem_fraction_static, 0.0, "",                                                           \
    "Fraction of GPU memory for weights and KV cache (0: auto)", Range(0, 1))                      \
  X(Int, max_running_requests, 0, "", "Most requests running at once (0: auto)",                   \
    Range(0, 1e7))                                                                                 \
  X(Int, max_total_tokens, 0, "", "KV-cache pool size in tokens (0: from free memory)",            \
    Range(0, 1e12))                                                                                \
  X(Int, max_prefill_tokens, 16384, "", "Token budget of one prefill batch", Range(1, 1e9))        \
  X(Int, chunked_prefill_size, 0, "",                                                              \
    "Longest prefill chunk in tokens (0: auto, -1: no chunking)", Range(-1, 1e9))                  \
  X(Str, schedule_policy, "fcfs", "", "Admission order of queued requests",                        \
    OneOf("fcfs|lpm|random|lof"))                                                                  \
  X(Float, schedule_conservativeness, 1.0, "",                                                     \
    "Scales the initial new-token ratio (higher admits fewer requests)", Range(0, 100))            \
  X(Int, page_size, 1, "", "Tokens per KV-cache page (prefix-match granularity)",                  \
    Range(1, 4096))                                                                                \
  X(Str, attention_backend, "auto", "",                                                            \
    "Attention plugin by name (auto: the best one for the device)", Any())                         \
  X(Str, sampling_backend, "auto", "", "Sampler plugin by name (auto: the built-in sampler)",      \
    Any())                                                                                         \
  X(Str, grammar_backend, "auto", "",                                                              \
    "Grammar plugin by name (auto: the first loaded; none: off)", Any())                           \
  X(Bool, disable_jump_forward, false, "",                                                         \
    "Decode text a grammar forces token by token instead of appending it in one step", Any())      \
  X(Bool, disable_radix_cache, false, "", "Do not reuse cached prefixes", Any())                   \
  X(Str, api_key, "", "", "Bearer token every request must carry (empty: no auth)", Secret())      \
  X(Str, served_model_name, "", "", "Model name reported by the API (empty: model_path)", Any())   \
  X(Str, chat_template, "", "",                                                                    \
    "Chat template: a file or Jinja text (empty: the tokenizer's)", Any())                         \
  X(Str, tool_call_parser, "", "",                                                                 \
    "Parse tool calls from chat output in this format (empty: off; qwen is qwen25)",              \
    OneOf("|qwen25|qwen|llama3|mistral"))                                                          \
  X(Str, reasoning_parser, "", "",                                                                 \
    "Move the model's think block to reasoning_content (empty: off)",                              \
    OneOf("|qwen3|deepseek-r1"))                                                                   \
  X(Int, context_length, 0, "", "Longest sequence (0: from the model config)", Range(0, 1e9))      \
  X(Int, random_seed, -1, "", "Seed of the server's generators (-1: random)", Range(-1, 1e18))     \
  X(Str, log_level, "info", "", "Log threshold", OneOf("trace|debug|info|warning|error"))          \
  X(Bool, enable_metrics, false, "", "Serve Prometheus metrics on /metrics", Any())                \
  X(Str, impl, "auto", "model_impl",                                                               \
    "Model implementation: native plugin, generic (transformers) or auto",                         \
    OneOf("auto|native|sglang|transformers"))                                                      \
  X(Bool, is_embedding, false, "", "Serve the model as an embedding/reward model", Any())          \
  X(Str, pooling, "auto", "pooling_method",                                                        \
    "Embedding pooling (auto: sentence-transformers files, else CLS for encoders, last token)",    \
    OneOf("auto|cls|mean|last"))                                                                   \
  X(Str, pooling_normalize, "auto", "",                                                            \
    "L2-normalise pooled embeddings (auto: as sentence-transformers records it, else true)",       \
    OneOf("auto|true|false"))                                                                      \
  X(Bool, enable_return_hidden_states, false, "",                                                  \
    "Allow return_hidden_states on generation requests", Any())                                    \
  X(Str, device, "auto", "", "Compute device (auto: cuda when a GPU is present)",                  \
    OneOf("auto|cpu|cuda"))                                                                        \
  X(Str, dtype, "auto", "", "Compute dtype (auto: float32 on CPU, bfloat16 on CUDA)",              \
    OneOf("auto|float32|bfloat16|float16"))                                                        \
  X(StrList, plugin_dirs, {}, "", "Extra plugin folders, scanned after the built-in one", Any())   \
  X(Bool, disable_cuda_graph, false, "", "Run decode steps without CUDA graphs", Any())            \
  X(Int, cuda_graph_max_bs, 0, "", "Largest batch captured as a CUDA graph (0: auto)",             \
    Range(0, 4096))                                                                                \
  X(Int, stream_interval, 1, "", "Decode steps between streamed chunks", Range(1, 1e6))            \
  X(Bool, incremental_streaming_output, false, "stream_output",                                    \
    "Stream only new text in each chunk (not the cumulative text)", Any())                         \
  X(Bool, skip_server_warmup, false, "", "Skip the warm-up request at startup", Any())             \
  X(Bool, skip_tokenizer_init, false, "",                                                          \
    "Load no tokenizer: requests send input_ids and get output_ids, text is refused", Any())       \
  X(Str, weight_version, "default", "", "Weight version reported in meta_info", Any())             \
  X(Bool, enable_cache_report, false, "", "Report cached prompt tokens in OpenAI usage", Any())    \
  X(Bool, allow_auto_truncate, false, "", "Truncate over-long inputs instead of rejecting them",   \
    Any())                                                                                         \
  X(Str, preferred_sampling_params, "", "",                                                        \
    "JSON object of default sampling parameters (empty: none)", JsonObject())                      \
  X(Str, expert_distribution_recorder_mode, "", "",                                                \
    "Record MoE expert selection counts (empty: off)", OneOf("|stat"))                             \
  X(Bool, enable_lora, false, "", "Serve LoRA adapters (on when lora_paths is set)", Any())         \
  X(StrList, lora_paths, {}, "",                                                                   \
    "LoRA adapters loaded at startup, NAME=PATH (a PEFT adapter folder or Hub id)", Any())         \
  X(Int, max_loras_per_batch, 8, "", "Most distinct LoRA adapters in one batch (pool slots)",      \
    Range(1, 1024))                                                                                \
  X(Int, max_lora_rank, 0, "",                                                                     \
    "Largest LoRA rank served (0: the largest in lora_paths, else 64)", Range(0, 1024))            \
  X(Int, max_queued_requests, 0, "", "Most requests waiting in the queue (0: unlimited)",          \
    Range(0, 1e9))                                                                                 \
  X(Int, max_image_patches, 0, "",                                                                 \
    "Vision models: most image patches the vision tower runs in one call, its device memory "     \
    "reserved at startup (0: the largest image max_pixels allows)", Range(0, 1e9))                \
  X(Int, max_request_body_bytes, 67108864, "", "Largest accepted HTTP request body in bytes",      \
    Range(1024, 1e12))                                                                             \
  X(Float, request_timeout_s, 60.0, "",                                                            \
    "Seconds a client has to send one whole request (slower clients get 408)", Range(0.1, 86400))  \
  X(Int, max_parallel_samples, 128, "", "Largest n (parallel samples) one request may ask for",    \
    Range(1, 1e6))                                                                                 \
  X(Int, max_prompts_per_request, 1024, "", "Most prompts in one batched request", Range(1, 1e7))  \
  X(Int, max_stop_strings, 64, "", "Most stop strings (stop, stop_regex) one request may give",    \
    Range(0, 1e6))                                                                                 \
  X(Int, max_grammar_bytes, 262144, "",                                                            \
    "Longest grammar (regex, json_schema, ebnf text) one request may give, in bytes",              \
    Range(1, 1e9))                                                                                 \
  X(Float, shutdown_grace_period_s, 30.0, "",                                                      \
    "Seconds running requests get to finish on shutdown", Range(0, 86400))                         \
  X(Int, cpu_threads, 0, "num_threads",                                                           \
    "CPU compute threads, one team for every CPU op (0: the physical cores)", Range(0, 4096))     \
  X(Bool, cpu_int8_activations, false, "",                                                         \
    "CPU: int8 activations against quantized weights (llama.cpp's scheme: faster, logits within "  \
    "a few percent)", Any())                                                                       \
  X(Bool, cpu_dequantize, false, "",                                                               \
    "CPU: convert quantized and bf16/f16 weights to float32 at load (slower reference path)",     \
    Any())                                                                                         \
  X(Float, watchdog_timeout, 300.0, "", "Seconds one forward batch may take before the server "    \
    "aborts", Range(1, 1e7))

struct ServerConfig {
#define SABLE_CONFIG_MEMBER(type, name, def, aliases, help, check) field_type::type name = def;
  SABLE_SERVER_CONFIG_FIELDS(SABLE_CONFIG_MEMBER)
#undef SABLE_CONFIG_MEMBER

  // Not a field: the YAML file the values were read from (empty when none).
  std::string config_file;
};

// Any configuration problem; the message names the key, its source, and what was expected.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Read-only description of one field, for help text, docs and flag registration.
struct FieldInfo {
  std::string_view name;     // snake_case YAML key
  std::string_view type;     // "string" | "integer" | "number" | "boolean" | "list of strings"
  std::string_view aliases;  // '|'-separated, may be empty
  std::string_view help;
  std::string default_text;  // the default as it is typed ("30000", "fcfs", "[]")
  std::string constraint;    // "1 to 65535", "one of fcfs, lpm, random, lof", or empty
  bool is_bool = false;
  bool is_list = false;
};
std::span<const FieldInfo> config_fields();

// The canonical field name for a key or alias (snake_case or kebab-case), or "" when unknown.
std::string_view canonical_key(std::string_view key);

// Parses `text` for field `key` (name or alias), validates it and stores it. `origin` says where
// the value came from for error messages ("serve.yaml", "--port"). Lists take one item per call
// to set_field_list.
void set_field(ServerConfig& config, std::string_view key, std::string_view text,
               std::string_view origin);
void set_field_list(ServerConfig& config, std::string_view key,
                    std::span<const std::string> items, std::string_view origin);

// Applies a YAML mapping of keys to values over `config`. `origin` names it in errors.
void apply_yaml(ServerConfig& config, std::string_view yaml_text, std::string_view origin);
void apply_yaml_file(ServerConfig& config, const std::filesystem::path& file);

// Checks every field against its table entry (for configs built in code). Throws ConfigError.
void validate(const ServerConfig& config);

// Every field by name; secrets (api_key) are shown as "***" when set.
nlohmann::json to_json(const ServerConfig& config);

// The field table as a Markdown table (docs/configuration.md is generated from this).
std::string fields_markdown();

}  // namespace sable::config
