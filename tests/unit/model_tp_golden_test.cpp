// Tensor parallelism on the CPU (in-process ranks): for every golden decoder whose heads allow it,
// TP 2 and TP 4 give the logits of TP 1 (fp32, relative error <= 1e-5 per row) — the prompts
// prefilled together with logits at every position, then greedy decode steps batched, over
// shuffled pages. TP 4 on models with 2 KV heads (and TP 2 / 4 on Gemma's single KV head) runs the
// KV-replication path; every model runs the vocabulary-parallel embedding (all-reduce) and LM head
// (gather), also with a vocabulary the ranks do not divide (a shorter last slice). Models
// that cannot be split fail at startup with the reason; a rank that fails at start or while
// serving stops the group with an error naming the rank, never a hang.
//
// Relative error: max|a - b| / max|b| over a row (b the TP 1 row), as in model_moe_golden.h.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/model_moe_golden.h"
#include "tests/unit/vocab_cut.h"

namespace {

using namespace sable::golden_test;

constexpr double kTpRelErr = 1e-5;
constexpr int kDecodeSteps = 4;

// `name`: a golden model, or the path of a folder.
std::unique_ptr<ModelRunner> make_tp_runner(const std::string& name, int32_t tp_size,
                                            int32_t page_size = 4) {
  sable::runner::RunnerOptions opt;
  opt.model_path = name.find('/') == std::string::npos ? model_dir(name) : name;
  opt.page_size = page_size;
  opt.num_pages = 256;
  opt.attention_backend = "cpu";
  opt.registry = &registry();
  opt.tp_size = tp_size;
  opt.cpu_threads = 1;  // ranks are threads already; keep the 2-core CI machine uncrowded
  return ModelRunner::create(opt);
}

// Every logits row of a forward over the golden prompts: one prefill with all logits, then
// kDecodeSteps batched greedy steps fed with `feed` (TP 1's choices, so every TP size sees the
// same tokens). Returns the rows, in order, and fills `feed` when it is empty.
std::vector<std::vector<float>> run_rows(ModelRunner& runner, const Golden& g,
                                         std::vector<std::vector<int32_t>>& feed,
                                         std::vector<float>* hidden) {
  const auto pages = assign_pages(g, runner.page_size(), runner.num_pages());
  std::vector<std::vector<float>> rows;
  std::vector<ModelRunner::Sequence> batch(g.prompts.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].new_tokens = g.prompts[i];
    batch[i].pages = pages[i];
    batch[i].all_logits = true;
  }
  auto out = runner.forward(batch, hidden != nullptr);
  if (hidden != nullptr) *hidden = out.hidden;
  for (int64_t r = 0; r < out.rows; ++r) rows.emplace_back(out.row(r).begin(), out.row(r).end());
  const bool first = feed.empty();
  if (first) feed.resize(g.prompts.size());
  std::vector<int32_t> cached(g.prompts.size());
  int64_t row = 0;
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    row += static_cast<int64_t>(g.prompts[i].size());
    cached[i] = static_cast<int32_t>(g.prompts[i].size());
    if (first) feed[i].push_back(sable::runner::argmax(out.row(row - 1)));
  }
  for (int step = 0; step < kDecodeSteps; ++step) {
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].new_tokens = std::span<const int32_t>(feed[i]).subspan(static_cast<size_t>(step), 1);
      batch[i].num_cached = cached[i]++;
      batch[i].all_logits = false;
    }
    auto d = runner.forward(batch);
    for (int64_t r = 0; r < d.rows; ++r) {
      rows.emplace_back(d.row(r).begin(), d.row(r).end());
      if (first) feed[static_cast<size_t>(r)].push_back(sable::runner::argmax(d.row(r)));
    }
  }
  return rows;
}

class TpGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TpGolden, MatchesOneRank) {
  const std::string name = GetParam();
  const Golden g = load_golden(name);
  std::vector<std::vector<int32_t>> feed;
  auto one = make_tp_runner(name, 1);
  std::vector<float> hidden1;
  const auto want = run_rows(*one, g, feed, &hidden1);
  int64_t bytes_prev = 0;
  for (int32_t tp : {2, 4}) {
    auto runner = make_tp_runner(name, tp);
    EXPECT_EQ(runner->tp_size(), tp);
    // Rank 0 holds a slice: less at TP 4 than at TP 2 (TP 1 may keep bf16 matrices packed, so
    // its bytes are not comparable).
    if (bytes_prev > 0) EXPECT_LT(runner->weight_bytes(), bytes_prev) << name << " TP " << tp;
    bytes_prev = runner->weight_bytes();
    std::vector<float> hidden;
    const auto got = run_rows(*runner, g, feed, &hidden);
    ASSERT_EQ(got.size(), want.size());
    if (want[0].size() < 16) {
      // A score head's row holds a label or two: one relative error over the whole output.
      std::vector<float> a, b;
      for (size_t r = 0; r < want.size(); ++r) {
        a.insert(a.end(), got[r].begin(), got[r].end());
        b.insert(b.end(), want[r].begin(), want[r].end());
      }
      EXPECT_LE(rel_err(a, b), kTpRelErr) << name << " TP " << tp << " scores";
    }
    for (size_t r = 0; r < want.size() && want[0].size() >= 16; ++r) {
      const double err = rel_err(got[r], want[r]);
      ASSERT_LE(err, kTpRelErr) << name << " TP " << tp << " logits row " << r;
    }
    EXPECT_LE(rel_err(hidden, hidden1), kTpRelErr) << name << " TP " << tp << " hidden states";
    EXPECT_FALSE(runner->tp_failure().has_value());
  }
}

// Dense (llama, qwen), MoE (experts sliced by intermediate size) and generic-plugin decoders.
INSTANTIATE_TEST_SUITE_P(Models, TpGolden,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "llama_reward",
                                           "mixtral", "qwen2_moe", "qwen3_moe", "gemma", "granite",
                                           "helium", "stablelm"));

// The golden model `name` with its vocabulary cut to `vocab` (tests/unit/vocab_cut.h), in a folder
// of this process that lives as long as the object.
struct CutModel {
  std::string path;
  CutModel(const std::string& name, int64_t vocab)
      : path(sable::test_support::cut_vocab_copy(
            model_dir(name), ::testing::TempDir() + "/sable_tp_vocab_" + name + "_" +
                                 std::to_string(vocab) + "_" + std::to_string(getpid()),
            vocab)) {}
  ~CutModel() { std::filesystem::remove_all(path); }
};

// A vocabulary no rank count divides (999 = 2*500 - 1 = 4*250 - 1): the last rank holds one row
// less, its logits block is padded for the gather and the padding cut after it, and ids on both
// sides of every rank boundary embed as on one rank. Untied (llama, MoE), tied (qwen2, gemma through the
// generic plugin) and a score head (the embedding alone).
class TpUnevenVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(TpUnevenVocab, MatchesOneRank) {
  constexpr int64_t kVocab = 999;
  const std::string name = GetParam();
  const CutModel cut(name, kVocab);
  const std::string& path = cut.path;
  Golden g = load_golden(name);
  for (auto& p : g.prompts)
    for (auto& id : p) id %= static_cast<int32_t>(kVocab);
  g.prompts.push_back({0, 249, 250, 499, 500, 749, 750, 998, 998, 0});
  std::vector<std::vector<int32_t>> feed;
  auto one = make_tp_runner(path, 1);
  const auto want = run_rows(*one, g, feed, nullptr);
  const bool scores = want[0].size() < 16;
  if (!scores) ASSERT_EQ(want[0].size(), static_cast<size_t>(kVocab));
  for (int32_t tp : {2, 4}) {
    auto runner = make_tp_runner(path, tp);
    // Rank 0 holds the same P = ceil(V / N) vocabulary rows of 999 tokens as of the 1000 of the
    // uncut model (500 at TP 2, 250 at TP 4): the split is in use, not a whole-table fallback.
    EXPECT_EQ(runner->weight_bytes(), make_tp_runner(name, tp)->weight_bytes()) << name << " " << tp;
    const auto got = run_rows(*runner, g, feed, nullptr);
    ASSERT_EQ(got.size(), want.size());
    std::vector<float> a, b;  // a score head's rows hold a label or two: compared as one
    for (size_t r = 0; r < want.size(); ++r) {
      ASSERT_EQ(got[r].size(), want[r].size()) << name << " TP " << tp << " row " << r;
      if (scores) {
        a.insert(a.end(), got[r].begin(), got[r].end());
        b.insert(b.end(), want[r].begin(), want[r].end());
      } else {
        ASSERT_LE(rel_err(got[r], want[r]), kTpRelErr) << name << " TP " << tp << " row " << r;
      }
    }
    if (scores) EXPECT_LE(rel_err(a, b), kTpRelErr) << name << " TP " << tp << " scores";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TpUnevenVocab,
                         ::testing::Values("llama", "qwen2", "gemma", "qwen3_moe", "llama_reward"));

// The reason a model cannot be split reaches the startup error.
void expect_start_error(const std::string& name, int32_t tp, const std::string& needle) {
  try {
    make_tp_runner(name, tp);
    ADD_FAILURE() << name << " TP " << tp << " started";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TpErrors, ModelsThatCannotBeSplitNameTheCause) {
  expect_start_error("llama", 3, "tp_size 3 does not divide num_attention_heads 4");
  expect_start_error("qwen2_tok", 4, "tp_size 4 does not divide num_attention_heads 2");
  expect_start_error("phi3", 2, "needs tp_size 1");                  // fused qkv_proj
  expect_start_error("olmo2", 2, "needs tp_size 1");                 // q/k norm over all heads
  expect_start_error("bert_embed", 2, "tp_size 2");                  // encoders
  expect_start_error("llama", 0, "tp_size must be >= 1");
}

// Sets SABLE_FAULT_TP_RANK for one scope.
struct FaultEnv {
  explicit FaultEnv(const char* v) { setenv("SABLE_FAULT_TP_RANK", v, 1); }
  ~FaultEnv() { unsetenv("SABLE_FAULT_TP_RANK"); }
};

TEST(TpErrors, ARankFailingAtStartIsNamed) {
  FaultEnv fault("1:start");
  expect_start_error("llama", 2, "tensor-parallel rank 1 failed: fault injected at start");
}

TEST(TpErrors, ARankDyingWhileServingStopsTheGroup) {
  const Golden g = load_golden("llama");
  std::unique_ptr<ModelRunner> runner;
  {
    FaultEnv fault("2:forward:2");  // rank 2 of 4 fails on its second forward
    runner = make_tp_runner("llama", 4);
  }
  std::vector<std::vector<int32_t>> pages = assign_pages(g, runner->page_size(), runner->num_pages());
  ModelRunner::Sequence s;
  s.new_tokens = g.prompts[0];
  s.pages = pages[0];
  std::vector<ModelRunner::Sequence> batch = {s};
  EXPECT_NO_THROW(runner->forward(batch));  // the first forward is healthy
  // Bad input is refused before any rank runs, and does not stop the group.
  ModelRunner::Sequence bad = s;
  bad.new_tokens = {};
  EXPECT_THROW(runner->forward(std::vector<ModelRunner::Sequence>{bad}), std::invalid_argument);
  EXPECT_FALSE(runner->tp_failure().has_value());
  // The failing forward: ranks 0, 1 and 3 wait in an all-reduce that rank 2 never joins; the
  // abort releases them and the error names rank 2.
  batch[0].num_cached = static_cast<int32_t>(g.prompts[0].size());
  const std::vector<int32_t> next = {g.prompts[0][0]};
  batch[0].new_tokens = next;
  try {
    runner->forward(batch);
    ADD_FAILURE() << "the forward with a dead rank returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor-parallel rank 2 failed: fault injected on forward 2"),
              std::string::npos)
        << e.what();
  }
  ASSERT_TRUE(runner->tp_failure().has_value());
  EXPECT_NE(runner->tp_failure()->find("rank 2"), std::string::npos);
  EXPECT_THROW(runner->forward(batch), std::runtime_error);  // at once, no rank runs again
}

}  // namespace
