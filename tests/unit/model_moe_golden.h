// Golden-checkpoint checks shared by the dense, MoE and generic model plugin tests: load
// tests/golden/models/<name> through the ModelRunner with a chosen impl (auto | native |
// transformers) on the CPU and compare with the transformers reference.
//
// Relative error of a row or tensor: max|a - b| / max|b| (b the reference), bound 1e-4, the same
// definition as model_golden_test.cpp. Greedy decoding must reproduce all 24 tokens of each prompt,
// with the four prompts batched: two prefill, then two join while the first two decode.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/plugin/registry.h"
#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/unit/built_plugins.h"

namespace sable::golden_test {

using runner::ModelRunner;

constexpr double kMaxRelErr = 1e-4;
constexpr size_t kGreedySteps = 24;

inline double rel_err(std::span<const float> a, std::span<const float> b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    ref = std::max(ref, std::abs(static_cast<double>(b[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

inline std::string model_dir(const std::string& name) {
  return std::string(SABLE_TEST_DATA_DIR) + "/models/" + name;
}

// The float32 tensor `name` of a golden safetensors file (a test failure when it is missing).
inline std::vector<float> golden_f32(const weights::SafetensorsFile& file, const std::string& name) {
  for (const auto& t : file.tensors()) {
    if (t.name != name) continue;
    auto bytes = file.bytes(t);
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
  }
  ADD_FAILURE() << "golden tensor missing: " << name;
  return {};
}

struct Golden {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> greedy;
  std::unique_ptr<weights::SafetensorsFile> tensors;

  std::vector<float> f32(const std::string& name) const { return golden_f32(*tensors, name); }
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  std::ifstream in(model_dir(name) + "/golden.json");
  const auto j = nlohmann::json::parse(in);
  g.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
  g.greedy = j.at("greedy").get<std::vector<std::vector<int32_t>>>();
  g.tensors = weights::SafetensorsFile::open(model_dir(name) + "/golden.safetensors");
  return g;
}

using test_support::registry;

// packed = false: quantized / bf16 / f16 weights converted to fp32 at load (the reference path).
inline std::unique_ptr<ModelRunner> make_runner(const std::string& path, const std::string& impl,
                                                int32_t page_size, int64_t num_pages = 512,
                                                bool packed = true, bool int8 = false) {
  runner::RunnerOptions opt;
  opt.packed_weights = packed;
  opt.int8_activations = int8;
  opt.model_path = path;
  opt.impl = impl;
  opt.page_size = page_size;
  opt.num_pages = num_pages;
  opt.attention_backend = "cpu";
  opt.registry = &registry();
  return ModelRunner::create(opt);
}

// Shuffled, non-contiguous pages for prompt + kGreedySteps tokens of each prompt.
inline std::vector<std::vector<int32_t>> assign_pages(const Golden& g, int32_t page_size,
                                                      int64_t pool) {
  std::vector<int32_t> ids(static_cast<size_t>(pool));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(1234));
  std::vector<std::vector<int32_t>> pages(g.prompts.size());
  size_t next = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    const size_t need = (g.prompts[i].size() + kGreedySteps + page_size - 1) / page_size;
    for (size_t k = 0; k < need; ++k) pages[i].push_back(ids.at(next++));
  }
  return pages;
}

// Logits at every prompt position and the last position's final-norm output.
// `path` (default: the golden folder) may name another copy of the model, e.g. a GGUF file.
inline void expect_logits_match(const std::string& name, const std::string& impl,
                                int32_t page_size, const std::string& want_plugin,
                                const std::string& path = "") {
  const Golden g = load_golden(name);
  auto r = make_runner(path.empty() ? model_dir(name) : path, impl, page_size);
  EXPECT_EQ(r->plugin_name(), want_plugin) << name << " impl=" << impl;
  const auto pages = assign_pages(g, page_size, r->num_pages());
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    ModelRunner::Sequence s;
    s.new_tokens = g.prompts[i];
    s.pages = pages[i];
    s.all_logits = true;
    const auto out = r->forward(std::span(&s, 1), /*want_hidden=*/true);
    const auto ref = g.f32("logits_" + std::to_string(i));
    const int64_t len = static_cast<int64_t>(g.prompts[i].size());
    ASSERT_EQ(out.rows, len);
    ASSERT_EQ(ref.size(), static_cast<size_t>(len * out.vocab));
    double worst = 0;
    for (int64_t row = 0; row < len; ++row) {
      const std::span<const float> want(ref.data() + row * out.vocab,
                                        static_cast<size_t>(out.vocab));
      worst = std::max(worst, rel_err(out.row(row), want));
    }
    EXPECT_LE(worst, kMaxRelErr) << name << " impl=" << impl << " prompt " << i;
    const auto hidden_ref = g.f32("last_hidden_" + std::to_string(i));
    ASSERT_EQ(hidden_ref.size(), static_cast<size_t>(out.hidden_size));
    const std::span<const float> last(out.hidden.data() + (len - 1) * out.hidden_size,
                                      static_cast<size_t>(out.hidden_size));
    EXPECT_LE(rel_err(last, hidden_ref), kMaxRelErr) << name << " hidden of prompt " << i;
  }
}

// Greedy decoding of all prompts in one batch: 3 and 0 prefill first, 1 and 2 join one step later.
inline void expect_greedy_match(const std::string& name, const std::string& impl,
                                int32_t page_size, const std::string& path = "") {
  const Golden g = load_golden(name);
  auto r = make_runner(path.empty() ? model_dir(name) : path, impl, page_size);
  const auto pages = assign_pages(g, page_size, r->num_pages());
  struct Seq {
    std::vector<int32_t> tokens, generated;
    int32_t cached = 0;
  };
  std::vector<Seq> seqs(g.prompts.size());
  for (size_t i = 0; i < seqs.size(); ++i) seqs[i].tokens = g.prompts[i];
  auto step = [&](const std::vector<size_t>& active) {
    std::vector<ModelRunner::Sequence> batch;
    for (size_t i : active) {
      ModelRunner::Sequence b;
      b.new_tokens = std::span<const int32_t>(seqs[i].tokens).subspan(
          static_cast<size_t>(seqs[i].cached));
      b.num_cached = seqs[i].cached;
      b.pages = pages[i];
      batch.push_back(b);
    }
    const auto out = r->forward(batch);
    ASSERT_EQ(out.rows, static_cast<int64_t>(active.size()));
    for (size_t j = 0; j < active.size(); ++j) {
      Seq& s = seqs[active[j]];
      const int32_t tok = runner::argmax(out.row(static_cast<int64_t>(j)));
      s.cached = static_cast<int32_t>(s.tokens.size());
      s.tokens.push_back(tok);
      s.generated.push_back(tok);
    }
  };
  step({3, 0});
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (;;) {
    std::vector<size_t> active;
    for (size_t i = 0; i < seqs.size(); ++i)
      if (seqs[i].generated.size() < kGreedySteps) active.push_back(i);
    if (active.empty()) break;
    step(active);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i].generated, g.greedy[i]) << name << " impl=" << impl << " prompt " << i;
}

}  // namespace sable::golden_test
