// `sable serve` as functions, so that the same code serves from the `sable` binary and from
// `python -m sable.launch_server` (through the Python binding). Main thread; blocks until the
// server stops (SIGINT/SIGTERM) and returns the process exit code.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/config/server_config.h"

namespace sable::cli {

// Logging, plugin discovery, the model-plugin choice, then the HTTP server (run_server.h).
int serve(config::ServerConfig config);

// Parses `args` (without the program name) as `sable serve` flags (--help prints them under the
// name `program`), then serve(). Configuration errors print one line and return 1.
int serve_main(std::string_view program, std::span<const std::string> args);

}  // namespace sable::cli
