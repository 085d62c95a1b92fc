// The vision-language reference data of tests/golden/vl (scripts/make_vl_golden.py), shared by the
// CPU golden suite (model_vl_golden_test) and the CUDA one (tests/gpu/vl_golden_gpu_test): the
// golden tensors, the images decoded and preprocessed by Sable, and each prompt case with its
// M-RoPE positions and the spans that splice its images' embeddings into the prompt.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/image/image_decode.h"
#include "core/image/mrope_positions.h"
#include "core/image/qwen_vl_processor.h"
#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"

namespace sable::vl_golden {

constexpr int32_t kImageToken = 151655;
constexpr int32_t kMerge = 2;

inline std::string vl_dir() { return std::string(SABLE_TEST_DATA_DIR) + "/vl"; }

struct VlGolden {
  nlohmann::json meta;
  std::unique_ptr<weights::SafetensorsFile> tensors;
  std::vector<float> f32(const std::string& name) const {
    std::vector<float> v;
    copy_into(name, v);
    return v;
  }
  std::vector<int64_t> i64(const std::string& name) const {
    std::vector<int64_t> v;
    copy_into(name, v);
    return v;
  }

 private:
  template <class T>
  void copy_into(const std::string& name, std::vector<T>& v) const {
    for (const auto& t : tensors->tensors()) {
      if (t.name != name) continue;
      auto bytes = tensors->bytes(t);
      v.resize(bytes.size() / sizeof(T));
      std::memcpy(v.data(), bytes.data(), bytes.size());
      return;
    }
    ADD_FAILURE() << "golden tensor missing: " << name;
  }
};

inline const VlGolden& golden() {
  static const VlGolden g = [] {
    VlGolden g;
    std::ifstream in(vl_dir() + "/golden.json");
    g.meta = nlohmann::json::parse(in);
    g.tensors = weights::SafetensorsFile::open(vl_dir() + "/golden.safetensors");
    return g;
  }();
  return g;
}

// An image file of the golden folder, decoded and preprocessed by Sable.
inline image::VisionPatches patches(const std::string& name) {
  const std::string file = golden().meta["images"][name]["file"].get<std::string>();
  std::ifstream in(vl_dir() + "/" + file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  return image::qwen_vl_preprocess(image::decode_image(bytes, {}), {});
}

// The vision tower's embeddings of golden image `name` on `runner`.
inline std::vector<float> encode(runner::ModelRunner& runner, const std::string& name) {
  const image::VisionPatches p = patches(name);
  const int32_t grid[3] = {p.grid_t, p.grid_h, p.grid_w};
  return runner.encode_images(p.pixel_values, grid, kMerge);
}

// One case of golden.json: its prompt, M-RoPE positions and the embedding spans of its images.
struct Case {
  std::vector<int32_t> prompt, greedy;
  image::MropePositions mrope;
  std::vector<std::vector<float>> embeds;  // per image
  std::vector<runner::ModelRunner::EmbedSpan> spans;
};

// Case i with each image's embeddings from `enc` (name -> rows).
inline Case load_case(size_t i, const std::function<std::vector<float>(const std::string&)>& enc) {
  const auto& c = golden().meta["cases"][i];
  Case out;
  out.prompt = c["prompt"].get<std::vector<int32_t>>();
  out.greedy = c["greedy"].get<std::vector<int32_t>>();
  std::vector<image::GridThw> grids;
  for (const auto& name : c["images"]) {
    const auto g = golden().meta["images"][name.get<std::string>()]["grid_thw"].get<std::vector<int>>();
    grids.push_back({g[0], g[1], g[2]});
    out.embeds.push_back(enc(name.get<std::string>()));
  }
  out.mrope = image::mrope_positions(out.prompt, grids, kImageToken, kMerge);
  size_t image = 0;
  for (size_t j = 0; j < out.prompt.size();) {
    if (out.prompt[j] != kImageToken) {
      ++j;
      continue;
    }
    const auto& g = grids[image];
    const int32_t n = g.t * g.h * g.w / (kMerge * kMerge);
    out.spans.push_back({static_cast<int32_t>(j), n, out.embeds[image].data()});
    j += static_cast<size_t>(n);
    ++image;
  }
  return out;
}

// The whole prompt of a case as one sequence over `pages`, logits at every position.
inline runner::ModelRunner::Sequence whole_prompt(const Case& c, std::span<const int32_t> pages) {
  runner::ModelRunner::Sequence s;
  s.new_tokens = c.prompt;
  s.pages = pages;
  s.all_logits = true;
  s.mrope_positions = c.mrope.positions;
  s.embeds = c.spans;
  return s;
}

// Columns `cols` of every row of a forward's logits, row-major (the golden stores these).
inline std::vector<float> logit_columns(const runner::ModelRunner::ForwardResult& res,
                                        std::span<const int32_t> cols) {
  std::vector<float> got;
  for (int64_t row = 0; row < res.rows; ++row)
    for (const int32_t col : cols) got.push_back(res.row(row)[static_cast<size_t>(col)]);
  return got;
}

// Rows [from, to) of a case as one prefill chunk: its M-RoPE positions and the parts of the image
// spans inside it (pointing into the middle of the embeddings when a chunk cuts an image).
struct Chunk {
  std::vector<int32_t> mrope;
  std::vector<runner::ModelRunner::EmbedSpan> spans;
  runner::ModelRunner::Sequence seq(const Case& c, int32_t from, int32_t to,
                                    std::span<const int32_t> pages) const {
    runner::ModelRunner::Sequence s;
    s.new_tokens = std::span(c.prompt).subspan(static_cast<size_t>(from), static_cast<size_t>(to - from));
    s.num_cached = from;
    s.pages = pages;
    s.mrope_positions = mrope;
    s.embeds = spans;
    return s;
  }
};

inline Chunk chunk(const Case& c, int32_t from, int32_t to, size_t hidden) {
  Chunk out;
  const auto len = static_cast<int32_t>(c.prompt.size());
  for (int32_t axis = 0; axis < 3; ++axis)
    for (int32_t j = from; j < to; ++j)
      out.mrope.push_back(c.mrope.positions[static_cast<size_t>(axis * len + j)]);
  for (const auto& sp : c.spans) {
    const int32_t a = std::max(from, sp.row), b = std::min(to, sp.row + sp.count);
    if (a < b) out.spans.push_back({a - from, b - a, sp.data + static_cast<size_t>(a - sp.row) * hidden});
  }
  return out;
}

}  // namespace sable::vl_golden
