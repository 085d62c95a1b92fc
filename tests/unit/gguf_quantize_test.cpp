// Sable's quantizer (core/gguf/ggml_quantize.h) against gguf-py's: tests/golden/quant/quantize.gguf
// holds fixed float data and gguf.quants.quantize of it for Q8_0, Q4_0, Q4_1, F16 and BF16
// (scripts/make_quant_fixture.py); the C++ bytes must be identical. The K-quants, which gguf-py
// cannot quantize, are checked by round trip: ggml's dequantizer (dequantize_row) gives back each
// value within the format's step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "core/gguf/ggml_quantize.h"
#include "core/gguf/ggml_types.h"
#include "core/gguf/gguf_file.h"

namespace {

namespace fs = std::filesystem;
using namespace sable::gguf;

const fs::path kFixture = fs::path(SABLE_TEST_DATA_DIR) / "quant" / "quantize.gguf";

struct Case {
  const char* tensor;
  uint32_t type;
};

class QuantizeMatchesGgufPy : public ::testing::TestWithParam<Case> {};

TEST_P(QuantizeMatchesGgufPy, BytesAreIdentical) {
  const auto file = GgufFile::open(kFixture);
  const TensorInfo* in = file->tensor("input");
  const TensorInfo* ref = file->tensor(GetParam().tensor);
  ASSERT_NE(in, nullptr);
  ASSERT_NE(ref, nullptr);
  ASSERT_EQ(in->type, kF32);
  ASSERT_EQ(ref->type, GetParam().type);
  const int64_t cols = in->dims[0], rows = in->dims[1];
  std::vector<float> x(static_cast<size_t>(rows * cols));
  std::memcpy(x.data(), file->bytes(*in).data(), x.size() * sizeof(float));
  const std::vector<std::byte> mine = quantize(GetParam().type, x.data(), rows, cols);
  const auto theirs = file->bytes(*ref);
  ASSERT_EQ(mine.size(), theirs.size());
  const size_t block = type_traits(GetParam().type)->type_size;
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_EQ(mine[i], theirs[i]) << GetParam().tensor << ": first difference at byte " << i
                                  << " (block " << i / block << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeMatchesGgufPy,
                         ::testing::Values(Case{"q8_0", kQ8_0}, Case{"q4_0", kQ4_0},
                                           Case{"q4_1", kQ4_1}, Case{"f16", kF16},
                                           Case{"bf16", kBF16}),
                         [](const auto& info) { return std::string(info.param.tensor); });

class KQuantRoundTrip : public ::testing::TestWithParam<uint32_t> {};

// Every value comes back within one quantization step of its sub-block (plus the f16 rounding of
// the super-block scales), for rows at several magnitudes and an all-zero row.
TEST_P(KQuantRoundTrip, DequantizedValuesStayWithinAStep) {
  const uint32_t type = GetParam();
  const int64_t rows = 6, cols = 512;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      x[static_cast<size_t>(r * cols + c)] = r == 5 ? 0.0f : normal(rng) * std::pow(10.0f, r - 2.0f);
  const auto q = quantize(type, x.data(), rows, cols);
  const TypeTraits& t = *type_traits(type);
  ASSERT_EQ(q.size(), static_cast<size_t>(rows * cols / t.block_size) * t.type_size);
  std::vector<float> back(x.size());
  dequantize_row(type, q.data(), back.data(), rows * cols);
  const float levels = type == kQ4_K ? 15.0f : type == kQ5_K ? 31.0f : 31.0f;
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[static_cast<size_t>(r * cols + c)]));
    // The widest sub-block range is 2 * amax; its step that over `levels`, coarsened by the 6-bit
    // (8-bit for Q6_K) sub-block scale.
    const float step = 2.0f * amax / levels * 1.1f;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      EXPECT_LE(std::fabs(back[i] - x[i]), step) << t.name << " row " << r << " col " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KQuantRoundTrip, ::testing::Values(kQ4_K, kQ5_K, kQ6_K),
                         [](const auto& info) { return std::string(type_traits(info.param)->name); });

TEST(Quantize, RefusesTypesAndWidthsItCannotMake) {
  const std::vector<float> x(64, 1.0f);
  EXPECT_THROW(quantize(kQ5_0, x.data(), 1, 64), std::invalid_argument);
  EXPECT_THROW(quantize(kQ8_0, x.data(), 2, 31), std::invalid_argument);
  EXPECT_THROW(quantize(kQ4_K, x.data(), 1, 64), std::invalid_argument);
}

}  // namespace
