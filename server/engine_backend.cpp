// The engine adapter (see engine_backend.h).
#include "server/engine_backend.h"

#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace sable::server {

namespace {

Logprob convert(const scheduler::TokenLogprob& t) { return {t.logprob, t.token}; }

PositionLogprobs convert(const scheduler::PositionLogprobs& p) {
  PositionLogprobs out;
  out.chosen = convert(p.chosen);
  for (const auto& t : p.top) out.top.push_back(convert(t));
  for (const auto& t : p.token_ids) out.token_ids.push_back(convert(t));
  return out;
}

Finish convert(const scheduler::FinishReason& f) {
  Finish out;
  out.type = f.type == scheduler::FinishReason::Type::kStop     ? Finish::Type::kStop
             : f.type == scheduler::FinishReason::Type::kLength ? Finish::Type::kLength
                                                                : Finish::Type::kAbort;
  out.matched_token = f.matched_token;
  out.matched_text = f.matched_text;
  out.length = f.length;
  out.message = f.message;
  out.status_code = f.status_code;
  return out;
}

// Updates of one request (each the part new since the previous one: RequestHandle::on_delta),
// filled on the scheduler thread, read by the handler thread.
struct UpdateQueue {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<engine::GenerateResult> items;
  std::function<void(bool)> notify;  // Generation::set_notify
};

class EngineGeneration : public Generation {
 public:
  explicit EngineGeneration(std::unique_ptr<engine::RequestHandle> handle)
      : handle_(std::move(handle)), queue_(std::make_shared<UpdateQueue>()) {
    auto q = queue_;
    handle_->on_delta([q](const engine::GenerateResult& r) {
      std::function<void(bool)> notify;
      {
        std::lock_guard lock(q->mutex);
        q->items.push_back(r);
        q->cv.notify_all();
        notify = q->notify;
      }
      if (notify) notify(r.finished());
    });
  }

  void set_notify(std::function<void(bool)> notify) override {
    bool ready = false, final = false;
    {
      std::lock_guard lock(queue_->mutex);
      queue_->notify = notify;
      ready = !queue_->items.empty();
      final = ready && queue_->items.back().finished();
    }
    if (ready && notify) notify(final);
  }
  ~EngineGeneration() override {
    if (!done_) handle_->abort();
  }

  std::optional<Delta> next(std::chrono::milliseconds timeout) override {
    if (done_) return std::nullopt;
    engine::GenerateResult r;
    {
      std::unique_lock lock(queue_->mutex);
      if (!queue_->cv.wait_for(lock, timeout, [&] { return !queue_->items.empty(); })) {
        return std::nullopt;
      }
      r = std::move(queue_->items.front());
      queue_->items.pop_front();
    }
    return to_delta(std::move(r));
  }

  bool done() const override { return done_; }

 private:
  // One update (already only what is new: on_delta) as the server's Delta.
  Delta to_delta(engine::GenerateResult&& r) {
    Delta d;
    d.text = std::move(r.text);
    d.token_ids = std::move(r.output_ids);
    auto& m = r.meta_info;
    for (const auto& lp : m.output_logprobs) d.output_logprobs.push_back(convert(lp));
    for (const auto& lp : m.input_logprobs) d.input_logprobs.push_back(convert(lp));
    d.hidden_states = std::move(m.hidden_states);
    d.prompt_tokens = m.prompt_tokens;
    d.completion_tokens = m.completion_tokens;
    d.cached_tokens = m.cached_tokens;
    d.num_retractions = m.num_retractions;
    if (m.finish_reason) {
      d.finish = convert(*m.finish_reason);
      d.e2e_latency = m.e2e_latency;
      done_ = true;
    }
    return d;
  }

  std::unique_ptr<engine::RequestHandle> handle_;
  std::shared_ptr<UpdateQueue> queue_;
  bool done_ = false;
};

}  // namespace

EngineBackend::EngineBackend(engine::Engine& engine) : engine_(engine) {}

const tokenizer::Tokenizer& EngineBackend::tokenizer() const { return engine_.tokenizer(); }

ModelFacts EngineBackend::facts() const {
  ModelFacts f;
  const auto& c = engine_.config();
  f.model_path = c.model_path;
  f.tokenizer_path = c.tokenizer_path.empty() ? c.model_path : c.tokenizer_path;
  f.context_length = engine_.context_length();
  f.vocab_size = engine_.model_info().vocab_size;
  f.max_total_num_tokens = engine_.max_total_tokens();
  f.is_generation = !engine_.is_embedding();
  f.model_kind = engine::Engine::model_kind_name(engine_.model_kind());
  f.architecture = engine_.architecture();
  f.hidden_size = engine_.model_info().hidden_size;
  f.image_input = engine_.image_input();
  f.image_placeholder = engine_.image_placeholder();
  return f;
}

std::unique_ptr<Generation> EngineBackend::submit(GenerateInput in) {
  engine::GenerateInput e;
  e.input_ids = std::move(in.input_ids);
  e.params = std::move(in.params);
  e.rid = std::move(in.rid);
  e.logprobs.return_logprob = in.return_logprob;
  e.return_hidden_states = in.return_hidden_states;
  e.logprobs.logprob_start_len = in.logprob_start_len;
  e.logprobs.top_logprobs_num = in.top_logprobs_num;
  e.logprobs.token_ids_logprob = std::move(in.token_ids_logprob);
  e.lora_path = std::move(in.lora_path);
  e.image_data = std::move(in.image_data);
  return std::make_unique<EngineGeneration>(engine_.submit(std::move(e)));
}

namespace {
LoraAdapterInfo to_server(const lora::AdapterInfo& a) {
  return {a.name, a.path, a.rank, a.scaling, a.modules};
}
}  // namespace

std::vector<LoraAdapterInfo> EngineBackend::lora_adapters() const {
  std::vector<LoraAdapterInfo> out;
  for (const auto& a : engine_.lora_adapters()) out.push_back(to_server(a));
  return out;
}

LoraAdapterInfo EngineBackend::load_lora_adapter(const std::string& name, const std::string& path) {
  return to_server(engine_.load_lora_adapter(name, path));
}

void EngineBackend::unload_lora_adapter(const std::string& name) {
  engine_.unload_lora_adapter(name);
}

std::vector<EmbedOutput> EngineBackend::embed(std::vector<EmbedItem> items) {
  std::vector<engine::EmbedInput> inputs(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    inputs[i].input_ids = std::move(items[i].input_ids);
    inputs[i].token_types = std::move(items[i].token_types);
    inputs[i].dimensions = items[i].dimensions;
    inputs[i].rid = std::move(items[i].rid);
  }
  std::vector<engine::EmbeddingResult> results = engine_.embed(std::move(inputs));
  std::vector<EmbedOutput> out(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    out[i].embedding = std::move(results[i].embedding);
    out[i].id = std::move(results[i].id);
    out[i].prompt_tokens = results[i].prompt_tokens;
    out[i].e2e_latency = results[i].e2e_latency;
  }
  return out;
}

void EngineBackend::abort(const std::string& rid) { engine_.abort(rid); }
void EngineBackend::abort_all(const std::string& message) { engine_.abort_all(message); }
bool EngineBackend::flush_cache() { return engine_.flush_cache(); }

WeightUpdateResult EngineBackend::update_weights_from_disk(const std::string& model_path) {
  const auto r = engine_.update_weights_from_disk(model_path);
  return {r.success, r.message, r.num_paused_requests};
}

void EngineBackend::start_expert_distribution_record() {
  engine_.start_expert_distribution_record();
}
void EngineBackend::stop_expert_distribution_record() { engine_.stop_expert_distribution_record(); }

ExpertDistributionDump EngineBackend::dump_expert_distribution_record() {
  engine::ExpertDistribution d = engine_.dump_expert_distribution_record();
  ExpertDistributionDump out;
  out.mode = std::move(d.mode);
  out.recording = d.recording;
  out.num_layers = d.num_layers;
  out.num_experts = d.num_experts;
  out.counts = std::move(d.counts);
  out.total = d.total;
  return out;
}

BackendStats EngineBackend::stats() const {
  const scheduler::SchedulerStats s = engine_.stats();
  BackendStats b;
  b.running = s.running;
  b.queued = s.queued;
  b.kv_usage = s.kv_usage;
  b.used_tokens = static_cast<int64_t>(std::llround(s.kv_usage * static_cast<double>(s.total_pages))) *
                  s.page_size;
  b.cached_tokens_in_pool = s.cached_pages * s.page_size;
  b.cache_hit_rate = s.cache_hit_rate;
  b.prompt_tokens = s.prompt_tokens;
  b.generation_tokens = s.generation_tokens;
  b.jump_forward_tokens = s.jump_forward_tokens;
  b.cached_prompt_tokens = s.cached_tokens;
  b.finished_requests = s.finished_requests;
  b.num_retractions = s.num_retractions;
  b.forward_steps = s.num_steps;
  b.extend_steps = s.extend_steps;
  b.max_batch_size = s.max_batch_size;
  if (s.timed_cycles > 0) {
    b.step_time_us = s.cycle_time_sum * 1e6 / static_cast<double>(s.timed_cycles);
    b.model_time_us = s.model_time_sum * 1e6 / static_cast<double>(s.timed_cycles);
  }
  b.kv_pages_total = s.total_pages;
  b.kv_pages_free = s.free_pages;
  b.kv_pages_cached = s.cached_pages;
  b.kv_pages_evictable = s.evictable_pages;
  b.weight_version = engine_.config().weight_version;
  return b;
}

}  // namespace sable::server
