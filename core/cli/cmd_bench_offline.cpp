// `sable bench offline --model-path DIR [--dataset-name random|random-ids|sharegpt|
// generated-shared-prefix] [dataset options]`: offline throughput like
// sglang.bench_offline_throughput. The prompts come from SGLang's datasets (bench_dataset.h) drawn
// with the same seed, all submitted to the Engine at once, greedy, EOS ignored (unless
// --disable-ignore-eos); prints SGLang's summary lines and appends one JSON line (results and
// dataset parameters) to --result-file. The old --input-len/--output-len/--shared-prefix flags
// still work: they mean fixed-length random token ids (optionally behind one shared prefix).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "core/cli/bench_common.h"
#include "core/cli/bench_dataset.h"
#include "core/cli/command.h"
#include "core/cli/startup.h"
#include "core/config/cli_flags.h"
#include "core/engine/engine.h"

namespace sable::cli {
namespace {

class BenchOfflineCommand : public Command {
 public:
  explicit BenchOfflineCommand(CLI::App& parent)
      : Command(bench_app(parent).add_subcommand(
            "offline", "Offline throughput on SGLang's benchmark datasets")),
        flags_(*app()) {
    CLI::App& a = *app();
    add_dataset_options(a, dataset_);
    a.add_flag("--disable-ignore-eos", disable_ignore_eos_, "Stop at EOS instead of ignoring it");
    a.add_flag("--skip-warmup", skip_warmup_, "No warm-up batch before the timed one");
    a.add_option("--extra-request-body", extra_request_body_,
                 "JSON object merged into every request's sampling parameters, as SGLang's "
                 "(e.g. '{\"temperature\": 0.8, \"top_p\": 0.95}')");
    a.add_option("--result-file", result_file_, "JSONL file the result line is appended to")
        ->capture_default_str();
    a.add_option("--tag", tag_, "Free text stored with the result (machine, model name)");
    auto* legacy = a.add_option_group("old spellings",
                                      "Fixed-length random token ids, as before the dataset options");
    legacy->add_option("--input-len", legacy_input_len_,
                       "= --random-input-len with --dataset-name random-ids --random-range-ratio 1 "
                       "--tokenize-prompt; the question length with --shared-prefix");
    legacy->add_option("--output-len", legacy_output_len_, "= --random-output-len (or --gsp-output-len)");
    legacy->add_option("--shared-prefix", legacy_shared_prefix_,
                       "A prefix of this many random tokens shared by all prompts: "
                       "generated-shared-prefix with one group of --num-prompts questions");
  }

  int run() override {
    config::ServerConfig config = flags_.resolve();
    if (config.model_path.empty()) throw std::invalid_argument("--model-path is required");
    if (config.log_level == "info") config.log_level = "warning";
    setup_logging(config);
    resolve_model_paths(config);
    config.device = resolve_device(config.device);
    apply_old_spellings();
    dataset_.validate();  // before the model loads: a bad option fails at once
    // SGLang's parameters: greedy, EOS as --disable-ignore-eos says, then --extra-request-body.
    const nlohmann::json extra = parse_extra_request_body(extra_request_body_);
    nlohmann::json sampling = {{"temperature", 0}, {"ignore_eos", !disable_ignore_eos_}};
    sampling.update(extra);
    const sampling::SamplingParams params = sampling::SamplingParams::from_json(sampling);
    engine::Engine engine(config);
    BenchRandom rng(dataset_.seed);
    std::vector<BenchRequest> requests = sample_requests(dataset_, engine.tokenizer(), rng);
    if (requests.empty()) throw std::runtime_error("the dataset gave no requests");
    const DatasetTotals totals = dataset_totals(requests);
    fmt::print("#Input tokens: {}\n#Output tokens: {}\n", totals.input_tokens, totals.output_tokens);

    if (!skip_warmup_) warm_up(engine, params, static_cast<int32_t>(requests.size()));
    std::vector<engine::GenerateInput> inputs;
    for (auto& r : requests) {
      engine::GenerateInput in;
      if (dataset_.tokenize_prompt) in.input_ids = std::move(r.ids);
      else in.text = std::move(r.text);
      in.params = params;
      if (!extra.contains("max_new_tokens")) in.params.max_new_tokens = r.output_len;  // as SGLang
      inputs.push_back(std::move(in));
    }
    const auto before = engine.stats();
    const auto t0 = std::chrono::steady_clock::now();
    const auto results = engine.generate(std::move(inputs));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t output_tokens = 0, prompt_tokens = 0, cached = 0, aborted = 0;
    std::string first_error;
    for (const auto& r : results) {
      output_tokens += r.meta_info.completion_tokens;
      prompt_tokens += r.meta_info.prompt_tokens;
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
    const auto n = static_cast<int64_t>(results.size());
    print_summary_header(" Offline Throughput Benchmark Result ");
    print_summary_line("Backend:", std::string("engine"));
    print_summary_line("Successful requests:", n);
    print_summary_line("Benchmark duration (s):", seconds);
    print_summary_line("Total input tokens:", totals.input_tokens);
    print_summary_line("Total generated tokens:", output_tokens);
    print_summary_line("Request throughput (req/s):", n / seconds);
    print_summary_line("Input token throughput (tok/s):", totals.input_tokens / seconds);
    print_summary_line("Output token throughput (tok/s):", output_tokens / seconds);
    print_summary_line("Total token throughput (tok/s):", (totals.input_tokens + output_tokens) / seconds);
    print_summary_line("Prompt tokens (engine-counted):", prompt_tokens);
    print_summary_line("Prompt tokens from the prefix cache:", cached);
    const auto stats = engine.stats();
    // The scheduler thread's time per step of this run (the warm-up's steps subtracted).
    const auto cycles =
        static_cast<double>(std::max<int64_t>(1, stats.timed_cycles - before.timed_cycles));
    const double step_us = (stats.cycle_time_sum - before.cycle_time_sum) * 1e6 / cycles;
    const double model_us = (stats.model_time_sum - before.model_time_sum) * 1e6 / cycles;
    print_summary_line("Scheduler step, mean (us):", step_us);
    print_summary_line("  model forward + sampling (us):", model_us);
    print_summary_line("  host work the device waits (us):", step_us - model_us);
    fmt::print("{}\n", std::string(50, '='));
    nlohmann::json j = {{"bench", "offline_throughput"},
                        {"backend", "engine"},
                        {"model_path", config.served_model_name},
                        {"device", config.device},
                        {"dataset", dataset_.to_json()},
                        {"ignore_eos", params.ignore_eos},
                        {"extra_request_body", extra},
                        {"successful_requests", n},
                        {"total_latency", seconds},
                        {"total_input_tokens", totals.input_tokens},
                        {"total_output_tokens", output_tokens},
                        {"request_throughput", n / seconds},
                        {"input_throughput", totals.input_tokens / seconds},
                        {"output_throughput", output_tokens / seconds},
                        {"total_throughput", (totals.input_tokens + output_tokens) / seconds},
                        {"engine_prompt_tokens", prompt_tokens},
                        {"cached_tokens", cached},
                        {"max_batch_size", stats.max_batch_size},
                        {"step_time_us", step_us},
                        {"model_time_us", model_us},
                        {"host_time_us", step_us - model_us},
                        {"num_retractions", stats.num_retractions},
                        {"max_total_tokens", engine.max_total_tokens()},
                        {"chunked_prefill_size", config.chunked_prefill_size},
                        {"disable_radix_cache", config.disable_radix_cache},
                        {"tag", tag_},
                        {"timestamp", std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count()}};
    if (!result_file_.empty()) {
      append_result(result_file_, j.dump());
      fmt::print("result appended to {}\n", result_file_);
    }
    return 0;
  }

 private:
  std::string extra_request_body_;

  // The old flags as the dataset options they stand for; prints the new spelling.
  void apply_old_spellings() {
    const bool legacy = legacy_input_len_ > 0 || legacy_output_len_ > 0 || legacy_shared_prefix_ > 0;
    if (!legacy) return;
    const int32_t in = legacy_input_len_ > 0 ? legacy_input_len_ : dataset_.random_input_len;
    const int32_t out = legacy_output_len_ > 0 ? legacy_output_len_ : dataset_.random_output_len;
    const bool named = app()->count("--dataset-name") > 0;
    std::string spelled;
    if (legacy_shared_prefix_ > 0) {
      if (named && dataset_.name != "generated-shared-prefix")
        throw std::invalid_argument("--shared-prefix: use --gsp-* options with --dataset-name");
      dataset_.name = "generated-shared-prefix";
      dataset_.gsp_num_groups = 1;
      dataset_.gsp_prompts_per_group = dataset_.num_prompts;
      dataset_.gsp_system_prompt_len = legacy_shared_prefix_;
      dataset_.gsp_question_len = in;
      dataset_.gsp_output_len = out;
      if (app()->count("--gsp-range-ratio") == 0) dataset_.gsp_range_ratio = 1.0;
      spelled = fmt::format("--dataset-name generated-shared-prefix --gsp-num-groups 1 "
                            "--gsp-prompts-per-group {} --gsp-system-prompt-len {} "
                            "--gsp-question-len {} --gsp-output-len {} --gsp-range-ratio {}",
                            dataset_.num_prompts, legacy_shared_prefix_, in, out,
                            dataset_.gsp_range_ratio);
    } else {
      if (!named) dataset_.name = "random-ids";
      dataset_.random_input_len = in;
      dataset_.random_output_len = out;
      if (app()->count("--random-range-ratio") == 0) dataset_.random_range_ratio = 1.0;
      spelled = fmt::format("--dataset-name {} --random-input-len {} --random-output-len {} "
                            "--random-range-ratio {}",
                            dataset_.name, in, out, dataset_.random_range_ratio);
    }
    if (!named) dataset_.tokenize_prompt = true;
    fmt::print(stderr, "sable bench offline: the old flags mean: {}{} --num-prompts {} --seed {}\n",
               spelled, dataset_.tokenize_prompt ? " --tokenize-prompt" : "", dataset_.num_prompts,
               dataset_.seed);
  }

  // Like SGLang's warm-up (min(N, 16) prompts of 256 tokens, 16 outputs) but with random token
  // ids, not ShareGPT text; then an empty prefix cache so the timed run starts cold.
  static void warm_up(engine::Engine& engine, const sampling::SamplingParams& params, int32_t n) {
    DatasetOptions w;
    w.name = "random-ids";
    w.num_prompts = std::min(n, 16);
    w.random_input_len = static_cast<int32_t>(std::clamp<int64_t>(engine.context_length() - 17, 1, 256));
    w.random_output_len = 16;
    w.random_range_ratio = 1.0;
    w.tokenize_prompt = true;
    BenchRandom rng(w.seed);
    std::vector<engine::GenerateInput> inputs;
    for (auto& r : sample_requests(w, engine.tokenizer(), rng)) {
      engine::GenerateInput in;
      in.input_ids = std::move(r.ids);
      in.params = params;
      in.params.max_new_tokens = r.output_len;
      inputs.push_back(std::move(in));
    }
    engine.generate(std::move(inputs));
    engine.flush_cache();
  }

  config::ConfigFlags flags_;
  DatasetOptions dataset_;
  int32_t legacy_input_len_ = 0, legacy_output_len_ = 0, legacy_shared_prefix_ = 0;
  bool disable_ignore_eos_ = false;
  bool skip_warmup_ = false;
  std::string result_file_ = "bench/results/offline_throughput.jsonl";
  std::string tag_;
};

}  // namespace

std::unique_ptr<Command> make_bench_offline_command(CLI::App& parent) {
  return std::make_unique<BenchOfflineCommand>(parent);
}

}  // namespace sable::cli
