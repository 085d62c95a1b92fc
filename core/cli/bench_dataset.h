// The prompts `sable bench offline` and `sable bench serving` send: SGLang's benchmark datasets
// (sglang/benchmark/datasets/{random,sharegpt,generated_shared_prefix}.py, sglang 0.5.23)
// re-implemented with the same options, defaults and random draws (bench_rng.h), so a run with
// the same tokenizer and --seed sends the same requests as SGLang's and the numbers compare line
// for line. Differences are listed in docs/benchmarks.md. Not thread-safe (startup only).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/cli/bench_rng.h"

namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::cli {

// One request of a benchmark. SGLang sends text and the server tokenizes it (with special
// tokens); with --tokenize-prompt it sends token ids as they are. Both are kept: `text` is the
// prompt SGLang would send by default, `ids` the one it sends with --tokenize-prompt.
struct BenchRequest {
  std::string text;
  std::vector<int32_t> ids;
  int64_t prompt_len = 0;  // the count SGLang reports as this request's input tokens
  int32_t output_len = 0;  // max_new_tokens (with ignore_eos: the tokens generated)
};

// SGLang's dataset arguments (bench_serving / bench_offline_throughput names and defaults).
struct DatasetOptions {
  std::string name = "random-ids";  // random | random-ids | sharegpt | generated-shared-prefix
  std::string path;                 // ShareGPT JSON (sharegpt; the text source of random)
  int32_t num_prompts = 1000;
  int32_t sharegpt_output_len = 0;   // > 0: replaces each conversation's answer length
  int32_t sharegpt_context_len = 0;  // > 0: drops requests whose prompt + output exceed it
  int32_t random_input_len = 1024;
  int32_t random_output_len = 1024;
  double random_range_ratio = 0.0;  // lengths uniform in [max(int(len * ratio), 1), len]
  int32_t gsp_num_groups = 64;
  int32_t gsp_prompts_per_group = 16;
  int32_t gsp_system_prompt_len = 2048;
  int32_t gsp_question_len = 128;
  int32_t gsp_output_len = 256;
  double gsp_range_ratio = 1.0;
  bool tokenize_prompt = false;  // send ids (SGLang's --tokenize-prompt) instead of text
  uint32_t seed = 42;

  // Throws std::invalid_argument naming the option on a value SGLang would reject or crash on.
  void validate() const;
  // The parameters that define the workload, for the result line.
  nlohmann::json to_json() const;
};

// Registers the dataset options on a bench subcommand.
void add_dataset_options(CLI::App& app, DatasetOptions& options);

// np.random.randint(max(int(full_len * range_ratio), 1), full_len + 1, size=num); zeros when
// full_len <= 0 (SGLang's compute_random_lens).
std::vector<int32_t> compute_random_lens(NumpyRandom& np, int32_t full_len, double range_ratio,
                                         int32_t num);

// One conversation's first two turns from a ShareGPT file.
struct ShareGptPair {
  std::string prompt;
  std::string completion;
};
// Conversations with at least two turns ("conversations" or "conversation" lists of {"value"}),
// in file order. Throws std::runtime_error naming the file when it is missing or not that shape.
std::vector<ShareGptPair> load_sharegpt(const std::string& path);

// The requests of options.name, drawn as SGLang draws them (after random.seed(seed) and
// np.random.seed(seed)). Throws std::invalid_argument / std::runtime_error with the option or
// file at fault.
std::vector<BenchRequest> sample_requests(const DatasetOptions& options,
                                          const tokenizer::Tokenizer& tokenizer, BenchRandom& rng);

// Totals of a sampled dataset (SGLang prints them as "#Input tokens" / "#Output tokens").
struct DatasetTotals {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
};
DatasetTotals dataset_totals(const std::vector<BenchRequest>& requests);

}  // namespace sable::cli
