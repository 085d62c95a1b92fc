// `sable make-random-model --config config.json --out DIR`: a checkpoint of random bf16 weights
// with exactly the tensor names and shapes the model plugin for that config loads (see
// core/runner/random_model.h), plus a copy of config.json, so benchmarks run at real model sizes
// without a download.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "core/cli/command.h"
#include "core/cli/startup.h"
#include "core/hf_config/hf_config.h"
#include "core/runner/random_model.h"
#include "core/util/log.h"

namespace sable::cli {
namespace {

class MakeRandomModelCommand : public Command {
 public:
  explicit MakeRandomModelCommand(CLI::App& parent)
      : Command(parent.add_subcommand("make-random-model",
                                      "Write a random-weight checkpoint with the tensors a model "
                                      "plugin loads for a config")) {
    app()
        ->add_option("--config", config_json_, "Hugging Face config.json of the model")
        ->required()
        ->check(CLI::ExistingFile);
    app()->add_option("--out", out_dir_, "Output checkpoint directory (created)");
    app()->add_flag("--dry-run", dry_run_, "Only list the tensors (name and shape), write nothing");
    app()->add_option("--seed", seed_, "Random seed")->default_val(0);
    app()
        ->add_option("--impl", impl_, "Model implementation: auto | native | transformers")
        ->default_val("auto");
    app()
        ->add_option("--shard-size-gb", shard_gb_, "Largest safetensors file, in GiB")
        ->default_val(4.0);
    app()->add_option("--plugin-dirs", plugin_dirs_, "Extra plugin folders");
    app()->add_option("--log-level", log_level_, "Log threshold")->default_val("warning");
  }

  int run() override {
    log::setup(log::parse_level(log_level_).value_or(log::Level::kWarning));
    config::ServerConfig config;
    config.plugin_dirs = plugin_dirs_;
    auto registry = discover_plugins(config);
    if (dry_run_) {
      const auto hf = hf::HfConfig::load(config_json_);
      int64_t params = 0;
      for (const auto& t : runner::record_model_tensors(hf, *registry, impl_)) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        params += n;
        fmt::print("{} [{}]\n", t.name, fmt::join(t.shape, ", "));
      }
      fmt::print("{:.3f} B parameters\n", static_cast<double>(params) / 1e9);
      return 0;
    }
    if (out_dir_.empty()) throw std::invalid_argument("--out is required (or --dry-run)");
    runner::RandomModelOptions options;
    options.config_json = config_json_;
    options.out_dir = out_dir_;
    options.impl = impl_;
    options.seed = seed_;
    if (shard_gb_ <= 0) throw std::invalid_argument("--shard-size-gb must be positive");
    options.max_shard_bytes = static_cast<uint64_t>(shard_gb_ * static_cast<double>(1ull << 30));
    const auto summary = runner::write_random_model(options, *registry);
    fmt::print("wrote {} tensors ({:.3f} B parameters, plugin '{}') to {}: {}\n",
               summary.num_tensors, static_cast<double>(summary.num_params) / 1e9, summary.plugin,
               out_dir_, fmt::join(summary.files, ", "));
    return 0;
  }

 private:
  std::string config_json_;
  std::string out_dir_;
  bool dry_run_ = false;
  uint64_t seed_ = 0;
  std::string impl_ = "auto";
  double shard_gb_ = 4.0;
  std::vector<std::string> plugin_dirs_;
  std::string log_level_ = "warning";
};

}  // namespace

std::unique_ptr<Command> make_make_random_model_command(CLI::App& parent) {
  return std::make_unique<MakeRandomModelCommand>(parent);
}

}  // namespace sable::cli
