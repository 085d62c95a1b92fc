// Qwen2.5-VL on CUDA (bf16) against transformers' fp32 reference (tests/golden/vl, made by
// scripts/make_vl_golden.py): the vision tower's merged embeddings of the three golden images, the
// logits at every prompt position of the one-image and the two-image prompt, teacher-forced greedy
// decoding with M-RoPE decode positions (index + delta), and a prefill split inside an image.
// Bounds as the text golden GPU suite: relative L2 error < 2e-2, at least 22 of 24 greedy tokens.
// Skipped without a GPU.
#include <nlohmann/json.hpp>

#include <fstream>
#include <numeric>

#include "core/image/image_decode.h"
#include "core/image/mrope_positions.h"
#include "core/image/qwen_vl_processor.h"
#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/built_plugins.h"

namespace sable::gputest {
namespace {

using runner::ModelRunner;

constexpr int32_t kImageToken = 151655;
constexpr int32_t kMerge = 2;
constexpr double kMaxRelL2 = 2e-2;

const std::string kVl = std::string(SABLE_TEST_DATA_DIR) + "/vl";

struct VlGolden {
  nlohmann::json meta;
  std::unique_ptr<weights::SafetensorsFile> tensors;
  std::vector<float> f32(const std::string& name) const {
    for (const auto& t : tensors->tensors())
      if (t.name == name) {
        auto b = tensors->bytes(t);
        std::vector<float> v(b.size() / 4);
        std::memcpy(v.data(), b.data(), b.size());
        return v;
      }
    ADD_FAILURE() << "golden tensor missing: " << name;
    return {};
  }
};

const VlGolden& golden() {
  static const VlGolden g = [] {
    VlGolden g;
    g.meta = nlohmann::json::parse(std::ifstream(kVl + "/golden.json"));
    g.tensors = weights::SafetensorsFile::open(kVl + "/golden.safetensors");
    return g;
  }();
  return g;
}

image::VisionPatches patches(const std::string& name) {
  std::ifstream in(kVl + "/" + golden().meta["images"][name]["file"].get<std::string>(),
                   std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  return image::qwen_vl_preprocess(image::decode_image(bytes, {}), {});
}

std::unique_ptr<ModelRunner> make_runner() {
  runner::RunnerOptions o;
  o.model_path = kVl + "/model";
  o.device = "cuda";
  o.page_size = 16;
  o.max_total_tokens = 4096;
  o.max_batch_tokens = 1024;
  o.max_seqs = 4;
  o.registry = &test_support::registry();
  return ModelRunner::create(o);
}

std::vector<float> encode(ModelRunner& r, const std::string& name) {
  const image::VisionPatches p = patches(name);
  const int32_t grid[3] = {p.grid_t, p.grid_h, p.grid_w};
  return r.encode_images(p.pixel_values, grid, kMerge);
}

TEST(VlGoldenGpu, VisionEmbeddingsMatch) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  for (const std::string name : {"a", "b", "c"}) {
    const auto got = encode(*r, name);
    const auto ref = golden().f32("vision_embeds_" + name);
    ASSERT_EQ(got.size(), ref.size()) << name;
    EXPECT_LT(rel_l2(got, ref), kMaxRelL2) << "image " << name;
  }
}

// Prompt case i: its M-RoPE positions and the spans of its images' embeddings.
struct Case {
  std::vector<int32_t> prompt, greedy;
  image::MropePositions mrope;
  std::vector<std::vector<float>> embeds;
  std::vector<ModelRunner::EmbedSpan> spans;
};

Case load_case(ModelRunner& r, size_t i) {
  const auto& c = golden().meta["cases"][i];
  Case out;
  out.prompt = c["prompt"].get<std::vector<int32_t>>();
  out.greedy = c["greedy"].get<std::vector<int32_t>>();
  std::vector<image::GridThw> grids;
  for (const auto& n : c["images"]) {
    const auto g = golden().meta["images"][n.get<std::string>()]["grid_thw"].get<std::vector<int>>();
    grids.push_back({g[0], g[1], g[2]});
    out.embeds.push_back(encode(r, n.get<std::string>()));
  }
  out.mrope = image::mrope_positions(out.prompt, grids, kImageToken, kMerge);
  size_t image = 0;
  for (size_t j = 0; j < out.prompt.size();) {
    if (out.prompt[j] != kImageToken) {
      ++j;
      continue;
    }
    const int32_t n = grids[image].t * grids[image].h * grids[image].w / (kMerge * kMerge);
    out.spans.push_back({static_cast<int32_t>(j), n, out.embeds[image].data()});
    j += static_cast<size_t>(n);
    ++image;
  }
  return out;
}

TEST(VlGoldenGpu, LogitsAndTeacherForcedGreedyMatch) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  const auto cols = golden().meta["logit_cols"].get<std::vector<int32_t>>();
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const Case c = load_case(*r, i);
    const auto len = static_cast<int32_t>(c.prompt.size());
    std::vector<int32_t> pages(64);
    std::iota(pages.rbegin(), pages.rend(), 0);  // non-contiguous order
    ModelRunner::Sequence s;
    s.new_tokens = c.prompt;
    s.pages = pages;
    s.all_logits = true;
    s.mrope_positions = c.mrope.positions;
    s.embeds = c.spans;
    const auto res = r->forward(std::span(&s, 1));
    ASSERT_EQ(res.rows, len);
    const auto ref = golden().f32("logits_" + std::to_string(i));
    std::vector<float> got;
    for (int32_t row = 0; row < len; ++row)
      for (const int32_t col : cols) got.push_back(res.row(row)[static_cast<size_t>(col)]);
    EXPECT_LT(rel_l2(got, ref), kMaxRelL2) << "logits at every position";
    // Teacher-forced: feed the reference token, compare each step's argmax.
    int agree = runner::argmax(res.row(len - 1)) == c.greedy[0];
    for (size_t step = 1; step < c.greedy.size(); ++step) {
      const int32_t index = len + static_cast<int32_t>(step) - 1;
      const int32_t pos = index + c.mrope.delta;
      const int32_t mrope[3] = {pos, pos, pos};
      ModelRunner::Sequence d;
      d.new_tokens = std::span(&c.greedy[step - 1], 1);
      d.num_cached = index;
      d.pages = pages;
      d.mrope_positions = mrope;
      agree += runner::argmax(r->forward(std::span(&d, 1)).row(0)) == c.greedy[step];
    }
    EXPECT_GE(agree, 22) << "of " << c.greedy.size() << " greedy tokens";
  }
}

TEST(VlGoldenGpu, PrefillSplitInsideAnImage) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  const Case c = load_case(*r, 1);
  const auto len = static_cast<int32_t>(c.prompt.size());
  const int32_t cut = c.spans[0].row + c.spans[0].count / 2;
  const auto hidden = static_cast<size_t>(r->info().hidden_size);
  std::vector<int32_t> pages(64);
  std::iota(pages.begin(), pages.end(), 0);
  auto part = [&](int32_t from, int32_t to, std::vector<int32_t>& mrope,
                  std::vector<ModelRunner::EmbedSpan>& spans) {
    for (int32_t axis = 0; axis < 3; ++axis)
      for (int32_t j = from; j < to; ++j) mrope.push_back(c.mrope.positions[static_cast<size_t>(axis * len + j)]);
    for (const auto& sp : c.spans) {
      const int32_t a = std::max(from, sp.row), b = std::min(to, sp.row + sp.count);
      if (a < b) spans.push_back({a - from, b - a, sp.data + static_cast<size_t>(a - sp.row) * hidden});
    }
    ModelRunner::Sequence s;
    s.new_tokens = std::span(c.prompt).subspan(static_cast<size_t>(from), static_cast<size_t>(to - from));
    s.num_cached = from;
    s.pages = pages;
    s.mrope_positions = mrope;
    s.embeds = spans;
    return s;
  };
  std::vector<int32_t> m1, m2;
  std::vector<ModelRunner::EmbedSpan> s1, s2;
  const ModelRunner::Sequence a = part(0, cut, m1, s1);
  r->forward(std::span(&a, 1));
  const ModelRunner::Sequence b = part(cut, len, m2, s2);
  const auto res = r->forward(std::span(&b, 1));
  EXPECT_LT(rel_l2(res.row(0), golden().f32("last_logits_1")), kMaxRelL2);
}

}  // namespace
}  // namespace sable::gputest
