// RequestHandle (one request's consumer side) and GenerateStream (a batch's merged updates).
#include <condition_variable>
#include <deque>
#include <mutex>

#include "core/engine/engine_core.h"

namespace sable::engine {

// The cumulative state, shared with the async callback (which may outlive the handle).
struct RequestHandle::State {
  std::mutex mutex;
  GenerateResult acc;

  // The cumulative state after chunk c (on_update, next()).
  GenerateResult apply(const scheduler::StreamChunk& c) {
    std::lock_guard<std::mutex> lock(mutex);
    add(acc, c);
    return acc;
  }
  // The same without the copy (wait(): only the final state is returned).
  void absorb(const scheduler::StreamChunk& c) {
    std::lock_guard<std::mutex> lock(mutex);
    add(acc, c);
  }
  // Chunk c alone, with the request's fixed fields (on_delta): no copy of what came before.
  GenerateResult delta(const scheduler::StreamChunk& c) {
    GenerateResult d;
    {
      std::lock_guard<std::mutex> lock(mutex);
      d.index = acc.index;
      d.meta_info.id = acc.meta_info.id;
      d.meta_info.weight_version = acc.meta_info.weight_version;
      d.meta_info.return_hidden_states = acc.meta_info.return_hidden_states;
    }
    add(d, c);
    return d;
  }

 private:
  static void add(GenerateResult& r, const scheduler::StreamChunk& c) {
    r.text += c.text;
    r.output_ids.insert(r.output_ids.end(), c.token_ids.begin(), c.token_ids.end());
    MetaInfo& m = r.meta_info;
    m.prompt_tokens = c.prompt_tokens;
    m.completion_tokens = c.completion_tokens;
    m.cached_tokens = c.cached_tokens;
    m.num_retractions = c.num_retractions;
    m.input_logprobs.insert(m.input_logprobs.end(), c.input_logprobs.begin(), c.input_logprobs.end());
    m.output_logprobs.insert(m.output_logprobs.end(), c.output_logprobs.begin(),
                             c.output_logprobs.end());
    m.hidden_states.insert(m.hidden_states.end(), c.hidden_states.begin(), c.hidden_states.end());
    if (c.finish) {
      m.finish_reason = c.finish;
      m.e2e_latency = c.e2e_latency;
    }
  }
};

RequestHandle::RequestHandle(std::weak_ptr<EngineCore> core, std::string rid, int32_t index,
                             std::shared_ptr<scheduler::RequestStream> stream)
    : core_(std::move(core)),
      rid_(std::move(rid)),
      index_(index),
      stream_(std::move(stream)),
      state_(std::make_shared<State>()) {
  state_->acc.index = index_;
  state_->acc.meta_info.id = rid_;
  if (auto c = core_.lock()) state_->acc.meta_info.weight_version = c->config.weight_version;
}

void RequestHandle::report_hidden_states() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->acc.meta_info.return_hidden_states = true;
}

RequestHandle::~RequestHandle() {
  if (!stream_->finished()) abort();
}

std::optional<GenerateResult> RequestHandle::next() {
  auto chunk = stream_->next();
  if (!chunk) return std::nullopt;
  return state_->apply(*chunk);
}

GenerateResult RequestHandle::wait() {
  // Chunk by chunk into the state, one copy at the end (next() copies it per chunk).
  while (auto chunk = stream_->next()) state_->absorb(*chunk);
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->acc;
}

void RequestHandle::on_update(std::function<void(const GenerateResult&)> cb) {
  auto state = state_;
  stream_->set_callback([state, cb](const scheduler::StreamChunk& c) { cb(state->apply(c)); });
}

void RequestHandle::on_delta(std::function<void(const GenerateResult&)> cb) {
  auto state = state_;
  stream_->set_callback([state, cb](const scheduler::StreamChunk& c) { cb(state->delta(c)); });
}

void RequestHandle::abort() {
  if (auto c = core_.lock()) {
    if (!c->shut_down) c->scheduler->abort(rid_);
  }
}

// ---------------------------------------------------------------------------------------------

struct GenerateStream::Queue {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<GenerateResult> items;
  size_t remaining = 0;
};

GenerateStream::GenerateStream(std::vector<std::unique_ptr<RequestHandle>> handles)
    : handles_(std::move(handles)), queue_(std::make_shared<Queue>()) {
  queue_->remaining = handles_.size();
  for (auto& h : handles_) {
    auto q = queue_;
    h->on_update([q](const GenerateResult& r) {
      std::lock_guard<std::mutex> lock(q->mutex);
      q->items.push_back(r);
      q->cv.notify_all();
    });
  }
}

GenerateStream::GenerateStream(GenerateStream&&) noexcept = default;
GenerateStream::~GenerateStream() = default;  // unfinished handles abort on destruction

std::optional<GenerateResult> GenerateStream::next() {
  if (!queue_) return std::nullopt;
  std::unique_lock<std::mutex> lock(queue_->mutex);
  queue_->cv.wait(lock, [&] { return !queue_->items.empty() || queue_->remaining == 0; });
  if (queue_->items.empty()) return std::nullopt;
  GenerateResult r = std::move(queue_->items.front());
  queue_->items.pop_front();
  if (r.finished()) --queue_->remaining;
  return r;
}

}  // namespace sable::engine
