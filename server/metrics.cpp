// Prometheus text exposition for the server (see metrics.h).
#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sable::server {

namespace {

// SGLang's default buckets (seconds).
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
                                          0.5,   0.75,  1.0,  2.5,  5.0,  7.5,  10.0, 15.0, 20.0,
                                          25.0,  30.0};
const std::vector<double> kItlBuckets = {0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025,
                                         0.03,  0.035, 0.04,  0.06,  0.08, 0.1,   0.2,  0.3,
                                         0.4,   0.5,   0.75,  1.0,   2.0};
const std::vector<double> kE2eBuckets = {0.1, 0.25, 0.5,  1.0,  2.0,  5.0,   10.0,  20.0,
                                         40.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0};

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void header(std::string& out, std::string_view name, std::string_view help,
            std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
  fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, format_value(value));
}

void gauge(std::string& out, std::string_view name, std::string_view help,
           std::string_view labels, double value) {
  header(out, name, help, "gauge");
  sample(out, name, labels, value);
}

void counter(std::string& out, std::string_view name, std::string_view help,
             std::string_view labels, double value) {
  header(out, name, help, "counter");
  sample(out, name, labels, value);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

int64_t Histogram::count() const {
  std::lock_guard lock(mutex_);
  return count_;
}

double Histogram::sum() const {
  std::lock_guard lock(mutex_);
  return sum_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help,
                       std::string_view labels) const {
  std::lock_guard lock(mutex_);
  header(out, name, help, "histogram");
  const std::string sep = labels.empty() ? "" : ",";
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep,
                   le, cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n", name, labels, format_value(sum_));
  fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", name, labels, count_);
}

Metrics::Metrics(std::string model_name)
    : labels_(fmt::format("model_name=\"{}\"", escape_label_value(model_name))),
      ttft_(kTtftBuckets),
      itl_(kItlBuckets),
      e2e_(kE2eBuckets) {}

void Metrics::count_request(bool aborted) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (aborted) aborted_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::count_http_error(int status) {
  (status >= 500 ? errors_5xx_ : errors_4xx_).fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const BackendStats& s, const ModelFacts& facts) const {
  std::string out;
  out.reserve(8192);
  const std::string_view l = labels_;
  gauge(out, "sglang:num_running_reqs", "The number of running requests.", l, s.running);
  gauge(out, "sglang:num_queue_reqs", "The number of requests in the waiting queue.", l,
        s.queued);
  gauge(out, "sglang:num_used_tokens", "The number of KV-cache tokens held by requests.", l,
        s.used_tokens);
  gauge(out, "sglang:max_total_num_tokens", "The KV-cache pool capacity in tokens.", l,
        facts.max_total_num_tokens);
  gauge(out, "sglang:token_usage", "The KV-cache usage (fraction of the pool).", l, s.kv_usage);
  gauge(out, "sglang:cache_hit_rate", "The prefix-cache hit rate (cached / prompt tokens).", l,
        s.cache_hit_rate);
  counter(out, "sglang:prompt_tokens_total", "Number of prefill tokens processed.", l,
          s.prompt_tokens);
  counter(out, "sglang:generation_tokens_total", "Number of generation tokens processed.", l,
          s.generation_tokens);
  counter(out, "sglang:cached_tokens_total", "Number of prompt tokens served from the cache.", l,
          s.cached_prompt_tokens);
  counter(out, "sglang:num_requests_total", "Number of generation requests served.", l,
          requests_.load());
  counter(out, "sglang:num_aborted_requests_total", "Number of requests aborted.", l,
          aborted_.load());
  counter(out, "sglang:num_retractions_total", "Number of requests retracted to the queue.", l,
          s.num_retractions);
  counter(out, "sable:jump_forward_tokens_total",
          "Output tokens a grammar forced, appended without a decode step of their own.", l,
          s.jump_forward_tokens);
  header(out, "sable:kv_pages", "KV pool pages by state (at rest free + evictable = total).",
         "gauge");
  sample(out, "sable:kv_pages", fmt::format("{},state=\"total\"", l), s.kv_pages_total);
  sample(out, "sable:kv_pages", fmt::format("{},state=\"free\"", l), s.kv_pages_free);
  sample(out, "sable:kv_pages", fmt::format("{},state=\"cached\"", l), s.kv_pages_cached);
  sample(out, "sable:kv_pages", fmt::format("{},state=\"evictable\"", l), s.kv_pages_evictable);
  header(out, "sable:http_errors_total", "HTTP error answers by class.", "counter");
  sample(out, "sable:http_errors_total", fmt::format("{},class=\"4xx\"", l), errors_4xx_.load());
  sample(out, "sable:http_errors_total", fmt::format("{},class=\"5xx\"", l), errors_5xx_.load());
  ttft_.render(out, "sglang:time_to_first_token_seconds", "Histogram of time to first token.", l);
  itl_.render(out, "sglang:inter_token_latency_seconds", "Histogram of inter-token latency.", l);
  e2e_.render(out, "sglang:e2e_request_latency_seconds",
              "Histogram of end-to-end request latency.", l);
  return out;
}

}  // namespace sable::server
