// `sable bench offline --model-path DIR --num-prompts N --input-len I --output-len O
// [--shared-prefix P]`: offline throughput like sglang.bench_offline_throughput. Random prompts of
// I tokens (after a P-token prefix shared by all of them) each generate exactly O tokens (greedy,
// EOS ignored) in one batch; prints requests/s, input and output tokens/s and appends one JSON line
// to --result-file (default bench/results/offline_throughput.jsonl).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "core/cli/bench_common.h"
#include "core/cli/command.h"
#include "core/cli/startup.h"
#include "core/config/cli_flags.h"
#include "core/engine/engine.h"

namespace sable::cli {
namespace {

class BenchOfflineCommand : public Command {
 public:
  explicit BenchOfflineCommand(CLI::App& parent)
      : Command(bench_app(parent).add_subcommand("offline", "Offline throughput on random prompts")),
        flags_(*app()) {
    app()->add_option("--num-prompts", num_prompts_)->default_val(16);
    app()->add_option("--input-len", input_len_, "Random tokens per prompt")->default_val(128);
    app()->add_option("--output-len", output_len_, "Generated tokens per prompt")->default_val(64);
    app()->add_option("--shared-prefix", shared_prefix_, "Tokens of a prefix shared by all prompts")
        ->default_val(0);
    app()->add_option("--seed", seed_, "Prompt generator seed")->default_val(1);
    app()->add_option("--result-file", result_file_, "JSONL file the result line is appended to")
        ->default_val("bench/results/offline_throughput.jsonl");
    app()->add_option("--tag", tag_, "Free text stored with the result (machine, model name)");
  }

  int run() override {
    config::ServerConfig config = flags_.resolve();
    if (config.model_path.empty()) throw std::invalid_argument("--model-path is required");
    if (config.log_level == "info") config.log_level = "warning";
    setup_logging(config);
    resolve_model_paths(config);
    config.device = resolve_device(config.device);
    if (num_prompts_ < 1 || input_len_ < 1 || output_len_ < 1 || shared_prefix_ < 0) {
      throw std::invalid_argument("--num-prompts, --input-len, --output-len must be >= 1");
    }
    engine::Engine engine(config);
    const int32_t vocab = engine.model_info().vocab_size;
    std::mt19937 rng(seed_);
    std::uniform_int_distribution<int32_t> token(0, std::min(vocab, 100000) - 1);
    std::vector<int32_t> prefix(shared_prefix_);
    for (auto& t : prefix) t = token(rng);

    sampling::SamplingParams params;
    params.temperature = 0;
    params.max_new_tokens = output_len_;
    params.ignore_eos = true;
    // Warm-up (allocations, thread pools) outside the timing; then an empty prefix cache.
    {
      engine::GenerateInput w;
      w.input_ids = {1, 2, 3, 4};
      w.params = params;
      w.params.max_new_tokens = 2;
      engine.generate(std::vector<engine::GenerateInput>{w});
      engine.flush_cache();
    }
    std::vector<engine::GenerateInput> inputs;
    int64_t input_tokens = 0;
    for (int i = 0; i < num_prompts_; ++i) {
      engine::GenerateInput in;
      in.input_ids = prefix;
      for (int k = 0; k < input_len_; ++k) in.input_ids.push_back(token(rng));
      input_tokens += static_cast<int64_t>(in.input_ids.size());
      in.params = params;
      inputs.push_back(std::move(in));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto results = engine.generate(std::move(inputs));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t output_tokens = 0, cached = 0, aborted = 0;
    std::string first_error;
    for (const auto& r : results) {
      output_tokens += r.meta_info.completion_tokens;
      cached += r.meta_info.cached_tokens;
      const auto& f = r.meta_info.finish_reason;
      if (f && f->type == scheduler::FinishReason::Type::kAbort) {
        if (aborted++ == 0) first_error = f->message;
      }
    }
    if (aborted > 0) {  // a throughput over failed requests would be meaningless
      fmt::print(stderr, "sable bench offline: {} of {} requests failed: {}\n", aborted,
                 results.size(), first_error);
      return 1;
    }
    const auto stats = engine.stats();
    nlohmann::json j = {
        {"bench", "offline_throughput"},
        {"model_path", config.served_model_name},
        {"device", config.device},
        {"num_prompts", num_prompts_},
        {"input_len", input_len_},
        {"output_len", output_len_},
        {"shared_prefix", shared_prefix_},
        {"duration_s", seconds},
        {"request_throughput", num_prompts_ / seconds},
        {"input_throughput", static_cast<double>(input_tokens) / seconds},
        {"output_throughput", static_cast<double>(output_tokens) / seconds},
        {"total_input_tokens", input_tokens},
        {"total_output_tokens", output_tokens},
        {"cached_tokens", cached},
        {"max_batch_size", stats.max_batch_size},
        {"num_retractions", stats.num_retractions},
        {"max_total_tokens", engine.max_total_tokens()},
        {"chunked_prefill_size", config.chunked_prefill_size},
        {"tag", tag_},
        {"timestamp", std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count()}};
    fmt::print("Successful requests:      {}\n", num_prompts_);
    fmt::print("Benchmark duration (s):   {:.2f}\n", seconds);
    fmt::print("Total input tokens:       {} ({} served from the prefix cache)\n", input_tokens, cached);
    fmt::print("Total generated tokens:   {}\n", output_tokens);
    fmt::print("Request throughput (req/s):  {:.2f}\n", num_prompts_ / seconds);
    fmt::print("Input token throughput (tok/s):  {:.2f}\n", input_tokens / seconds);
    fmt::print("Output token throughput (tok/s): {:.2f}\n", output_tokens / seconds);
    if (!result_file_.empty()) {
      append_result(result_file_, j.dump());
      fmt::print("result appended to {}\n", result_file_);
    }
    return 0;
  }

 private:

  config::ConfigFlags flags_;
  int num_prompts_ = 16, input_len_ = 128, output_len_ = 64, shared_prefix_ = 0;
  uint32_t seed_ = 1;
  std::string result_file_;
  std::string tag_;
};

}  // namespace

std::unique_ptr<Command> make_bench_offline_command(CLI::App& parent) {
  return std::make_unique<BenchOfflineCommand>(parent);
}

}  // namespace sable::cli
