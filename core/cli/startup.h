// Startup steps shared by subcommands: logging from the config, plugin discovery with the
// configured folders, the device decision, and the model's architectures from config.json.
// Each step logs one line saying what it decided. Main thread, at startup.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config/server_config.h"
#include "core/plugin/registry.h"

namespace sable::cli {

// Sets up the logger at config.log_level and logs which config file was read.
void setup_logging(const config::ServerConfig& config);

// Built-in folders, then config.plugin_dirs, then SABLE_PLUGIN_PATH.
std::unique_ptr<plugin::Registry> discover_plugins(const config::ServerConfig& config);

// "auto" becomes "cuda" when this build has CUDA and a GPU device node exists, else "cpu".
std::string resolve_device(const std::string& requested);

// Turns config.model_path and config.tokenizer_path into local paths through the model resolver
// (core/model_source): a folder or .gguf file stays as it is, a Hub id ORG/NAME becomes its snapshot
// folder in the Hugging Face cache (downloading what is missing). served_model_name defaults to what
// the user typed. Throws model_source::ResolveError naming the repo, file and cause.
void resolve_model_paths(config::ServerConfig& config);

// The `architectures` list of <model_path>/config.json, or the one a GGUF file's metadata maps to.
// Throws std::runtime_error naming the file when it is missing, not JSON, or has no architectures
// (gguf::GgufError naming the field for a bad GGUF file).
std::vector<std::string> read_architectures(const std::filesystem::path& model_path);

}  // namespace sable::cli
