// The CPU ops table against naive references on random data: every op, its variants (fused
// residual, strided views, partial rope in both styles, broadcasting, all activations, MoE routing
// and grouped experts) and its error paths (bad shapes and dtypes give INVALID_ARGUMENT + message).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/expert_recorder.h"
#include "sable/cpp/tensor.h"

namespace sable::ops {
namespace {

using cpp::make_tensor;

SableTensor strided(void* data, int32_t dtype, std::initializer_list<int64_t> shape,
                    std::initializer_list<int64_t> strides) {
  SableTensor t = make_tensor(data, dtype, shape);
  std::copy(strides.begin(), strides.end(), t.strides);
  return t;
}

class OpsCpu : public ::testing::Test {
 protected:
  void SetUp() override { ctx_.arena = &arena_; }

  std::vector<float> random(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  static SableTensor f32(std::vector<float>& v, std::initializer_list<int64_t> shape) {
    return make_tensor(v.data(), SABLE_DTYPE_F32, shape);
  }
  static SableTensor i32(std::vector<int32_t>& v, std::initializer_list<int64_t> shape) {
    return make_tensor(v.data(), SABLE_DTYPE_I32, shape);
  }
  void expect_error(SableStatus s, const char* needle) {
    EXPECT_EQ(s, SABLE_ERR_INVALID_ARGUMENT);
    ASSERT_NE(ctx_.last_error, nullptr);
    EXPECT_NE(std::string(ctx_.last_error).find(needle), std::string::npos) << ctx_.last_error;
  }
  static void expect_near(const std::vector<float>& a, const std::vector<float>& b,
                          float tol = 1e-5f) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << "at " << i;
    }
  }

  const SableOps* ops_ = cpu_ops();
  Arena arena_;
  SableOpsContext ctx_;
  std::mt19937 rng_{42};
};

double act_ref(int32_t act, double x) {
  switch (act) {
    case SABLE_ACT_SILU: return x / (1.0 + std::exp(-x));
    case SABLE_ACT_GELU: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case SABLE_ACT_GELU_TANH:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    default: return x > 0 ? x : 0;
  }
}

TEST_F(OpsCpu, TableIsComplete) {
  ASSERT_EQ(ops_->struct_size, sizeof(SableOps));
  const char* begin = reinterpret_cast<const char*>(&ops_->alloc);
  const char* end = reinterpret_cast<const char*>(ops_) + sizeof(SableOps);
  for (const char* p = begin; p < end; p += sizeof(void*)) {
    void* fn = nullptr;
    std::memcpy(&fn, p, sizeof fn);
    EXPECT_NE(fn, nullptr) << "field at offset " << (p - reinterpret_cast<const char*>(ops_));
  }
}

TEST_F(OpsCpu, AllocFromArena) {
  const int64_t shape[] = {3, 5};
  SableTensor a, b;
  ASSERT_EQ(ops_->alloc(&ctx_, SABLE_DTYPE_F32, 2, shape, &a), SABLE_OK);
  ASSERT_EQ(ops_->alloc(&ctx_, SABLE_DTYPE_BF16, 2, shape, &b), SABLE_OK);
  EXPECT_EQ(a.ndim, 2);
  EXPECT_EQ(a.shape[1], 5);
  EXPECT_EQ(a.strides[0], 5);
  EXPECT_TRUE(sable_tensor_is_contiguous(&b));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 64, 0u);
  EXPECT_GE(static_cast<char*>(b.data) - static_cast<char*>(a.data), 60);
  const int64_t neg[] = {-1};
  expect_error(ops_->alloc(&ctx_, SABLE_DTYPE_F32, 1, neg, &a), "negative");
  SableOpsContext no_arena;
  EXPECT_EQ(ops_->alloc(&no_arena, SABLE_DTYPE_F32, 2, shape, &a), SABLE_ERR_INVALID_ARGUMENT);
}

TEST_F(OpsCpu, EmbeddingF32AndBf16) {
  const int64_t V = 11, H = 6;
  std::vector<float> table = random(V * H);
  std::vector<uint16_t> table_bf16(V * H);
  for (size_t i = 0; i < table.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &table[i], 4);
    table_bf16[i] = static_cast<uint16_t>(u >> 16);  // truncation: exact round trip below
    u &= 0xffff0000u;
    std::memcpy(&table[i], &u, 4);
  }
  std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> out(ids.size() * H), out2(ids.size() * H);
  SableTensor tt = f32(table, {V, H}), it = i32(ids, {4}), ot = f32(out, {4, H});
  ASSERT_EQ(ops_->embedding(&ctx_, &tt, &it, &ot), SABLE_OK);
  SableTensor tb = make_tensor(table_bf16.data(), SABLE_DTYPE_BF16, {V, H}), o2 = f32(out2, {4, H});
  ASSERT_EQ(ops_->embedding(&ctx_, &tb, &it, &o2), SABLE_OK);
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t h = 0; h < H; ++h) {
      EXPECT_EQ(out[t * H + h], table[ids[t] * H + h]);
      EXPECT_EQ(out2[t * H + h], table[ids[t] * H + h]);
    }
  }
  ids[1] = 11;
  expect_error(ops_->embedding(&ctx_, &tt, &it, &ot), "ids[1] = 11");
  ids[1] = 0;
  SableTensor bad_out = f32(out, {2, H * 2});
  expect_error(ops_->embedding(&ctx_, &tt, &it, &bad_out), "out");
}

// One rank's shard of a vocabulary-parallel embedding: rows [first, first + R) of the full table;
// ids of the other ranks (below, above, and far past the vocabulary) read as zero rows, and the
// shards of every rank summed give the whole table's lookup.
TEST_F(OpsCpu, EmbeddingShardZeroesOtherRanksIds) {
  const int64_t V = 10, H = 4, per = 3;  // 4 ranks of 3 rows, the last one padded
  std::vector<float> table = random(V * H);
  std::vector<int32_t> ids = {0, 2, 3, 5, 6, 9, 9, 1000};
  const int64_t t = static_cast<int64_t>(ids.size());
  std::vector<float> whole(t * H, 0.0f), sum(t * H, 0.0f), part(t * H);
  SableTensor it = i32(ids, {t}), pt = f32(part, {t, H});
  for (int64_t first = 0; first < V; first += per) {
    std::vector<float> shard(per * H, 0.0f);  // zero padding past V, as the model loads it
    for (int64_t r = 0; r < per && first + r < V; ++r)
      std::copy_n(table.begin() + (first + r) * H, H, shard.begin() + r * H);
    SableTensor st = f32(shard, {per, H});
    ASSERT_EQ(ops_->embedding_shard(&ctx_, &st, &it, first, &pt), SABLE_OK);
    for (int64_t i = 0; i < t; ++i) {
      const bool held = ids[i] >= first && ids[i] < first + per;
      for (int64_t h = 0; h < H; ++h) {
        const float want = held && ids[i] < V ? table[ids[i] * H + h] : 0.0f;
        EXPECT_EQ(part[i * H + h], want) << "first " << first << " id " << ids[i];
        sum[i * H + h] += part[i * H + h];
      }
    }
  }
  ids.back() = 0;  // the whole-table lookup needs ids inside the vocabulary
  std::vector<float> ref(t * H);
  SableTensor tt = f32(table, {V, H}), rt = f32(ref, {t, H});
  ASSERT_EQ(ops_->embedding(&ctx_, &tt, &it, &rt), SABLE_OK);
  for (int64_t i = 0; i + 1 < t; ++i)
    for (int64_t h = 0; h < H; ++h) EXPECT_EQ(sum[i * H + h], ref[i * H + h]);
  SableTensor st = f32(table, {V, H});
  expect_error(ops_->embedding_shard(&ctx_, &st, &it, -1, &pt), "first_id");
  SableTensor bad_out = f32(part, {2, t * H / 2});
  expect_error(ops_->embedding_shard(&ctx_, &st, &it, 0, &bad_out), "out");
}

void gemm_ref(const float* x, int64_t ldx, const float* w, const float* b, float* out,
              int64_t ldo, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = b ? b[j] : 0.0;
      for (int64_t l = 0; l < k; ++l) acc += static_cast<double>(x[i * ldx + l]) * w[j * k + l];
      out[i * ldo + j] = static_cast<float>(acc);
    }
  }
}

TEST_F(OpsCpu, GemmMatchesNaive) {
  for (int64_t m : {1, 2, 7, 33}) {
    for (bool with_bias : {false, true}) {
      const int64_t k = 37, n = 19;
      std::vector<float> x = random(m * k), w = random(n * k), b = random(n), out(m * n),
                         ref(m * n);
      SableTensor xt = f32(x, {m, k}), wt = f32(w, {n, k}), bt = f32(b, {n}), ot = f32(out, {m, n});
      ASSERT_EQ(ops_->gemm(&ctx_, &xt, &wt, with_bias ? &bt : nullptr, &ot), SABLE_OK);
      gemm_ref(x.data(), k, w.data(), with_bias ? b.data() : nullptr, ref.data(), n, m, n, k);
      expect_near(out, ref, 1e-4f);
    }
  }
}

TEST_F(OpsCpu, GemmStridedRows) {
  // x = columns [4, 4+K) of a [M, 50] buffer; out = columns [2, 2+N) of a [M, 30] buffer.
  const int64_t m = 5, k = 20, n = 9;
  std::vector<float> xb = random(m * 50), w = random(n * k), ob(m * 30, 123.0f), ref(m * 30, 123.0f);
  SableTensor xt = strided(xb.data() + 4, SABLE_DTYPE_F32, {m, k}, {50, 1});
  SableTensor wt = f32(w, {n, k});
  SableTensor ot = strided(ob.data() + 2, SABLE_DTYPE_F32, {m, n}, {30, 1});
  ASSERT_EQ(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
  gemm_ref(xb.data() + 4, 50, w.data(), nullptr, ref.data() + 2, 30, m, n, k);
  expect_near(ob, ref, 1e-4f);  // also: columns outside the view untouched
}

TEST_F(OpsCpu, GemmFoldsTrailingDims) {
  // Attention output [T, Hq, D] into o_proj [N, Hq*D]; out as [T, 2, N/2].
  const int64_t T = 3, Hq = 4, D = 8, N = 10;
  std::vector<float> x = random(T * Hq * D), w = random(N * Hq * D), out(T * N), ref(T * N);
  SableTensor xt = f32(x, {T, Hq, D}), wt = f32(w, {N, Hq * D}), ot = f32(out, {T, 2, N / 2});
  ASSERT_EQ(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
  gemm_ref(x.data(), Hq * D, w.data(), nullptr, ref.data(), N, T, N, Hq * D);
  expect_near(out, ref, 1e-4f);
}

TEST_F(OpsCpu, GemmErrors) {
  std::vector<float> x(6), w(8), out(4);
  SableTensor xt = f32(x, {2, 3}), wt = f32(w, {2, 4}), ot = f32(out, {2, 2});
  expect_error(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), "disagree on K");
  // BF16/F16 and block-quantized weights are packed weights (ops_qgemm_test); I32 is not.
  SableTensor wb = make_tensor(w.data(), SABLE_DTYPE_I32, {2, 3});
  expect_error(ops_->gemm(&ctx_, &xt, &wb, nullptr, &ot), "w must be F32");
  SableTensor w3 = f32(w, {2, 3}), o3 = f32(out, {1, 4});
  expect_error(ops_->gemm(&ctx_, &xt, &w3, nullptr, &o3), "out");
  expect_error(ops_->gemm(&ctx_, nullptr, &w3, nullptr, &ot), "x is NULL");
}

void rms_ref(const float* x, const float* w, float eps, float off, float* out, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] * inv * (w[i] + off));
}

TEST_F(OpsCpu, RmsNormPlainResidualAndOffset) {
  const int64_t T = 4, H = 64;
  std::vector<float> x = random(T * H), w = random(H), res = random(T * H), out(T * H), ref(T * H);
  SableTensor xt = f32(x, {T, H}), wt = f32(w, {H}), ot = f32(out, {T, H});
  ASSERT_EQ(ops_->rms_norm(&ctx_, &xt, nullptr, &wt, 1e-6f, 0.0f, &ot), SABLE_OK);
  for (int64_t t = 0; t < T; ++t) rms_ref(&x[t * H], w.data(), 1e-6f, 0.0f, &ref[t * H], H);
  expect_near(out, ref);

  // residual += x; out = norm(residual) * (w + 1)
  std::vector<float> sum(T * H);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = res[i] + x[i];
  SableTensor rt = f32(res, {T, H});
  ASSERT_EQ(ops_->rms_norm(&ctx_, &xt, &rt, &wt, 1e-5f, 1.0f, &ot), SABLE_OK);
  expect_near(res, sum);
  for (int64_t t = 0; t < T; ++t) rms_ref(&sum[t * H], w.data(), 1e-5f, 1.0f, &ref[t * H], H);
  expect_near(out, ref);

  // In place (out aliases x).
  std::vector<float> y = x;
  SableTensor yt = f32(y, {T, H});
  ASSERT_EQ(ops_->rms_norm(&ctx_, &yt, nullptr, &wt, 1e-6f, 0.0f, &yt), SABLE_OK);
  for (int64_t t = 0; t < T; ++t) rms_ref(&x[t * H], w.data(), 1e-6f, 0.0f, &ref[t * H], H);
  expect_near(y, ref);
}

TEST_F(OpsCpu, RmsNormPerHeadStridedView) {
  // q of a fused qkv [T, (Hq + 2Hk) * D]: per-head norm over D, in place, k/v columns untouched.
  const int64_t T = 3, Hq = 4, Hk = 2, D = 16, W = (Hq + 2 * Hk) * D;
  std::vector<float> qkv = random(T * W), w = random(D);
  std::vector<float> ref = qkv;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < Hq; ++h) rms_ref(&qkv[t * W + h * D], w.data(), 1e-6f, 0.0f, &ref[t * W + h * D], D);
  }
  SableTensor q = strided(qkv.data(), SABLE_DTYPE_F32, {T, Hq, D}, {W, D, 1});
  SableTensor wt = f32(w, {D});
  ASSERT_EQ(ops_->rms_norm(&ctx_, &q, nullptr, &wt, 1e-6f, 0.0f, &q), SABLE_OK);
  expect_near(qkv, ref);
}

TEST_F(OpsCpu, RmsNormErrors) {
  std::vector<float> x(12), w(5), out(12);
  SableTensor xt = f32(x, {3, 4}), wt = f32(w, {5}), ot = f32(out, {3, 4});
  expect_error(ops_->rms_norm(&ctx_, &xt, nullptr, &wt, 1e-6f, 0.0f, &ot), "weight");
  SableTensor w4 = f32(w, {4}), o2 = f32(out, {4, 3});
  expect_error(ops_->rms_norm(&ctx_, &xt, nullptr, &w4, 1e-6f, 0.0f, &o2), "does not match");
  SableTensor col = strided(x.data(), SABLE_DTYPE_F32, {4, 3}, {1, 4});
  expect_error(ops_->rms_norm(&ctx_, &col, nullptr, &w4, 1e-6f, 0.0f, &ot), "unit stride");
}

TEST_F(OpsCpu, LayerNormVariants) {
  const int64_t T = 3, H = 40;
  std::vector<float> x = random(T * H), w = random(H), b = random(H), res = random(T * H);
  for (int variant = 0; variant < 3; ++variant) {
    std::vector<float> r = res, out(T * H), ref(T * H);
    SableTensor xt = f32(x, {T, H}), wt = f32(w, {H}), bt = f32(b, {H}), rt = f32(r, {T, H}),
                ot = f32(out, {T, H});
    const bool use_res = variant == 2, use_wb = variant != 0;
    ASSERT_EQ(ops_->layer_norm(&ctx_, &xt, use_res ? &rt : nullptr, use_wb ? &wt : nullptr,
                               use_wb ? &bt : nullptr, 1e-5f, &ot),
              SABLE_OK);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> in(H);
      for (int64_t i = 0; i < H; ++i) in[i] = x[t * H + i] + (use_res ? res[t * H + i] : 0.0);
      double mean = 0, var = 0;
      for (double v : in) mean += v;
      mean /= H;
      for (double v : in) var += (v - mean) * (v - mean);
      const double inv = 1.0 / std::sqrt(var / H + 1e-5);
      for (int64_t i = 0; i < H; ++i) {
        double y = (in[i] - mean) * inv;
        if (use_wb) y = y * w[i] + b[i];
        ref[t * H + i] = static_cast<float>(y);
        if (use_res) ASSERT_NEAR(r[t * H + i], in[i], 1e-6);
      }
    }
    expect_near(out, ref, 1e-4f);
  }
}

// cos_sin [P, rot]: cos | sin halves of a standard rope with base 10000.
std::vector<float> make_cos_sin(int64_t P, int64_t rot) {
  std::vector<float> cs(P * rot);
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t i = 0; i < rot / 2; ++i) {
      const double f = p * std::pow(10000.0, -2.0 * i / rot);
      cs[p * rot + i] = static_cast<float>(std::cos(f));
      cs[p * rot + rot / 2 + i] = static_cast<float>(std::sin(f));
    }
  }
  return cs;
}

void rope_ref(float* x, const float* cs, int64_t rot, int32_t style) {
  const int64_t half = rot / 2;
  std::vector<float> in(x, x + rot);
  for (int64_t i = 0; i < half; ++i) {
    const double c = cs[i], s = cs[half + i];
    const int64_t a = style == SABLE_ROPE_NEOX ? i : 2 * i;
    const int64_t b = style == SABLE_ROPE_NEOX ? i + half : 2 * i + 1;
    x[a] = static_cast<float>(in[a] * c - in[b] * s);
    x[b] = static_cast<float>(in[b] * c + in[a] * s);
  }
}

TEST_F(OpsCpu, RopeBothStylesPartialAndStrided) {
  const int64_t T = 5, Hq = 4, Hk = 2, D = 16, W = (Hq + 2 * Hk) * D, P = 64;
  for (int32_t style : {SABLE_ROPE_NEOX, SABLE_ROPE_INTERLEAVED}) {
    for (int64_t rot : {D, D / 2}) {
      std::vector<float> cs = make_cos_sin(P, rot);
      std::vector<float> qkv = random(T * W), ref = qkv;
      std::vector<int32_t> pos = {0, 7, 63, 1, 30};
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < Hq + Hk; ++h) rope_ref(&ref[t * W + h * D], &cs[pos[t] * rot], rot, style);
      }
      SableTensor q = strided(qkv.data(), SABLE_DTYPE_F32, {T, Hq, D}, {W, D, 1});
      SableTensor k = strided(qkv.data() + Hq * D, SABLE_DTYPE_F32, {T, Hk, D}, {W, D, 1});
      SableTensor pt = i32(pos, {T}), ct = f32(cs, {P, rot});
      ASSERT_EQ(ops_->rope(&ctx_, &q, &k, &pt, &ct, static_cast<int32_t>(rot), style), SABLE_OK);
      expect_near(qkv, ref);  // v columns and the unrotated tail stay as they were
    }
  }
}

TEST_F(OpsCpu, RopeKOnlyAndErrors) {
  const int64_t T = 2, H = 2, D = 8, P = 4;
  std::vector<float> cs = make_cos_sin(P, D), k = random(T * H * D), ref = k;
  std::vector<int32_t> pos = {3, 1};
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) rope_ref(&ref[(t * H + h) * D], &cs[pos[t] * D], D, SABLE_ROPE_NEOX);
  }
  SableTensor kt = f32(k, {T, H, D}), pt = i32(pos, {T}), ct = f32(cs, {P, D});
  ASSERT_EQ(ops_->rope(&ctx_, nullptr, &kt, &pt, &ct, D, SABLE_ROPE_NEOX), SABLE_OK);
  expect_near(k, ref);
  pos[0] = 4;
  expect_error(ops_->rope(&ctx_, nullptr, &kt, &pt, &ct, D, SABLE_ROPE_NEOX), "outside the cos/sin cache");
  pos[0] = 0;
  expect_error(ops_->rope(&ctx_, nullptr, &kt, &pt, &ct, 6, SABLE_ROPE_NEOX), "cos_sin");
  expect_error(ops_->rope(&ctx_, nullptr, &kt, &pt, &ct, D, 7), "style");
  SableTensor flat = f32(k, {T, H * D});
  expect_error(ops_->rope(&ctx_, &flat, nullptr, &pt, &ct, D, SABLE_ROPE_NEOX), "[T, H, D]");
}

TEST_F(OpsCpu, ActMulAndActivationAllKinds) {
  const int64_t T = 3, I = 50;
  std::vector<float> x = random(T * 2 * I, -4.0f, 4.0f);
  // Far tails too (SiLU's vector exp: exp(-|x|) down to its -87 floor), in gates and plain rows.
  const float tails[] = {-100.0f, -87.5f, -30.0f, -9.0f, 9.0f, 30.0f, 100.0f, 0.0f, -0.0f};
  for (size_t j = 0; j < std::size(tails); ++j) x[j * 11] = tails[j];
  for (int32_t act : {SABLE_ACT_SILU, SABLE_ACT_GELU, SABLE_ACT_GELU_TANH, SABLE_ACT_RELU}) {
    std::vector<float> out(T * I), ref(T * I), plain(T * 2 * I), plain_ref(T * 2 * I);
    SableTensor xt = f32(x, {T, 2 * I}), ot = f32(out, {T, I}), pt = f32(plain, {T, 2 * I});
    ASSERT_EQ(ops_->act_mul(&ctx_, act, &xt, &ot), SABLE_OK);
    ASSERT_EQ(ops_->activation(&ctx_, act, &xt, &pt), SABLE_OK);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < I; ++i) {
        ref[t * I + i] = static_cast<float>(act_ref(act, x[t * 2 * I + i]) * x[t * 2 * I + I + i]);
      }
    }
    for (size_t i = 0; i < x.size(); ++i) plain_ref[i] = static_cast<float>(act_ref(act, x[i]));
    expect_near(out, ref);
    expect_near(plain, plain_ref);
  }
  std::vector<float> odd(9), o(4);
  SableTensor xt = f32(odd, {1, 9}), ot = f32(o, {1, 4});
  expect_error(ops_->act_mul(&ctx_, SABLE_ACT_SILU, &xt, &ot), "[gate | up]");
  expect_error(ops_->activation(&ctx_, 9, &xt, &xt), "unknown activation");
}

TEST_F(OpsCpu, AddMulBroadcast) {
  const int64_t T = 4, N = 33;
  std::vector<float> a = random(T * N), full = random(T * N), row = random(N), col = random(T);
  std::vector<float> out(T * N), ref(T * N);
  SableTensor at = f32(a, {T, N}), ot = f32(out, {T, N});
  SableTensor ft = f32(full, {T, N}), rt = f32(row, {1, N}), ct = f32(col, {T, 1});
  ASSERT_EQ(ops_->add(&ctx_, &at, &ft, &ot), SABLE_OK);
  for (int64_t i = 0; i < T * N; ++i) ref[i] = a[i] + full[i];
  expect_near(out, ref);
  ASSERT_EQ(ops_->add(&ctx_, &at, &rt, &ot), SABLE_OK);
  for (int64_t i = 0; i < T * N; ++i) ref[i] = a[i] + row[i % N];
  expect_near(out, ref);
  ASSERT_EQ(ops_->mul(&ctx_, &at, &ct, &ot), SABLE_OK);
  for (int64_t i = 0; i < T * N; ++i) ref[i] = a[i] * col[i / N];
  expect_near(out, ref);
  ASSERT_EQ(ops_->mul(&ctx_, &at, &rt, &ot), SABLE_OK);
  for (int64_t i = 0; i < T * N; ++i) ref[i] = a[i] * row[i % N];
  expect_near(out, ref);
  // out aliases a
  std::vector<float> a2 = a;
  SableTensor a2t = f32(a2, {T, N});
  ASSERT_EQ(ops_->add(&ctx_, &a2t, &ft, &a2t), SABLE_OK);
  for (int64_t i = 0; i < T * N; ++i) ref[i] = a[i] + full[i];
  expect_near(a2, ref);
  SableTensor bad = f32(row, {3, 11});
  expect_error(ops_->add(&ctx_, &at, &bad, &ot), "does not broadcast");
  SableTensor bf = make_tensor(full.data(), SABLE_DTYPE_BF16, {T, N});
  expect_error(ops_->mul(&ctx_, &at, &bf, &ot), "b must be F32");
}

TEST_F(OpsCpu, ScaleAndSigmoid) {
  std::vector<float> x = random(100, -6.0f, 6.0f), out(100), ref(100);
  SableTensor xt = f32(x, {10, 10}), ot = f32(out, {10, 10});
  ASSERT_EQ(ops_->scale(&ctx_, &xt, 0.125f, &ot), SABLE_OK);
  for (int i = 0; i < 100; ++i) ref[i] = x[i] * 0.125f;
  expect_near(out, ref);
  ASSERT_EQ(ops_->sigmoid(&ctx_, &xt, &ot), SABLE_OK);
  for (int i = 0; i < 100; ++i) ref[i] = static_cast<float>(1.0 / (1.0 + std::exp(-double(x[i]))));
  expect_near(out, ref);
  SableTensor wrong = f32(out, {100, 1});
  expect_error(ops_->scale(&ctx_, &xt, 2.0f, &wrong), "differ in shape");
}

TEST_F(OpsCpu, CopyStridedAnyRank) {
  // src: a transposed [4, 3, 5] view of a [5, 3, 4] buffer; dst: a column slice of a wider buffer.
  std::vector<float> src = random(60), dst(4 * 3 * 8, -1.0f);
  SableTensor st = strided(src.data(), SABLE_DTYPE_F32, {4, 3, 5}, {1, 4, 12});
  SableTensor dt = strided(dst.data() + 2, SABLE_DTYPE_F32, {4, 3, 5}, {24, 8, 1});
  ASSERT_EQ(ops_->copy(&ctx_, &st, &dt), SABLE_OK);
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 3; ++b) {
      for (int c = 0; c < 8; ++c) {
        const float got = dst[a * 24 + b * 8 + c];
        if (c >= 2 && c < 7) {
          ASSERT_EQ(got, src[a + b * 4 + (c - 2) * 12]);
        } else {
          ASSERT_EQ(got, -1.0f);
        }
      }
    }
  }
  // 5-D contiguous copy, and I32 data.
  std::vector<int32_t> si(2 * 3 * 2 * 2 * 3), di(si.size());
  std::iota(si.begin(), si.end(), 0);
  SableTensor s5 = make_tensor(si.data(), SABLE_DTYPE_I32, {2, 3, 2, 2, 3});
  SableTensor d5 = make_tensor(di.data(), SABLE_DTYPE_I32, {2, 3, 2, 2, 3});
  ASSERT_EQ(ops_->copy(&ctx_, &s5, &d5), SABLE_OK);
  EXPECT_EQ(si, di);
  SableTensor d4 = make_tensor(di.data(), SABLE_DTYPE_I32, {2, 3, 2, 6});
  expect_error(ops_->copy(&ctx_, &s5, &d4), "differ in rank");
  SableTensor d5b = make_tensor(di.data(), SABLE_DTYPE_I32, {2, 3, 2, 3, 2});
  expect_error(ops_->copy(&ctx_, &s5, &d5b), "differ in shape");
  SableTensor d5f = make_tensor(di.data(), SABLE_DTYPE_F32, {2, 3, 2, 2, 3});
  expect_error(ops_->copy(&ctx_, &s5, &d5f), "use cast");
}

TEST_F(OpsCpu, CastBetweenTypes) {
  std::vector<float> x = {1.0f, -2.5f, 3.140625f, 65504.0f, 0.0f, -0.0078125f};
  std::vector<uint16_t> h(6), b(6);
  std::vector<float> back(6);
  std::vector<int32_t> ints(6);
  SableTensor xt = f32(x, {2, 3}), bt = f32(back, {2, 3});
  SableTensor ht = make_tensor(h.data(), SABLE_DTYPE_F16, {2, 3});
  SableTensor bft = make_tensor(b.data(), SABLE_DTYPE_BF16, {2, 3});
  SableTensor it = make_tensor(ints.data(), SABLE_DTYPE_I32, {2, 3});
  ASSERT_EQ(ops_->cast(&ctx_, &xt, &ht), SABLE_OK);
  ASSERT_EQ(ops_->cast(&ctx_, &ht, &bt), SABLE_OK);
  EXPECT_EQ(back, x);  // all exactly representable in f16
  EXPECT_EQ(h[0], 0x3c00);
  ASSERT_EQ(ops_->cast(&ctx_, &xt, &bft), SABLE_OK);
  EXPECT_EQ(b[0], 0x3f80);
  EXPECT_EQ(b[1], 0xc020);
  ASSERT_EQ(ops_->cast(&ctx_, &bft, &bt), SABLE_OK);
  EXPECT_EQ(back[2], 3.140625f);
  EXPECT_EQ(back[3], 65536.0f);  // bf16 rounds 65504 to nearest even
  ASSERT_EQ(ops_->cast(&ctx_, &xt, &it), SABLE_OK);
  EXPECT_EQ(ints, (std::vector<int32_t>{1, -2, 3, 65504, 0, 0}));
  ASSERT_EQ(ops_->cast(&ctx_, &it, &bt), SABLE_OK);
  EXPECT_EQ(back[1], -2.0f);
  SableTensor u8 = make_tensor(h.data(), SABLE_DTYPE_U8, {2, 3});
  expect_error(ops_->cast(&ctx_, &xt, &u8), "cannot cast to U8");
  SableTensor wrong = make_tensor(h.data(), SABLE_DTYPE_F16, {3, 2});
  expect_error(ops_->cast(&ctx_, &xt, &wrong), "differ in shape");
}

TEST_F(OpsCpu, GatherRowsAndArgmax) {
  std::vector<float> x = random(5 * 7), out(3 * 7);
  std::vector<int32_t> rows = {4, 0, 4}, am(5);
  x[2 * 7 + 3] = 9.0f;
  x[2 * 7 + 5] = 9.0f;  // tie: the lower index wins
  SableTensor xt = f32(x, {5, 7}), rt = i32(rows, {3}), ot = f32(out, {3, 7});
  ASSERT_EQ(ops_->gather_rows(&ctx_, &xt, &rt, &ot), SABLE_OK);
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 7; ++c) ASSERT_EQ(out[r * 7 + c], x[rows[r] * 7 + c]);
  }
  SableTensor at = i32(am, {5});
  ASSERT_EQ(ops_->argmax(&ctx_, &xt, &at), SABLE_OK);
  for (int r = 0; r < 5; ++r) {
    int best = 0;
    for (int c = 1; c < 7; ++c) {
      if (x[r * 7 + c] > x[r * 7 + best]) best = c;
    }
    EXPECT_EQ(am[r], best);
  }
  EXPECT_EQ(am[2], 3);
  rows[2] = 5;
  expect_error(ops_->gather_rows(&ctx_, &xt, &rt, &ot), "rows[2] = 5");
  SableTensor bad = f32(x, {5, 7});
  expect_error(ops_->argmax(&ctx_, &xt, &bad), "out must be I32");
}

// A stand-in attention backend that records what the op dispatched.
struct FakeAttention {
  static inline int32_t layer = -1;
  static inline float scale = 0.0f;
  static inline const SableTensor* q = nullptr;
  static SableStatus run(SableAttention*, SableOpsContext*, int32_t l, const SableTensor* qq,
                         const SableTensor*, const SableTensor*, float s, SableTensor*) {
    layer = l;
    scale = s;
    q = qq;
    return SABLE_OK;
  }
};

TEST_F(OpsCpu, AttentionDispatchesToBackend) {
  std::vector<float> q(2 * 4 * 64), k(2 * 2 * 64), out(2 * 4 * 64);
  SableTensor qt = f32(q, {2, 4, 64}), kt = f32(k, {2, 2, 64}), ot = f32(out, {2, 4, 64});
  expect_error(ops_->attention(&ctx_, 0, &qt, &kt, &kt, 0.0f, &ot), "no attention backend");
  SableAttentionApi api{};
  api.struct_size = sizeof(api);
  api.run = &FakeAttention::run;
  ctx_.attention_api = &api;
  ctx_.attention = reinterpret_cast<SableAttention*>(&api);
  ASSERT_EQ(ops_->attention(&ctx_, 3, &qt, &kt, &kt, 0.0f, &ot), SABLE_OK);
  EXPECT_EQ(FakeAttention::layer, 3);
  EXPECT_FLOAT_EQ(FakeAttention::scale, 0.125f);
  EXPECT_EQ(FakeAttention::q, &qt);
  ASSERT_EQ(ops_->attention(&ctx_, 0, &qt, &kt, &kt, 0.5f, &ot), SABLE_OK);
  EXPECT_FLOAT_EQ(FakeAttention::scale, 0.5f);
}

TEST_F(OpsCpu, MoeRouteSoftmaxSigmoidRenormalize) {
  // Hand-computed: logits [0, ln2, ln4, 0] -> softmax [1, 2, 4, 1] / 8.
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(4.0f), 0.0f,
                               // ties: experts 0, 1 and 3 share the top score
                               1.0f, 1.0f, 0.0f, 1.0f};
  std::vector<float> w(4);
  std::vector<int32_t> ids(4);
  SableTensor lt = f32(logits, {2, 4}), wt = f32(w, {2, 2}), it = i32(ids, {2, 2});
  ExpertRecorder rec;
  ctx_.expert_recorder = &rec;
  ASSERT_EQ(ops_->moe_route(&ctx_, 5, &lt, 2, SABLE_MOE_SOFTMAX, 0, &wt, &it), SABLE_OK);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 1, 0, 1}));
  const float e = std::exp(1.0f), z = 3 * e + 1;
  expect_near(w, {0.5f, 0.25f, e / z, e / z});
  ASSERT_EQ(ops_->moe_route(&ctx_, 5, &lt, 2, SABLE_MOE_SOFTMAX, 1, &wt, &it), SABLE_OK);
  expect_near(w, {2.0f / 3, 1.0f / 3, 0.5f, 0.5f});
  ASSERT_EQ(ops_->moe_route(&ctx_, 5, &lt, 2, SABLE_MOE_SIGMOID, 0, &wt, &it), SABLE_OK);
  const float s4 = 1.0f / (1.0f + 0.25f), s2 = 1.0f / (1.0f + 0.5f), s1 = 1.0f / (1.0f + 1.0f / e);
  expect_near(w, {s4, s2, s1, s1});
  const auto counts = rec.snapshot();
  ASSERT_EQ(counts.size(), 6u);
  EXPECT_EQ(counts[5], (std::vector<int64_t>{3, 6, 3}));
  // bf16 logits give the same selection
  std::vector<uint16_t> lb(8);
  for (int i = 0; i < 8; ++i) {
    uint32_t u;
    std::memcpy(&u, &logits[i], 4);
    lb[i] = static_cast<uint16_t>((u + 0x8000u) >> 16);
  }
  SableTensor lbt = make_tensor(lb.data(), SABLE_DTYPE_BF16, {2, 4});
  ASSERT_EQ(ops_->moe_route(&ctx_, 0, &lbt, 2, SABLE_MOE_SOFTMAX, 0, &wt, &it), SABLE_OK);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 1, 0, 1}));
  expect_error(ops_->moe_route(&ctx_, 0, &lt, 5, SABLE_MOE_SOFTMAX, 0, &wt, &it), "top_k 5");
  SableTensor w3 = f32(w, {2, 1});
  expect_error(ops_->moe_route(&ctx_, 0, &lt, 2, SABLE_MOE_SOFTMAX, 0, &w3, &it), "weights");
}

TEST_F(OpsCpu, MoeExpertsMatchPerTokenLoop) {
  const int64_t T = 9, H = 24, I = 20, E = 5, K = 2;
  std::vector<float> x = random(T * H), wgu = random(E * 2 * I * H, -0.3f, 0.3f),
                     wd = random(E * H * I, -0.3f, 0.3f), w = random(T * K, 0.1f, 1.0f);
  std::vector<int32_t> ids(T * K);
  for (int64_t t = 0; t < T; ++t) {  // distinct experts per token; expert 4 never used
    ids[t * K] = static_cast<int32_t>(t % 4);
    ids[t * K + 1] = static_cast<int32_t>((t + 1 + t / 4) % 4);
    if (ids[t * K + 1] == ids[t * K]) ids[t * K + 1] = (ids[t * K] + 1) % 4;
  }
  for (int32_t act : {SABLE_ACT_SILU, SABLE_ACT_GELU}) {
    std::vector<float> ref(T * H, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < K; ++j) {
        const int64_t e = ids[t * K + j];
        std::vector<double> a(I);
        for (int64_t i = 0; i < I; ++i) {
          double g = 0, u = 0;
          for (int64_t h = 0; h < H; ++h) {
            g += double(wgu[(e * 2 * I + i) * H + h]) * x[t * H + h];
            u += double(wgu[(e * 2 * I + I + i) * H + h]) * x[t * H + h];
          }
          a[i] = act_ref(act, g) * u;
        }
        for (int64_t h = 0; h < H; ++h) {
          double y = 0;
          for (int64_t i = 0; i < I; ++i) y += double(wd[(e * H + h) * I + i]) * a[i];
          ref[t * H + h] += static_cast<float>(w[t * K + j] * y);
        }
      }
    }
    for (bool with_arena : {true, false}) {
      SableOpsContext ctx;
      if (with_arena) ctx.arena = &arena_;
      std::vector<float> out(T * H, 77.0f);
      SableTensor xt = f32(x, {T, H}), gt = f32(wgu, {E, 2 * I, H}), dt = f32(wd, {E, H, I}),
                  wt = f32(w, {T, K}), it = i32(ids, {T, K}), ot = f32(out, {T, H});
      ASSERT_EQ(ops_->moe_experts(&ctx, &xt, &gt, &dt, &wt, &it, act, &ot), SABLE_OK);
      expect_near(out, ref, 1e-4f);
    }
  }
  // Output may alias the input.
  std::vector<float> y = x, ref(T * H);
  {
    SableTensor xt = f32(x, {T, H}), gt = f32(wgu, {E, 2 * I, H}), dt = f32(wd, {E, H, I}),
                wt = f32(w, {T, K}), it = i32(ids, {T, K}), ot = f32(ref, {T, H}), yt = f32(y, {T, H});
    ASSERT_EQ(ops_->moe_experts(&ctx_, &xt, &gt, &dt, &wt, &it, SABLE_ACT_SILU, &ot), SABLE_OK);
    ASSERT_EQ(ops_->moe_experts(&ctx_, &yt, &gt, &dt, &wt, &it, SABLE_ACT_SILU, &yt), SABLE_OK);
    expect_near(y, ref);
    ids[3] = 5;
    expect_error(ops_->moe_experts(&ctx_, &xt, &gt, &dt, &wt, &it, SABLE_ACT_SILU, &ot), "ids[3] = 5");
    ids[3] = 0;
    SableTensor bad_down = f32(wd, {E, I, H});
    expect_error(ops_->moe_experts(&ctx_, &xt, &gt, &bad_down, &wt, &it, SABLE_ACT_SILU, &ot), "w_down");
  }
}

TEST_F(OpsCpu, CollectivesAndStream) {
  std::vector<float> x = random(12), out(12);
  SableTensor xt = f32(x, {3, 4}), ot = f32(out, {3, 4});
  ASSERT_EQ(ops_->all_reduce(&ctx_, &xt), SABLE_OK);
  ASSERT_EQ(ops_->all_gather(&ctx_, &xt, 1, &ot), SABLE_OK);
  EXPECT_EQ(out, x);
  expect_error(ops_->all_gather(&ctx_, &xt, 2, &ot), "dim 2");
  ctx_.tp_size = 2;
  EXPECT_EQ(ops_->all_reduce(&ctx_, &xt), SABLE_ERR_INVALID_ARGUMENT);  // no endpoint given
  EXPECT_NE(std::string(ctx_.last_error).find("tp_size=2 but the context has no communicator"),
            std::string::npos);
  int marker = 0;
  ctx_.stream = &marker;
  EXPECT_EQ(ops_->stream(&ctx_), &marker);
}

TEST_F(OpsCpu, LargeShapesTakeTheThreadedPaths) {
  // Above the ops' parallel thresholds: same results as the row-by-row references.
  const int64_t T = 64, H = 512, P = 128, D = 64;
  std::vector<float> x = random(T * H), w = random(H), out(T * H), ref(T * H);
  SableTensor xt = f32(x, {T, H}), wt = f32(w, {H}), ot = f32(out, {T, H});
  ASSERT_EQ(ops_->rms_norm(&ctx_, &xt, nullptr, &wt, 1e-6f, 0.0f, &ot), SABLE_OK);
  for (int64_t t = 0; t < T; ++t) rms_ref(&x[t * H], w.data(), 1e-6f, 0.0f, &ref[t * H], H);
  expect_near(out, ref);
  std::vector<float> half(T * H / 2), half_ref(T * H / 2);
  SableTensor ht = f32(half, {T, H / 2});
  ASSERT_EQ(ops_->act_mul(&ctx_, SABLE_ACT_SILU, &xt, &ht), SABLE_OK);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < H / 2; ++i) {
      half_ref[t * H / 2 + i] =
          static_cast<float>(act_ref(SABLE_ACT_SILU, x[t * H + i]) * x[t * H + H / 2 + i]);
    }
  }
  expect_near(half, half_ref);
  std::vector<float> cs = make_cos_sin(P, D), q = x, qref = x;
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>((t * 37) % P);
  for (int64_t r = 0; r < T * H / D; ++r) rope_ref(&qref[r * D], &cs[pos[r / (H / D)] * D], D, SABLE_ROPE_NEOX);
  SableTensor qt = f32(q, {T, H / D, D}), pt = i32(pos, {T}), ct = f32(cs, {P, D});
  ASSERT_EQ(ops_->rope(&ctx_, &qt, nullptr, &pt, &ct, D, SABLE_ROPE_NEOX), SABLE_OK);
  expect_near(q, qref);
}

TEST_F(OpsCpu, RejectsNonCpuTensors) {
  std::vector<float> x(4);
  SableTensor xt = f32(x, {2, 2});
  xt.device_type = SABLE_DEVICE_CUDA;
  expect_error(ops_->scale(&ctx_, &xt, 1.0f, &xt), "not a CPU tensor");
}

}  // namespace
}  // namespace sable::ops
