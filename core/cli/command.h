// The `sable` binary's subcommands. Each lives in its own file (serve_command.cpp, ...), adds
// itself to the parent CLI11 app through a factory, and is listed once in main.cpp's kCommands.
//
// To add a subcommand (generate, bench, make-random-model): write <name>_command.cpp defining
// make_<name>_command, declare it below, add one line to kCommands in main.cpp and the file to
// core/cli/CMakeLists.txt. Not thread-safe: used on the main thread at startup.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace sable::cli {

class Command {
 public:
  explicit Command(CLI::App* app) : app_(app) {}
  virtual ~Command() = default;
  // Runs after parsing when this subcommand was chosen; returns the process exit code.
  virtual int run() = 0;
  CLI::App* app() const { return app_; }

 private:
  CLI::App* app_;  // the subcommand, owned by the parent app
};

// Adds a subcommand to `parent` (which outlives the Command) and returns its runner.
using CommandFactory = std::unique_ptr<Command> (*)(CLI::App& parent);

std::unique_ptr<Command> make_serve_command(CLI::App& parent);
std::unique_ptr<Command> make_plugins_command(CLI::App& parent);
std::unique_ptr<Command> make_generate_command(CLI::App& parent);
std::unique_ptr<Command> make_bench_offline_command(CLI::App& parent);
std::unique_ptr<Command> make_bench_grammar_command(CLI::App& parent);
std::unique_ptr<Command> make_make_random_model_command(CLI::App& parent);
std::unique_ptr<Command> make_download_command(CLI::App& parent);
std::unique_ptr<Command> make_bench_serving_command(CLI::App& parent);  // with the server

}  // namespace sable::cli
