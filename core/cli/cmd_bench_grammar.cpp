// `sable bench grammar --schemas DIR|TARBALL --tokenizer-path DIR [--threads 1] [--json OUT]`:
// JSONSchemaBench (MaskBench) through a grammar plugin, as issue 20 and the data's README define
// the measures. For every schema: compile it (timed; a refusal is recorded with its message), then
// force each instance's compact JSON text, as the tokenizer encodes it, token by token through a
// matcher: every token must be in the mask (each mask fill is timed), a valid instance must end
// where an EOS token is allowed, an invalid one must be stopped at some token (EOS included).
// Prints coverage, wrong accepts / wrong rejects among compiled schemas, compile and mask time
// percentiles (wall and the thread's CPU time, which a shared machine does not inflate) and peak
// memory; --json writes them with the per-schema failures and a digest of each schema's masks (two
// engine builds that give the same answers have the same digests: a speed change can be checked
// for changed masks without comparing them one by one).
#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/cli/bench_common.h"
#include "core/cli/bench_grammar_cases.h"
#include "core/cli/command.h"
#include "core/grammar/grammar_backend.h"
#include "core/plugin/registry.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/log.h"

namespace sable::cli {
namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// CPU time of the calling thread in microseconds: mask times that do not count the time the thread
// waits for a core (the development machine is shared; wall times there vary several-fold).
double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

// The q-quantile (0..1) of sorted values, nearest rank; 0 when empty.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

struct CaseResult {
  std::string name;
  bool compiled = false;
  std::string error;  // the refusal
  double compile_us = 0;
  double compile_cpu_us = 0;  // the compiling thread's CPU time (the VM is shared)
  int64_t valid = 0, invalid = 0, wrong_accepts = 0, wrong_rejects = 0;
  int64_t masks = 0;
  double mask_cpu_us = 0;  // summed over its masks (to find the schemas that cost the most)
  uint64_t mask_digest = 1469598103934665603ull;  // FNV-1a over its masks' words, in order
  std::vector<std::string> failures;  // "wrong accept: <description>" ...
};

// What one worker thread measures.
struct Totals {
  std::vector<double> mask_us;
  std::vector<double> mask_cpu_us;
  int64_t tokens = 0;
};

// The refusal's reason without where it happened, to count refusals by kind.
std::string reason_of(const std::string& error) {
  std::string r = error;
  const size_t at = r.rfind(" (at ");
  if (at != std::string::npos) r.erase(at);
  if (r.size() > 110) r = r.substr(0, 107) + "...";
  return r;
}

class BenchGrammarCommand : public Command {
 public:
  explicit BenchGrammarCommand(CLI::App& parent)
      : Command(bench_app(parent).add_subcommand(
            "grammar", "JSONSchemaBench through the grammar engine: coverage, correctness, speed")) {
    CLI::App& a = *app();
    a.add_option("--schemas", schemas_, "Folder or tarball of JSONSchemaBench case files")->required();
    a.add_option("--tokenizer-path", tokenizer_path_, "Folder with tokenizer.json")->required();
    a.add_option("--threads", threads_, "Worker threads (mask times are single-threaded at 1)")
        ->default_val(1)
        ->check(CLI::Range(1, 256));
    a.add_option("--json", json_out_, "Write the measures and per-schema failures to this file");
    a.add_option("--grammar-backend", backend_name_, "Grammar plugin (auto: the first loaded)")
        ->default_val("auto");
    a.add_option("--plugin-dir", plugin_dirs_, "Extra plugin folders (repeatable)");
    a.add_option("--limit", limit_, "Only the first N cases (by file name)")->default_val(0);
    a.add_option("--every", every_, "Only every Nth case (by file name; as compare.py --every)")
        ->default_val(1)
        ->check(CLI::Range(1, 1000000));
    a.add_option("--property-order", property_order_,
                 "schema: as each schema says (any order); declared: add the automaton engine's "
                 "x-sable option for declared order (what xgrammar and llguidance generate)")
        ->default_val("schema")
        ->check(CLI::IsMember({"schema", "declared"}));
  }

  int run() override {
    log::set_level(log::Level::kWarning);
    std::vector<GrammarCase> cases = load_grammar_cases(schemas_, limit_);
    if (every_ > 1) {
      std::vector<GrammarCase> picked;
      for (size_t i = 0; i < cases.size(); i += static_cast<size_t>(every_))
        picked.push_back(std::move(cases[i]));
      cases = std::move(picked);
    }
    auto tokenizer = tokenizer::Tokenizer::load(tokenizer_path_);
    plugin::DiscoveryOptions discovery;
    discovery.dirs = plugin::default_plugin_dirs(plugin_dirs_);
    discovery.include_env = true;
    auto registry = plugin::Registry::discover(discovery);
    auto backend = grammar::GrammarBackend::create(*registry, backend_name_, *tokenizer,
                                                   tokenizer->vocab_size());
    if (!backend) throw std::runtime_error("no grammar plugin is loaded (see `sable plugins`)");
    const std::vector<int32_t> eos = tokenizer->eos_ids();
    if (eos.empty()) throw std::runtime_error(tokenizer_path_ + ": the tokenizer names no EOS token");

    std::vector<CaseResult> results(cases.size());
    std::vector<Totals> totals(threads_);
    std::atomic<size_t> next{0};
    const auto started = Clock::now();
    auto worker = [&](int t) {
      for (size_t i; (i = next.fetch_add(1)) < cases.size();)
        results[i] = run_case(cases[i], *backend, *tokenizer, eos, totals[t]);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads_; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (std::thread& th : pool) th.join();
    const double wall_s = std::chrono::duration<double>(Clock::now() - started).count();
    report(results, totals, backend->plugin_name(), wall_s);
    return 0;
  }

 private:
  CaseResult run_case(const GrammarCase& c, grammar::GrammarBackend& backend,
                      const tokenizer::Tokenizer& tokenizer, const std::vector<int32_t>& eos,
                      Totals& totals) const {
    CaseResult r;
    r.name = c.name;
    sampling::SamplingParams params;
    params.json_schema = c.schema;
    if (property_order_ == "declared") {
      auto schema = nlohmann::ordered_json::parse(c.schema);
      if (schema.is_object()) schema["x-sable"] = {{"property_order", "declared"}};
      params.json_schema = schema.dump();
    }
    std::unique_ptr<scheduler::GrammarMatcher> first;
    const auto t0 = Clock::now();
    const double cpu0 = thread_cpu_us();
    try {
      first = backend.matcher(params);  // compiles (the backend caches the grammar)
    } catch (const std::exception& e) {
      r.error = e.what();
      return r;
    }
    r.compile_us = micros(Clock::now() - t0);
    r.compile_cpu_us = thread_cpu_us() - cpu0;
    r.compiled = true;
    const int32_t words = (tokenizer.vocab_size() + 31) / 32;
    std::vector<uint32_t> mask(words);
    auto allowed = [&](int32_t tok) { return (mask[tok / 32] >> (tok % 32)) & 1u; };
    for (const GrammarInstance& inst : c.tests) {
      std::unique_ptr<scheduler::GrammarMatcher> m = first ? std::move(first) : backend.matcher(params);
      bool rejected = false;
      auto timed_fill = [&] {
        const double c0 = thread_cpu_us();
        const auto m0 = Clock::now();
        m->fill_bitmask(mask);
        totals.mask_us.push_back(micros(Clock::now() - m0));
        totals.mask_cpu_us.push_back(thread_cpu_us() - c0);
        ++r.masks;
        r.mask_cpu_us += totals.mask_cpu_us.back();
        for (uint32_t w : mask) r.mask_digest = (r.mask_digest ^ w) * 1099511628211ull;  // untimed
      };
      for (int32_t tok : tokenizer.encode(inst.text, false)) {
        timed_fill();
        ++totals.tokens;
        if (!allowed(tok)) {
          rejected = true;
          break;
        }
        if (!m->accept_token(tok)) {
          r.failures.push_back("mask allows a token the matcher rejects: " + inst.description);
          rejected = true;
          break;
        }
      }
      if (!rejected) {
        timed_fill();
        rejected = std::none_of(eos.begin(), eos.end(), allowed);
      }
      (inst.valid ? r.valid : r.invalid)++;
      if (inst.valid && rejected) {
        ++r.wrong_rejects;
        r.failures.push_back("wrong reject: " + inst.description);
      } else if (!inst.valid && !rejected) {
        ++r.wrong_accepts;
        r.failures.push_back("wrong accept: " + inst.description);
      }
    }
    return r;
  }

  void report(const std::vector<CaseResult>& results, std::vector<Totals>& totals,
              const std::string& plugin, double wall_s) const {
    std::vector<double> mask_us, mask_cpu_us, compile_us, compile_cpu_us;
    int64_t tokens = 0;
    for (Totals& t : totals) {
      mask_us.insert(mask_us.end(), t.mask_us.begin(), t.mask_us.end());
      mask_cpu_us.insert(mask_cpu_us.end(), t.mask_cpu_us.begin(), t.mask_cpu_us.end());
      tokens += t.tokens;
    }
    int64_t compiled = 0, valid = 0, invalid = 0, wrong_accepts = 0, wrong_rejects = 0;
    std::map<std::string, int64_t> reasons;
    for (const CaseResult& r : results) {
      if (!r.compiled) {
        ++reasons[reason_of(r.error)];
        continue;
      }
      ++compiled;
      compile_us.push_back(r.compile_us);
      compile_cpu_us.push_back(r.compile_cpu_us);
      valid += r.valid, invalid += r.invalid;
      wrong_accepts += r.wrong_accepts, wrong_rejects += r.wrong_rejects;
    }
    std::sort(mask_us.begin(), mask_us.end());
    std::sort(mask_cpu_us.begin(), mask_cpu_us.end());
    std::sort(compile_us.begin(), compile_us.end());
    std::sort(compile_cpu_us.begin(), compile_cpu_us.end());
    double mask_sum = 0, mask_cpu_sum = 0;
    for (double x : mask_us) mask_sum += x;
    for (double x : mask_cpu_us) mask_cpu_sum += x;
    const double mask_cpu_avg = mask_cpu_us.empty() ? 0.0 : mask_cpu_sum / mask_cpu_us.size();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
    const double coverage = results.empty() ? 0 : 100.0 * compiled / results.size();

    print_summary_header(" Grammar Benchmark Result ");
    print_summary_line("Grammar backend:", plugin);
    print_summary_line("Threads:", static_cast<int64_t>(threads_));
    print_summary_line("Schemas:", static_cast<int64_t>(results.size()));
    print_summary_line("Compiled schemas:", compiled);
    print_summary_line("Coverage (%):", coverage);
    print_summary_line("Instances valid / invalid:", fmt::format("{} / {}", valid, invalid));
    print_summary_line("Wrong accepts:", wrong_accepts);
    print_summary_line("Wrong rejects:", wrong_rejects);
    print_summary_line("Compile p50 (ms):", quantile(compile_us, 0.5) / 1e3);
    print_summary_line("Compile p99 (ms):", quantile(compile_us, 0.99) / 1e3);
    print_summary_line("Compile max (ms):", compile_us.empty() ? 0.0 : compile_us.back() / 1e3);
    print_summary_line("Compile thread CPU p50 (ms):", quantile(compile_cpu_us, 0.5) / 1e3);
    print_summary_line("Compile thread CPU p99 (ms):", quantile(compile_cpu_us, 0.99) / 1e3);
    print_summary_line("Masks computed:", static_cast<int64_t>(mask_us.size()));
    print_summary_line("Mask avg (us):", mask_us.empty() ? 0.0 : mask_sum / mask_us.size());
    print_summary_line("Mask p50 (us):", quantile(mask_us, 0.5));
    print_summary_line("Mask p99 (us):", quantile(mask_us, 0.99));
    print_summary_line("Mask max (us):", mask_us.empty() ? 0.0 : mask_us.back());
    print_summary_line("Mask thread CPU avg (us):", mask_cpu_avg);
    print_summary_line("Mask thread CPU p99 (us):", quantile(mask_cpu_us, 0.99));
    print_summary_line("Mask thread CPU max (us):", mask_cpu_us.empty() ? 0.0 : mask_cpu_us.back());
    print_summary_line("Peak memory (MiB):", peak_mib);
    print_summary_line("Wall time (s):", wall_s);
    std::vector<std::pair<int64_t, std::string>> top;
    for (const auto& [why, n] : reasons) top.emplace_back(n, why);
    std::sort(top.rbegin(), top.rend());
    if (!top.empty()) print_summary_header(" Refusals by reason (top 15) ", '-');
    for (size_t i = 0; i < top.size() && i < 15; ++i) fmt::print("{:>5}  {}\n", top[i].first, top[i].second);
    print_summary_header("");
    if (json_out_.empty()) return;
    nlohmann::ordered_json out = {
        {"backend", plugin}, {"threads", threads_}, {"schemas", results.size()},
        {"compiled", compiled}, {"coverage_pct", coverage}, {"valid_instances", valid},
        {"invalid_instances", invalid}, {"wrong_accepts", wrong_accepts},
        {"wrong_rejects", wrong_rejects},
        {"compile_ms", {{"p50", quantile(compile_us, 0.5) / 1e3},
                        {"p99", quantile(compile_us, 0.99) / 1e3},
                        {"max", compile_us.empty() ? 0.0 : compile_us.back() / 1e3}}},
        {"compile_thread_cpu_ms", {{"p50", quantile(compile_cpu_us, 0.5) / 1e3},
                                   {"p99", quantile(compile_cpu_us, 0.99) / 1e3},
                                   {"max", compile_cpu_us.empty() ? 0.0 : compile_cpu_us.back() / 1e3}}},
        {"mask_us", {{"count", mask_us.size()},
                     {"avg", mask_us.empty() ? 0.0 : mask_sum / mask_us.size()},
                     {"p50", quantile(mask_us, 0.5)}, {"p99", quantile(mask_us, 0.99)},
                     {"max", mask_us.empty() ? 0.0 : mask_us.back()}}},
        {"mask_thread_cpu_us", {{"avg", mask_cpu_avg}, {"p50", quantile(mask_cpu_us, 0.5)},
                                {"p99", quantile(mask_cpu_us, 0.99)},
                                {"max", mask_cpu_us.empty() ? 0.0 : mask_cpu_us.back()}}},
        {"peak_memory_mib", peak_mib}, {"wall_s", wall_s}};
    nlohmann::ordered_json refusals = nlohmann::ordered_json::object();
    for (size_t i = 0; i < top.size() && i < 15; ++i) refusals[top[i].second] = top[i].first;
    out["refusals"] = std::move(refusals);
    nlohmann::ordered_json cases = nlohmann::ordered_json::array();
    for (const CaseResult& r : results) {
      nlohmann::ordered_json c = {{"name", r.name}, {"compiled", r.compiled}};
      if (!r.compiled) {
        c["error"] = r.error;
      } else {
        c["compile_ms"] = r.compile_us / 1e3;
        c["compile_cpu_ms"] = r.compile_cpu_us / 1e3;
        c["masks"] = r.masks;
        c["mask_cpu_ms"] = r.mask_cpu_us / 1e3;
        c["mask_digest"] = fmt::format("{:016x}", r.mask_digest);
      }
      if (!r.failures.empty()) c["failures"] = r.failures;
      cases.push_back(std::move(c));
    }
    out["cases"] = std::move(cases);
    std::ofstream(json_out_) << out.dump(1) << "\n";
  }

  std::string schemas_, tokenizer_path_, json_out_, backend_name_, property_order_;
  std::vector<std::string> plugin_dirs_;
  int threads_ = 1;
  int64_t limit_ = 0;
  int64_t every_ = 1;
};

}  // namespace

std::unique_ptr<Command> make_bench_grammar_command(CLI::App& parent) {
  return std::make_unique<BenchGrammarCommand>(parent);
}

}  // namespace sable::cli
