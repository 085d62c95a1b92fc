// The Backend (backend.h) over sable::engine::Engine: the one file pair of the server that knows
// the engine's classes. Cumulative engine updates become deltas; a Generation's updates arrive
// through the handle's callback into a small queue, so the handler can wait with a timeout.
// Thread-safety: as Backend.
#pragma once

#include <memory>

#include "core/engine/engine.h"
#include "server/backend.h"

namespace sable::server {

class EngineBackend : public Backend {
 public:
  // `engine` must outlive this object.
  explicit EngineBackend(engine::Engine& engine);

  const tokenizer::Tokenizer& tokenizer() const override;
  ModelFacts facts() const override;
  std::unique_ptr<Generation> submit(GenerateInput input) override;
  void abort(const std::string& rid) override;
  void abort_all(const std::string& message) override;
  bool flush_cache() override;
  WeightUpdateResult update_weights_from_disk(const std::string& model_path) override;
  BackendStats stats() const override;
  std::vector<EmbedOutput> embed(std::vector<EmbedItem> items) override;
  void start_expert_distribution_record() override;
  void stop_expert_distribution_record() override;
  ExpertDistributionDump dump_expert_distribution_record() override;
  std::vector<LoraAdapterInfo> lora_adapters() const override;
  LoraAdapterInfo load_lora_adapter(const std::string& name, const std::string& path) override;
  void unload_lora_adapter(const std::string& name) override;

 private:
  engine::Engine& engine_;
};

}  // namespace sable::server
