// AttentionBackend: plugin choice, creation over the KV pool, planning.
#include "core/runner/attention_backend.h"

#include <fmt/format.h>

#include <stdexcept>

#include "core/ops/context.h"
#include "core/plugin/registry.h"
#include "core/runner/kv_pool.h"
#include "core/runner/model_host.h"

namespace sable::runner {
namespace {

const plugin::PluginInfo& choose(const plugin::Registry& registry, const std::string& name,
                                 int32_t device_type) {
  if (name != "auto") return registry.require(SABLE_PLUGIN_ATTENTION, name);
  const plugin::PluginInfo* best = nullptr;
  int32_t best_score = 0;
  for (const plugin::PluginInfo* p : registry.of_kind(SABLE_PLUGIN_ATTENTION)) {
    const auto* api = p->api_as<SableAttentionApi>();
    const int32_t score = api->probe != nullptr ? api->probe(device_type) : 0;
    if (score > best_score) {
      best = p;
      best_score = score;
    }
  }
  if (best == nullptr)
    throw std::runtime_error(
        fmt::format("no attention backend is usable on device type {} (loaded plugins: {})",
                    device_type, registry.loaded_summary()));
  return *best;
}

}  // namespace

std::unique_ptr<AttentionBackend> AttentionBackend::create(
    const plugin::Registry& registry, const std::string& name, ModelHost& host,
    const SableModelInfo& info, const KvPool& kv, int32_t max_batch_tokens, int32_t max_seqs) {
  const int32_t device_type = host.api()->device_type;
  const plugin::PluginInfo& p = choose(registry, name, device_type);
  std::unique_ptr<AttentionBackend> backend(new AttentionBackend());
  backend->name_ = p.name;
  backend->api_ = p.api_as<SableAttentionApi>();
  backend->host_ = &host;
  if (backend->api_->supports_head_dim != nullptr &&
      backend->api_->supports_head_dim(info.head_dim) == 0)
    throw std::runtime_error(
        fmt::format("attention backend '{}' does not support head_dim {}", p.name, info.head_dim));
  SableAttentionInit init{};
  init.struct_size = sizeof(init);
  init.device_type = device_type;
  init.device_index = 0;
  init.num_layers = info.num_layers;
  init.num_q_heads = info.num_q_heads;
  init.num_kv_heads = info.num_kv_heads;
  init.head_dim = info.head_dim;
  init.page_size = kv.geometry().page_size;
  init.kv_dtype = kv.geometry().dtype;
  init.sliding_window = info.sliding_window;
  init.max_batch_tokens = max_batch_tokens;
  init.max_seqs = max_seqs;
  init.layers = kv.layers().data();
  const SableStatus s = backend->api_->create(host.api(), host.handle(), &init, &backend->attn_);
  host.check(s, fmt::format("creating attention backend '{}'", p.name));
  return backend;
}

AttentionBackend::~AttentionBackend() {
  if (api_ != nullptr && attn_ != nullptr) api_->destroy(attn_);
}

void AttentionBackend::plan(const SableAttentionBatch& batch) {
  host_->check(api_->plan(attn_, &batch), fmt::format("attention '{}' plan", name_));
}

void AttentionBackend::bind(SableOpsContext& ctx) const {
  ctx.attention_api = api_;
  ctx.attention = attn_;
}

}  // namespace sable::runner
