// `sable generate --model-path DIR --prompt "..." [sampling flags]`: offline generation through the
// Engine. One prompt streams its text to the terminal as it is produced; several prompts (repeated
// --prompt, or a JSONL file) run as one batch with a progress bar on stderr, then print in order.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/cli/startup.h"
#include "core/config/cli_flags.h"
#include "core/engine/engine.h"
#include "core/engine/result_json.h"

namespace sable::cli {
namespace {

class GenerateCommand : public Command {
 public:
  explicit GenerateCommand(CLI::App& parent)
      : Command(parent.add_subcommand("generate", "Generate text offline (no HTTP server)")),
        flags_(*app()) {
    app()->add_option("--prompt", prompts_, "Prompt text (repeat for a batch)");
    app()->add_option("--prompts-file", prompts_file_,
                      "JSONL file: one prompt per line, a JSON string or {\"text\"|\"input_ids\", "
                      "\"sampling_params\"}");
    app()->add_option("--max-new-tokens", max_new_tokens_, "Tokens to generate")->default_val(128);
    app()->add_option("--temperature", temperature_, "0 = greedy")->default_val(1.0);
    app()->add_option("--top-p", top_p_, "Nucleus sampling")->default_val(1.0);
    app()->add_option("--top-k", top_k_, "-1 = off")->default_val(-1);
    app()->add_option("--min-p", min_p_, "Min-p sampling")->default_val(0.0);
    app()->add_option("--frequency-penalty", frequency_penalty_)->default_val(0.0);
    app()->add_option("--presence-penalty", presence_penalty_)->default_val(0.0);
    app()->add_option("--repetition-penalty", repetition_penalty_)->default_val(1.0);
    app()->add_option("--seed", seed_, "Per-request sampling seed (reproducible output)");
    app()->add_option("--stop", stop_, "Stop string (repeatable)");
    app()->add_flag("--ignore-eos", ignore_eos_, "Do not stop at EOS");
    app()->add_option("--regex", regex_, "Constrain the output to this regular expression");
    app()->add_option("--json-schema", json_schema_,
                      "Constrain the output to this JSON schema (JSON text, or @FILE)");
    app()->add_option("--ebnf", ebnf_, "Constrain the output to this GBNF grammar (text, or @FILE)");
    app()->add_flag("--json", json_, "Print each result as SGLang's JSON instead of text");
  }

  int run() override {
    config::ServerConfig config = flags_.resolve();
    if (config.model_path.empty()) throw std::invalid_argument("--model-path is required");
    if (config.log_level == "info") config.log_level = "warning";  // keep the terminal for text
    setup_logging(config);
    resolve_model_paths(config);
    config.device = resolve_device(config.device);

    sampling::SamplingParams base;
    base.max_new_tokens = max_new_tokens_;
    base.temperature = temperature_;
    base.top_p = top_p_;
    base.top_k = top_k_;
    base.min_p = min_p_;
    base.frequency_penalty = frequency_penalty_;
    base.presence_penalty = presence_penalty_;
    base.repetition_penalty = repetition_penalty_;
    if (seed_) base.sampling_seed = *seed_;
    base.stop = stop_;
    base.ignore_eos = ignore_eos_;
    if (!regex_.empty()) base.regex = regex_;
    if (!json_schema_.empty()) base.json_schema = text_or_file("--json-schema", json_schema_);
    if (!ebnf_.empty()) base.ebnf = text_or_file("--ebnf", ebnf_);
    base.validate_ranges();

    std::vector<engine::GenerateInput> inputs;
    for (const auto& p : prompts_) {
      engine::GenerateInput in;
      in.text = p;
      in.params = base;
      inputs.push_back(std::move(in));
    }
    if (!prompts_file_.empty()) read_jsonl(base, inputs);
    if (inputs.empty()) throw std::invalid_argument("give --prompt or --prompts-file");

    engine::Engine engine(config);
    if (inputs.size() == 1 && inputs[0].params.n == 1 && !json_) return stream_one(engine, inputs[0]);
    return run_batch(engine, std::move(inputs));
  }

 private:
  void read_jsonl(const sampling::SamplingParams& base, std::vector<engine::GenerateInput>& out) {
    std::ifstream f(prompts_file_);
    if (!f) throw std::runtime_error("cannot open --prompts-file " + prompts_file_);
    std::string line;
    for (int number = 1; std::getline(f, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = fmt::format("{}:{}", prompts_file_, number);
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) throw std::runtime_error(where + ": not valid JSON");
      engine::GenerateInput in;
      in.params = base;
      if (j.is_string()) {
        in.text = j.get<std::string>();
      } else if (j.is_object()) {
        if (j.contains("text")) in.text = j["text"].get<std::string>();
        else if (j.contains("prompt")) in.text = j["prompt"].get<std::string>();
        if (j.contains("input_ids")) in.input_ids = j["input_ids"].get<std::vector<int32_t>>();
        if (j.contains("sampling_params")) {
          nlohmann::json merged = base.to_json();
          for (const auto& [k, v] : j["sampling_params"].items()) merged[k] = v;
          in.params = sampling::SamplingParams::from_json(merged);
        }
      } else {
        throw std::runtime_error(where + ": expected a string or an object");
      }
      out.push_back(std::move(in));
    }
  }

  int stream_one(engine::Engine& engine, engine::GenerateInput in) {
    auto handle = engine.submit(std::move(in));
    size_t shown = 0;
    engine::GenerateResult last;
    while (auto r = handle->next()) {
      std::fwrite(r->text.data() + shown, 1, r->text.size() - shown, stdout);
      std::fflush(stdout);
      shown = r->text.size();
      last = std::move(*r);
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const auto& m = last.meta_info;
    std::fprintf(stderr, "[%s: %lld prompt + %lld generated tokens, %.2f s]\n",
                 m.finish_reason ? m.finish_reason->type_name().c_str() : "?",
                 static_cast<long long>(m.prompt_tokens), static_cast<long long>(m.completion_tokens),
                 m.e2e_latency);
    return 0;
  }

  int run_batch(engine::Engine& engine, std::vector<engine::GenerateInput> inputs) {
    total_ = 0;
    for (const auto& in : inputs) total_ += static_cast<size_t>(std::max(in.params.n, 1));
    engine::GenerateStream stream = engine.generate_stream(std::move(inputs));
    std::vector<engine::GenerateResult> results;
    size_t done = 0;
    while (auto r = stream.next()) {
      if (static_cast<size_t>(r->index) >= results.size()) results.resize(r->index + 1);
      if (r->finished()) {
        ++done;
        results[r->index] = std::move(*r);
        progress(done);
      }
    }
    std::fputc('\n', stderr);
    for (const auto& r : results) {
      if (json_) {
        std::printf("%s\n", engine::result_json(r, false).dump().c_str());
      } else {
        std::printf("=== [%d] %s\n%s\n", r.index,
                    r.meta_info.finish_reason ? r.meta_info.finish_reason->type_name().c_str() : "",
                    r.text.c_str());
      }
    }
    return 0;
  }

  void progress(size_t done) {
    const size_t width = 30;
    const size_t filled = total_ > 0 ? width * done / total_ : width;
    std::fprintf(stderr, "\r[%-*s] %zu/%zu", static_cast<int>(width),
                 std::string(filled, '#').c_str(), done, total_);
    std::fflush(stderr);
  }

  // "@path" reads the file; anything else is the text itself.
  static std::string text_or_file(const char* flag, const std::string& value) {
    if (value.empty() || value[0] != '@') return value;
    std::ifstream in(value.substr(1), std::ios::binary);
    if (!in) throw std::invalid_argument(std::string(flag) + ": cannot read " + value.substr(1));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  config::ConfigFlags flags_;
  std::vector<std::string> prompts_;
  std::string prompts_file_;
  int32_t max_new_tokens_ = 128;
  double temperature_ = 1.0, top_p_ = 1.0, min_p_ = 0.0;
  int32_t top_k_ = -1;
  double frequency_penalty_ = 0.0, presence_penalty_ = 0.0, repetition_penalty_ = 1.0;
  std::optional<uint64_t> seed_;
  std::vector<std::string> stop_;
  bool ignore_eos_ = false;
  std::string regex_, json_schema_, ebnf_;
  bool json_ = false;
  size_t total_ = 0;
};

}  // namespace

std::unique_ptr<Command> make_generate_command(CLI::App& parent) {
  return std::make_unique<GenerateCommand>(parent);
}

}  // namespace sable::cli
