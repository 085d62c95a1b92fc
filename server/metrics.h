// Prometheus metrics of the HTTP server (/metrics, text exposition format 0.0.4), named as SGLang
// names them (sglang:...) so existing dashboards work.
//
// Histograms (time to first token, inter-token latency, end-to-end latency) are observed by the
// request handlers as the client sees them; gauges and token counters come from the backend's
// stats snapshot at scrape time. Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/backend.h"

namespace sable::server {

// A cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends "# HELP/# TYPE" and the _bucket/_sum/_count lines. `labels` is the inside of {}.
  void render(std::string& out, std::string_view name, std::string_view help,
              std::string_view labels) const;
  int64_t count() const;
  double sum() const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket, not cumulative; last = +Inf
  double sum_ = 0.0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  explicit Metrics(std::string model_name);

  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_itl(double seconds) { itl_.observe(seconds); }
  void observe_e2e(double seconds) { e2e_.observe(seconds); }
  // One finished HTTP generation request (any route); `aborted` when it ended in an abort.
  void count_request(bool aborted);
  void count_http_error(int status);

  // The whole exposition for one scrape.
  std::string render(const BackendStats& stats, const ModelFacts& facts) const;

 private:
  std::string labels_;  // model_name="..."
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> aborted_{0};
  std::atomic<int64_t> errors_4xx_{0};
  std::atomic<int64_t> errors_5xx_{0};
};

// Escapes a label value (backslash, double quote, newline) per the exposition format.
std::string escape_label_value(std::string_view value);

}  // namespace sable::server
