// Plugin discovery and the registry of loaded plugins (DESIGN.md "The plugin ABI").
//
// Registry::discover scans folders in order (the built-in folder next to the binary first, then
// plugin_dirs from the config, then SABLE_PLUGIN_PATH), loads every *.so with immediate binding,
// calls its sable_plugin_entry and validates the returned tables through their struct_size. A file
// that is not a plugin, has another ABI major, returns NULL, has a too-small table or repeats a
// name is skipped with one warning naming the file and the reason; discover never throws for a bad
// file. Asking for a named plugin (require) that failed or is absent throws with that reason and
// the list of plugins that did load.
//
// Ownership and lifetime: the Registry owns the loaded libraries; PluginInfo::api points into them
// and is valid while the Registry lives. Every object created through a plugin's table (models,
// attention backends, samplers, grammar engines) must be destroyed before the Registry is.
// Thread-safety: discovery is single-threaded; a finished Registry is immutable and may be read
// from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sable/abi.h"

namespace sable::plugin {

// What the host knows about one loaded plugin (copied out of its tables at load time).
struct PluginInfo {
  std::string name;
  std::string version;
  std::string file;         // the shared object it came from ("<static>" for add()ed plugins)
  std::string description;  // empty when the plugin gives none
  SablePluginKind kind = SABLE_PLUGIN_MODEL;
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
  std::vector<std::string> architectures;  // model plugins: HF architectures served natively
  bool generic = false;                    // model plugins: SABLE_MODEL_GENERIC (claims any LM)
  // The kind's table (SableModelApi*, SableAttentionApi*, ...), validated to cover ABI 1.0.
  const void* api = nullptr;
  const SablePlugin* plugin = nullptr;  // the entry's struct itself

  template <class Api>
  const Api* api_as() const { return static_cast<const Api*>(api); }
};

// A file that was seen but not loaded.
struct LoadFailure {
  std::string file;
  std::string name;  // the plugin's name when it could be read, else empty
  std::string reason;
};

struct DiscoveryOptions {
  // Folders scanned in order; put the built-in folder(s) first (default_plugin_dirs()).
  std::vector<std::filesystem::path> dirs;
  bool include_env = true;  // append the folders of SABLE_PLUGIN_PATH (colon-separated)
};

class Registry {
 public:
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Scans, loads and validates. Never throws for a bad file: see warnings() and failures().
  static std::unique_ptr<Registry> discover(const DiscoveryOptions& options);
  // A registry with nothing loaded; plugins linked into the program can then be add()ed.
  static std::unique_ptr<Registry> empty();

  // Validates and registers a plugin whose entry the caller already called (a plugin linked
  // statically, in tests or tools). On rejection records a warning and returns false.
  bool add(const SablePlugin* plugin, std::string_view origin);

  std::span<const PluginInfo> plugins() const { return plugins_; }
  std::span<const LoadFailure> failures() const { return failures_; }
  // One line per skipped file or folder, "file: reason"; each was also logged as a warning.
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::vector<std::filesystem::path>& searched_dirs() const { return searched_dirs_; }

  // The plugin of that kind and name, or throws std::runtime_error saying why it is not there
  // (the load failure when the file was seen) and listing the plugins that did load.
  const PluginInfo& require(SablePluginKind kind, std::string_view name) const;
  const PluginInfo* find(SablePluginKind kind, std::string_view name) const;
  std::vector<const PluginInfo*> of_kind(SablePluginKind kind) const;

  // "llama (model), cpu (attention)" or "none".
  std::string loaded_summary() const;

 private:
  Registry() = default;
  struct Library;  // one loaded shared object (Boost.DLL), defined in registry.cpp
  struct LibraryDeleter {
    void operator()(Library* library) const;
  };
  void load_file(const std::filesystem::path& file);
  void reject(std::string file, std::string name, std::string reason);
  bool register_plugin(const SablePlugin* plugin, const std::string& file);

  std::vector<PluginInfo> plugins_;
  std::vector<LoadFailure> failures_;
  std::vector<std::string> warnings_;
  std::vector<std::filesystem::path> searched_dirs_;
  // Declared last, so destroyed first: the libraries unload when the Registry dies. PluginInfo
  // strings are copies; only api/plugin point into the libraries.
  std::vector<std::unique_ptr<Library, LibraryDeleter>> libraries_;
};

// "model" | "attention" | "sampler" | "grammar" (or "unknown").
std::string_view kind_name(SablePluginKind kind);
std::optional<SablePluginKind> parse_kind(std::string_view text);

// The built-in plugin folder: <dir of the running executable>/plugins (from /proc/self/exe), or,
// when the core is linked into a shared object (the Python extension sable/_sable*.so),
// <dir of that object>/plugins, so that an installed wheel finds the plugins it carries.
std::filesystem::path builtin_plugin_dir();
// The folders scanned before plugin_dirs: builtin_plugin_dir(), <exe_dir>/plugins when that
// differs, and, for installed layouts, <exe_dir>/../lib/sable/plugins; then `extra` in order.
std::vector<std::filesystem::path> default_plugin_dirs(std::span<const std::string> extra = {});

// Which model plugin serves a checkpoint. impl: "auto" (a native plugin claiming one of the
// architectures, else the generic one), "native" or "sglang" (a native one, else an error),
// "transformers" (the generic one). Throws std::runtime_error with the reason when none fits
// (naming the architectures and the loaded model plugins), std::invalid_argument for a bad impl.
struct ModelSelection {
  const PluginInfo* plugin = nullptr;
  std::string reason;  // one line for the log: which plugin and why
};
ModelSelection select_model_plugin(const Registry& registry,
                                   std::span<const std::string> architectures,
                                   std::string_view impl);

}  // namespace sable::plugin
