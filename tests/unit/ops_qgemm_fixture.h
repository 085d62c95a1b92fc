// Shared by the packed-weight GEMM suites (ops_qgemm_test, ops_qgemm_head_test): the formats,
// random weights quantized by Sable's ggml quantizer with their ggml dequantization, exact dots,
// and a fixture running the CPU gemm op.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/gguf/ggml_quantize.h"
#include "core/gguf/ggml_types.h"
#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/qkernels.h"
#include "core/weights/dtype_convert.h"
#include "sable/cpp/tensor.h"

namespace sable::ops::qgemm_test {

using cpu::BlockQ8A;
using cpu::QKernels;

struct Format {
  int32_t dtype;
  uint32_t ggml;
  const char* name;
};
inline const Format kFormats[] = {
    {SABLE_DTYPE_Q8_0, gguf::kQ8_0, "Q8_0"}, {SABLE_DTYPE_Q4_0, gguf::kQ4_0, "Q4_0"},
    {SABLE_DTYPE_Q4_1, gguf::kQ4_1, "Q4_1"}, {SABLE_DTYPE_Q4_K, gguf::kQ4_K, "Q4_K"},
    {SABLE_DTYPE_Q5_K, gguf::kQ5_K, "Q5_K"}, {SABLE_DTYPE_Q6_K, gguf::kQ6_K, "Q6_K"},
    {SABLE_DTYPE_BF16, gguf::kBF16, "BF16"}, {SABLE_DTYPE_F16, gguf::kF16, "F16"},
};

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// n x k weights quantized by Sable's quantizer, and the same weights dequantized by ggml's.
struct Packed {
  std::vector<std::byte> bytes;
  std::vector<float> deq;
};
inline Packed pack(const Format& f, const std::vector<float>& w, int64_t n, int64_t k) {
  Packed p;
  p.bytes = gguf::quantize(f.ggml, w.data(), n, k);
  p.deq.resize(w.size());
  gguf::dequantize_row(f.ggml, p.bytes.data(), p.deq.data(), n * k);
  return p;
}

inline double dot(const float* a, const float* b, int64_t k) {
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Overwrites the f16 scales of random blocks (d, and m / dmin where the format has one) with
// finite values of a weight's magnitude; the integer fields stay random.
inline void set_half_scales(int32_t dtype, std::vector<std::byte>& w, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.001f, 0.02f);
  const size_t bs = sable_dtype_block_bytes(dtype);
  const bool q6 = dtype == SABLE_DTYPE_Q6_K;
  const bool two =
      dtype == SABLE_DTYPE_Q4_1 || dtype == SABLE_DTYPE_Q4_K || dtype == SABLE_DTYPE_Q5_K;
  for (size_t b = 0; b < w.size() / bs; ++b) {
    for (int h = 0; h < (two ? 2 : 1); ++h) {
      const uint16_t v = weights::f32_to_f16(u(rng));
      std::memcpy(w.data() + b * bs + (q6 ? 208 : 2 * h), &v, 2);
    }
  }
}

class OpsQgemm : public ::testing::Test {
 protected:
  void SetUp() override { ctx_.arena = &arena_; }
  void TearDown() override {
    cpu::set_threads(0);
    cpu::set_int8_activations(false);
  }
  std::vector<float> gemm(int32_t dtype, void* w, int64_t n, int64_t k, std::vector<float>& x,
                          int64_t m, std::vector<float>* bias = nullptr, bool precise = false) {
    std::vector<float> out(static_cast<size_t>(m * n), -1.0f);
    SableTensor xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
    SableTensor wt = cpp::make_tensor(w, dtype, {n, k});
    if (precise) wt.reserved = cpu::kPreciseActivations;
    SableTensor ot = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {m, n});
    SableTensor bt;
    if (bias) bt = cpp::make_tensor(bias->data(), SABLE_DTYPE_F32, {n});
    EXPECT_EQ(ops_->gemm(&ctx_, &xt, &wt, bias ? &bt : nullptr, &ot), SABLE_OK)
        << (ctx_.last_error ? ctx_.last_error : "");
    return out;
  }
  // The gemm of a weight the host marked kPreciseActivations (the LM head).
  std::vector<float> head_gemm(int32_t dtype, void* w, int64_t n, int64_t k, std::vector<float>& x,
                               int64_t m) {
    return gemm(dtype, w, n, k, x, m, nullptr, true);
  }
  const SableOps* ops_ = cpu_ops();
  Arena arena_;
  SableOpsContext ctx_;
  std::mt19937 rng_{11};
};

}  // namespace sable::ops::qgemm_test
