// The Engine's LoRA side: the manager made at startup from enable_lora / lora_paths /
// max_loras_per_batch / max_lora_rank, and the load / unload / list calls behind the server's
// /load_lora_adapter, /unload_lora_adapter and /v1/models.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/engine/engine_core.h"
#include "core/lora/runner_base_model.h"
#include "core/model_source/resolve_model.h"
#include "core/util/log.h"

namespace sable::engine {

namespace {

constexpr int32_t kDefaultMaxRank = 64;  // when nothing at startup says otherwise

// "NAME=PATH" -> (NAME, PATH); a bare "PATH" names the adapter after itself (SGLang's forms).
std::pair<std::string, std::string> split_lora_path(const std::string& item) {
  const auto eq = item.find('=');
  if (eq == std::string::npos) return {item, item};
  return {item.substr(0, eq), item.substr(eq + 1)};
}

// The rank an adapter's config declares (0 when it cannot be read: the load reports why).
int32_t declared_rank(const std::string& path) {
  try {
    model_source::ResolveOptions ro;
    ro.want = model_source::Want::kLoraAdapter;
    const auto src = model_source::resolve_model(path, ro);
    std::ifstream in(src.path / "adapter_config.json");
    const auto c = nlohmann::json::parse(in);
    return c.contains("r") && c["r"].is_number_integer() ? c["r"].get<int32_t>() : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

void start_lora(EngineCore& c) {
  const config::ServerConfig& cfg = c.config;
  if (!cfg.enable_lora && cfg.lora_paths.empty()) return;
  if (cfg.is_embedding)
    throw config::ConfigError("lora_paths: LoRA adapters are served for generation only, not with "
                              "is_embedding");
  if (cfg.tp_size > 1)
    throw config::ConfigError("lora_paths: LoRA adapters are not supported with tp_size > 1 yet");
  runner::ModelRunner& r = c.backend->runner();
  lora::LoraOptions o;
  o.max_loras_per_batch = static_cast<int32_t>(cfg.max_loras_per_batch);
  o.max_lora_rank = static_cast<int32_t>(cfg.max_lora_rank);
  if (o.max_lora_rank == 0) {
    for (const auto& item : cfg.lora_paths)
      o.max_lora_rank = std::max(o.max_lora_rank, declared_rank(split_lora_path(item).second));
    if (o.max_lora_rank == 0) o.max_lora_rank = kDefaultMaxRank;
  }
  o.compute_dtype = r.compute_dtype();
  o.max_batch_tokens = c.runner_options.max_batch_tokens;
  RunnerBackend* backend = c.backend.get();  // the runner may be swapped (update_weights)
  lora::BaseModel base = lora::runner_base_model(
      r, [backend](const std::string& name) { return backend->runner().weight_shape(name); });
#ifdef SABLE_HAVE_CUDA
  if (r.device_type() == SABLE_DEVICE_CUDA)
    c.lora_memory = runner::make_cuda_memory(c.runner_options.device_index);
#endif
  if (!c.lora_memory) c.lora_memory = runner::make_cpu_memory();
  c.lora = std::make_unique<lora::LoraManager>(o, std::move(base), *c.lora_memory);
  c.backend->set_lora(c.lora.get());
  for (const auto& item : cfg.lora_paths) {
    const auto [name, path] = split_lora_path(item);
    try {
      c.lora->load(name, path);
    } catch (const std::invalid_argument& e) {
      throw config::ConfigError(fmt::format("lora_paths: {}", e.what()));
    }
  }
  log::info("LoRA on: {} adapter(s) loaded, {} per batch, max rank {}", cfg.lora_paths.size(),
            o.max_loras_per_batch, o.max_lora_rank);
}

bool Engine::lora_enabled() const { return core_->lora != nullptr; }

namespace {
void require_lora(const EngineCore& c, const char* field) {
  if (!c.lora)
    throw ValidationError(field, fmt::format("{}: LoRA is not enabled on this server (start it "
                                             "with --enable-lora or --lora-paths NAME=PATH)",
                                             field));
}
}  // namespace

lora::AdapterInfo Engine::load_lora_adapter(const std::string& name, const std::string& path) {
  require_lora(*core_, "lora_name");
  if (name.empty()) throw ValidationError("lora_name", "lora_name: required");
  if (path.empty()) throw ValidationError("lora_path", "lora_path: required");
  try {
    return core_->lora->load(name, path);
  } catch (const std::invalid_argument& e) {
    throw ValidationError("lora_path", e.what());
  }
}

void Engine::unload_lora_adapter(const std::string& name) {
  require_lora(*core_, "lora_name");
  try {
    core_->lora->unload(name);
  } catch (const std::invalid_argument& e) {
    throw ValidationError("lora_name", e.what());
  }
}

std::vector<lora::AdapterInfo> Engine::lora_adapters() const {
  return core_->lora ? core_->lora->list() : std::vector<lora::AdapterInfo>{};
}

}  // namespace sable::engine
