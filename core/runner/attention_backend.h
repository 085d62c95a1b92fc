// The attention backend a runner uses: picks the plugin (by name, or the best probe score for the
// device when "auto"), creates it over the runner's KV pool, and plans each batch.
// Ownership: owns the backend object; borrows the registry's plugin table and the KV pool, which
// must outlive it. Thread-safety: one thread at a time, like the runner.
#pragma once

#include <memory>
#include <string>

#include "sable/attention.h"
#include "sable/model.h"

struct SableOpsContext;

namespace sable::plugin {
class Registry;
}

namespace sable::runner {

class KvPool;
class ModelHost;

class AttentionBackend {
 public:
  // Throws std::runtime_error naming the backend and the reason when it cannot be created (no
  // usable backend, unknown name, head_dim not supported, the plugin's own error).
  static std::unique_ptr<AttentionBackend> create(const plugin::Registry& registry,
                                                  const std::string& name, ModelHost& host,
                                                  const SableModelInfo& info, const KvPool& kv,
                                                  int32_t max_batch_tokens, int32_t max_seqs);
  ~AttentionBackend();
  AttentionBackend(const AttentionBackend&) = delete;
  AttentionBackend& operator=(const AttentionBackend&) = delete;

  const std::string& name() const { return name_; }
  // Plans the batch; throws with the plugin's message on failure.
  void plan(const SableAttentionBatch& batch);
  // Points the forward context at this backend.
  void bind(SableOpsContext& ctx) const;

 private:
  AttentionBackend() = default;
  std::string name_;
  const SableAttentionApi* api_ = nullptr;
  SableAttention* attn_ = nullptr;
  ModelHost* host_ = nullptr;
};

}  // namespace sable::runner
