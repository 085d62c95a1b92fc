// struct_size-checked reading of plugin tables (see table_check.h).
#include "core/plugin/table_check.h"

#include <fmt/core.h>

#include "sable/sable.h"

namespace sable::plugin {
namespace {

// End offset of a field: the struct must be at least this large for the field to be readable.
#define SABLE_FIELD_END(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))

constexpr uint32_t kMaxArchitectures = 4096;

std::string size_reason(const char* table, uint32_t have, size_t need) {
  return fmt::format("{} struct_size {} is smaller than the {} bytes ABI {}.0 requires", table,
                     have, need, SABLE_ABI_MAJOR);
}

// Names the first required function pointer that is NULL, or returns "".
template <size_t N>
std::string missing_function(const char* table, const void* const (&functions)[N],
                             const char* const (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (functions[i] == nullptr) return fmt::format("{}.{} is NULL", table, names[i]);
  }
  return "";
}

std::string check_model(const SableModelApi* api, PluginInfo& out) {
  const void* const fns[] = {(const void*)api->create, (const void*)api->destroy,
                             (const void*)api->get_info, (const void*)api->load_weights,
                             (const void*)api->forward};
  const char* const names[] = {"create", "destroy", "get_info", "load_weights", "forward"};
  if (auto m = missing_function("SableModelApi", fns, names); !m.empty()) return m;
  if (api->num_architectures > kMaxArchitectures) {
    return fmt::format("SableModelApi.num_architectures {} is implausible", api->num_architectures);
  }
  if (api->num_architectures > 0 && api->architectures == nullptr) {
    return "SableModelApi.architectures is NULL but num_architectures > 0";
  }
  for (uint32_t i = 0; i < api->num_architectures; ++i) {
    const char* arch = api->architectures[i];
    if (arch == nullptr || *arch == '\0') {
      return fmt::format("SableModelApi.architectures[{}] is NULL or empty", i);
    }
    out.architectures.emplace_back(arch);
  }
  out.generic = (api->flags & SABLE_MODEL_GENERIC) != 0;
  if (out.architectures.empty() && !out.generic) {
    return "model plugin claims no architectures and is not SABLE_MODEL_GENERIC";
  }
  return "";
}

std::string check_attention(const SableAttentionApi* api) {
  // probe and supports_head_dim may be NULL (documented as optional).
  const void* const fns[] = {(const void*)api->create, (const void*)api->destroy,
                             (const void*)api->plan, (const void*)api->run};
  const char* const names[] = {"create", "destroy", "plan", "run"};
  return missing_function("SableAttentionApi", fns, names);
}

std::string check_sampler(const SableSamplerApi* api) {
  const void* const fns[] = {(const void*)api->create, (const void*)api->destroy,
                             (const void*)api->sample};
  const char* const names[] = {"create", "destroy", "sample"};
  return missing_function("SableSamplerApi", fns, names);
}

std::string check_grammar(const SableGrammarApi* api) {
  // jump_forward may be NULL (documented as optional).
  const void* const fns[] = {(const void*)api->create,          (const void*)api->destroy,
                             (const void*)api->compile,         (const void*)api->grammar_destroy,
                             (const void*)api->matcher_create,  (const void*)api->matcher_destroy,
                             (const void*)api->fill_bitmask,    (const void*)api->accept_token,
                             (const void*)api->is_terminated,   (const void*)api->rollback};
  const char* const names[] = {"create",         "destroy",         "compile",
                               "grammar_destroy", "matcher_create", "matcher_destroy",
                               "fill_bitmask",   "accept_token",    "is_terminated",
                               "rollback"};
  return missing_function("SableGrammarApi", fns, names);
}

}  // namespace

size_t required_plugin_size() {
  // description is optional (may be NULL), so 1.0 requires everything up to api.
  return SABLE_FIELD_END(SablePlugin, api);
}

size_t required_api_size(SablePluginKind kind) {
  switch (kind) {
    case SABLE_PLUGIN_MODEL: return SABLE_FIELD_END(SableModelApi, forward);
    case SABLE_PLUGIN_ATTENTION: return SABLE_FIELD_END(SableAttentionApi, run);
    case SABLE_PLUGIN_SAMPLER: return SABLE_FIELD_END(SableSamplerApi, sample);
    case SABLE_PLUGIN_GRAMMAR: return SABLE_FIELD_END(SableGrammarApi, jump_forward);
  }
  return 0;
}

std::string read_plugin(const SablePlugin* plugin, PluginInfo& out) {
  if (plugin == nullptr) {
    return fmt::format("sable_plugin_entry returned NULL (the plugin does not serve host ABI {})",
                       SABLE_ABI_MAJOR);
  }
  if (plugin->struct_size < SABLE_FIELD_END(SablePlugin, abi_minor)) {
    return size_reason("SablePlugin", plugin->struct_size, required_plugin_size());
  }
  out.abi_major = plugin->abi_major;
  out.abi_minor = plugin->abi_minor;
  // Read the name early (when covered) so that failures can be matched to require() calls.
  if (plugin->struct_size >= SABLE_FIELD_END(SablePlugin, name) && plugin->name != nullptr) {
    out.name = plugin->name;
  }
  if (plugin->abi_major != SABLE_ABI_MAJOR) {
    return fmt::format("built for plugin ABI {}.{}, the host speaks ABI {}.{}", plugin->abi_major,
                       plugin->abi_minor, SABLE_ABI_MAJOR, SABLE_ABI_MINOR);
  }
  if (plugin->struct_size < required_plugin_size()) {
    return size_reason("SablePlugin", plugin->struct_size, required_plugin_size());
  }
  if (out.name.empty()) return "SablePlugin.name is NULL or empty";
  out.version = plugin->version != nullptr ? plugin->version : "";
  if (SABLE_HAS(plugin, description) && plugin->description != nullptr) {
    out.description = plugin->description;
  }
  out.plugin = plugin;
  const uint32_t kind = plugin->kind;
  if (kind < SABLE_PLUGIN_MODEL || kind > SABLE_PLUGIN_GRAMMAR) {
    return fmt::format("SablePlugin.kind {} is not a known plugin kind", kind);
  }
  out.kind = static_cast<SablePluginKind>(kind);
  if (plugin->api == nullptr) return "SablePlugin.api is NULL";
  out.api = plugin->api;
  // Every kind's table starts with uint32_t struct_size.
  const uint32_t api_size = *static_cast<const uint32_t*>(plugin->api);
  const size_t need = required_api_size(out.kind);
  switch (out.kind) {
    case SABLE_PLUGIN_MODEL:
      if (api_size < need) return size_reason("SableModelApi", api_size, need);
      return check_model(static_cast<const SableModelApi*>(plugin->api), out);
    case SABLE_PLUGIN_ATTENTION:
      if (api_size < need) return size_reason("SableAttentionApi", api_size, need);
      return check_attention(static_cast<const SableAttentionApi*>(plugin->api));
    case SABLE_PLUGIN_SAMPLER:
      if (api_size < need) return size_reason("SableSamplerApi", api_size, need);
      return check_sampler(static_cast<const SableSamplerApi*>(plugin->api));
    case SABLE_PLUGIN_GRAMMAR:
      if (api_size < need) return size_reason("SableGrammarApi", api_size, need);
      return check_grammar(static_cast<const SableGrammarApi*>(plugin->api));
  }
  return "unreachable plugin kind";
}

}  // namespace sable::plugin
