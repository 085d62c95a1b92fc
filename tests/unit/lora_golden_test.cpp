// LoRA acceptance on the CPU: PEFT's reference (tests/golden/lora, made by
// scripts/make_lora_golden.py) matched through the model runner, the LoRA manager and the `lora`
// op, for the llama and qwen2 golden checkpoints and their two adapters (a: rank 8, q/k/v/o, fp32;
// b: rank 4 rsLoRA, q/gate/up/down, bf16), and for phi3 (fused qkv_proj / gate_up_proj in the
// checkpoint, the generic plugin) with adapters on the fused modules.
//
// Per adapter: logits at every prompt position (relative error <= 1e-4, as the base golden) and
// the 24 greedy tokens of each prompt. Then one batch that mixes the base model and both
// adapters: every prompt three times (base, a, b), prefilled together and decoded together; each
// row must match its own reference. A pool of one slot forces an eviction at every switch.
#include <gtest/gtest.h>

#include "core/hf_config/hf_config.h"
#include "core/lora/lora_manager.h"
#include "core/runner/device_memory.h"
#include "tests/unit/model_moe_golden.h"

namespace {

using namespace sable::golden_test;
using sable::lora::LoraManager;

std::string lora_dir(const std::string& model) {
  return std::string(SABLE_TEST_DATA_DIR) + "/lora/" + model;
}

struct LoraGolden {
  std::vector<std::vector<int32_t>> prompts;
  std::map<std::string, std::vector<std::vector<int32_t>>> greedy;  // by adapter
  std::unique_ptr<sable::weights::SafetensorsFile> tensors;
  std::vector<float> logits(const std::string& adapter, size_t i) const {
    return golden_f32(*tensors, "logits_" + adapter + "_" + std::to_string(i));
  }
};

LoraGolden load_lora_golden(const std::string& model) {
  LoraGolden g;
  std::ifstream in(lora_dir(model) + "/golden.json");
  const auto j = nlohmann::json::parse(in);
  g.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
  for (const auto& [name, a] : j.at("adapters").items())
    g.greedy[name] = a.at("greedy").get<std::vector<std::vector<int32_t>>>();
  g.tensors = sable::weights::SafetensorsFile::open(lora_dir(model) + "/golden.safetensors");
  return g;
}

sable::lora::BaseModel base_of(const ModelRunner& r) {
  sable::lora::BaseModel b;
  b.num_layers = r.info().num_layers;
  b.weight_shape = [&r](const std::string& n) { return r.weight_shape(n); };
  b.q_rows = int64_t{r.info().num_q_heads} * r.info().head_dim;
  b.kv_rows = int64_t{r.info().num_kv_heads} * r.info().head_dim;
  b.inter_rows = r.config().get_int("intermediate_size").value_or(0);
  b.lora_modules = r.lora_modules();
  b.plugin = r.plugin_name();
  return b;
}

// The runner, its pool memory and a manager holding adapters a and b.
struct Served {
  std::unique_ptr<ModelRunner> runner;
  std::unique_ptr<sable::runner::DeviceMemory> memory;
  std::unique_ptr<LoraManager> lora;
  std::map<std::string, int32_t> id;  // "" -> 0 (base)

  Served(const std::string& model, int32_t slots) {
    runner = make_runner(model_dir(model), "auto", 16, 256);
    memory = sable::runner::make_cpu_memory();
    sable::lora::LoraOptions o;
    o.max_loras_per_batch = slots;
    o.max_lora_rank = 8;
    o.compute_dtype = SABLE_DTYPE_F32;
    o.max_batch_tokens = 8192;
    lora = std::make_unique<LoraManager>(o, base_of(*runner), *memory);
    id[""] = 0;
    for (const char* name : {"a", "b"}) id[name] = lora->load(name, lora_dir(model) + "/" + name).id;
  }
};

// One sequence of the test: its adapter, tokens and pages.
struct Seq {
  std::string adapter;
  size_t prompt = 0;
  std::vector<int32_t> tokens, pages, generated;
  int32_t cached = 0;
};

// One forward of `seqs` (every uncached token); returns the result, rows in sequence order.
ModelRunner::ForwardResult run(Served& s, std::vector<Seq>& seqs, bool all_logits) {
  std::vector<ModelRunner::Sequence> batch;
  std::vector<int32_t> ids, rows;
  for (Seq& q : seqs) {
    ModelRunner::Sequence b;
    b.new_tokens = std::span<const int32_t>(q.tokens).subspan(static_cast<size_t>(q.cached));
    b.num_cached = q.cached;
    b.pages = q.pages;
    b.all_logits = all_logits;
    batch.push_back(b);
    ids.push_back(s.id.at(q.adapter));
    rows.push_back(static_cast<int32_t>(b.new_tokens.size()));
  }
  const auto* lb = s.lora->prepare(ids, rows);
  auto out = s.runner->forward(batch, false, false, lb);
  for (Seq& q : seqs) q.cached = static_cast<int32_t>(q.tokens.size());
  return out;
}

std::vector<Seq> make_seqs(const LoraGolden& g, const std::vector<std::string>& adapters) {
  std::vector<Seq> seqs;
  int32_t next_page = 0;
  for (const auto& a : adapters) {
    for (size_t i = 0; i < g.prompts.size(); ++i) {
      Seq q;
      q.adapter = a;
      q.prompt = i;
      q.tokens = g.prompts[i];
      const size_t need = (q.tokens.size() + kGreedySteps + 15) / 16;
      for (size_t p = 0; p < need; ++p) q.pages.push_back(next_page++);
      seqs.push_back(q);
    }
  }
  return seqs;
}

// Prefills `seqs` in one forward (logits checked against each row's reference), then decodes
// them together for kGreedySteps steps (tokens checked).
void expect_batch_matches(const std::string& model, Served& s, const LoraGolden& g,
                          const Golden& base, std::vector<Seq> seqs) {
  const auto out = run(s, seqs, /*all_logits=*/true);
  int64_t row = 0;
  for (Seq& q : seqs) {
    const auto ref = q.adapter.empty() ? base.f32("logits_" + std::to_string(q.prompt))
                                       : g.logits(q.adapter, q.prompt);
    double worst = 0;
    const auto len = static_cast<int64_t>(q.tokens.size());
    for (int64_t r = 0; r < len; ++r)
      worst = std::max(worst, rel_err(out.row(row + r),
                                      std::span<const float>(ref.data() + r * out.vocab,
                                                             static_cast<size_t>(out.vocab))));
    EXPECT_LE(worst, kMaxRelErr) << model << " adapter '" << q.adapter << "' prompt " << q.prompt;
    const int32_t tok = sable::runner::argmax(out.row(row + len - 1));
    q.generated.push_back(tok);
    q.tokens.push_back(tok);
    row += len;
  }
  for (size_t step = 1; step < kGreedySteps; ++step) {
    const auto dec = run(s, seqs, false);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int32_t tok = sable::runner::argmax(dec.row(static_cast<int64_t>(i)));
      seqs[i].generated.push_back(tok);
      seqs[i].tokens.push_back(tok);
    }
  }
  for (const Seq& q : seqs) {
    const auto& want = q.adapter.empty() ? base.greedy[q.prompt] : g.greedy.at(q.adapter)[q.prompt];
    EXPECT_EQ(q.generated, want) << model << " adapter '" << q.adapter << "' prompt " << q.prompt;
  }
}

class LoraGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraGoldenTest, EachAdapterAlone) {
  const std::string model = GetParam();
  const LoraGolden g = load_lora_golden(model);
  const Golden base = load_golden(model);
  for (const char* adapter : {"a", "b"}) {
    Served s(model, 2);
    expect_batch_matches(model, s, g, base, make_seqs(g, {adapter}));
  }
}

TEST_P(LoraGoldenTest, OneBatchMixesBaseAndBothAdapters) {
  const std::string model = GetParam();
  const LoraGolden g = load_lora_golden(model);
  const Golden base = load_golden(model);
  Served s(model, 2);
  // Interleaved so that segments are short: b, base, a for every prompt.
  std::vector<Seq> seqs;
  const auto all = make_seqs(g, {"b", "", "a"});
  const size_t n = g.prompts.size();
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < 3; ++k) seqs.push_back(all[k * n + i]);
  expect_batch_matches(model, s, g, base, seqs);
}

TEST_P(LoraGoldenTest, OneSlotEvictsBetweenBatches) {
  const std::string model = GetParam();
  const LoraGolden g = load_lora_golden(model);
  const Golden base = load_golden(model);
  Served s(model, 1);
  // a, then b (evicts a), then a again (evicts b): each batch matches its reference.
  for (const char* adapter : {"a", "b", "a"}) expect_batch_matches(model, s, g, base, make_seqs(g, {adapter}));
  // Two adapters in one batch do not fit one slot.
  auto two = make_seqs(g, {"a", "b"});
  EXPECT_THROW(run(s, two, false), std::invalid_argument);
}

// phi3 is served by the generic plugin from a checkpoint with fused qkv_proj / gate_up_proj, and
// its adapters target those fused modules.
INSTANTIATE_TEST_SUITE_P(Models, LoraGoldenTest, ::testing::Values("llama", "qwen2", "phi3"));

}  // namespace
