// RequestStream: the thread-safe per-request channel (see request.h).
#include "core/scheduler/request.h"

namespace sable::scheduler {
namespace {

void append(StreamChunk& into, StreamChunk&& more) {
  into.token_ids.insert(into.token_ids.end(), more.token_ids.begin(), more.token_ids.end());
  into.text += more.text;
  for (auto& l : more.output_logprobs) into.output_logprobs.push_back(std::move(l));
  for (auto& l : more.input_logprobs) into.input_logprobs.push_back(std::move(l));
  for (auto& h : more.hidden_states) into.hidden_states.push_back(std::move(h));
  into.finish = std::move(more.finish);
  into.prompt_tokens = more.prompt_tokens;
  into.completion_tokens = more.completion_tokens;
  into.cached_tokens = more.cached_tokens;
  into.num_retractions = more.num_retractions;
  into.e2e_latency = more.e2e_latency;
}

}  // namespace

void RequestStream::push(StreamChunk chunk) {
  Callback cb;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (final_pushed_) return;  // nothing after the final chunk
    if (chunk.finish) final_pushed_ = true;
    if (!callback_) {
      queue_.push_back(std::move(chunk));
      cv_.notify_all();
      return;
    }
    cb = callback_;
    if (chunk.finish) final_taken_ = true;
  }
  cb(chunk);
}

std::optional<StreamChunk> RequestStream::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || final_taken_; });
  if (queue_.empty()) return std::nullopt;
  StreamChunk c = std::move(queue_.front());
  queue_.pop_front();
  if (c.finish) final_taken_ = true;
  return c;
}

std::optional<StreamChunk> RequestStream::next_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || final_taken_; })) {
    return std::nullopt;
  }
  if (queue_.empty()) return std::nullopt;
  StreamChunk c = std::move(queue_.front());
  queue_.pop_front();
  if (c.finish) final_taken_ = true;
  return c;
}

std::optional<StreamChunk> RequestStream::drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (queue_.empty()) return std::nullopt;
  StreamChunk c = std::move(queue_.front());
  queue_.pop_front();
  while (!queue_.empty()) {
    append(c, std::move(queue_.front()));
    queue_.pop_front();
  }
  if (c.finish) final_taken_ = true;
  return c;
}

// The queued chunks go to `cb` before any later push may call it: the callback is installed only
// once the queue is seen empty under the lock, so a chunk the producer pushes meanwhile is queued
// and delivered here in order. (Installing it first and delivering the queue afterwards let a
// concurrent push call `cb` ahead of older chunks: a token out of place in the output.)
void RequestStream::set_callback(Callback cb) {
  for (;;) {
    std::deque<StreamChunk> pending;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty()) {
        callback_ = std::move(cb);
        return;
      }
      pending.swap(queue_);
      for (const auto& c : pending) {
        if (c.finish) final_taken_ = true;
      }
    }
    for (const auto& c : pending) cb(c);
  }
}

bool RequestStream::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return final_pushed_;
}

}  // namespace sable::scheduler
