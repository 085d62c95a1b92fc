// The embedding executor (see embedder.h).
#include "core/engine/embedder.h"

#include <fmt/format.h>

#include <cmath>
#include <numeric>
#include <span>
#include <stdexcept>

#include "core/runner/model_runner.h"

namespace sable::engine {

Embedder::Embedder(Exclusive exclusive, RunnerRef runner, Limits limits)
    : exclusive_(std::move(exclusive)), runner_(std::move(runner)), limits_(limits) {
  if (limits_.max_batch_tokens < 1 || limits_.max_seqs < 1 || limits_.num_pages < 1 ||
      limits_.page_size < 1) {
    throw std::invalid_argument(
        "embedder: max_batch_tokens, max_seqs, num_pages and page_size "
        "must be positive");
  }
  worker_ = std::thread([this] { loop(); });
}

Embedder::~Embedder() {
  shutdown();
}

void Embedder::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::deque<Item> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
  }
  for (Item& item : left) {
    item.promise.set_exception(std::make_exception_ptr(std::runtime_error("engine: shut down")));
  }
}

std::future<Embedder::Output> Embedder::submit(std::vector<int32_t> ids, bool normalize) {
  if (ids.empty()) throw std::invalid_argument("embedder: the prompt has no tokens");
  if (pages_for(ids.size()) > limits_.num_pages) {
    throw std::invalid_argument(
        fmt::format("embedder: the prompt ({} tokens) does not fit in the "
                    "KV pool ({} tokens)",
                    ids.size(), limits_.num_pages * limits_.page_size));
  }
  Item item;
  item.ids = std::move(ids);
  item.normalize = normalize;
  std::future<Output> fut = item.promise.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) throw std::runtime_error("engine: shut down");
    queue_.push_back(std::move(item));
  }
  cv_.notify_all();
  return fut;
}

Embedder::Stats Embedder::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats s;
  s.queued = static_cast<int32_t>(queue_.size());
  s.running = running_;
  s.prompt_tokens = prompt_tokens_;
  s.finished_requests = finished_;
  s.num_forwards = forwards_;
  return s;
}

void Embedder::loop() {
  while (true) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;  // shutdown() fails what is still queued
      batch = take_batch();
      running_ = static_cast<int32_t>(batch.size());
    }
    run_batch(batch);
  }
}

std::vector<Embedder::Item> Embedder::take_batch() {
  std::vector<Item> batch;
  int64_t tokens = 0, pages = 0;
  while (!queue_.empty()) {
    const Item& next = queue_.front();
    const auto n = static_cast<int64_t>(next.ids.size());
    const int64_t p = pages_for(next.ids.size());
    // The first prompt always goes (alone and chunked when it is longer than one forward).
    const bool fits = static_cast<int32_t>(batch.size()) < limits_.max_seqs &&
                      tokens + n <= limits_.max_batch_tokens && pages + p <= limits_.num_pages;
    if (!batch.empty() && !fits) break;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    tokens += n;
    pages += p;
    if (n > limits_.max_batch_tokens) break;
  }
  return batch;
}

void Embedder::run_batch(std::vector<Item>& batch) {
  std::vector<Output> outputs(batch.size());
  try {
    // Pages 0.. in order: sequence i owns a contiguous run after those of sequences < i.
    int64_t total_pages = 0;
    for (const Item& item : batch) total_pages += pages_for(item.ids.size());
    std::vector<int32_t> page_ids(static_cast<size_t>(total_pages));
    std::iota(page_ids.begin(), page_ids.end(), 0);

    int64_t forwards = 0;
    std::vector<runner::ModelRunner::Sequence> seqs(batch.size());
    std::vector<float> hidden;
    int32_t hidden_size = 0;
    exclusive_([&] {
      runner::ModelRunner& r = runner_();
      if (batch.size() == 1 &&
          static_cast<int64_t>(batch[0].ids.size()) > limits_.max_batch_tokens) {
        // One long prompt: chunked prefill over its own pages; the last chunk's row is the last
        // token's.
        const std::span<const int32_t> ids(batch[0].ids);
        const auto chunk = static_cast<size_t>(limits_.max_batch_tokens);
        for (size_t start = 0; start < ids.size(); start += chunk) {
          runner::ModelRunner::Sequence s;
          s.new_tokens = ids.subspan(start, std::min(chunk, ids.size() - start));
          s.num_cached = static_cast<int32_t>(start);
          s.pages = page_ids;
          auto result = r.forward(std::span<const runner::ModelRunner::Sequence>(&s, 1), true);
          ++forwards;
          hidden = std::move(result.hidden);
          hidden_size = result.hidden_size;
        }
        return;
      }
      size_t page_offset = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto need = static_cast<size_t>(pages_for(batch[i].ids.size()));
        seqs[i].new_tokens = batch[i].ids;
        seqs[i].num_cached = 0;
        seqs[i].pages = std::span<const int32_t>(page_ids).subspan(page_offset, need);
        page_offset += need;
      }
      auto result = r.forward(seqs, /*want_hidden=*/true, /*device_logits=*/false);
      ++forwards;
      hidden = std::move(result.hidden);
      hidden_size = result.hidden_size;
    });
    if (hidden_size <= 0 || hidden.size() != batch.size() * static_cast<size_t>(hidden_size)) {
      throw std::runtime_error(
          fmt::format("embedder: the forward returned {} hidden values for {} "
                      "sequences of hidden size {}",
                      hidden.size(), batch.size(), hidden_size));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const float* row = hidden.data() + i * static_cast<size_t>(hidden_size);
      std::vector<float> v(row, row + hidden_size);
      if (batch[i].normalize) {
        double sq = 0.0;
        for (float x : v) sq += static_cast<double>(x) * x;
        // torch.nn.functional.normalize: x / max(||x||, 1e-12).
        const double norm = std::max(std::sqrt(sq), 1e-12);
        for (float& x : v) x = static_cast<float>(x / norm);
      }
      outputs[i].embedding = std::move(v);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = 0;
      forwards_ += forwards;
      finished_ += static_cast<int64_t>(batch.size());
      for (const Item& item : batch) prompt_tokens_ += static_cast<int64_t>(item.ids.size());
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = 0;
    }
    const std::exception_ptr error = std::current_exception();
    for (Item& item : batch) item.promise.set_exception(error);
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) batch[i].promise.set_value(std::move(outputs[i]));
}

}  // namespace sable::engine
