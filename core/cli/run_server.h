// The hand-off from `sable serve` to the HTTP server, which server/ implements.
//
// serve_command.cpp calls run_server once startup (config, plugins, model-plugin choice) is done.
// The server target opts in by setting the target property SABLE_PROVIDES_RUN_SERVER on
// sable_server (set_property(TARGET sable_server PROPERTY SABLE_PROVIDES_RUN_SERVER ON)); the top
// level CMakeLists.txt then links it into `sable` and defines SABLE_HAVE_SERVER. Until then
// `sable serve` says that the server is not built and exits with status 2.
#pragma once

#include "core/config/server_config.h"
#include "core/plugin/registry.h"

namespace sable::server {

// Blocks until shutdown and returns the process exit code. `plugins` outlives the call; every
// object the server creates through a plugin must be destroyed before it returns.
int run_server(const config::ServerConfig& config, plugin::Registry& plugins,
               const plugin::ModelSelection& model);

}  // namespace sable::server
