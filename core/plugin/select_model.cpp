// Which model plugin serves a checkpoint: native by architecture, or the generic fallback
// (DESIGN.md "Model architectures").
#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "core/plugin/registry.h"

namespace sable::plugin {
namespace {

std::string join(std::span<const std::string> items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "(none)" : out;
}

std::string model_plugins_summary(const Registry& registry) {
  std::string out;
  for (const PluginInfo* info : registry.of_kind(SABLE_PLUGIN_MODEL)) {
    if (!out.empty()) out += "; ";
    out += info->name + (info->generic ? " [generic]" : "");
    if (!info->architectures.empty()) out += " (" + join(info->architectures) + ")";
  }
  return out.empty() ? "none" : out;
}

// The first plugin (in discovery order) that claims the first architecture it can serve.
ModelSelection find_native(const Registry& registry, std::span<const std::string> architectures) {
  const auto models = registry.of_kind(SABLE_PLUGIN_MODEL);
  for (const std::string& arch : architectures) {
    for (const PluginInfo* info : models) {
      const auto& claimed = info->architectures;
      if (std::find(claimed.begin(), claimed.end(), arch) != claimed.end()) {
        return {info, fmt::format("plugin '{}' serves {} natively", info->name, arch)};
      }
    }
  }
  return {};
}

// The generic plugin: the one named "transformers" when present, else the first generic one.
const PluginInfo* find_generic(const Registry& registry) {
  const PluginInfo* first = nullptr;
  for (const PluginInfo* info : registry.of_kind(SABLE_PLUGIN_MODEL)) {
    if (!info->generic) continue;
    if (info->name == "transformers") return info;
    if (first == nullptr) first = info;
  }
  return first;
}

}  // namespace

ModelSelection select_model_plugin(const Registry& registry,
                                   std::span<const std::string> architectures,
                                   std::string_view impl) {
  const bool want_native = impl == "native" || impl == "sglang";
  const bool want_generic = impl == "transformers";
  if (!want_native && !want_generic && impl != "auto") {
    throw std::invalid_argument(fmt::format(
        "impl '{}' is not one of auto, native, sglang, transformers", impl));
  }
  const std::string archs = join(architectures);
  if (!want_generic) {
    ModelSelection native = find_native(registry, architectures);
    if (native.plugin != nullptr) {
      native.reason += fmt::format(" (impl={})", impl);
      return native;
    }
    if (want_native) {
      throw std::runtime_error(fmt::format(
          "impl={}: no model plugin claims architecture {}; loaded model plugins: {}", impl, archs,
          model_plugins_summary(registry)));
    }
  }
  if (const PluginInfo* generic = find_generic(registry)) {
    std::string why = want_generic ? "impl=transformers forces the generic plugin"
                                   : fmt::format("no native plugin claims {}", archs);
    return {generic, fmt::format("plugin '{}' (generic) serves {}: {}", generic->name, archs, why)};
  }
  throw std::runtime_error(fmt::format(
      "impl={}: no {}model plugin for architecture {} and no generic (transformers) plugin is "
      "loaded; loaded model plugins: {}",
      impl, want_generic ? "" : "native ", archs, model_plugins_summary(registry)));
}

}  // namespace sable::plugin
