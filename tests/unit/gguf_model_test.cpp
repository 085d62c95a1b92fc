// GGUF models through the model runner and the llama / qwen plugins (fp32 CPU), against references
// made outside Sable (scripts/make_gguf_golden.py wrote the files with llama.cpp's gguf-py):
//  - F32, F16 and BF16 files of the golden checkpoints: logits at every position and greedy tokens
//    match the transformers reference (tests/golden/models/<name>/golden.*), as the safetensors
//    checkpoints do (model_golden_test), with the same 1e-4 relative bound;
//  - quantized files (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, and Q2_K..Q6_K in kquant.gguf), read
//    dequantized (--cpu-dequantize): the logits equal those of a safetensors copy of the
//    dequantized weights run through the checkpoint path, and greedy tokens are equal. The
//    dequantized weights themselves are checked bit for bit against gguf-py in gguf_test;
//  - the same files with the weights kept packed (the default) give the dequantized path's logits
//    (fp32 activations against weight rows unpacked on the fly, fp32 panels for prefill) and its
//    greedy tokens; with int8 activations (--cpu-int8-activations: integer dot products against
//    activations quantized per block of 32) they stay within a stated tolerance and pick the same
//    greedy token wherever the dequantized path's top-1/top-2 margin is clear (decode
//    teacher-forced along the dequantized path's tokens, so one near-tie does not derail the rest).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>

#include "core/gguf/gguf_model.h"
#include "core/ops/cpu/qkernels.h"
#include "core/weights/safetensors_writer.h"
#include "tests/unit/model_moe_golden.h"

namespace {

namespace fs = std::filesystem;
using namespace sable::golden_test;

const fs::path kDir = fs::path(SABLE_TEST_DATA_DIR) / "gguf";

struct GoldenCase {
  std::string file, model, plugin;
};

class GgufGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GgufGolden, LogitsMatchTransformers) {
  const auto& c = GetParam();
  expect_logits_match(c.model, "auto", 16, c.plugin, (kDir / c.file).string());
}

TEST_P(GgufGolden, GreedyTokensMatchTransformers) {
  const auto& c = GetParam();
  expect_greedy_match(c.model, "auto", 16, (kDir / c.file).string());
}

INSTANTIATE_TEST_SUITE_P(Files, GgufGolden,
                         ::testing::Values(GoldenCase{"llama-f32.gguf", "llama", "llama"},
                                           GoldenCase{"llama-f16.gguf", "llama", "llama"},
                                           GoldenCase{"qwen2-f16.gguf", "qwen2", "qwen"},
                                           GoldenCase{"qwen3-bf16.gguf", "qwen3", "qwen"}),
                         [](const auto& info) {
                           std::string n = info.param.file.substr(0, info.param.file.find('.'));
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A safetensors checkpoint (config.json + model.safetensors, f32) holding exactly the tensors the
// GGUF file dequantizes to, under their HF names.
fs::path safetensors_copy(const fs::path& gguf_file) {
  auto model = sable::gguf::GgufModel::open(gguf_file);
  const fs::path dir = fs::temp_directory_path() /
                       ("sable_gguf_copy_" + gguf_file.stem().string() + "_" +
                        std::to_string(getpid()));
  fs::create_directories(dir);
  sable::weights::SafetensorsWriter w;
  for (const std::string& name : model->names()) {
    const auto shape = model->shape(name);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    model->read(name, SABLE_DTYPE_F32, -1, 0, 0, v.data());
    w.add_f32(name, SABLE_DTYPE_F32, shape, v);
  }
  w.write(dir / "model.safetensors");
  std::ofstream(dir / "config.json") << model->config_json();
  return dir;
}

// Logits of every prompt position, then 24 greedy tokens of each prompt, one sequence at a time,
// and the logits each decode step chose from (step 0: the prompt's last position). With `forced`,
// step k feeds forced[i][k] instead of its own argmax (teacher forcing).
struct RunResult {
  std::vector<std::vector<float>> logits;
  std::vector<std::vector<int32_t>> greedy;
  std::vector<std::vector<std::vector<float>>> step_logits;
};
RunResult run(const std::string& path, const std::vector<std::vector<int32_t>>& prompts,
              bool packed = false, const std::vector<std::vector<int32_t>>* forced = nullptr,
              bool int8 = false) {
  auto r = make_runner(path, "auto", 16, 512, packed, int8);
  RunResult out;
  int32_t next_page = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto& prompt = prompts[p];
    std::vector<int32_t> pages;
    for (size_t k = 0; k < (prompt.size() + kGreedySteps + 15) / 16; ++k) pages.push_back(next_page++);
    std::vector<int32_t> tokens = prompt;
    ModelRunner::Sequence s;
    s.new_tokens = tokens;
    s.pages = pages;
    s.all_logits = true;
    auto res = r->forward(std::span(&s, 1));
    out.logits.push_back(res.logits);
    std::vector<int32_t> gen;
    std::vector<std::vector<float>> steps;
    int32_t cached = 0;
    for (size_t step = 0; step < kGreedySteps; ++step) {
      const auto row = res.row(res.rows - 1);
      steps.emplace_back(row.begin(), row.end());
      const int32_t tok = forced ? (*forced)[p][step] : sable::runner::argmax(row);
      gen.push_back(sable::runner::argmax(row));
      cached = static_cast<int32_t>(tokens.size());
      tokens.push_back(tok);
      ModelRunner::Sequence d;
      d.new_tokens = std::span<const int32_t>(tokens).subspan(static_cast<size_t>(cached));
      d.num_cached = cached;
      d.pages = pages;
      res = r->forward(std::span(&d, 1));
    }
    out.greedy.push_back(gen);
    out.step_logits.push_back(steps);
  }
  return out;
}

std::vector<std::vector<int32_t>> prompts_for(const std::string& file, const nlohmann::json& ref) {
  if (ref["model"].is_string()) return load_golden(ref["model"].get<std::string>()).prompts;
  std::vector<std::vector<int32_t>> prompts = {{1}, {5, 17, 200, 3, 99, 42, 7}, {}};
  for (int i = 0; i < 40; ++i) prompts.back().push_back((i * 37 + 11) % 256);
  (void)file;
  return prompts;
}

nlohmann::json reference_entry(const std::string& file) {
  std::ifstream in(kDir / "reference.json");
  return nlohmann::json::parse(in).at(file);
}

class GgufQuantized : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufQuantized, LogitsEqualASafetensorsCopyOfTheDequantizedWeights) {
  const fs::path file = kDir / GetParam();
  const auto prompts = prompts_for(GetParam(), reference_entry(GetParam()));
  const fs::path copy = safetensors_copy(file);
  const RunResult a = run(file.string(), prompts);
  const RunResult b = run(copy.string(), prompts);
  fs::remove_all(copy);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_LE(rel_err(a.logits[i], b.logits[i]), 1e-6) << GetParam() << " prompt " << i;
    EXPECT_EQ(a.greedy[i], b.greedy[i]) << GetParam() << " prompt " << i;
  }
}

// Packed weights with fp32 activations (the default) compute the dequantized path's products: the
// same logits up to fp32 summation order and the same greedy tokens.
TEST_P(GgufQuantized, PackedWeightsWithFloatActivationsMatchTheDequantizedPath) {
  const std::string file = (kDir / GetParam()).string();
  const auto prompts = prompts_for(GetParam(), reference_entry(GetParam()));
  const RunResult ref = run(file, prompts, false);
  const RunResult got = run(file, prompts, true);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_LE(rel_err(got.logits[i], ref.logits[i]), 1e-5) << GetParam() << " prompt " << i;
    EXPECT_EQ(got.greedy[i], ref.greedy[i]) << GetParam() << " prompt " << i;
  }
}

// The stated tolerance of int8 activations (--cpu-int8-activations) against the dequantized-fp32
// path on these tiny random
// models (hidden size 64 or 256, where per-block activation rounding weighs most): logits within
// kPackedRelErr (max-abs error over max-abs logit) at every prompt position and decode step, and
// the same greedy token wherever the fp32 top-1/top-2 margin exceeds kClearMargin of the logit
// range. Prompts of 33 and 96 tokens prefill through fp32 panels (the same products: 1e-5),
// except Q8_0 / Q4_0 / Q4_1 files, whose prefill runs int8 tiles too where the kernel table has
// them (qkernels.h int8_tiles) and stays within kPackedRelErr.
constexpr double kPackedRelErr = 0.05;
constexpr double kClearMargin = 0.02;

TEST_P(GgufQuantized, Int8ActivationsStayNearTheDequantizedPath) {
  const std::string file = (kDir / GetParam()).string();
  const auto prompts = prompts_for(GetParam(), reference_entry(GetParam()));
  const RunResult ref = run(file, prompts, false);
  const RunResult got = run(file, prompts, true, &ref.greedy, true);
  const bool tiled_format = GetParam().find("q8_0") != std::string::npos ||
                            GetParam().find("q4_0") != std::string::npos ||
                            GetParam().find("q4_1") != std::string::npos;
  const bool int8_prefill = tiled_format && sable::ops::cpu::best_kernels().int8_tiles;
  double worst = 0;
  int clear = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const double prefill = rel_err(got.logits[i], ref.logits[i]);
    const bool exact = prompts[i].size() >= 24 && !int8_prefill;
    EXPECT_LE(prefill, exact ? 1e-5 : kPackedRelErr) << GetParam() << " prompt " << i;
    for (size_t k = 0; k < kGreedySteps; ++k) {
      const auto& want = ref.step_logits[i][k];
      const double e = rel_err(got.step_logits[i][k], want);
      worst = std::max(worst, e);
      EXPECT_LE(e, kPackedRelErr) << GetParam() << " prompt " << i << " step " << k;
      std::vector<float> sorted = want;
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
      const double range = sorted[0] - *std::min_element(want.begin(), want.end());
      if (sorted[0] - sorted[1] > kClearMargin * range) {
        ++clear;
        EXPECT_EQ(got.greedy[i][k], ref.greedy[i][k]) << GetParam() << " prompt " << i << " step " << k;
      }
    }
  }
  EXPECT_GT(clear, static_cast<int>(prompts.size() * kGreedySteps / 4)) << "too few clear steps";
  RecordProperty("worst_rel_err", std::to_string(worst));
  std::printf("%s: worst decode rel err %.4f, %d clear steps\n", GetParam().c_str(), worst, clear);
}

INSTANTIATE_TEST_SUITE_P(Files, GgufQuantized,
                         ::testing::Values("llama-q8_0.gguf", "llama-q4_0.gguf", "llama-q4_1.gguf",
                                           "llama-q5_0.gguf", "llama-q5_1.gguf", "qwen2-q8_0.gguf",
                                           "qwen3-q5_1.gguf", "kquant.gguf"),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.find('.'));
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Quantization moves the logits, but a Q8_0 file of a golden checkpoint stays close to the
// transformers reference (a check that the quantized path computes the same model at all).
TEST(GgufQuantizedAccuracy, Q8_0StaysNearTheReference) {
  const Golden g = load_golden("llama");
  const RunResult q = run((kDir / "llama-q8_0.gguf").string(), g.prompts);
  for (size_t i = 0; i < g.prompts.size(); ++i)
    EXPECT_LE(rel_err(q.logits[i], g.f32("logits_" + std::to_string(i))), 0.05) << "prompt " << i;
}

}  // namespace
