// `sable serve`: configuration (YAML + flags), plugin discovery, model-plugin choice, then the
// HTTP server (run_server.h). serve() and serve_main() (serve.h) are the same steps for callers
// outside the binary (python -m sable.launch_server).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <stdexcept>

#include "core/cli/command.h"
#include "core/cli/run_server.h"
#include "core/cli/serve.h"
#include "core/cli/startup.h"
#include "core/config/cli_flags.h"
#include "core/util/log.h"

namespace sable::cli {
namespace {

class ServeCommand : public Command {
 public:
  // Registers the flags on `app` itself (serve_main) ...
  explicit ServeCommand(CLI::App& app) : Command(&app), flags_(app) {}
  // ... or on a new `serve` subcommand of `parent` (the sable binary).
  static std::unique_ptr<ServeCommand> subcommand(CLI::App& parent) {
    return std::make_unique<ServeCommand>(
        *parent.add_subcommand("serve", "Serve a model over HTTP (SGLang + OpenAI APIs)"));
  }

  int run() override {
    if (flags_.markdown_requested()) {
      std::fputs(config::fields_markdown().c_str(), stdout);
      return 0;
    }
    config::ServerConfig config;
    try {
      config = flags_.resolve();
    } catch (const config::ConfigError& e) {
      std::fprintf(stderr, "sable serve: configuration error: %s\n", e.what());
      return 1;
    }
    return serve(std::move(config));
  }

 private:
  config::ConfigFlags flags_;
};

}  // namespace

int serve(config::ServerConfig config) {
  setup_logging(config);
  if (config.model_path.empty()) {
    log::error("model_path is required: pass --model-path <folder | file.gguf | ORG/NAME> or set "
               "model_path in the config file");
    return 1;
  }
  try {
    resolve_model_paths(config);
  } catch (const std::exception& e) {
    log::error("cannot serve {}: {}", config.model_path, e.what());
    return 1;
  }
  config.device = resolve_device(config.device);

  auto registry = discover_plugins(config);
  plugin::ModelSelection model;
  try {
    const auto architectures = read_architectures(config.model_path);
    model = plugin::select_model_plugin(*registry, architectures, config.impl);
  } catch (const std::exception& e) {
    log::error("cannot serve {}: {}", config.model_path, e.what());
    return 1;
  }
  log::info("model: {} (from {})", model.reason, model.plugin->file);
#ifdef SABLE_HAVE_SERVER
  return server::run_server(config, *registry, model);
#else
  log::error("the HTTP server is not built into this binary yet; startup checks passed");
  return 2;
#endif
}

int serve_main(std::string_view program, std::span<const std::string> args) {
  CLI::App app("Serve a model over HTTP (SGLang + OpenAI APIs)", std::string(program));
  ServeCommand command(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return command.run();
}

std::unique_ptr<Command> make_serve_command(CLI::App& parent) {
  return ServeCommand::subcommand(parent);
}

}  // namespace sable::cli
