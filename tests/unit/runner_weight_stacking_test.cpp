// core/runner ModelHost::weight_get_stacked (ABI 1.7): q|k|v (or gate|up) matrices stored in one
// block-quantized format come back as one packed matrix whose GEMM gives, row for row, what the
// separate matrices' GEMMs give (so a decoder quantizes a layer's input once, not once per
// projection); matrices in different formats, and hosts that convert weights, decline without an
// error and leave the tensors to be loaded one by one; their biases stack in the compute dtype.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/hf_config/hf_config.h"
#include "core/ops/cpu/cpu_common.h"
#include "core/runner/device_memory.h"
#include "core/runner/model_host.h"
#include "core/runner/weight_source.h"
#include "tests/unit/ops_qgemm_fixture.h"

namespace {

using sable::ops::qgemm_test::Format;
using sable::ops::qgemm_test::kFormats;
using sable::runner::ModelHost;

// Tensors held in memory: matrices quantized by Sable's ggml quantizer (handed out packed, or
// dequantized by read), vectors as floats.
class MemorySource final : public sable::runner::WeightSource {
 public:
  void matrix(const std::string& name, const Format& f, int64_t rows, int64_t cols,
              std::mt19937& rng) {
    Tensor& t = add(name, {rows, cols});
    t.format = &f;
    const auto w =
        sable::ops::qgemm_test::random_floats(rng, static_cast<size_t>(rows * cols), 0.1f);
    t.bytes = sable::gguf::quantize(f.ggml, w.data(), rows, cols);
  }
  void vector(const std::string& name, std::vector<float> v) {
    add(name, {static_cast<int64_t>(v.size())}).values = std::move(v);
  }

  const std::vector<std::string>& names() const override { return names_; }
  bool has(std::string_view name) const override { return tensors_.count(std::string(name)) > 0; }
  std::vector<int64_t> shape(std::string_view name, const std::vector<int64_t>&) override {
    return at(name).shape;
  }
  void read(std::string_view name, int32_t dst_dtype, int32_t slice_dim, int64_t, int64_t,
            void* dst) override {
    const Tensor& t = at(name);
    if (dst_dtype != SABLE_DTYPE_F32 || slice_dim >= 0)
      throw std::runtime_error("unsupported read");
    if (t.format == nullptr) {
      std::memcpy(dst, t.values.data(), t.values.size() * sizeof(float));
      return;
    }
    sable::gguf::dequantize_row(t.format->ggml, t.bytes.data(), static_cast<float*>(dst),
                                t.shape[0] * t.shape[1]);
  }
  int32_t packed_dtype(std::string_view name) const override {
    const Tensor& t = at(name);
    return t.format != nullptr ? t.format->dtype : -1;
  }
  void read_packed(std::string_view name, void* dst) override {
    const Tensor& t = at(name);
    std::memcpy(dst, t.bytes.data(), t.bytes.size());
  }
  std::string describe() const override { return "memory source"; }

 private:
  struct Tensor {
    std::vector<int64_t> shape;
    const Format* format = nullptr;  // null: a float vector
    std::vector<std::byte> bytes;
    std::vector<float> values;
  };
  Tensor& add(const std::string& name, std::vector<int64_t> shape) {
    names_.push_back(name);
    Tensor& t = tensors_[name];
    t.shape = std::move(shape);
    return t;
  }
  const Tensor& at(std::string_view name) const { return tensors_.at(std::string(name)); }
  std::vector<std::string> names_;
  std::map<std::string, Tensor> tensors_;
};

struct Fixture {
  explicit Fixture(bool packed = true)
      : config(sable::hf::HfConfig::parse(R"({"vocab_size": 1000})", "test")),
        memory(sable::runner::make_cpu_memory()) {
    options.packed_weights = packed;
  }
  ModelHost& host() {
    if (!h) h = std::make_unique<ModelHost>(config, source, *memory, nullptr, options);
    return *h;
  }
  SableStatus stacked(std::vector<const char*> names, std::vector<int64_t> rows, int64_t cols,
                      SableTensor* out) {
    return host().weight_get_stacked(static_cast<int32_t>(names.size()), names.data(), rows.data(),
                                     cols, out);
  }
  SableTensor get(const char* name, std::vector<int64_t> shape) {
    SableTensor t{};
    EXPECT_EQ(host().weight_get(name, static_cast<int32_t>(shape.size()), shape.data(),
                                SABLE_DTYPE_AUTO, -1, 0, 0, &t),
              SABLE_OK)
        << host().take_error();
    return t;
  }

  sable::hf::HfConfig config;
  std::unique_ptr<sable::runner::DeviceMemory> memory;
  sable::runner::ModelHostOptions options;
  MemorySource source;
  std::unique_ptr<ModelHost> h;
};

// out[m, n] of a packed weight by the CPU GEMM (the best kernel table, int8 activations or not).
std::vector<float> gemm(const SableTensor& w, const std::vector<float>& x, int64_t m) {
  const int64_t n = w.shape[0], k = w.shape[1];
  std::vector<float> out(static_cast<size_t>(m * n));
  sable::ops::cpu::packed_gemm(w.dtype, w.data, x.data(), k, nullptr, out.data(), n, m, n, k);
  return out;
}

class Stacking : public ::testing::TestWithParam<Format> {};

// The stacked q|k|v matrix's GEMM gives the separate GEMMs' outputs in its column blocks, bit for
// bit, at batch-1, batch-8 and prefill sizes, with int8 and with fp32 activations.
TEST_P(Stacking, StackedMatrixGivesTheSeparateProjectionsRows) {
  const Format& f = GetParam();
  const int64_t k = 256, qd = 64, kd = 32;
  std::mt19937 rng(7);
  Fixture fx;
  fx.source.matrix("q", f, qd, k, rng);
  fx.source.matrix("k", f, kd, k, rng);
  fx.source.matrix("v", f, kd, k, rng);
  SableTensor qkv{};
  ASSERT_EQ(fx.stacked({"q", "k", "v"}, {qd, kd, kd}, k, &qkv), SABLE_OK) << fx.host().take_error();
  EXPECT_EQ(qkv.dtype, f.dtype);
  ASSERT_EQ(qkv.ndim, 2);
  EXPECT_EQ(qkv.shape[0], qd + 2 * kd);
  EXPECT_EQ(qkv.shape[1], k);
  const SableTensor parts[] = {fx.get("q", {qd, k}), fx.get("k", {kd, k}), fx.get("v", {kd, k})};
  const bool int8_before = sable::ops::cpu::int8_activations();
  for (const bool int8 : {true, false}) {
    sable::ops::cpu::set_int8_activations(int8);
    for (const int64_t m : {1, 8, 40}) {
      const auto x = sable::ops::qgemm_test::random_floats(rng, static_cast<size_t>(m * k));
      const std::vector<float> all = gemm(qkv, x, m);
      int64_t col0 = 0;
      for (const SableTensor& p : parts) {
        const std::vector<float> one = gemm(p, x, m);
        const int64_t n = p.shape[0];
        for (int64_t i = 0; i < m; ++i)
          for (int64_t c = 0; c < n; ++c)
            ASSERT_EQ(all[static_cast<size_t>(i * (qd + 2 * kd) + col0 + c)],
                      one[static_cast<size_t>(i * n + c)])
                << f.name << " int8 " << int8 << " m " << m << " row " << i << " col " << col0 + c;
        col0 += n;
      }
    }
  }
  sable::ops::cpu::set_int8_activations(int8_before);
  EXPECT_TRUE(fx.host().take_error().empty());
}

INSTANTIATE_TEST_SUITE_P(BlockFormats, Stacking,
                         ::testing::Values(kFormats[0], kFormats[1], kFormats[2], kFormats[3],
                                           kFormats[4], kFormats[5]),
                         [](const auto& info) { return std::string(info.param.name); });

// q and k in Q4_K with v in Q6_K (a Q4_K_M file's layer): no stacking, no error, nothing marked
// loaded; each still loads on its own.
TEST(StackingFallback, DifferentFormatsAreDeclined) {
  std::mt19937 rng(3);
  Fixture fx;
  fx.source.matrix("q", kFormats[3], 32, 256, rng);
  fx.source.matrix("k", kFormats[3], 16, 256, rng);
  fx.source.matrix("v", kFormats[5], 16, 256, rng);
  SableTensor out{};
  out.data = &fx;  // untouched on decline
  EXPECT_EQ(fx.stacked({"q", "k", "v"}, {32, 16, 16}, 256, &out), SABLE_ERR_UNSUPPORTED);
  EXPECT_EQ(out.data, &fx);
  EXPECT_EQ(fx.host().take_error(), "");
  EXPECT_EQ(fx.host().unused_weights(), (std::vector<std::string>{"k", "q", "v"}));
  EXPECT_EQ(fx.get("v", {16, 256}).dtype, SABLE_DTYPE_Q6_K);
}

// BF16 / F16 matrices keep their own GEMMs (only block-quantized formats are stacked).
TEST(StackingFallback, HalfMatricesAreDeclined) {
  std::mt19937 rng(4);
  Fixture fx;
  fx.source.matrix("gate", kFormats[6], 32, 64, rng);
  fx.source.matrix("up", kFormats[6], 32, 64, rng);
  SableTensor out{};
  EXPECT_EQ(fx.stacked({"gate", "up"}, {32, 32}, 64, &out), SABLE_ERR_UNSUPPORTED);
  EXPECT_EQ(fx.host().take_error(), "");
}

// A host that converts every weight (--cpu-dequantize) offers weight_get_into for fusing instead.
TEST(StackingFallback, ConvertingHostDeclines) {
  std::mt19937 rng(5);
  Fixture fx(false);
  fx.source.matrix("gate", kFormats[0], 32, 64, rng);
  fx.source.matrix("up", kFormats[0], 32, 64, rng);
  SableTensor out{};
  EXPECT_EQ(fx.stacked({"gate", "up"}, {32, 32}, 64, &out), SABLE_ERR_UNSUPPORTED);
  EXPECT_NE(fx.host().api()->weight_get_into, nullptr);
}

// Biases (cols 0) stack in the compute dtype, in order, and are marked loaded.
TEST(StackingVectors, BiasesStackInTheComputeDtype) {
  std::mt19937 rng(6);
  Fixture fx;
  fx.source.matrix("w", kFormats[0], 32, 64, rng);  // a packed matrix: the host packs
  fx.source.vector("qb", {1, 2, 3, 4});
  fx.source.vector("kb", {5, 6});
  fx.source.vector("vb", {7, 8});
  SableTensor b{};
  ASSERT_EQ(fx.stacked({"qb", "kb", "vb"}, {4, 2, 2}, 0, &b), SABLE_OK) << fx.host().take_error();
  EXPECT_EQ(b.dtype, SABLE_DTYPE_F32);
  ASSERT_EQ(b.ndim, 1);
  ASSERT_EQ(b.shape[0], 8);
  const auto* v = static_cast<const float*>(b.data);
  EXPECT_EQ(std::vector<float>(v, v + 8), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(fx.host().unused_weights(), std::vector<std::string>{"w"});
}

// A missing tensor or a wrong shape is an error naming the tensor, as weight_get's are.
TEST(StackingErrors, MissingAndMisshapenTensorsAreNamed) {
  std::mt19937 rng(8);
  Fixture fx;
  fx.source.matrix("gate", kFormats[0], 32, 64, rng);
  fx.source.matrix("up", kFormats[0], 32, 64, rng);
  SableTensor out{};
  EXPECT_EQ(fx.stacked({"gate", "down"}, {32, 32}, 64, &out), SABLE_ERR_NOT_FOUND);
  EXPECT_NE(fx.host().take_error().find("'down'"), std::string::npos);
  EXPECT_EQ(fx.stacked({"gate", "up"}, {32, 16}, 64, &out), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(fx.host().take_error().find("'up'"), std::string::npos);
}

}  // namespace
