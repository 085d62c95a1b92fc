// `sable bench serving`: an online serving benchmark against a running server, like
// sglang.bench_serving: random prompts (token ids), Poisson arrivals at --request-rate, at most
// --max-concurrency requests in flight, streaming /generate (--backend sglang) or
// /v1/completions (--backend openai). Reports throughput and TTFT / inter-token latency / E2E
// percentiles (p50/p90/p99) and can append them as one JSON line to a results file.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/cli/bench_common.h"
#include "core/cli/command.h"

namespace sable::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct RequestResult {
  bool ok = false;
  std::string error;
  int64_t prompt_len = 0;
  int64_t output_len = 0;
  double ttft = 0.0;
  double e2e = 0.0;
  std::vector<double> itl;  // gaps between streamed events carrying new tokens (seconds)
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

class BenchServingCommand : public Command {
 public:
  explicit BenchServingCommand(CLI::App& parent)
      : Command(bench_app(parent).add_subcommand(
            "serving", "Online serving benchmark against a running server (like sglang.bench_serving)")) {
    CLI::App& a = *app();
    a.add_option("--base-url", base_url_, "Server address")->capture_default_str();
    a.add_option("--backend", backend_, "sglang (/generate) or openai (/v1/completions)")
        ->check(CLI::IsMember({"sglang", "openai"}))
        ->capture_default_str();
    a.add_option("--num-prompts", num_prompts_, "Requests to send")->check(CLI::PositiveNumber)
        ->capture_default_str();
    a.add_option("--request-rate", request_rate_,
                 "Mean arrivals per second (Poisson); inf sends all at once")
        ->capture_default_str();
    a.add_option("--max-concurrency", max_concurrency_, "Most requests in flight (0: no limit)")
        ->capture_default_str();
    a.add_option("--random-input-len", input_len_, "Prompt tokens")->capture_default_str();
    a.add_option("--random-output-len", output_len_, "Output tokens (EOS ignored)")
        ->capture_default_str();
    a.add_option("--random-range-ratio", range_ratio_,
                 "Lengths are drawn from [ratio * len, len]")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    a.add_option("--seed", seed_, "Random seed")->capture_default_str();
    a.add_option("--model", model_, "Model name for the openai backend")->capture_default_str();
    a.add_option("--api-key", api_key_, "Bearer token");
    a.add_option("--output-file", output_file_, "Append the summary as one JSON line here");
    a.add_option("--tag", tag_, "Free text stored with the summary");
  }

  int run() override {
    std::mt19937_64 rng(seed_);
    const auto prompts = make_prompts(rng);
    httplib::Client probe(base_url_);
    probe.set_connection_timeout(5);
    if (auto r = probe.Get("/health"); !r || r->status != 200) {
      fmt::print(stderr, "bench serving: {} is not healthy ({})\n", base_url_,
                 r ? std::to_string(r->status) : httplib::to_string(r.error()));
      return 1;
    }
    // Arrival times: exponential gaps with mean 1/rate.
    std::exponential_distribution<double> gap(std::isinf(request_rate_) ? 1.0 : request_rate_);
    std::vector<RequestResult> results(prompts.size());
    std::vector<std::thread> threads;
    std::mutex mutex;
    std::condition_variable cv;
    int in_flight = 0;
    const auto start = Clock::now();
    double t = 0.0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (!std::isinf(request_rate_) && request_rate_ > 0) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(t)));
        t += gap(rng);
      }
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return max_concurrency_ <= 0 || in_flight < max_concurrency_; });
        ++in_flight;
      }
      threads.emplace_back([&, i] {
        results[i] = send(prompts[i].first, prompts[i].second);
        std::lock_guard lock(mutex);
        --in_flight;
        cv.notify_all();
      });
    }
    for (auto& th : threads) th.join();
    report(results, seconds_since(start));
    return 0;
  }

 private:

  // (prompt token ids, output length) per request. Ids avoid the low (often special) range.
  std::vector<std::pair<std::vector<int32_t>, int>> make_prompts(std::mt19937_64& rng) const {
    std::uniform_int_distribution<int32_t> token(1000, 20000);
    auto len = [&](int full) {
      const int lo = std::max(1, static_cast<int>(range_ratio_ * full));
      return std::uniform_int_distribution<int>(lo, std::max(lo, full))(rng);
    };
    std::vector<std::pair<std::vector<int32_t>, int>> out;
    for (int i = 0; i < num_prompts_; ++i) {
      std::vector<int32_t> ids(static_cast<size_t>(len(input_len_)));
      for (auto& id : ids) id = token(rng);
      out.emplace_back(std::move(ids), len(output_len_));
    }
    return out;
  }

  RequestResult send(const std::vector<int32_t>& prompt, int output_len) const {
    RequestResult r;
    r.prompt_len = static_cast<int64_t>(prompt.size());
    json body;
    std::string path;
    if (backend_ == "sglang") {
      path = "/generate";
      body = {{"input_ids", prompt},
              {"stream", true},
              {"sampling_params",
               {{"max_new_tokens", output_len}, {"ignore_eos", true}, {"temperature", 0}}}};
    } else {
      path = "/v1/completions";
      body = {{"model", model_},        {"prompt", prompt},  {"max_tokens", output_len},
              {"ignore_eos", true},     {"temperature", 0},  {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
    }
    httplib::Client client(base_url_);
    client.set_read_timeout(3600);
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    if (!api_key_.empty()) req.set_header("Authorization", "Bearer " + api_key_);
    const auto start = Clock::now();
    auto last = start;
    int64_t tokens = 0;
    std::string buffer;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      buffer.append(data, n);
      size_t end;
      while ((end = buffer.find("\n\n")) != std::string::npos) {
        const std::string event = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
        const json j = json::parse(event.substr(6), nullptr, false);
        if (j.is_discarded()) continue;
        if (j.contains("error")) {
          r.error = j["error"].dump();
          continue;
        }
        int64_t now_tokens = tokens;
        if (backend_ == "sglang") {
          now_tokens = j["meta_info"].value("completion_tokens", tokens);
        } else if (j.contains("usage") && j["usage"].is_object()) {
          now_tokens = j["usage"].value("completion_tokens", tokens);
          r.output_len = now_tokens;
          continue;
        } else if (!j["choices"].empty() && !j["choices"][0].value("text", "").empty()) {
          now_tokens = tokens + 1;
        }
        if (now_tokens > tokens) {
          const auto now = Clock::now();
          if (tokens == 0) r.ttft = std::chrono::duration<double>(now - start).count();
          else r.itl.push_back(std::chrono::duration<double>(now - last).count());
          last = now;
          tokens = now_tokens;
        }
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err;
    if (!client.send(req, res, err)) {
      r.error = httplib::to_string(err);
      return r;
    }
    if (res.status != 200) {
      r.error = fmt::format("HTTP {}", res.status);
      return r;
    }
    r.e2e = seconds_since(start);
    if (r.output_len == 0) r.output_len = tokens;
    r.ok = r.error.empty();
    return r;
  }

  void report(const std::vector<RequestResult>& results, double duration) const {
    std::vector<double> ttft, itl, e2e, tpot;
    int64_t ok = 0, in_tokens = 0, out_tokens = 0;
    std::string first_error;
    for (const auto& r : results) {
      if (!r.ok) {
        if (first_error.empty()) first_error = r.error;
        continue;
      }
      ++ok;
      in_tokens += r.prompt_len;
      out_tokens += r.output_len;
      ttft.push_back(r.ttft * 1000);
      e2e.push_back(r.e2e * 1000);
      for (double g : r.itl) itl.push_back(g * 1000);
      if (r.output_len > 1) tpot.push_back((r.e2e - r.ttft) * 1000 / static_cast<double>(r.output_len - 1));
    }
    json summary = {
        {"backend", backend_}, {"base_url", base_url_}, {"num_prompts", num_prompts_},
        {"request_rate", std::isinf(request_rate_) ? json("inf") : json(request_rate_)},
        {"max_concurrency", max_concurrency_}, {"random_input_len", input_len_},
        {"random_output_len", output_len_}, {"completed", ok}, {"duration_s", duration},
        {"request_throughput", ok / duration}, {"input_throughput", in_tokens / duration},
        {"output_throughput", out_tokens / duration},
        {"total_input_tokens", in_tokens}, {"total_output_tokens", out_tokens},
        {"mean_ttft_ms", mean(ttft)}, {"p50_ttft_ms", percentile(ttft, 50)},
        {"p90_ttft_ms", percentile(ttft, 90)}, {"p99_ttft_ms", percentile(ttft, 99)},
        {"mean_itl_ms", mean(itl)}, {"p50_itl_ms", percentile(itl, 50)},
        {"p90_itl_ms", percentile(itl, 90)}, {"p99_itl_ms", percentile(itl, 99)},
        {"mean_tpot_ms", mean(tpot)}, {"mean_e2e_ms", mean(e2e)},
        {"p50_e2e_ms", percentile(e2e, 50)}, {"p99_e2e_ms", percentile(e2e, 99)}, {"tag", tag_}};
    fmt::print("============ Serving Benchmark Result ============\n");
    fmt::print("{:<40}{}\n", "Backend:", backend_);
    fmt::print("{:<40}{}\n", "Successful requests:", ok);
    if (!first_error.empty()) fmt::print("{:<40}{}\n", "First error:", first_error);
    fmt::print("{:<40}{:.2f}\n", "Benchmark duration (s):", duration);
    fmt::print("{:<40}{}\n", "Total input tokens:", in_tokens);
    fmt::print("{:<40}{}\n", "Total generated tokens:", out_tokens);
    fmt::print("{:<40}{:.2f}\n", "Request throughput (req/s):", ok / duration);
    fmt::print("{:<40}{:.2f}\n", "Input token throughput (tok/s):", in_tokens / duration);
    fmt::print("{:<40}{:.2f}\n", "Output token throughput (tok/s):", out_tokens / duration);
    for (const char* k : {"ttft", "itl", "e2e"}) {
      fmt::print("{:<40}{:.2f} / {:.2f} / {:.2f} / {:.2f}\n",
                 fmt::format("{} mean/p50/p90/p99 (ms):", k), summary.value(fmt::format("mean_{}_ms", k), 0.0),
                 summary.value(fmt::format("p50_{}_ms", k), 0.0),
                 k == std::string("e2e") ? percentile(e2e, 90) : summary.value(fmt::format("p90_{}_ms", k), 0.0),
                 summary.value(fmt::format("p99_{}_ms", k), 0.0));
    }
    fmt::print("{:<40}{:.2f}\n", "Mean TPOT (ms):", mean(tpot));
    fmt::print("==================================================\n");
    append_result(output_file_, summary.dump());
  }

  std::string base_url_ = "http://127.0.0.1:30000";
  std::string backend_ = "sglang";
  int num_prompts_ = 100;
  double request_rate_ = std::numeric_limits<double>::infinity();
  int max_concurrency_ = 0;
  int input_len_ = 128;
  int output_len_ = 64;
  double range_ratio_ = 1.0;
  uint64_t seed_ = 1;
  std::string model_ = "default";
  std::string api_key_;
  std::string output_file_;
  std::string tag_;
};

}  // namespace

std::unique_ptr<Command> make_bench_serving_command(CLI::App& parent) {
  return std::make_unique<BenchServingCommand>(parent);
}

}  // namespace sable::cli
