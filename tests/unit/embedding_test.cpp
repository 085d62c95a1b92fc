// Engine::embed on the CPU (is_embedding): last-token pooling + L2 normalisation on the golden
// qwen2_tok checkpoint (real Qwen tokenizer, random weights), batch invariance, chunked long
// prompts, validation, and the golden reference: the raw last-token hidden state times the tied
// lm_head (the embedding matrix) reproduces the reference's last-position logits.
//
// Golden data: qwen2_tok/golden.json holds texts, ids and greedy continuations (no logits), so its
// check is that argmax(hidden . lm_head^T) is the first greedy token. qwen2/golden.safetensors
// holds the transformers reference `logits_i` [prompt_len, vocab] and `last_hidden_i` [hidden];
// those are matched within the golden tolerance (relative error 1e-4, as model_golden_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/engine/engine.h"
#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors.h"
#include "sable/model.h"

using namespace sable::engine;

namespace {

const std::filesystem::path kModels = std::filesystem::path(SABLE_TEST_DATA_DIR) / "models";
constexpr double kMaxRelErr = 1e-4;  // the golden tolerance (model_golden_test.cpp)

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

sable::config::ServerConfig config(const std::string& model, bool is_embedding = true) {
  sable::config::ServerConfig c;
  c.model_path = (kModels / model).string();
  c.tokenizer_path = (kModels / "qwen2_tok").string();  // qwen2 (golden logits) has none
  c.plugin_dirs = {SABLE_PLUGIN_DIR};
  c.device = "cpu";
  c.max_total_tokens = 4096;
  c.chunked_prefill_size = 64;  // max_batch_tokens 64 + max_running_requests
  c.max_running_requests = 8;
  c.random_seed = 1;
  c.log_level = "warning";
  c.is_embedding = is_embedding;
  return c;
}

Engine& tok_engine() {
  static Engine* e = new Engine(config("qwen2_tok"));  // one load for the suite
  return *e;
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

double rel_err(std::span<const float> a, std::span<const float> b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    ref = std::max(ref, std::abs(static_cast<double>(b[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

// A tensor of a safetensors file as fp32 (any stored dtype the project converts).
std::vector<float> read_f32(const sable::weights::SafetensorsFile& f, const std::string& name,
                            std::vector<int64_t>* shape = nullptr) {
  for (const auto& t : f.tensors()) {
    if (t.name != name) continue;
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> out(static_cast<size_t>(n));
    const auto bytes = f.bytes(t);
    EXPECT_TRUE(sable::weights::convert(t.dtype, bytes.data(), SABLE_DTYPE_F32, out.data(),
                                        static_cast<size_t>(n)))
        << name;
    if (shape) *shape = t.shape;
    return out;
  }
  ADD_FAILURE() << "tensor missing: " << name;
  return {};
}

// hidden [H] . lm_head [V, H]^T -> logits [V].
std::vector<float> logits_of(const std::vector<float>& hidden, const std::vector<float>& lm_head) {
  const size_t h = hidden.size();
  const size_t v = lm_head.size() / h;
  std::vector<float> out(v);
  for (size_t r = 0; r < v; ++r) {
    double s = 0;
    for (size_t k = 0; k < h; ++k) s += static_cast<double>(hidden[k]) * lm_head[r * h + k];
    out[r] = static_cast<float>(s);
  }
  return out;
}

}  // namespace

TEST(Embedding, UnitNormWithHiddenSizeAndPromptTokens) {
  Engine& e = tok_engine();
  ASSERT_TRUE(e.is_embedding());
  const auto g = read_json(kModels / "qwen2_tok/golden.json");
  const std::string text = g["texts"][0].get<std::string>();
  auto r = e.embed(std::vector<std::string>{text});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(static_cast<int32_t>(r[0].embedding.size()), e.model_info().hidden_size);
  EXPECT_NEAR(norm(r[0].embedding), 1.0, 1e-5);
  EXPECT_EQ(r[0].prompt_tokens, static_cast<int64_t>(g["ids"][0].size()));
  EXPECT_FALSE(r[0].id.empty());
  // Text and its ids give the same vector.
  EmbedInput by_ids;
  by_ids.input_ids = g["ids"][0].get<std::vector<int32_t>>();
  by_ids.rid = "mine";
  auto r2 = e.embed(std::vector<EmbedInput>{by_ids});
  EXPECT_EQ(r2[0].id, "mine");
  EXPECT_LE(max_abs_diff(r[0].embedding, r2[0].embedding), 1e-6);
}

TEST(Embedding, SameVectorAloneAndInABatchOfDifferentLengths) {
  Engine& e = tok_engine();
  const auto g = read_json(kModels / "qwen2_tok/golden.json");
  std::vector<std::string> texts;
  for (const auto& t : g["texts"]) texts.push_back(t.get<std::string>());
  texts.push_back("a");
  std::string long_text;
  for (int i = 0; i < 80; ++i) long_text += " hello world";
  texts.push_back(long_text);  // ~160 tokens: several forwards of max_batch_tokens 72
  std::vector<std::vector<float>> alone;
  for (const auto& t : texts) alone.push_back(e.embed(std::vector<std::string>{t})[0].embedding);
  const auto batch = e.embed(texts);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_LE(max_abs_diff(alone[i], batch[i].embedding), 1e-5) << i;
    EXPECT_NEAR(norm(batch[i].embedding), 1.0, 1e-5) << i;
  }
  // Different prompts give different vectors.
  EXPECT_GT(max_abs_diff(batch[0].embedding, batch[1].embedding), 1e-3);
  // The long prompt (> max_batch_tokens) ran in chunks and is still its own last-token state.
  EXPECT_GT(batch.back().prompt_tokens, 2 * 72);
}

TEST(Embedding, PageSize16GivesTheSameVectors) {
  auto c = config("qwen2_tok");
  c.page_size = 16;
  Engine paged(c);
  const auto g = read_json(kModels / "qwen2_tok/golden.json");
  std::vector<std::string> texts;
  for (const auto& t : g["texts"]) texts.push_back(t.get<std::string>());
  const auto want = tok_engine().embed(texts);
  const auto got = paged.embed(texts);
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_LE(max_abs_diff(want[i].embedding, got[i].embedding), 1e-5) << i;
}

TEST(Embedding, ConcurrentCallersGetTheirOwnVectors) {
  Engine& e = tok_engine();
  const auto g = read_json(kModels / "qwen2_tok/golden.json");
  std::vector<std::vector<float>> want;
  for (const auto& t : g["texts"])
    want.push_back(e.embed(std::vector<std::string>{t.get<std::string>()})[0].embedding);
  std::vector<std::thread> threads;
  std::vector<double> worst(8, 0.0);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 3; ++rep) {
        const size_t i = static_cast<size_t>((k + rep) % want.size());
        auto r = e.embed(std::vector<std::string>{g["texts"][i].get<std::string>()});
        worst[static_cast<size_t>(k)] =
            std::max(worst[static_cast<size_t>(k)], max_abs_diff(r[0].embedding, want[i]));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (double w : worst) EXPECT_LE(w, 1e-5);
}

TEST(Embedding, RawHiddenTimesLmHeadGivesTheGreedyToken) {
  // qwen2_tok: tied embeddings, so lm_head = model.embed_tokens.weight.
  Engine& e = tok_engine();
  const auto g = read_json(kModels / "qwen2_tok/golden.json");
  auto st = sable::weights::SafetensorsFile::open(kModels / "qwen2_tok/model.safetensors");
  const auto lm_head = read_f32(*st, "model.embed_tokens.weight");
  std::vector<EmbedInput> inputs;
  for (const auto& ids : g["ids"]) {
    EmbedInput in;
    in.input_ids = ids.get<std::vector<int32_t>>();
    in.normalize = false;
    inputs.push_back(std::move(in));
  }
  const auto r = e.embed(inputs);
  for (size_t i = 0; i < r.size(); ++i) {
    const auto logits = logits_of(r[i].embedding, lm_head);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(best, g["greedy_ids"][i][0].get<int32_t>()) << i;
  }
}

TEST(Embedding, RawHiddenTimesLmHeadMatchesTheGoldenLogits) {
  // qwen2: golden.safetensors has the reference logits of every prompt position.
  Engine e(config("qwen2"));
  const auto g = read_json(kModels / "qwen2/golden.json");
  auto weights = sable::weights::SafetensorsFile::open(kModels / "qwen2/model.safetensors");
  auto golden = sable::weights::SafetensorsFile::open(kModels / "qwen2/golden.safetensors");
  const auto lm_head = read_f32(*weights, "model.embed_tokens.weight");
  const auto prompts = g["prompts"].get<std::vector<std::vector<int32_t>>>();
  std::vector<EmbedInput> inputs;
  for (const auto& p : prompts) {
    EmbedInput in;
    in.input_ids = p;
    in.normalize = false;
    inputs.push_back(std::move(in));
  }
  const auto r = e.embed(inputs);  // one batch of different lengths
  ASSERT_EQ(r.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> shape;
    const auto ref = read_f32(*golden, "logits_" + std::to_string(i), &shape);
    ASSERT_EQ(shape.size(), 2u);
    const size_t vocab = static_cast<size_t>(shape[1]);
    const std::span<const float> last(ref.data() + ref.size() - vocab, vocab);
    const auto logits = logits_of(r[i].embedding, lm_head);
    ASSERT_EQ(logits.size(), vocab);
    EXPECT_LE(rel_err(logits, last), kMaxRelErr) << "prompt " << i;
    const auto hidden_ref = read_f32(*golden, "last_hidden_" + std::to_string(i));
    EXPECT_LE(rel_err(r[i].embedding, hidden_ref), kMaxRelErr) << "prompt " << i;
  }
}

TEST(Embedding, Validation) {
  Engine& e = tok_engine();
  auto field_of = [&](EmbedInput in) -> std::string {
    try {
      e.embed(std::vector<EmbedInput>{std::move(in)});
    } catch (const ValidationError& err) {
      return err.field() + ": " + err.what();
    }
    return "no error";
  };
  EXPECT_EQ(field_of({}), "text: Input cannot be empty");
  EmbedInput bad_id;
  bad_id.input_ids = {1, static_cast<int32_t>(e.model_info().vocab_size)};
  EXPECT_NE(field_of(bad_id).find("input_ids: input_ids: token id"), std::string::npos);
  EmbedInput negative;
  negative.input_ids = {-1};
  EXPECT_NE(field_of(negative).find("input_ids:"), std::string::npos);
  EmbedInput too_long;
  too_long.input_ids.assign(static_cast<size_t>(e.context_length()), 1);
  EXPECT_NE(field_of(too_long).find("context length"), std::string::npos);
  // A bad item rejects the whole batch before anything runs.
  EmbedInput good;
  good.text = "hello";
  EXPECT_THROW(e.embed(std::vector<EmbedInput>{good, negative}), ValidationError);
  // Generation is refused with a clear error.
  GenerateInput gen;
  gen.text = "hello";
  try {
    e.submit(gen);
    FAIL() << "generation ran on an embedding engine";
  } catch (const ValidationError& err) {
    EXPECT_NE(std::string(err.what()).find("served for embeddings (--is-embedding)"),
              std::string::npos);
  }
  EXPECT_THROW(e.generate(std::vector<std::string>{"hi"}), ValidationError);
}

TEST(Embedding, GenerationEngineRefusesEmbed) {
  Engine e(config("qwen2_tok", /*is_embedding=*/false));
  EXPECT_FALSE(e.is_embedding());
  try {
    e.embed(std::vector<std::string>{"hello"});
    FAIL() << "embed ran on a generation engine";
  } catch (const ValidationError& err) {
    EXPECT_NE(std::string(err.what()).find("--is-embedding"), std::string::npos);
  }
}

TEST(Embedding, StatsCountEmbeddingsWeightUpdateAndShutdown) {
  Engine e(config("qwen2_tok"));
  const auto before = e.embed(std::vector<std::string>{"one", "two three"});
  // Stats are published at the end of the step, after the vectors were handed out: wait for it
  // (this read raced the publish under load).
  for (int i = 0; i < 400 && e.stats().finished_requests < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto s = e.stats();
  EXPECT_EQ(s.finished_requests, 2);
  EXPECT_GT(s.prompt_tokens, 2);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.running, 0);
  // Both prompts in one forward, unless the embedder thread woke between the two submissions
  // (each prompt is queued on its own; seen under load with the e2e suites running beside it).
  EXPECT_GE(s.num_steps, 1);
  EXPECT_LE(s.num_steps, 2);
  // A weight swap (same checkpoint) runs between embedding forwards; the vectors stay the same.
  const auto updated = e.update_weights_from_disk((kModels / "qwen2_tok").string());
  EXPECT_TRUE(updated.success) << updated.message;
  const auto after = e.embed(std::vector<std::string>{"one", "two three"});
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_LE(max_abs_diff(before[i].embedding, after[i].embedding), 1e-6) << i;
  e.shutdown();
  EXPECT_THROW(e.embed(std::vector<std::string>{"x"}), std::runtime_error);
}
