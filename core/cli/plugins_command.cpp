// `sable plugins`: what discovery finds, one line per plugin (kind, name, version, ABI,
// architectures, file), then the files that were skipped and why.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "core/cli/command.h"
#include "core/cli/startup.h"
#include "core/util/log.h"

namespace sable::cli {
namespace {

class PluginsCommand : public Command {
 public:
  explicit PluginsCommand(CLI::App& parent)
      : Command(parent.add_subcommand("plugins", "List the plugins found and the files skipped")) {
    app()->add_option("--config", config_file_, "YAML config whose plugin_dirs are scanned too");
    app()->add_option("--plugin-dirs", plugin_dirs_, "Extra plugin folders (after the config's)");
    app()->add_option("--log-level", log_level_, "Log threshold")->default_str("warning");
  }

  int run() override {
    config::ServerConfig config;
    if (!config_file_.empty()) config::apply_yaml_file(config, config_file_);
    config.plugin_dirs.insert(config.plugin_dirs.end(), plugin_dirs_.begin(), plugin_dirs_.end());
    log::setup(log::parse_level(log_level_).value_or(log::Level::kWarning));
    auto registry = discover_plugins(config);

    std::vector<const plugin::PluginInfo*> rows;
    for (const auto& info : registry->plugins()) rows.push_back(&info);
    std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->kind < b->kind; });
    fmt::print("{:<10} {:<16} {:<10} {:<6} {:<40} {}\n", "KIND", "NAME", "VERSION", "ABI",
               "ARCHITECTURES", "FILE");
    for (const plugin::PluginInfo* info : rows) {
      std::string archs;
      for (const auto& arch : info->architectures) archs += (archs.empty() ? "" : ",") + arch;
      if (info->generic) archs += archs.empty() ? "* (generic)" : ",* (generic)";
      if (archs.empty()) archs = "-";
      fmt::print("{:<10} {:<16} {:<10} {:<6} {:<40} {}\n", plugin::kind_name(info->kind),
                 info->name, info->version, fmt::format("{}.{}", info->abi_major, info->abi_minor),
                 archs, info->file);
    }
    if (rows.empty()) fmt::print("(no plugins found)\n");
    for (const std::string& warning : registry->warnings()) fmt::print("skipped: {}\n", warning);
    return 0;
  }

 private:
  std::string config_file_;
  std::vector<std::string> plugin_dirs_;
  std::string log_level_ = "warning";
};

}  // namespace

std::unique_ptr<Command> make_plugins_command(CLI::App& parent) {
  return std::make_unique<PluginsCommand>(parent);
}

}  // namespace sable::cli
