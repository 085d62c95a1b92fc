// Reads a plugin's SablePlugin struct and its kind's function table through struct_size checks.
//
// The host reads a field only when the plugin's struct covers it: an older-minor plugin with a
// smaller struct loads (missing optional fields read as absent); a struct too small for the fields
// ABI 1.0 requires, a NULL required function, or another ABI major is rejected with the reason.
// Pure functions over plugin memory; thread-safe.
#pragma once

#include <string>

#include "core/plugin/registry.h"

namespace sable::plugin {

// Bytes of each struct that ABI 1.0 requires (the end of its last required field).
size_t required_plugin_size();
size_t required_api_size(SablePluginKind kind);

// Fills `out` (all fields but `file`) from `plugin` and returns "" when it is valid; otherwise
// returns the reason, and `out.name` holds the plugin's name when it could be read.
std::string read_plugin(const SablePlugin* plugin, PluginInfo& out);

}  // namespace sable::plugin
