// SGLang's random, random-ids, sharegpt and generated-shared-prefix datasets. Each function names
// the SGLang function it follows; the draws happen in the same order on the same generators.
#include "core/cli/bench_dataset.h"

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>

#include "core/tokenizer/tokenizer.h"

namespace sable::cli {

namespace {

using nlohmann::json;

const char* const kDatasetNames[] = {"random", "random-ids", "sharegpt", "generated-shared-prefix"};

// HF's tokenizer.num_special_tokens_to_add(): what encode adds around a text (e.g. Llama's BOS).
int64_t num_special_tokens_to_add(const tokenizer::Tokenizer& tok) {
  return static_cast<int64_t>(tok.encode("", true).size());
}

std::string decode(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& ids) {
  return tok.decode(ids, /*skip_special_tokens=*/false, /*spaces_between_special_tokens=*/false);
}

// sample_random_requests (random.py): lengths from numpy; `random` cuts or repeats the token ids
// of shuffled ShareGPT prompts, `random-ids` takes runs of consecutive ids from random offsets.
std::vector<BenchRequest> sample_random(const DatasetOptions& o, const tokenizer::Tokenizer& tok,
                                        BenchRandom& rng) {
  std::vector<int32_t> input_lens =
      compute_random_lens(rng.np, o.random_input_len, o.random_range_ratio, o.num_prompts);
  const std::vector<int32_t> output_lens =
      compute_random_lens(rng.np, o.random_output_len, o.random_range_ratio, o.num_prompts);
  const bool return_text = !o.tokenize_prompt;
  if (return_text) {  // the server adds the special tokens back when it encodes the text
    const auto special = static_cast<int32_t>(num_special_tokens_to_add(tok));
    for (auto& len : input_lens) len = std::max(1, len - special);
  }
  std::vector<BenchRequest> out;
  auto add = [&](std::vector<int32_t> ids, size_t i) {
    BenchRequest r;
    if (return_text) r.text = decode(tok, ids);
    r.ids = std::move(ids);
    r.prompt_len = input_lens[i];
    r.output_len = output_lens[i];
    out.push_back(std::move(r));
  };
  if (o.name == "random") {
    std::vector<ShareGptPair> data = load_sharegpt(o.path);
    rng.py.shuffle(data);
    for (const auto& pair : data) {
      const size_t i = out.size();
      if (i == static_cast<size_t>(o.num_prompts)) break;
      const std::vector<int32_t> prompt_ids = tok.encode(pair.prompt, true);
      if (prompt_ids.empty()) continue;
      const auto want = static_cast<size_t>(input_lens[i]);
      std::vector<int32_t> ids;
      ids.reserve(want);
      while (ids.size() < want)  // (prompt * ceil(want / len))[:want]
        ids.insert(ids.end(), prompt_ids.begin(),
                   prompt_ids.begin() + static_cast<std::ptrdiff_t>(
                                            std::min(prompt_ids.size(), want - ids.size())));
      add(std::move(ids), i);
    }
    return out;
  }
  const int32_t vocab = tok.model_vocab_size();
  std::vector<int64_t> offsets(static_cast<size_t>(o.num_prompts));
  for (auto& off : offsets) off = rng.np.randint(0, vocab);
  for (size_t i = 0; i < offsets.size(); ++i) {
    std::vector<int32_t> ids(static_cast<size_t>(input_lens[i]));
    for (size_t j = 0; j < ids.size(); ++j)
      ids[j] = static_cast<int32_t>((offsets[i] + static_cast<int64_t>(i + j)) % vocab);
    add(std::move(ids), i);
  }
  return out;
}

// sample_sharegpt_requests (sharegpt.py): shuffled conversations, the first turn as the prompt and
// the second turn's token count (or --sharegpt-output-len) as the output length.
std::vector<BenchRequest> sample_sharegpt(const DatasetOptions& o, const tokenizer::Tokenizer& tok,
                                          BenchRandom& rng) {
  std::vector<ShareGptPair> data = load_sharegpt(o.path);
  rng.py.shuffle(data);
  std::vector<BenchRequest> out;
  for (const auto& pair : data) {
    if (out.size() == static_cast<size_t>(o.num_prompts)) break;
    std::vector<int32_t> ids = tok.encode(pair.prompt, true);
    const auto prompt_len = static_cast<int64_t>(ids.size());
    const int64_t output_len = o.sharegpt_output_len > 0
                                   ? o.sharegpt_output_len
                                   : static_cast<int64_t>(tok.encode(pair.completion, true).size());
    if (prompt_len < 2 || output_len < 2) continue;  // too short
    if (o.sharegpt_context_len > 0 && prompt_len + output_len > o.sharegpt_context_len) continue;
    BenchRequest r;
    r.text = pair.prompt;
    r.ids = std::move(ids);
    r.prompt_len = prompt_len;
    r.output_len = static_cast<int32_t>(output_len);
    out.push_back(std::move(r));
  }
  return out;
}

// sample_generated_shared_prefix_requests (generated_shared_prefix.py, uniform groups, one turn):
// num_groups random system prompts, each followed by prompts_per_group random questions.
std::vector<BenchRequest> sample_gsp(const DatasetOptions& o, const tokenizer::Tokenizer& tok,
                                     BenchRandom& rng) {
  const int32_t groups = o.gsp_num_groups, per_group = o.gsp_prompts_per_group;
  const auto system_lens =
      compute_random_lens(rng.np, o.gsp_system_prompt_len, o.gsp_range_ratio, groups);
  const auto question_lens =
      compute_random_lens(rng.np, o.gsp_question_len, o.gsp_range_ratio, groups * per_group);
  const auto output_lens =
      compute_random_lens(rng.np, o.gsp_output_len, o.gsp_range_ratio, groups * per_group);
  // gen_prompt_ids: random.choices over the sorted ids of the whole vocab, added tokens included.
  std::vector<int32_t> available;
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (!tok.id_to_token(id).empty()) available.push_back(id);
  auto gen = [&](int32_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = available[rng.py.choice_index(available.size())];
    return ids;
  };
  std::vector<std::vector<int32_t>> systems, questions;
  for (int32_t g = 0; g < groups; ++g) systems.push_back(gen(system_lens[g]));
  for (int32_t q = 0; q < groups * per_group; ++q) questions.push_back(gen(question_lens[q]));
  std::vector<BenchRequest> out;
  for (int32_t slot = 0; slot < groups * per_group; ++slot) {
    const auto& system = systems[slot / per_group];
    BenchRequest r;
    if (o.tokenize_prompt) {  // system_prompt + question as ids
      r.ids = system;
      r.ids.insert(r.ids.end(), questions[slot].begin(), questions[slot].end());
    } else {  // f"{system_prompt}\n\n{question}" as text, counted as the server encodes it
      r.text = fmt::format("{}\n\n{}", decode(tok, system), decode(tok, questions[slot]));
      r.ids = tok.encode(r.text, true);
    }
    r.prompt_len = static_cast<int64_t>(r.ids.size());
    r.output_len = output_lens[slot];
    out.push_back(std::move(r));
  }
  rng.py.shuffle(out);
  return out;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

void DatasetOptions::validate() const {
  require(std::find(std::begin(kDatasetNames), std::end(kDatasetNames), name) != std::end(kDatasetNames),
          fmt::format("--dataset-name: unknown dataset '{}' (random, random-ids, sharegpt, "
                      "generated-shared-prefix)", name));
  require(num_prompts >= 1, "--num-prompts must be >= 1");
  require(random_input_len >= 1, "--random-input-len must be >= 1");
  require(random_output_len >= 1, "--random-output-len must be >= 1");
  require(random_range_ratio >= 0.0 && random_range_ratio <= 1.0,
          "--random-range-ratio must be in [0, 1]");
  require(gsp_range_ratio >= 0.0 && gsp_range_ratio <= 1.0, "--gsp-range-ratio must be in [0, 1]");
  require(gsp_num_groups >= 1 && gsp_prompts_per_group >= 1,
          "--gsp-num-groups and --gsp-prompts-per-group must be >= 1");
  require(gsp_system_prompt_len >= 0 && gsp_question_len >= 1 && gsp_output_len >= 1,
          "--gsp-system-prompt-len must be >= 0, --gsp-question-len and --gsp-output-len >= 1");
  require(sharegpt_output_len == 0 || sharegpt_output_len >= 4,
          "--sharegpt-output-len must be >= 4 (SGLang: output_len too small)");
  require(sharegpt_context_len >= 0, "--sharegpt-context-len must be >= 0");
  require(!(name == "sharegpt" && tokenize_prompt),
          "--tokenize-prompt does not apply to --dataset-name sharegpt (SGLang rejects it too)");
  if (name == "sharegpt" || name == "random") {
    require(!path.empty(),
            fmt::format("--dataset-name {} reads its prompts from ShareGPT conversations: pass "
                        "--dataset-path ShareGPT_V3_unfiltered_cleaned_split.json (SGLang downloads "
                        "it from huggingface.co/datasets/anon8231489123/ShareGPT_Vicuna_unfiltered; "
                        "sable does not download){}",
                        name, name == "random" ? ", or use --dataset-name random-ids" : ""));
  }
}

json DatasetOptions::to_json() const {
  json j = {{"dataset_name", name}, {"seed", seed}, {"tokenize_prompt", tokenize_prompt}};
  if (name == "random" || name == "random-ids") {
    j.update({{"num_prompts", num_prompts},
              {"random_input_len", random_input_len},
              {"random_output_len", random_output_len},
              {"random_range_ratio", random_range_ratio}});
  }
  if (name == "random" || name == "sharegpt") j["dataset_path"] = path;
  if (name == "sharegpt") {
    j.update({{"num_prompts", num_prompts},
              {"sharegpt_output_len", sharegpt_output_len > 0 ? json(sharegpt_output_len) : json()},
              {"sharegpt_context_len", sharegpt_context_len > 0 ? json(sharegpt_context_len) : json()}});
  }
  if (name == "generated-shared-prefix") {
    j.update({{"gsp_num_groups", gsp_num_groups},
              {"gsp_prompts_per_group", gsp_prompts_per_group},
              {"gsp_system_prompt_len", gsp_system_prompt_len},
              {"gsp_question_len", gsp_question_len},
              {"gsp_output_len", gsp_output_len},
              {"gsp_range_ratio", gsp_range_ratio}});
  }
  return j;
}

void add_dataset_options(CLI::App& app, DatasetOptions& o) {
  app.add_option("--dataset-name", o.name,
                 "random | random-ids | sharegpt | generated-shared-prefix (SGLang's datasets)")
      ->check(CLI::IsMember({"random", "random-ids", "sharegpt", "generated-shared-prefix"}))
      ->capture_default_str();
  app.add_option("--dataset-path", o.path,
                 "ShareGPT JSON file (sharegpt, and the prompt text of random)");
  app.add_option("--num-prompts", o.num_prompts, "Requests (random, random-ids, sharegpt)")
      ->capture_default_str();
  app.add_option("--sharegpt-output-len", o.sharegpt_output_len,
                 "Output tokens of every ShareGPT request instead of its answer's length");
  app.add_option("--sharegpt-context-len", o.sharegpt_context_len,
                 "Drop ShareGPT requests whose prompt + output tokens exceed this");
  app.add_option("--random-input-len", o.random_input_len, "Input tokens (random datasets)")
      ->capture_default_str();
  app.add_option("--random-output-len", o.random_output_len, "Output tokens (random datasets)")
      ->capture_default_str();
  app.add_option("--random-range-ratio", o.random_range_ratio,
                 "Lengths uniform in [max(int(len * ratio), 1), len]")
      ->capture_default_str();
  app.add_option("--gsp-num-groups", o.gsp_num_groups, "Shared system prompts")
      ->capture_default_str();
  app.add_option("--gsp-prompts-per-group", o.gsp_prompts_per_group, "Questions per system prompt")
      ->capture_default_str();
  app.add_option("--gsp-system-prompt-len", o.gsp_system_prompt_len, "System prompt tokens")
      ->capture_default_str();
  app.add_option("--gsp-question-len", o.gsp_question_len, "Question tokens")->capture_default_str();
  app.add_option("--gsp-output-len", o.gsp_output_len, "Output tokens")->capture_default_str();
  app.add_option("--gsp-range-ratio", o.gsp_range_ratio,
                 "Range ratio of the generated-shared-prefix lengths")
      ->capture_default_str();
  app.add_flag("--tokenize-prompt", o.tokenize_prompt,
               "Send prompts as token ids (SGLang's --tokenize-prompt) instead of text");
  app.add_option("--seed", o.seed, "Seed of Python's random and numpy's generator, as SGLang's")
      ->capture_default_str();
}

std::vector<int32_t> compute_random_lens(NumpyRandom& np, int32_t full_len, double range_ratio,
                                         int32_t num) {
  std::vector<int32_t> lens(static_cast<size_t>(std::max(num, 0)), 0);
  if (full_len <= 0) return lens;
  const auto low = std::max<int64_t>(static_cast<int64_t>(full_len * range_ratio), 1);
  for (auto& len : lens) len = static_cast<int32_t>(np.randint(low, int64_t{full_len} + 1));
  return lens;
}

std::vector<ShareGptPair> load_sharegpt(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("--dataset-path: cannot read '{}'", path));
  // Keep only what the samplers read: the conversation lists and each turn's "value" (a key's
  // depth counts the containers around it: 2 in a conversation object, 4 in a turn).
  const auto keep = [](int depth, json::parse_event_t event, json& parsed) {
    if (event != json::parse_event_t::key) return true;
    const auto& key = parsed.get_ref<const std::string&>();
    if (depth == 2) return key == "conversations" || key == "conversation";
    return depth != 4 || key == "value";
  };
  json data = json::parse(in, keep, /*allow_exceptions=*/false);
  if (data.is_discarded() || !data.is_array()) {
    throw std::runtime_error(
        fmt::format("--dataset-path: '{}' is not a ShareGPT JSON list of conversations", path));
  }
  std::vector<ShareGptPair> out;
  for (size_t i = 0; i < data.size(); ++i) {
    const json& item = data[i];
    if (!item.is_object()) continue;
    const json* turns = item.contains("conversations") ? &item["conversations"]
                        : item.contains("conversation") ? &item["conversation"]
                                                        : nullptr;
    if (turns == nullptr || !turns->is_array() || turns->size() < 2) continue;
    auto value = [&](size_t t) {
      const json& turn = (*turns)[t];
      if (!turn.is_object() || !turn.contains("value") || !turn["value"].is_string()) {
        throw std::runtime_error(fmt::format(
            "--dataset-path: '{}': conversation {} turn {} has no string \"value\"", path, i, t));
      }
      return turn["value"].get<std::string>();
    };
    out.push_back({value(0), value(1)});
  }
  return out;
}

std::vector<BenchRequest> sample_requests(const DatasetOptions& options,
                                          const tokenizer::Tokenizer& tokenizer, BenchRandom& rng) {
  options.validate();
  if (options.name == "sharegpt") return sample_sharegpt(options, tokenizer, rng);
  if (options.name == "generated-shared-prefix") return sample_gsp(options, tokenizer, rng);
  return sample_random(options, tokenizer, rng);
}

DatasetTotals dataset_totals(const std::vector<BenchRequest>& requests) {
  DatasetTotals t;
  for (const auto& r : requests) {
    t.input_tokens += r.prompt_len;
    t.output_tokens += r.output_len;
  }
  return t;
}

}  // namespace sable::cli
