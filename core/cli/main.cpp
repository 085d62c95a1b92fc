// `sable`: the command-line front door. Dispatches to the subcommands listed in kCommands.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "core/cli/command.h"

namespace {

// Every subcommand, in --help order. Adding one is one line here (see command.h).
constexpr sable::cli::CommandFactory kCommands[] = {
    &sable::cli::make_serve_command,
    &sable::cli::make_plugins_command,
    &sable::cli::make_generate_command,
    &sable::cli::make_download_command,
    &sable::cli::make_bench_offline_command,
    &sable::cli::make_bench_grammar_command,
    &sable::cli::make_make_random_model_command,
#ifdef SABLE_HAVE_BENCH_SERVING
    &sable::cli::make_bench_serving_command,
#endif
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Sable: serve large language models (SGLang- and OpenAI-compatible HTTP APIs)",
               "sable");
  app.require_subcommand(1);
  app.set_version_flag("--version", "sable 0.1.0");
  std::vector<std::unique_ptr<sable::cli::Command>> commands;
  for (const auto factory : kCommands) commands.push_back(factory(app));
  CLI11_PARSE(app, argc, argv);
  for (const auto& command : commands) {
    if (!command->app()->parsed()) continue;
    try {
      return command->run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sable %s: error: %s\n", command->app()->get_name().c_str(), e.what());
      return 1;
    }
  }
  return 1;
}
