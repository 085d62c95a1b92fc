// Discovery: scanning folders, loading shared objects with Boost.DLL (RTLD_NOW), registering.
#define BOOST_DLL_USE_STD_FS
#include "core/plugin/registry.h"

#include <fmt/core.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <dlfcn.h>
#include <link.h>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <system_error>

#include "core/plugin/table_check.h"
#include "core/util/log.h"

namespace sable::plugin {

namespace fs = std::filesystem;

struct Registry::Library {
  boost::dll::shared_library library;
};

void Registry::LibraryDeleter::operator()(Library* library) const { delete library; }

Registry::~Registry() = default;

std::string_view kind_name(SablePluginKind kind) {
  switch (kind) {
    case SABLE_PLUGIN_MODEL: return "model";
    case SABLE_PLUGIN_ATTENTION: return "attention";
    case SABLE_PLUGIN_SAMPLER: return "sampler";
    case SABLE_PLUGIN_GRAMMAR: return "grammar";
  }
  return "unknown";
}

std::optional<SablePluginKind> parse_kind(std::string_view text) {
  for (SablePluginKind kind : {SABLE_PLUGIN_MODEL, SABLE_PLUGIN_ATTENTION, SABLE_PLUGIN_SAMPLER,
                               SABLE_PLUGIN_GRAMMAR}) {
    if (kind_name(kind) == text) return kind;
  }
  return std::nullopt;
}

namespace {

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// Shared objects in a folder, sorted by name so that discovery order is reproducible.
std::vector<fs::path> shared_objects_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<fs::path> env_dirs() {
  std::vector<fs::path> dirs;
  const char* env = std::getenv("SABLE_PLUGIN_PATH");
  if (env == nullptr) return dirs;
  std::string_view rest(env);
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    std::string_view part = rest.substr(0, colon);
    if (!part.empty()) dirs.emplace_back(std::string(part));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return dirs;
}

}  // namespace

// The folder of the shared object this code was linked into, when that is not the executable (the
// Python extension, sable/_sable*.so); empty otherwise.
fs::path library_dir() {
  Dl_info info{};
  void* map = nullptr;
  if (dladdr1(reinterpret_cast<void*>(&library_dir), &info, &map, RTLD_DL_LINKMAP) == 0 || !map) {
    return {};
  }
  const char* name = static_cast<link_map*>(map)->l_name;
  if (name == nullptr || name[0] == '\0') return {};  // the main program
  std::error_code ec;
  const fs::path file = fs::canonical(name, ec);
  return ec ? fs::path() : file.parent_path();
}

fs::path builtin_plugin_dir() {
  const fs::path lib_dir = library_dir();
  return (lib_dir.empty() ? executable_dir() : lib_dir) / "plugins";
}

std::vector<fs::path> default_plugin_dirs(std::span<const std::string> extra) {
  std::vector<fs::path> dirs{builtin_plugin_dir()};
  const fs::path exe_dir = executable_dir();
  if (!library_dir().empty() && !exe_dir.empty()) dirs.push_back(exe_dir / "plugins");
  if (!exe_dir.empty()) dirs.push_back((exe_dir / ".." / "lib" / "sable" / "plugins").lexically_normal());
  for (const auto& dir : extra) dirs.emplace_back(dir);
  return dirs;
}

std::unique_ptr<Registry> Registry::empty() { return std::unique_ptr<Registry>(new Registry()); }

std::unique_ptr<Registry> Registry::discover(const DiscoveryOptions& options) {
  std::unique_ptr<Registry> registry(new Registry());
  std::vector<fs::path> dirs = options.dirs;
  if (options.include_env) {
    for (auto& dir : env_dirs()) dirs.push_back(std::move(dir));
  }
  const std::vector<fs::path> defaults = default_plugin_dirs();
  std::set<fs::path> seen_dirs;
  std::set<fs::path> seen_files;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(dir, ec);
    const fs::path key = ec ? dir : canonical;
    if (!seen_dirs.insert(key).second) continue;
    if (!fs::is_directory(dir, ec)) {
      // The built-in folders are optional; a folder the user named should exist.
      const bool is_default = std::find(defaults.begin(), defaults.end(), dir) != defaults.end();
      if (is_default) {
        log::debug("plugin folder {} does not exist, skipped", dir.string());
      } else {
        std::string reason = fs::exists(dir, ec) ? "not a folder" : "folder does not exist";
        registry->warnings_.push_back(fmt::format("{}: {}", dir.string(), reason));
        log::warn("plugin folder {} skipped: {}", dir.string(), reason);
      }
      continue;
    }
    registry->searched_dirs_.push_back(dir);
    log::info("scanning plugin folder {}", dir.string());
    for (const fs::path& file : shared_objects_in(dir)) {
      const fs::path file_key = fs::weakly_canonical(file, ec);
      if (!seen_files.insert(ec ? file : file_key).second) continue;
      registry->load_file(file);
    }
  }
  log::info("{} plugin(s) loaded, {} skipped", registry->plugins_.size(), registry->failures_.size());
  return registry;
}

void Registry::reject(std::string file, std::string name, std::string reason) {
  log::warn("plugin {} skipped: {}", file, reason);
  warnings_.push_back(fmt::format("{}: {}", file, reason));
  failures_.push_back(LoadFailure{std::move(file), std::move(name), std::move(reason)});
}

void Registry::load_file(const fs::path& file) {
  const std::string file_text = file.string();
  auto library = std::unique_ptr<Library, LibraryDeleter>(new Library());
  try {
    // Immediate binding: a missing symbol fails here, with the loader's message, not mid-request.
    library->library.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    reject(file_text, "", fmt::format("cannot be loaded: {}", e.what()));
    return;
  }
  if (!library->library.has(SABLE_PLUGIN_ENTRY_SYMBOL)) {
    reject(file_text, "", "not a Sable plugin (no " SABLE_PLUGIN_ENTRY_SYMBOL " symbol)");
    return;
  }
  auto entry = library->library.get<const SablePlugin*(uint32_t)>(SABLE_PLUGIN_ENTRY_SYMBOL);
  const SablePlugin* plugin = nullptr;
  try {
    plugin = entry(SABLE_ABI_MAJOR);
  } catch (...) {
    reject(file_text, "", "sable_plugin_entry threw an exception");
    return;
  }
  if (register_plugin(plugin, file_text)) libraries_.push_back(std::move(library));
}

bool Registry::add(const SablePlugin* plugin, std::string_view origin) {
  return register_plugin(plugin, std::string(origin));
}

bool Registry::register_plugin(const SablePlugin* plugin, const std::string& file) {
  PluginInfo info;
  std::string reason = read_plugin(plugin, info);
  if (!reason.empty()) {
    reject(file, info.name, std::move(reason));
    return false;
  }
  for (const PluginInfo& other : plugins_) {
    if (other.name == info.name) {
      reject(file, info.name,
             fmt::format("duplicate plugin name '{}' (already loaded from {})", info.name,
                         other.file));
      return false;
    }
  }
  info.file = file;
  std::string archs;
  for (const auto& arch : info.architectures) archs += (archs.empty() ? "" : ",") + arch;
  log::info("plugin {} {} {} (ABI {}.{}){}{} from {}", kind_name(info.kind), info.name,
            info.version, info.abi_major, info.abi_minor, archs.empty() ? "" : " serves ", archs,
            file);
  plugins_.push_back(std::move(info));
  return true;
}

const PluginInfo* Registry::find(SablePluginKind kind, std::string_view name) const {
  for (const PluginInfo& info : plugins_) {
    if (info.kind == kind && info.name == name) return &info;
  }
  return nullptr;
}

std::vector<const PluginInfo*> Registry::of_kind(SablePluginKind kind) const {
  std::vector<const PluginInfo*> out;
  for (const PluginInfo& info : plugins_) {
    if (info.kind == kind) out.push_back(&info);
  }
  return out;
}

std::string Registry::loaded_summary() const {
  std::string out;
  for (const PluginInfo& info : plugins_) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({})", info.name, kind_name(info.kind));
  }
  return out.empty() ? "none" : out;
}

const PluginInfo& Registry::require(SablePluginKind kind, std::string_view name) const {
  if (const PluginInfo* info = find(kind, name)) return *info;
  const std::string loaded = "loaded plugins: " + loaded_summary();
  for (const PluginInfo& info : plugins_) {
    if (info.name == name) {
      throw std::runtime_error(fmt::format("plugin '{}' is a {} plugin, not a {} plugin; {}", name,
                                           kind_name(info.kind), kind_name(kind), loaded));
    }
  }
  // A failure whose plugin name is known, or whose file is named like the plugin.
  for (const LoadFailure& failure : failures_) {
    const std::string stem = fs::path(failure.file).stem().string();
    const std::string suffix = "-" + std::string(name);
    const bool file_matches =
        failure.name.empty() && (stem == name || (stem.size() > suffix.size() &&
                                                   stem.ends_with(suffix)));
    if (failure.name == name || file_matches) {
      throw std::runtime_error(fmt::format("{} plugin '{}' failed to load: {}: {}; {}",
                                           kind_name(kind), name, failure.file, failure.reason,
                                           loaded));
    }
  }
  std::string dirs;
  for (const auto& dir : searched_dirs_) dirs += (dirs.empty() ? "" : ", ") + dir.string();
  throw std::runtime_error(fmt::format("no {} plugin named '{}' was found (searched: {}); {}",
                                       kind_name(kind), name, dirs.empty() ? "no folders" : dirs,
                                       loaded));
}

}  // namespace sable::plugin
