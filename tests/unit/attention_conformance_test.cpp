// Conformance suite for attention-backend plugins: every backend in kBackends is loaded from the
// built plugin folder (dlopen + sable_plugin_entry) and its run() is checked against a naive dense
// causal attention, over a paged pool with randomly assigned pages: prefill, decode, mixed batches
// with cached prefixes, page sizes 1 and 16, MHA/GQA/MQA, head dims 16-128, sliding window, strided
// q/k/v views (columns of a fused projection), and that the new K/V land in the right pool slots.
// A backend for another device is skipped when its probe() says the device is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/ops/context.h"
#include "sable/sable.h"
#include "tests/unit/attention_world.h"
#include "tests/unit/test_host.h"

namespace {

using sable::test::Case;
using sable::test::load_attention;
using sable::test::Seq;
using sable::test::view;
using sable::test::World;

struct Backend {
  const char* file;  // in SABLE_PLUGIN_DIR
  int32_t device_type;
  bool required;  // a missing file fails the suite (else it is skipped)
};
const Backend kBackends[] = {
    {"sable-attention-cpu.so", SABLE_DEVICE_CPU, true},
    {"sable-attention-cuda.so", SABLE_DEVICE_CUDA, false},
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"prefill_gqa_d32_p16", 4, 2, 32, 16, 0, {{0, 7}, {0, 13}}},
      {"prefill_p1", 4, 2, 32, 1, 0, {{0, 5}, {0, 3}}},
      {"decode_gqa_p16", 4, 2, 64, 16, 0, {{5, 1}, {17, 1}, {32, 1}, {0, 1}}},
      {"decode_p1", 4, 2, 64, 1, 0, {{5, 1}, {9, 1}}},
      {"mixed_p16", 4, 2, 32, 16, 0, {{20, 5}, {0, 9}, {33, 1}}},
      {"mixed_p1", 4, 2, 32, 1, 0, {{20, 5}, {0, 9}, {33, 1}}},
      {"mqa", 4, 1, 32, 16, 0, {{10, 3}, {0, 4}}},
      {"mha", 2, 2, 32, 4, 0, {{10, 3}, {3, 1}}},
      {"d16", 4, 2, 16, 16, 0, {{6, 4}, {0, 1}}},
      {"d64", 4, 2, 64, 16, 0, {{6, 4}, {15, 2}}},
      {"d128", 4, 2, 128, 16, 0, {{18, 4}, {0, 3}}},
      {"sliding_window", 4, 2, 32, 4, 4, {{20, 5}, {0, 9}, {2, 1}}},
      {"sliding_window_decode", 4, 1, 16, 16, 7, {{30, 1}, {3, 1}}},
  };
  return c;
}

class AttentionConformance : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  void SetUp() override {
    const Backend& b = kBackends[std::get<0>(GetParam())];
    std::string why;
    api_ = load_attention(b.file, &why);
    if (api_ == nullptr) {
      if (b.required) FAIL() << b.file << ": " << why;
      GTEST_SKIP() << b.file << ": " << why;
    }
    if (api_->probe(b.device_type) == 0) GTEST_SKIP() << b.file << ": device not present";
    // The harness keeps tensors in host memory; device backends need a device-memory harness.
    if (b.device_type != SABLE_DEVICE_CPU) GTEST_SKIP() << b.file << ": needs the GPU harness";
  }
  const SableAttentionApi* api_ = nullptr;
  sable::test::FakeHost host_;
};

TEST_P(AttentionConformance, MatchesDenseReference) {
  const Case& c = cases()[std::get<1>(GetParam())];
  World w(c);
  const SableAttentionInit init = w.init();
  SableAttention* attn = nullptr;
  ASSERT_EQ(api_->create(host_.api(), host_.handle(), &init, &attn), SABLE_OK) << host_.last_error();
  const SableAttentionBatch batch = w.batch();
  ASSERT_EQ(api_->plan(attn, &batch), SABLE_OK) << host_.last_error();

  const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
  std::vector<float> out(static_cast<size_t>(w.tokens) * c.hq * c.d, -7.0f);
  SableTensor q = w.q(), k = w.k(), v = w.v();
  SableTensor o = view(out.data(), {w.tokens, c.hq, c.d}, {int64_t{c.hq} * c.d, c.d, 1});
  SableOpsContext ctx;
  const std::vector<float> layer0_before = w.k_pool[0];
  ASSERT_EQ(api_->run(attn, &ctx, World::kLayer, &q, &k, &v, scale, &o), SABLE_OK)
      << host_.last_error();

  const std::vector<float> ref = w.reference(scale);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], ref[i], 1e-4f * (1.0f + std::fabs(ref[i]))) << c.name << " at " << i;
  }
  // The new K/V are in their slots of the layer under test; the other layer is untouched.
  for (size_t b = 0; b < c.seqs.size(); ++b) {
    for (int32_t j = 0; j < c.seqs[b].new_len; ++j) {
      const int32_t pos = c.seqs[b].prefix + j;
      const float* ks = w.slot(w.k_pool[World::kLayer], static_cast<int32_t>(b), pos);
      const float* vs = w.slot(w.v_pool[World::kLayer], static_cast<int32_t>(b), pos);
      for (int64_t i = 0; i < w.row(); ++i) {
        ASSERT_EQ(ks[i], w.k_dense[b][pos * w.row() + i]);
        ASSERT_EQ(vs[i], w.v_dense[b][pos * w.row() + i]);
      }
    }
  }
  EXPECT_EQ(w.k_pool[0], layer0_before);
  api_->destroy(attn);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
  std::string file = kBackends[std::get<0>(info.param)].file;
  std::string name = file.substr(0, file.find('.')) + "_" + cases()[std::get<1>(info.param)].name;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    Backends, AttentionConformance,
    ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kBackends))),
                       ::testing::Range(0, static_cast<int>(cases().size()))),
    case_name);

// Prefill through the backend, then decode steps that read what the backend itself wrote.
class AttentionSteps : public AttentionConformance {};

TEST_P(AttentionSteps, PrefillThenDecodeMatchesReference) {
  const int32_t hq = 4, hk = 2, d = 16, ps = 4, prompt = 6, steps = 5;
  Case c{"steps", hq, hk, d, ps, 0, {{0, prompt + steps}}};
  World full(c);  // the whole sequence at once: the reference for every step
  const std::vector<float> ref = full.reference(0.25f);
  // Same pool/pages, driven step by step.
  World w(c);
  for (float& x : w.k_pool[World::kLayer]) x = 99.0f;  // nothing cached yet
  SableAttentionInit init = w.init();
  SableAttention* attn = nullptr;
  ASSERT_EQ(api_->create(host_.api(), host_.handle(), &init, &attn), SABLE_OK);
  SableOpsContext ctx;
  int32_t done = 0;
  while (done < prompt + steps) {
    const int32_t n = done == 0 ? prompt : 1;
    const int32_t len = done + n;
    const int32_t qo[2] = {0, n}, kvp[2] = {0, (len + ps - 1) / ps};
    SableAttentionBatch b{sizeof(SableAttentionBatch), 1, n, n == 1, qo, kvp, w.kv_indices.data(), &len};
    ASSERT_EQ(api_->plan(attn, &b), SABLE_OK) << host_.last_error();
    const int64_t wd = w.width();
    float* base = full.qkv.data() + done * wd;
    SableTensor q = view(base, {n, hq, d}, {wd, d, 1});
    SableTensor k = view(base + hq * d, {n, hk, d}, {wd, d, 1});
    SableTensor v = view(base + (hq + hk) * d, {n, hk, d}, {wd, d, 1});
    std::vector<float> out(static_cast<size_t>(n) * hq * d);
    SableTensor o = view(out.data(), {n, hq, d}, {hq * d, d, 1});
    ASSERT_EQ(api_->run(attn, &ctx, World::kLayer, &q, &k, &v, 0.25f, &o), SABLE_OK)
        << host_.last_error();
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], ref[done * hq * d + i], 1e-4f) << "step at " << done;
    }
    done = len;
  }
  api_->destroy(attn);
}

TEST_P(AttentionSteps, RejectsMalformedInput) {
  Case c{"bad", 4, 2, 16, 4, 0, {{3, 2}}};
  World w(c);
  SableAttentionInit init = w.init();
  SableAttention* attn = nullptr;
  ASSERT_EQ(api_->create(host_.api(), host_.handle(), &init, &attn), SABLE_OK);
  SableOpsContext ctx;
  SableTensor q = w.q(), k = w.k(), v = w.v();
  std::vector<float> out(static_cast<size_t>(w.tokens) * 4 * 16);
  SableTensor o = view(out.data(), {w.tokens, 4, 16}, {64, 16, 1});
  // run before plan
  EXPECT_NE(api_->run(attn, &ctx, 1, &q, &k, &v, 0.25f, &o), SABLE_OK);
  EXPECT_FALSE(host_.last_error().empty());
  // a page outside the pool
  std::vector<int32_t> bad_pages = w.kv_indices;
  bad_pages[0] = w.pages + 5;
  SableAttentionBatch b = w.batch();
  b.kv_indices = bad_pages.data();
  EXPECT_EQ(api_->plan(attn, &b), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(host_.last_error().find("kv_indices"), std::string::npos) << host_.last_error();
  // too few pages for kv_len
  b = w.batch();
  const int32_t short_indptr[2] = {0, 1};
  b.kv_indptr = short_indptr;
  EXPECT_EQ(api_->plan(attn, &b), SABLE_ERR_INVALID_ARGUMENT);
  // a good plan, then a bad layer and a bad q shape
  b = w.batch();
  ASSERT_EQ(api_->plan(attn, &b), SABLE_OK);
  EXPECT_EQ(api_->run(attn, &ctx, 7, &q, &k, &v, 0.25f, &o), SABLE_ERR_INVALID_ARGUMENT);
  SableTensor bad_q = q;
  bad_q.shape[1] = 3;
  EXPECT_EQ(api_->run(attn, &ctx, 1, &bad_q, &k, &v, 0.25f, &o), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(host_.last_error().find("q must be"), std::string::npos) << host_.last_error();
  EXPECT_EQ(api_->run(attn, &ctx, 1, &q, &k, &v, 0.25f, &o), SABLE_OK);
  api_->destroy(attn);
  api_->destroy(nullptr);
}

INSTANTIATE_TEST_SUITE_P(Backends, AttentionSteps,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kBackends))),
                                            ::testing::Values(0)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
                           std::string f = kBackends[std::get<0>(info.param)].file;
                           f = f.substr(0, f.find('.'));
                           std::replace(f.begin(), f.end(), '-', '_');
                           return f;
                         });

TEST(AttentionPlugin, CpuProbe) {
  std::string why;
  const SableAttentionApi* api = load_attention(kBackends[0].file, &why);
  ASSERT_NE(api, nullptr) << why;
  EXPECT_GT(api->probe(SABLE_DEVICE_CPU), 0);
  EXPECT_EQ(api->probe(SABLE_DEVICE_CUDA), 0);
  EXPECT_TRUE(api->supports_head_dim == nullptr || api->supports_head_dim(80));
}

}  // namespace
