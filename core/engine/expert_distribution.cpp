// The Engine's expert distribution controls (engine.h): SGLang's start/stop/dump of the MoE expert
// selection counts, run on the scheduler thread so they never race a forward.
#include <stdexcept>

#include "core/engine/engine.h"
#include "core/engine/engine_core.h"

namespace sable::engine {

namespace {

void require_mode(const EngineCore& c) {
  if (c.config.expert_distribution_recorder_mode.empty())
    throw std::invalid_argument(
        "expert distribution recording is off: start the server with "
        "--expert-distribution-recorder-mode stat (expert_distribution_recorder_mode)");
}

}  // namespace

void Engine::start_expert_distribution_record() {
  EngineCore& c = *core_;
  require_mode(c);
  c.scheduler->run_exclusive([&c] {
    runner::ModelRunner& r = c.backend->runner();
    r.reset_expert_counts();
    r.set_expert_recording(true);
  });
}

void Engine::stop_expert_distribution_record() {
  EngineCore& c = *core_;
  require_mode(c);
  c.scheduler->run_exclusive([&c] { c.backend->runner().set_expert_recording(false); });
}

ExpertDistribution Engine::dump_expert_distribution_record() {
  EngineCore& c = *core_;
  require_mode(c);
  ExpertDistribution d;
  d.mode = c.config.expert_distribution_recorder_mode;
  c.scheduler->run_exclusive([&c, &d] {
    runner::ModelRunner& r = c.backend->runner();
    d.counts = r.expert_counts();
    d.recording = r.expert_recording();
    r.reset_expert_counts();
  });
  d.num_layers = static_cast<int32_t>(d.counts.size());
  d.num_experts = d.counts.empty() ? 0 : static_cast<int32_t>(d.counts.front().size());
  for (const auto& row : d.counts)
    for (int64_t v : row) d.total += v;
  return d;
}

}  // namespace sable::engine
