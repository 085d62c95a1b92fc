// Startup steps shared by subcommands (see startup.h).
#include "core/cli/startup.h"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/gguf/gguf_model.h"
#include "core/model_source/resolve_model.h"
#include "core/util/log.h"

namespace sable::cli {

namespace fs = std::filesystem;

void setup_logging(const config::ServerConfig& config) {
  log::setup(log::parse_level(config.log_level).value_or(log::Level::kInfo));
  if (config.config_file.empty()) {
    log::info("config: no --config file; defaults and command-line flags");
  } else {
    log::info("config: read {} (command-line flags override it)", config.config_file);
  }
}

std::unique_ptr<plugin::Registry> discover_plugins(const config::ServerConfig& config) {
  plugin::DiscoveryOptions options;
  options.dirs = plugin::default_plugin_dirs(config.plugin_dirs);
  options.include_env = true;
  return plugin::Registry::discover(options);
}

std::string resolve_device(const std::string& requested) {
  if (requested != "auto") {
    log::info("device: {} (requested)", requested);
    return requested;
  }
#ifdef SABLE_HAVE_CUDA
  std::error_code ec;
  if (fs::exists("/dev/nvidiactl", ec) || fs::exists("/dev/nvidia0", ec)) {
    log::info("device: cuda (auto: this build has CUDA and a GPU is present)");
    return "cuda";
  }
  log::info("device: cpu (auto: no GPU device found)");
#else
  log::info("device: cpu (auto: this build has no CUDA backend)");
#endif
  return "cpu";
}

void resolve_model_paths(config::ServerConfig& config) {
  namespace ms = model_source;
  ms::ResolveOptions options;
  options.revision = config.revision;
  const std::string typed = config.model_path;
  const ms::ModelSource model = ms::resolve_model(typed, options);
  if (config.served_model_name.empty()) config.served_model_name = typed;
  config.model_path = model.path.string();
  // The tokenizer: the model's own unless another path or repo is named. A tokenizer repo other
  // than the model's is read at its main revision (--revision names the model's).
  if (config.tokenizer_path.empty() || config.tokenizer_path == typed) {
    config.tokenizer_path = config.model_path;
    return;
  }
  options.want = ms::Want::kTokenizer;
  options.revision = "main";
  config.tokenizer_path = ms::resolve_model(config.tokenizer_path, options).path.string();
}

std::vector<std::string> read_architectures(const fs::path& model_path) {
  if (gguf::is_gguf_model(model_path)) {
    // The header and metadata only (checked here, so a bad file stops startup at once).
    const auto model = gguf::GgufModel::open(model_path);
    return nlohmann::json::parse(model->config_json())
        .at("architectures")
        .get<std::vector<std::string>>();
  }
  const fs::path file = model_path / "config.json";
  std::ifstream in(file);
  if (!in) {
    throw std::runtime_error(fmt::format("model_path {}: cannot read {}", model_path.string(),
                                         file.string()));
  }
  const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    throw std::runtime_error(fmt::format("{} is not a JSON object", file.string()));
  }
  std::vector<std::string> architectures;
  if (auto it = json.find("architectures"); it != json.end() && it->is_array()) {
    for (const auto& item : *it) {
      if (item.is_string()) architectures.push_back(item.get<std::string>());
    }
  }
  if (architectures.empty()) {
    throw std::runtime_error(
        fmt::format("{} has no \"architectures\" list naming the model class", file.string()));
  }
  return architectures;
}

}  // namespace sable::cli
