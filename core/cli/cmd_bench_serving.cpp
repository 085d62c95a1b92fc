// `sable bench serving`: an online serving benchmark against a running server, like
// sglang.bench_serving: prompts from SGLang's datasets (bench_dataset.h, same options and seed),
// one warm-up request, then Poisson arrivals at --request-rate (numpy's exponential draws, as
// SGLang's) with at most --max-concurrency in flight, streaming /generate (--backend sglang) or
// /v1/completions (--backend openai). Prints SGLang's summary (throughput; E2E, TTFT, TPOT and ITL
// mean / median / p90 / p95 / p99) and can append it with the dataset parameters as a JSON line.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/cli/bench_common.h"
#include "core/cli/bench_dataset.h"
#include "core/cli/command.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct RequestResult {
  bool ok = false;
  std::string error;
  int64_t output_len = 0;
  double ttft = 0.0;
  double e2e = 0.0;
  std::vector<double> itl;  // per token: a chunk's gap split evenly over its new tokens (seconds)
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// numpy.percentile (linear interpolation); 0 for no samples, as SGLang's `np.percentile(x or 0)`.
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
    add_dataset_options(a, dataset_);
    a.add_option("--tokenizer", tokenizer_path_,
                 "Tokenizer folder (default: the server's, from /get_model_info)");
    a.add_option("--request-rate", request_rate_,
                 "Mean arrivals per second (Poisson); inf sends all at once")
        ->capture_default_str();
    a.add_option("--max-concurrency", max_concurrency_, "Most requests in flight (0: no limit)")
        ->capture_default_str();
    a.add_option("--warmup-requests", warmup_requests_, "Requests sent before the timed run")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    a.add_flag("--flush-cache", flush_cache_, "POST /flush_cache after the warm-up");
    a.add_flag("--disable-ignore-eos", disable_ignore_eos_, "Stop at EOS instead of ignoring it");
    a.add_option("--model", model_, "Model name for the openai backend")->capture_default_str();
    a.add_option("--api-key", api_key_, "Bearer token");
    a.add_option("--lora-name", lora_names_,
                 "LoRA adapters the requests use, in turn by send order (sglang: lora_path; "
                 "openai: model)");
    a.add_option(
        "--extra-request-body", extra_request_body_,
        "JSON object merged into every request's payload, as SGLang's (sglang backend: "
        "'{\"sampling_params\": {...}}' replaces the parameters; openai: top-level fields)");
    a.add_option("--output-file", output_file_, "Append the summary as one JSON line here");
    a.add_option("--tag", tag_, "Free text stored with the summary");
  }

  int run() override {
    dataset_.validate();
    extra_ = parse_extra_request_body(extra_request_body_);
    httplib::Client probe(base_url_);
    probe.set_connection_timeout(5);
    if (auto r = probe.Get("/health"); !r || r->status != 200) {
      fmt::print(stderr, "bench serving: {} is not healthy ({})\n", base_url_,
                 r ? std::to_string(r->status) : httplib::to_string(r.error()));
      return 1;
    }
    const auto tok = tokenizer::Tokenizer::load(resolve_tokenizer(probe));
    BenchRandom rng(dataset_.seed);
    const std::vector<BenchRequest> requests = sample_requests(dataset_, *tok, rng);
    if (requests.empty()) throw std::runtime_error("the dataset gave no requests");
    const DatasetTotals totals = dataset_totals(requests);
    fmt::print("#Input tokens: {}\n#Output tokens: {}\n", totals.input_tokens, totals.output_tokens);

    std::mutex mutex;
    std::condition_variable cv;
    int in_flight = 0;
    auto launch = [&](std::vector<std::thread>& threads, const BenchRequest& r, int output_len,
                      RequestResult& out) {
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return max_concurrency_ <= 0 || in_flight < max_concurrency_; });
        ++in_flight;
      }
      threads.emplace_back([this, &mutex, &cv, &in_flight, request = &r, result = &out, output_len] {
        *result = send(*request, output_len);
        std::lock_guard lock(mutex);
        --in_flight;
        cv.notify_all();
      });
    };
    // Warm-up: the first request with at most 32 output tokens, as SGLang's.
    std::vector<RequestResult> warm(static_cast<size_t>(warmup_requests_));
    std::vector<std::thread> warm_threads;
    for (auto& w : warm) launch(warm_threads, requests[0], std::min(requests[0].output_len, 32), w);
    for (auto& th : warm_threads) th.join();
    if (!warm.empty() && std::none_of(warm.begin(), warm.end(), [](auto& w) { return w.ok; })) {
      fmt::print(stderr, "bench serving: the warm-up request failed: {}\n", warm[0].error);
      return 1;
    }
    if (flush_cache_) probe.Post("/flush_cache");

    std::vector<RequestResult> results(requests.size());
    std::vector<std::thread> threads;
    const bool paced = !std::isinf(request_rate_) && request_rate_ > 0;
    const auto start = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) {
      launch(threads, requests[i], requests[i].output_len, results[i]);
      // SGLang sleeps an exponential interval after each request it sends.
      if (paced) {
        std::this_thread::sleep_for(std::chrono::duration<double>(rng.np.exponential(1.0 / request_rate_)));
      }
    }
    for (auto& th : threads) th.join();
    report(requests, results, seconds_since(start));
    return 0;
  }

 private:
  // --tokenizer, else the server's tokenizer_path (SGLang asks /model_info the same way).
  std::string resolve_tokenizer(httplib::Client& client) const {
    if (!tokenizer_path_.empty()) return tokenizer_path_;
    for (const char* route : {"/model_info", "/get_model_info"}) {
      auto r = client.Get(route);
      if (!r || r->status != 200) continue;
      const json info = json::parse(r->body, nullptr, false);
      if (!info.is_object()) continue;
      for (const char* key : {"tokenizer_path", "model_path"})
        if (info.contains(key) && info[key].is_string() && !info[key].get<std::string>().empty())
          return info[key].get<std::string>();
    }
    throw std::runtime_error(fmt::format(
        "--tokenizer: {} did not say where its tokenizer is; pass the model folder", base_url_));
  }

  RequestResult send(const BenchRequest& request, int output_len) const {
    RequestResult r;
    const bool text = !dataset_.tokenize_prompt;
    const std::string lora =
        lora_names_.empty() ? "" : lora_names_[sent_.fetch_add(1) % lora_names_.size()];
    json body;
    std::string path;
    if (backend_ == "sglang") {
      path = "/generate";
      body = {{"stream", true},
              {"sampling_params",
               {{"max_new_tokens", output_len}, {"ignore_eos", !disable_ignore_eos_}, {"temperature", 0}}}};
      if (text) body["text"] = request.text;
      else body["input_ids"] = request.ids;
      if (!lora.empty()) body["lora_path"] = lora;
    } else {
      path = "/v1/completions";
      body = {{"model", model_},  {"max_tokens", output_len}, {"ignore_eos", !disable_ignore_eos_},
              {"temperature", 0}, {"stream", true},           {"stream_options", {{"include_usage", true}}}};
      if (text) body["prompt"] = request.text;
      else body["prompt"] = request.ids;
      if (!lora.empty()) body["model"] = lora;
    }
    body.update(extra_);  // SGLang: {**payload, **extra_request_body}
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
    // One event with new tokens: its gap is shared evenly by them (SGLang's adjusted ITL).
    auto on_tokens = [&](int64_t now_tokens) {
      if (now_tokens <= tokens) return;
      const auto now = Clock::now();
      if (tokens == 0) {
        r.ttft = std::chrono::duration<double>(now - start).count();
      } else {
        const double gap = std::chrono::duration<double>(now - last).count();
        r.itl.insert(r.itl.end(), static_cast<size_t>(now_tokens - tokens),
                     gap / static_cast<double>(now_tokens - tokens));
      }
      last = now;
      tokens = now_tokens;
    };
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
        if (backend_ == "sglang") {
          on_tokens(j["meta_info"].value("completion_tokens", tokens));
        } else if (j.contains("usage") && j["usage"].is_object()) {
          r.output_len = j["usage"].value("completion_tokens", tokens);
        } else if (!j["choices"].empty() && !j["choices"][0].value("text", "").empty()) {
          on_tokens(tokens + 1);
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
      r.error = fmt::format("HTTP {}: {}", res.status, res.body.substr(0, 200));
      return r;
    }
    r.e2e = seconds_since(start);
    if (r.output_len == 0) r.output_len = tokens;
    r.ok = r.error.empty();
    return r;
  }

  // SGLang's calculate_metrics and its printout.
  void report(const std::vector<BenchRequest>& requests, const std::vector<RequestResult>& results,
              double duration) const {
    std::vector<double> ttft, itl, e2e, tpot;
    int64_t ok = 0, in_tokens = 0, out_tokens = 0;
    std::string first_error;
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      if (!r.ok) {
        if (first_error.empty()) first_error = r.error;
        continue;
      }
      ++ok;
      in_tokens += requests[i].prompt_len;
      out_tokens += r.output_len;
      ttft.push_back(r.ttft * 1000);
      e2e.push_back(r.e2e * 1000);
      for (double g : r.itl) itl.push_back(g * 1000);
      if (r.output_len > 1) tpot.push_back((r.e2e - r.ttft) * 1000 / static_cast<double>(r.output_len - 1));
    }
    json summary = {{"backend", backend_},
                    {"base_url", base_url_},
                    {"dataset", dataset_.to_json()},
                    {"request_rate", std::isinf(request_rate_) ? json("inf") : json(request_rate_)},
                    {"max_concurrency", max_concurrency_},
                    {"ignore_eos", !disable_ignore_eos_},
                    {"duration", duration},
                    {"completed", ok},
                    {"total_input_tokens", in_tokens},
                    {"total_output_tokens", out_tokens},
                    {"request_throughput", ok / duration},
                    {"input_throughput", in_tokens / duration},
                    {"output_throughput", out_tokens / duration},
                    {"total_throughput", (in_tokens + out_tokens) / duration},
                    {"concurrency", mean(e2e) * static_cast<double>(e2e.size()) / 1000 / duration},
                    {"max_itl_ms", itl.empty() ? 0.0 : *std::max_element(itl.begin(), itl.end())},
                    {"extra_request_body", extra_},
                    {"tag", tag_}};
    const std::pair<const char*, const std::vector<double>*> series[] = {
        {"e2e_latency", &e2e}, {"ttft", &ttft}, {"tpot", &tpot}, {"itl", &itl}};
    for (const auto& [name, values] : series) {
      summary[fmt::format("mean_{}_ms", name)] = mean(*values);
      summary[fmt::format("median_{}_ms", name)] = percentile(*values, 50);
      for (int p : {90, 95, 99}) summary[fmt::format("p{}_{}_ms", p, name)] = percentile(*values, p);
    }
    print_summary_header(" Serving Benchmark Result ");
    print_summary_line("Backend:", backend_);
    print_summary_line("Traffic request rate:",
                       std::isinf(request_rate_) ? std::string("inf") : fmt::format("{}", request_rate_));
    print_summary_line("Max request concurrency:", max_concurrency_ > 0
                                                        ? std::to_string(max_concurrency_)
                                                        : std::string("not set"));
    print_summary_line("Successful requests:", ok);
    if (!first_error.empty()) print_summary_line("First error:", first_error);
    print_summary_line("Benchmark duration (s):", duration);
    print_summary_line("Total input tokens:", in_tokens);
    print_summary_line("Total generated tokens:", out_tokens);
    print_summary_line("Request throughput (req/s):", ok / duration);
    print_summary_line("Input token throughput (tok/s):", in_tokens / duration);
    print_summary_line("Output token throughput (tok/s):", out_tokens / duration);
    print_summary_line("Total token throughput (tok/s):", (in_tokens + out_tokens) / duration);
    print_summary_line("Concurrency:", summary["concurrency"].get<double>());
    const struct {
      const char* header;
      const char* key;
      const char* label;
    } sections[] = {{"End-to-End Latency", "e2e_latency", "E2E Latency"},
                    {"Time to First Token", "ttft", "TTFT"},
                    {"Time per Output Token (excl. 1st token)", "tpot", "TPOT"},
                    {"Inter-Token Latency", "itl", "ITL"}};
    for (const auto& s : sections) {
      print_summary_header(s.header, '-');
      print_summary_line(fmt::format("Mean {} (ms):", s.label), summary[fmt::format("mean_{}_ms", s.key)].get<double>());
      print_summary_line(fmt::format("Median {} (ms):", s.label),
                         summary[fmt::format("median_{}_ms", s.key)].get<double>());
      for (int p : {90, 95, 99}) {
        print_summary_line(fmt::format("P{} {} (ms):", p, s.label),
                           summary[fmt::format("p{}_{}_ms", p, s.key)].get<double>());
      }
    }
    print_summary_line("Max ITL (ms):", summary["max_itl_ms"].get<double>());
    fmt::print("{}\n", std::string(50, '='));
    append_result(output_file_, summary.dump());
  }

  std::string base_url_ = "http://127.0.0.1:30000";
  std::string backend_ = "sglang";
  DatasetOptions dataset_;
  std::string tokenizer_path_;
  double request_rate_ = std::numeric_limits<double>::infinity();
  int max_concurrency_ = 0;
  int warmup_requests_ = 1;
  bool flush_cache_ = false;
  bool disable_ignore_eos_ = false;
  std::string model_ = "default";
  std::vector<std::string> lora_names_;
  mutable std::atomic<size_t> sent_{0};
  std::string api_key_;
  std::string output_file_;
  std::string tag_;
  std::string extra_request_body_;
  nlohmann::json extra_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<Command> make_bench_serving_command(CLI::App& parent) {
  return std::make_unique<BenchServingCommand>(parent);
}

}  // namespace sable::cli
