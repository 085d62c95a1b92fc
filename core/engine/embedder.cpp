// The embedding executor (see embedder.h).
#include "core/engine/embedder.h"

#include <fmt/format.h>

#include <cmath>
#include <numeric>
#include <span>
#include <stdexcept>

#include "core/runner/model_runner.h"

namespace sable::engine {

namespace {

using Sequence = runner::ModelRunner::Sequence;

// The output rows a sequence needs in this mode: one row (first or last token), or every row for
// mean pooling.
void shape(Sequence& s, const Embedder::Mode& mode) {
  if (mode.scores) {
    s.first_token = mode.first_token;
    return;
  }
  s.all_logits = mode.pooling == PoolingKind::kMean;
  s.first_token = mode.pooling == PoolingKind::kCls;
}

// Adds `rows` rows of width `width` at `src` into `sum`.
void add_rows(std::vector<float>& sum, const float* src, int64_t rows, int32_t width) {
  sum.resize(static_cast<size_t>(width), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int32_t j = 0; j < width; ++j) sum[static_cast<size_t>(j)] += src[r * width + j];
  }
}

}  // namespace

Embedder::Embedder(Exclusive exclusive, RunnerRef runner, Limits limits, Mode mode)
    : exclusive_(std::move(exclusive)), runner_(std::move(runner)), limits_(limits), mode_(mode) {
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

std::future<Embedder::Output> Embedder::submit(std::vector<int32_t> ids, bool normalize,
                                              std::vector<int32_t> token_types,
                                              int64_t dimensions) {
  if (dimensions < 0) throw std::invalid_argument("embedder: dimensions must not be negative");
  if (ids.empty()) throw std::invalid_argument("embedder: the prompt has no tokens");
  if (!token_types.empty() && token_types.size() != ids.size())
    throw std::invalid_argument("embedder: token_types must have one entry per token");
  if (mode_.whole && static_cast<int64_t>(ids.size()) > limits_.max_batch_tokens) {
    throw std::invalid_argument(fmt::format(
        "embedder: the prompt ({} tokens) is longer than one forward ({} tokens, "
        "chunked_prefill_size + max_running_requests) and an encoder cannot run it in chunks",
        ids.size(), limits_.max_batch_tokens));
  }
  if (pages_for(ids.size()) > limits_.num_pages) {
    throw std::invalid_argument(
        fmt::format("embedder: the prompt ({} tokens) does not fit in the "
                    "KV pool ({} tokens)",
                    ids.size(), limits_.num_pages * limits_.page_size));
  }
  Item item;
  item.ids = std::move(ids);
  item.token_types = std::move(token_types);
  item.normalize = normalize && !mode_.scores;
  item.dimensions = dimensions;
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

std::vector<float> Embedder::run_chunked(runner::ModelRunner& r, const Item& item,
                                         std::span<const int32_t> pages,
                                         int64_t& forwards) const {
  const std::span<const int32_t> ids(item.ids);
  const std::span<const int32_t> types(item.token_types);
  const auto chunk = static_cast<size_t>(limits_.max_batch_tokens);
  const bool first = mode_.scores ? mode_.first_token : mode_.pooling == PoolingKind::kCls;
  std::vector<float> v;
  for (size_t start = 0; start < ids.size(); start += chunk) {
    const size_t n = std::min(chunk, ids.size() - start);
    Sequence s;
    s.new_tokens = ids.subspan(start, n);
    if (!types.empty()) s.token_types = types.subspan(start, n);
    s.num_cached = static_cast<int32_t>(start);
    s.pages = pages;
    shape(s, mode_);
    const bool last_chunk = start + n == ids.size();
    auto result = r.forward(std::span<const Sequence>(&s, 1), !mode_.scores);
    ++forwards;
    const std::vector<float>& rows = mode_.scores ? result.logits : result.hidden;
    const int32_t width = mode_.scores ? result.vocab : result.hidden_size;
    if (!mode_.scores && mode_.pooling == PoolingKind::kMean) {
      add_rows(v, rows.data(), result.rows, width);
    } else if ((first && start == 0) || (!first && last_chunk)) {
      v.assign(rows.begin(), rows.begin() + width);
    }
  }
  if (!mode_.scores && mode_.pooling == PoolingKind::kMean) {
    for (float& x : v) x /= static_cast<float>(ids.size());
  }
  return v;
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
    exclusive_([&] {
      runner::ModelRunner& r = runner_();
      if (batch.size() == 1 &&
          static_cast<int64_t>(batch[0].ids.size()) > limits_.max_batch_tokens) {
        outputs[0].embedding = run_chunked(r, batch[0], page_ids, forwards);
        return;
      }
      std::vector<Sequence> seqs(batch.size());
      size_t page_offset = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto need = static_cast<size_t>(pages_for(batch[i].ids.size()));
        seqs[i].new_tokens = batch[i].ids;
        seqs[i].token_types = batch[i].token_types;
        seqs[i].num_cached = 0;
        seqs[i].pages = std::span<const int32_t>(page_ids).subspan(page_offset, need);
        shape(seqs[i], mode_);
        page_offset += need;
      }
      auto result = r.forward(seqs, /*want_hidden=*/!mode_.scores, /*device_logits=*/false);
      ++forwards;
      const std::vector<float>& rows = mode_.scores ? result.logits : result.hidden;
      const int32_t width = mode_.scores ? result.vocab : result.hidden_size;
      const bool mean = !mode_.scores && mode_.pooling == PoolingKind::kMean;
      int64_t expected = 0;
      for (const Item& item : batch) expected += mean ? static_cast<int64_t>(item.ids.size()) : 1;
      if (width <= 0 || result.rows != expected ||
          rows.size() != static_cast<size_t>(expected) * static_cast<size_t>(width)) {
        throw std::runtime_error(fmt::format(
            "embedder: the forward returned {} rows of {} values for {} sequences", result.rows,
            width, batch.size()));
      }
      int64_t row = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const float* src = rows.data() + row * width;
        if (mean) {
          const auto n = static_cast<int64_t>(batch[i].ids.size());
          add_rows(outputs[i].embedding, src, n, width);
          for (float& x : outputs[i].embedding) x /= static_cast<float>(n);
          row += n;
        } else {
          outputs[i].embedding.assign(src, src + width);
          ++row;
        }
      }
    });
    for (size_t i = 0; i < batch.size(); ++i) {
      std::vector<float>& v = outputs[i].embedding;
      const auto dims = static_cast<size_t>(batch[i].dimensions);
      if (dims > 0 && dims < v.size()) v.resize(dims);  // Matryoshka: truncate, then normalise
      if (!batch[i].normalize) continue;
      double sq = 0.0;
      for (float x : v) sq += static_cast<double>(x) * x;
      // torch.nn.functional.normalize: x / max(||x||, 1e-12).
      const double norm = std::max(std::sqrt(sq), 1e-12);
      for (float& x : v) x = static_cast<float>(x / norm);
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
