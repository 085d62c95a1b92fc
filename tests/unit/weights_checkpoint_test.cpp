// Checkpoint: the golden llama checkpoint, the same split into index + two shards, dtype conversion
// and slicing along dims 0 and 1 against naive references, and clear errors for missing/unexpected
// tensors, missing shards and bad slices.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <cstring>
#include <algorithm>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/weights/checkpoint.h"
#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors_writer.h"
#include "sable/tensor.h"

namespace sable::weights {
namespace {

namespace fs = std::filesystem;

const fs::path kLlama = fs::path(SABLE_TEST_DATA_DIR) / "models" / "llama";

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sable_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  template <typename Fn>
  void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
    try {
      fn();
      FAIL() << "no error";
    } catch (const WeightsError& e) {
      const std::string msg = e.what();
      for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    }
  }

  // Rewrites the golden llama checkpoint through the writer (same names, dtypes and bytes).
  SafetensorsWriter copy_of_llama() const {
    auto src = Checkpoint::open(kLlama);
    SafetensorsWriter w;
    for (const auto& name : src->names()) {
      const TensorInfo& t = src->at(name);
      const auto bytes = src->files()[t.file_index]->bytes(t);
      w.add(name, t.dtype, t.shape, std::vector<std::byte>(bytes.begin(), bytes.end()));
    }
    return w;
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, OpensGoldenLlama) {
  auto ckpt = Checkpoint::open(kLlama);
  const TensorInfo* embed = ckpt->find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, SABLE_DTYPE_BF16);
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{1000, 64}));  // vocab x hidden (config.json)
  const TensorInfo* q = ckpt->find("model.layers.2.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(ckpt->find("model.layers.1.self_attn.k_proj.weight")->shape,
            (std::vector<int64_t>{32, 64}));  // 2 kv heads x 16
  EXPECT_EQ(ckpt->find("lm_head.weight")->shape, (std::vector<int64_t>{1000, 64}));
  EXPECT_EQ(ckpt->find("model.layers.3.mlp.up_proj.weight"), nullptr);
  const auto names = ckpt->names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), 3u * 9u + 3u);  // 9 per layer + embed, final norm, lm_head

  // f32 read of bf16 data is exact widening; the norm weights are finite and not all zero.
  const auto norm = ckpt->read_f32("model.norm.weight");
  ASSERT_EQ(norm.size(), 64u);
  const auto raw = ckpt->files()[0]->bytes(ckpt->at("model.norm.weight"));
  for (size_t i = 0; i < norm.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, raw.data() + 2 * i, 2);
    EXPECT_EQ(norm[i], bf16_to_f32(h));
  }
}

TEST_F(CheckpointTest, ShardedIndexMatchesSingleFile) {
  const auto files = copy_of_llama().write_sharded(dir_, 300 * 1024);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], "model-00001-of-00002.safetensors");
  auto single = Checkpoint::open(kLlama);
  auto sharded = Checkpoint::open(dir_);
  EXPECT_EQ(sharded->files().size(), 2u);
  ASSERT_EQ(sharded->names(), single->names());
  std::set<size_t> used;
  for (const auto& name : single->names()) {
    const TensorInfo& a = single->at(name);
    const TensorInfo& b = sharded->at(name);
    used.insert(b.file_index);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(single->read_f32(name), sharded->read_f32(name)) << name;
  }
  EXPECT_EQ(used.size(), 2u);
}

TEST_F(CheckpointTest, IndexErrorsNameTheTensorOrShard) {
  copy_of_llama().write_sharded(dir_, 300 * 1024);
  const fs::path index = dir_ / "model.safetensors.index.json";
  std::ifstream in(index);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto pos = t.find(from);
    ASSERT_NE(pos, std::string::npos);
    t.replace(pos, from.size(), to);
    std::ofstream(index, std::ios::trunc) << t;
  };
  // The map lists a tensor its shard lacks.
  rewrite("\"weight_map\": {", "\"weight_map\": {\n    \"model.extra.weight\": \"model-00001-of-00002.safetensors\",");
  expect_error([&] { Checkpoint::open(dir_); }, {"missing tensor 'model.extra.weight'"});
  // A shard holds a tensor the map does not list.
  rewrite("\"lm_head.weight\": \"model-00001-of-00002.safetensors\",", "");
  expect_error([&] { Checkpoint::open(dir_); }, {"unexpected tensor 'lm_head.weight'"});
  // A shard file that does not exist.
  rewrite("\"lm_head.weight\": \"model-00001-of-00002.safetensors\"",
          "\"lm_head.weight\": \"model-00009-of-00002.safetensors\"");
  expect_error([&] { Checkpoint::open(dir_); }, {"model-00009-of-00002.safetensors", "does not exist"});
  std::ofstream(index, std::ios::trunc) << "{\"weight_map\": [";
  expect_error([&] { Checkpoint::open(dir_); }, {"model.safetensors.index.json", "malformed"});
}

TEST_F(CheckpointTest, NoFilesAndDuplicatesAreErrors) {
  expect_error([&] { Checkpoint::open(dir_); }, {"no model.safetensors.index.json"});
  expect_error([&] { Checkpoint::open(dir_ / "absent"); }, {"does not exist"});
  SafetensorsWriter a;
  a.add_f32("w", SABLE_DTYPE_F32, {1}, {1.f});
  a.write(dir_ / "a.safetensors");
  a.write(dir_ / "b.safetensors");
  expect_error([&] { Checkpoint::open(dir_); }, {"tensor 'w' is in both"});
  auto one = [&] {
    fs::remove(dir_ / "b.safetensors");
    return Checkpoint::open(dir_);
  }();
  expect_error([&] { one->at("v"); }, {"no tensor 'v'"});
}

TEST_F(CheckpointTest, ReadsConvertAndSliceAlongAnyDim) {
  // A [3, 4, 5] tensor of distinct values, stored in each dtype.
  std::vector<float> values(60);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-4.f, 4.f);
  for (float& v : values) v = dist(rng);
  const int64_t shape[3] = {3, 4, 5};
  SafetensorsWriter w;
  w.add_f32("t.f32", SABLE_DTYPE_F32, {3, 4, 5}, values);
  w.add_f32("t.f16", SABLE_DTYPE_F16, {3, 4, 5}, values);
  w.add_f32("t.bf16", SABLE_DTYPE_BF16, {3, 4, 5}, values);
  w.write(dir_ / "model.safetensors");
  auto ckpt = Checkpoint::open(dir_);

  const auto round = [](int32_t d, float f) {
    if (d == SABLE_DTYPE_F16) return f16_to_f32(f32_to_f16(f));
    if (d == SABLE_DTYPE_BF16) return bf16_to_f32(f32_to_bf16(f));
    return f;
  };
  for (int32_t stored : {SABLE_DTYPE_F32, SABLE_DTYPE_F16, SABLE_DTYPE_BF16}) {
    const std::string name = stored == SABLE_DTYPE_F32 ? "t.f32" : stored == SABLE_DTYPE_F16 ? "t.f16" : "t.bf16";
    const TensorInfo& t = ckpt->at(name);
    for (int32_t dst : {SABLE_DTYPE_F32, SABLE_DTYPE_F16, SABLE_DTYPE_BF16}) {
      for (int32_t dim = -1; dim < 3; ++dim) {
        const int64_t start = dim < 0 ? 0 : 1;
        const int64_t len = dim < 0 ? 0 : shape[dim] - 2;
        const auto out_shape = Checkpoint::sliced_shape(t, dim, start, len);
        size_t n = 1;
        for (int64_t d : out_shape) n *= static_cast<size_t>(d);
        std::vector<std::byte> out(n * sable_dtype_size(dst));
        ckpt->read(t, dst, dim, start, len, out.data());
        std::vector<float> got(n);
        ASSERT_TRUE(convert(dst, out.data(), SABLE_DTYPE_F32, got.data(), n));
        // Naive reference: walk the output index space.
        size_t k = 0;
        for (int64_t i = 0; i < out_shape[0]; ++i)
          for (int64_t j = 0; j < out_shape[1]; ++j)
            for (int64_t l = 0; l < out_shape[2]; ++l, ++k) {
              int64_t idx[3] = {i, j, l};
              if (dim >= 0) idx[dim] += start;
              const float v = values[(idx[0] * 4 + idx[1]) * 5 + idx[2]];
              ASSERT_EQ(got[k], round(dst, round(stored, v)))
                  << name << " -> " << dst << " dim " << dim << " at " << k;
            }
      }
    }
  }
  const TensorInfo& t = ckpt->at("t.f32");
  std::vector<float> sink(60);
  expect_error([&] { ckpt->read(t, SABLE_DTYPE_F32, 3, 0, 1, sink.data()); }, {"'t.f32'", "slice dim 3"});
  expect_error([&] { ckpt->read(t, SABLE_DTYPE_F32, 1, 2, 3, sink.data()); }, {"'t.f32'", "out of range"});
  expect_error([&] { ckpt->read(t, SABLE_DTYPE_F32, 0, -1, 1, sink.data()); }, {"'t.f32'"});
  expect_error([&] { ckpt->read(t, SABLE_DTYPE_I32, -1, 0, 0, sink.data()); }, {"'t.f32'", "cannot convert"});
}

}  // namespace
}  // namespace sable::weights
