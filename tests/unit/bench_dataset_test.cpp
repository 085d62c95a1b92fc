// SGLang's benchmark datasets as `sable bench` samples them (core/cli/bench_dataset.h): the
// generators against numbers printed by CPython and numpy themselves, length bounds per range
// ratio, determinism by seed, ShareGPT filtering on a small fixture, and the shared-prefix groups.
#include "core/cli/bench_dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "core/cli/bench_rng.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::cli {
namespace {

const std::string kFixture = std::string(SABLE_TEST_DATA_DIR) + "/bench/sharegpt_fixture.json";

const tokenizer::Tokenizer& qwen() {  // Qwen2's tokenizer: no BOS, 151643 vocab + 26 added
  static const auto tok = tokenizer::Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_tok");
  return *tok;
}

std::vector<BenchRequest> sample(const DatasetOptions& o) {
  BenchRandom rng(o.seed);
  return sample_requests(o, qwen(), rng);
}

// Expected values printed by: python3 -c "import numpy as np; np.random.seed(42);
// print(np.random.randint(1,4097,size=6), np.random.randint(0,151643,size=3),
// np.random.exponential(0.5), np.random.random_sample())"
TEST(BenchRng, NumpyLegacyMatchesNumpy) {
  NumpyRandom np(42);
  for (int64_t want : {3175, 3508, 861, 1295, 1131, 1096}) EXPECT_EQ(np.randint(1, 4097), want);
  for (int64_t want : {110268, 54886, 137337}) EXPECT_EQ(np.randint(0, 151643), want);
  EXPECT_EQ(np.randint(7, 8), 7);  // a one-value range draws nothing
  EXPECT_DOUBLE_EQ(np.exponential(0.5), 0.08479814595730259);
  EXPECT_DOUBLE_EQ(np.random_sample(), 0.05808361216819946);
  NumpyRandom zero(0);
  for (int64_t want : {685, 560, 1654, 1217}) EXPECT_EQ(zero.randint(1, 2049), want);
}

// python3 -c "import random; random.seed(42); x=list(range(10)); random.shuffle(x);
// print(x, random.choices(range(1000),k=5), random.random(), random.getrandbits(7))"
TEST(BenchRng, PythonRandomMatchesCPython) {
  PyRandom py(42);
  std::vector<int> x{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  py.shuffle(x);
  EXPECT_EQ(x, (std::vector<int>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  for (size_t want : {590, 31, 93, 232, 602}) EXPECT_EQ(py.choice_index(1000), want);
  EXPECT_DOUBLE_EQ(py.random(), 0.561245062938613);
  EXPECT_EQ(py.getrandbits(7), 91u);
  EXPECT_EQ(PyRandom(0).getrandbits(32), 3626764237u);
  EXPECT_EQ(PyRandom((uint64_t{1} << 40) + 5).getrandbits(32), 2166296868u);  // a two-word key
}

TEST(BenchDataset, RandomLengthsRatioZeroSpanTheWholeRange) {
  DatasetOptions o;
  o.num_prompts = 500;
  o.random_input_len = 4096;
  o.random_output_len = 2048;
  o.random_range_ratio = 0.0;
  o.tokenize_prompt = true;
  const auto reqs = sample(o);
  ASSERT_EQ(reqs.size(), 500u);
  int64_t min_in = 1 << 30, max_in = 0, min_out = 1 << 30, max_out = 0;
  for (const auto& r : reqs) {
    ASSERT_EQ(static_cast<int64_t>(r.ids.size()), r.prompt_len);
    min_in = std::min(min_in, r.prompt_len), max_in = std::max(max_in, r.prompt_len);
    min_out = std::min<int64_t>(min_out, r.output_len), max_out = std::max<int64_t>(max_out, r.output_len);
  }
  EXPECT_GE(min_in, 1);
  EXPECT_LE(max_in, 4096);
  EXPECT_GE(min_out, 1);
  EXPECT_LE(max_out, 2048);
  // Uniform over [1, len]: 500 draws reach both ends' outer 5 %.
  EXPECT_LT(min_in, 205);
  EXPECT_GT(max_in, 3891);
  EXPECT_LT(min_out, 103);
  EXPECT_GT(max_out, 1945);
  // The first input lengths are numpy's randint(1, 4097) draws for seed 42 (see BenchRng).
  EXPECT_EQ(reqs[0].prompt_len, 3175);
  EXPECT_EQ(reqs[1].prompt_len, 3508);
}

// SGLang's CI workload (500 prompts, 4096 / 2048, ratio 0, seed 0): python3 -c "import numpy as
// np; np.random.seed(0); print(np.random.randint(1,4097,size=500).sum(),
// np.random.randint(1,2049,size=500).sum())" -> 1011340 532516
TEST(BenchDataset, SglangCiWorkloadTotals) {
  DatasetOptions o;
  o.num_prompts = 500;
  o.random_input_len = 4096;
  o.random_output_len = 2048;
  o.seed = 0;
  o.tokenize_prompt = true;
  const DatasetTotals t = dataset_totals(sample(o));
  EXPECT_EQ(t.input_tokens, 1011340);
  EXPECT_EQ(t.output_tokens, 532516);
}

TEST(BenchDataset, RandomLengthsRatioOneAreFixedAndHalfIsBounded) {
  DatasetOptions o;
  o.num_prompts = 50;
  o.random_input_len = 300;
  o.random_output_len = 20;
  o.random_range_ratio = 1.0;
  for (const auto& r : sample(o)) {
    EXPECT_EQ(r.prompt_len, 300);  // Qwen adds no special tokens: nothing subtracted for text
    EXPECT_EQ(r.output_len, 20);
  }
  o.random_range_ratio = 0.5;
  for (const auto& r : sample(o)) {
    EXPECT_GE(r.prompt_len, 150);
    EXPECT_LE(r.prompt_len, 300);
    EXPECT_GE(r.output_len, 10);
    EXPECT_LE(r.output_len, 20);
  }
}

// python3 -c "import numpy as np; np.random.seed(42); np.random.randint(1,4097,size=3);
// np.random.randint(1,2049,size=3); print(np.random.randint(0,151643,size=3))"
TEST(BenchDataset, RandomIdsAreRunsFromNumpyOffsets) {
  DatasetOptions o;
  o.num_prompts = 3;
  o.random_input_len = 4096;
  o.random_output_len = 2048;
  o.tokenize_prompt = true;
  const auto reqs = sample(o);
  ASSERT_EQ(reqs.size(), 3u);
  const int64_t offsets[] = {110268, 54886, 137337};
  const int32_t outputs[] = {1295, 1131, 1096};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reqs[i].output_len, outputs[i]);
    for (size_t j = 0; j < reqs[i].ids.size(); j += 97)
      EXPECT_EQ(reqs[i].ids[j], static_cast<int32_t>((offsets[i] + static_cast<int64_t>(i + j)) % 151643));
    EXPECT_TRUE(reqs[i].text.empty());
  }
  o.tokenize_prompt = false;  // the same ids, decoded as the text SGLang sends by default
  const auto text = sample(o);
  EXPECT_EQ(text[0].text, qwen().decode(reqs[0].ids, false, false));
}

TEST(BenchDataset, SameSeedSameRequestsOtherSeedOthers) {
  for (const char* name : {"random-ids", "generated-shared-prefix", "sharegpt", "random"}) {
    DatasetOptions o;
    o.name = name;
    o.path = kFixture;
    o.num_prompts = 20;
    o.random_input_len = 64;
    o.random_output_len = 8;
    o.gsp_num_groups = 2;
    o.gsp_prompts_per_group = 3;
    o.gsp_system_prompt_len = 16;
    o.gsp_question_len = 4;
    o.gsp_output_len = 4;
    const auto a = sample(o), b = sample(o);
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].ids, b[i].ids) << name;
      EXPECT_EQ(a[i].output_len, b[i].output_len) << name;
    }
    o.seed = 43;
    const auto c = sample(o);
    bool differs = c.size() != a.size();
    for (size_t i = 0; !differs && i < a.size(); ++i) differs = a[i].ids != c[i].ids;
    EXPECT_TRUE(differs) << name;
  }
}

TEST(BenchDataset, ShareGptKeepsFirstTwoTurnsAndPrunesLikeSglang) {
  const auto pairs = load_sharegpt(kFixture);
  ASSERT_EQ(pairs.size(), 6u);  // one-turn and non-ShareGPT entries dropped
  EXPECT_EQ(pairs[1].prompt, "Write a haiku about autumn leaves falling.");  // "conversation" key
  EXPECT_EQ(pairs[5].completion, "Red, yellow and blue are the traditional primary colors.");
  ASSERT_LT(qwen().encode("Hi", true).size(), 2u);  // the fixture's too-short prompt
  ASSERT_LT(qwen().encode("OK", true).size(), 2u);  // and too-short answer

  DatasetOptions o;
  o.name = "sharegpt";
  o.path = kFixture;
  o.num_prompts = 100;
  const auto reqs = sample(o);
  // random.seed(42); random.shuffle(range(6)) -> [3, 1, 2, 4, 0, 5]; pairs 2 and 3 are pruned.
  const std::vector<size_t> order = {1, 4, 0, 5};
  ASSERT_EQ(reqs.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& pair = pairs[order[i]];
    EXPECT_EQ(reqs[i].text, pair.prompt);
    EXPECT_EQ(reqs[i].ids, qwen().encode(pair.prompt, true));
    EXPECT_EQ(reqs[i].prompt_len, static_cast<int64_t>(reqs[i].ids.size()));
    EXPECT_EQ(reqs[i].output_len, static_cast<int32_t>(qwen().encode(pair.completion, true).size()));
  }
  o.num_prompts = 2;  // the first kept ones in shuffled order
  EXPECT_EQ(sample(o).size(), 2u);

  o.num_prompts = 100;
  o.sharegpt_context_len = 60;  // the long prompt (pair 4) no longer fits
  const auto fit = sample(o);
  ASSERT_EQ(fit.size(), 3u);
  for (const auto& r : fit) {
    EXPECT_NE(r.text, pairs[4].prompt);
    EXPECT_LE(r.prompt_len + r.output_len, 60);
  }
  o.sharegpt_context_len = 0;
  o.sharegpt_output_len = 7;
  for (const auto& r : sample(o)) EXPECT_EQ(r.output_len, 7);
}

TEST(BenchDataset, RandomCutsAndRepeatsShareGptPrompts) {
  DatasetOptions o;
  o.name = "random";
  o.path = kFixture;
  o.num_prompts = 6;
  o.random_input_len = 40;
  o.random_output_len = 5;
  o.random_range_ratio = 1.0;
  o.tokenize_prompt = true;
  const auto reqs = sample(o);
  ASSERT_EQ(reqs.size(), 6u);
  const auto pairs = load_sharegpt(kFixture);
  std::set<std::vector<int32_t>> sources;
  for (const auto& p : pairs) sources.insert(qwen().encode(p.prompt, true));
  for (const auto& r : reqs) {
    ASSERT_EQ(r.ids.size(), 40u);
    // Some ShareGPT prompt p with ids == (p * ceil(40 / len(p)))[:40].
    const bool found = std::any_of(sources.begin(), sources.end(), [&](const auto& p) {
      for (size_t j = 0; j < r.ids.size(); ++j)
        if (r.ids[j] != p[j % p.size()]) return false;
      return true;
    });
    EXPECT_TRUE(found);
  }
}

// python3: ids = all 151669 vocab ids; random.seed(42);
// [ids[floor(random.random() * 151669)] for _ in range(3)] -> [96981, 3793, 41713]
TEST(BenchDataset, GeneratedSharedPrefixGroups) {
  DatasetOptions o;
  o.name = "generated-shared-prefix";
  o.gsp_num_groups = 3;
  o.gsp_prompts_per_group = 4;
  o.gsp_system_prompt_len = 32;
  o.gsp_question_len = 8;
  o.gsp_output_len = 5;
  o.tokenize_prompt = true;
  const auto reqs = sample(o);
  ASSERT_EQ(reqs.size(), 12u);  // groups x prompts per group; --num-prompts does not apply
  std::map<std::vector<int32_t>, int> per_system;
  std::set<std::vector<int32_t>> questions;
  for (const auto& r : reqs) {
    ASSERT_EQ(r.ids.size(), 40u);
    EXPECT_EQ(r.prompt_len, 40);
    EXPECT_EQ(r.output_len, 5);
    ++per_system[std::vector<int32_t>(r.ids.begin(), r.ids.begin() + 32)];
    questions.insert(std::vector<int32_t>(r.ids.begin() + 32, r.ids.end()));
  }
  ASSERT_EQ(per_system.size(), 3u);
  for (const auto& [system, count] : per_system) EXPECT_EQ(count, 4);
  EXPECT_EQ(questions.size(), 12u);
  bool first_system_seen = false;  // group 0's system prompt starts with Python's first choices
  for (const auto& [system, count] : per_system)
    first_system_seen |= system[0] == 96981 && system[1] == 3793 && system[2] == 41713;
  EXPECT_TRUE(first_system_seen);

  o.tokenize_prompt = false;  // text: "{system}\n\n{question}", counted by encoding it
  for (const auto& r : sample(o)) {
    EXPECT_NE(r.text.find("\n\n"), std::string::npos);
    EXPECT_EQ(r.ids, qwen().encode(r.text, true));
    EXPECT_EQ(r.prompt_len, static_cast<int64_t>(r.ids.size()));
  }
}

TEST(BenchDataset, BadOptionsNameTheOption) {
  auto message = [](DatasetOptions o) {
    try {
      sample(o);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  DatasetOptions o;
  o.name = "random";
  EXPECT_NE(message(o).find("--dataset-path"), std::string::npos);  // no ShareGPT download here
  o.name = "sharegpt";
  o.path = "/nonexistent/sharegpt.json";
  EXPECT_NE(message(o).find("/nonexistent/sharegpt.json"), std::string::npos);
  o.path = std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_tok/config.json";  // an object
  EXPECT_NE(message(o).find("not a ShareGPT JSON list"), std::string::npos);
  o = DatasetOptions{};
  o.random_range_ratio = 1.5;
  EXPECT_NE(message(o).find("--random-range-ratio"), std::string::npos);
  o = DatasetOptions{};
  o.name = "sharegpt";
  o.path = kFixture;
  o.sharegpt_output_len = 3;
  EXPECT_NE(message(o).find("--sharegpt-output-len"), std::string::npos);
  o = DatasetOptions{};
  o.name = "bogus";
  EXPECT_NE(message(o).find("--dataset-name"), std::string::npos);
  o = DatasetOptions{};
  o.num_prompts = 0;
  EXPECT_NE(message(o).find("--num-prompts"), std::string::npos);
}

TEST(BenchDataset, ComputeRandomLensZeroLengthGivesZeros) {
  NumpyRandom np(1);
  EXPECT_EQ(compute_random_lens(np, 0, 0.0, 3), (std::vector<int32_t>{0, 0, 0}));
  for (int32_t len : compute_random_lens(np, 10, 0.95, 20)) {  // int(9.5) = 9
    EXPECT_GE(len, 9);
    EXPECT_LE(len, 10);
  }
}

}  // namespace
}  // namespace sable::cli
