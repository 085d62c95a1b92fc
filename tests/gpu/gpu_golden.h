// The golden causal checkpoints (tests/golden/models/<name>) on CUDA: their prompts, reference
// greedy continuations and fp32 logits, and a bf16 model runner over one of them, shared by the
// single-GPU golden suite and the tensor-parallel one.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/built_plugins.h"

namespace sable::gputest {

inline std::string model_dir(const std::string& name) {
  return std::string(SABLE_TEST_DATA_DIR) + "/models/" + name;
}

// A CUDA runner of `name`, a golden model or a folder's path (16-token pages, 4096 tokens of KV,
// 1024-token batches, 16 sequences).
inline std::unique_ptr<runner::ModelRunner> make_cuda_runner(const std::string& name, bool graphs,
                                                             int32_t tp_size = 1) {
  runner::RunnerOptions o;
  o.model_path = name.find('/') == std::string::npos ? model_dir(name) : name;
  o.device = "cuda";
  o.page_size = 16;
  o.max_total_tokens = 4096;
  o.max_batch_tokens = 1024;
  o.max_seqs = 16;
  o.cuda_graphs = graphs;
  o.tp_size = tp_size;
  o.registry = &test_support::registry();
  return runner::ModelRunner::create(o);
}

struct Golden {
  std::vector<std::vector<int32_t>> prompts, greedy;
  std::unique_ptr<weights::SafetensorsFile> tensors;  // null for qwen2_tok (no logits)
  std::vector<float> f32(const std::string& name) const {
    for (const auto& t : tensors->tensors())
      if (t.name == name) {
        auto b = tensors->bytes(t);
        std::vector<float> v(b.size() / 4);
        std::memcpy(v.data(), b.data(), b.size());
        return v;
      }
    return {};
  }
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  std::ifstream in(model_dir(name) + "/golden.json");
  const auto j = nlohmann::json::parse(in);
  if (j.contains("prompts")) {
    g.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
    g.greedy = j.at("greedy").get<std::vector<std::vector<int32_t>>>();
    g.tensors = weights::SafetensorsFile::open(model_dir(name) + "/golden.safetensors");
  } else {  // qwen2_tok: texts with their ids and 16 greedy ids, no logits
    g.prompts = j.at("ids").get<std::vector<std::vector<int32_t>>>();
    g.greedy = j.at("greedy_ids").get<std::vector<std::vector<int32_t>>>();
  }
  return g;
}

// The MoE checkpoints, whose bf16 logits the suites hold to a looser bound.
inline bool is_moe(const std::string& name) {
  return name == "qwen2_moe" || name == "mixtral" || name == "qwen3_moe";
}

// Relative L2 error of the logits at every position of prompt i (run alone) against the fp32
// reference; empty (with a failure) when the shapes differ.
inline std::vector<double> prompt_logit_errors(runner::ModelRunner& r, const Golden& g, size_t i) {
  std::vector<int32_t> pages(static_cast<size_t>(r.num_pages()));
  std::iota(pages.begin(), pages.end(), 0);
  runner::ModelRunner::Sequence s{g.prompts[i], 0, pages, true};
  const auto res = r.forward(std::span<const runner::ModelRunner::Sequence>(&s, 1));
  const std::vector<float> ref = g.f32("logits_" + std::to_string(i));
  EXPECT_EQ(ref.size(), res.logits.size()) << "prompt " << i;
  if (ref.size() != res.logits.size()) return {};
  std::vector<double> errors;
  for (int64_t row = 0; row < res.rows; ++row)
    errors.push_back(rel_l2(res.row(row), std::span<const float>(ref).subspan(
                                              static_cast<size_t>(row * res.vocab),
                                              static_cast<size_t>(res.vocab))));
  return errors;
}

// Runs prompt + teacher-forced continuation for each sequence (all at once when `which` has
// several), returning the argmax after every step. Pages are disjoint per sequence, in
// non-contiguous order. `free_running`: each step feeds the sequence's own last pick instead of
// the reference token (plain greedy decoding, as transformers' generate).
inline std::vector<std::vector<int32_t>> teacher_forced(runner::ModelRunner& r, const Golden& g,
                                                        const std::vector<size_t>& which,
                                                        bool free_running = false) {
  const int64_t per_seq = r.num_pages() / static_cast<int64_t>(std::max<size_t>(which.size(), 1));
  std::vector<std::vector<int32_t>> pages(which.size()), picks(which.size());
  for (size_t i = 0; i < which.size(); ++i) {
    pages[i].resize(static_cast<size_t>(per_seq));
    std::iota(pages[i].begin(), pages[i].end(), static_cast<int32_t>(i * per_seq));
    std::reverse(pages[i].begin(), pages[i].end());
  }
  const size_t steps = g.greedy[which[0]].size();
  for (size_t step = 0; step < steps; ++step) {
    std::vector<runner::ModelRunner::Sequence> seqs;
    std::vector<std::vector<int32_t>> toks(which.size());
    for (size_t i = 0; i < which.size(); ++i) {
      const auto& p = g.prompts[which[i]];
      runner::ModelRunner::Sequence s;
      if (step == 0) {
        toks[i] = p;
        s.num_cached = 0;
      } else {
        toks[i] = {free_running ? picks[i][step - 1] : g.greedy[which[i]][step - 1]};
        s.num_cached = static_cast<int32_t>(p.size() + step - 1);
      }
      s.new_tokens = toks[i];
      s.pages = pages[i];
      seqs.push_back(s);
    }
    auto res = r.forward(seqs);
    for (size_t i = 0; i < which.size(); ++i) picks[i].push_back(runner::argmax(res.row(i)));
  }
  return picks;
}

}  // namespace sable::gputest
