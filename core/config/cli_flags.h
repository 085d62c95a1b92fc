// Command-line flags for every ServerConfig field, registered on a CLI11 app from the field table.
//
// Each field gets --kebab-case-name (and its aliases: --model, --model-impl), a help line with its
// default and allowed values, and --config <file.yaml>. resolve() applies, in order, the defaults,
// the YAML file, then only the flags actually given, so flags override the file.
// CLI11 stays out of this header (forward declaration only). Not thread-safe; use at startup.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "core/config/server_config.h"

namespace CLI {
class App;
}

namespace sable::config {

class ConfigFlags {
 public:
  // Registers the flags on `app` (which must outlive this object).
  explicit ConfigFlags(CLI::App& app);
  ~ConfigFlags();
  ConfigFlags(const ConfigFlags&) = delete;
  ConfigFlags& operator=(const ConfigFlags&) = delete;

  // After app.parse(): defaults < YAML (--config) < flags. Throws ConfigError.
  ServerConfig resolve() const;
  // --help-config-markdown was given: print fields_markdown() instead of running.
  bool markdown_requested() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Parses `args` (without the program name), e.g. {"--config", "x.yaml", "--port", "8000"}, as the
// serve command would. Throws ConfigError for any problem, CLI11's included. For tests and tools.
ServerConfig parse_server_args(std::span<const std::string> args);

}  // namespace sable::config
