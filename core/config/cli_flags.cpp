// CLI11 binding of the field table: one flag per field, resolved after the YAML file.
#include "core/config/cli_flags.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fmt/core.h>

namespace sable::config {
namespace {

std::string kebab(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string flag_names(const FieldInfo& info) {
  std::string names = "--" + kebab(info.name);
  size_t start = 0;
  while (start < info.aliases.size()) {
    size_t bar = info.aliases.find('|', start);
    if (bar == std::string_view::npos) bar = info.aliases.size();
    names += ",--" + kebab(info.aliases.substr(start, bar - start));
    start = bar + 1;
  }
  return names;
}

}  // namespace

struct ConfigFlags::State {
  struct Bound {
    const FieldInfo* info = nullptr;
    CLI::Option* option = nullptr;
    std::string text;
    std::vector<std::string> items;
    bool flag = false;
  };
  std::string config_path;
  bool markdown = false;
  std::vector<std::unique_ptr<Bound>> bound;  // stable addresses: CLI11 writes into them
};

ConfigFlags::ConfigFlags(CLI::App& app) : state_(std::make_unique<State>()) {
  app.add_option("--config", state_->config_path,
                 "YAML file of options (snake_case keys); flags given here override it");
  app.add_flag("--help-config-markdown", state_->markdown,
               "Print the option table as Markdown (docs/configuration.md) and exit");
  for (const FieldInfo& info : config_fields()) {
    auto bound = std::make_unique<State::Bound>();
    bound->info = &info;
    std::string help(info.help);
    if (!info.constraint.empty()) help += " [" + info.constraint + "]";
    const std::string names = flag_names(info);
    if (info.is_bool) {
      bound->option = app.add_flag(names, bound->flag, help);
    } else if (info.is_list) {
      bound->option = app.add_option(names, bound->items, help)->type_name("PATH");
    } else {
      bound->option = app.add_option(names, bound->text, help);
      bound->option->type_name(info.type == "integer" ? "INT"
                               : info.type == "number" ? "FLOAT"
                                                       : "TEXT");
    }
    bound->option->default_str(info.default_text.empty() ? "\"\"" : info.default_text);
    state_->bound.push_back(std::move(bound));
  }
}

ConfigFlags::~ConfigFlags() = default;

bool ConfigFlags::markdown_requested() const { return state_->markdown; }

ServerConfig ConfigFlags::resolve() const {
  ServerConfig config;
  if (!state_->config_path.empty()) apply_yaml_file(config, state_->config_path);
  for (const auto& bound : state_->bound) {
    if (bound->option->count() == 0) continue;
    const std::string origin = "command line --" + kebab(bound->info->name);
    if (bound->info->is_bool) {
      set_field(config, bound->info->name, bound->flag ? "true" : "false", origin);
    } else if (bound->info->is_list) {
      set_field_list(config, bound->info->name, bound->items, origin);
    } else {
      set_field(config, bound->info->name, bound->text, origin);
    }
  }
  return config;
}

ServerConfig parse_server_args(std::span<const std::string> args) {
  CLI::App app("sable serve");
  ConfigFlags flags(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw ConfigError(fmt::format("command line: {}", e.what()));
  }
  return flags.resolve();
}

}  // namespace sable::config
