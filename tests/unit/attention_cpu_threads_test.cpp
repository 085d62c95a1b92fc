// The CPU attention backend's threads. A decode step's attention must run on the calling thread
// without entering an OpenMP region: a region costs futex syscalls even with a team of one (3 a
// layer, 90 a SmolLM2 step before this was fixed; tens of microseconds each on a sandboxed host).
// A prefill worth splitting opens one region and still matches the dense reference. Counted
// through the plugin's test hook sable_cpu_attention_regions.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "core/ops/context.h"
#include "sable/sable.h"
#include "tests/unit/attention_world.h"
#include "tests/unit/test_host.h"

namespace {

using sable::test::Case;
using sable::test::view;
using sable::test::World;

class CpuAttentionThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    api_ = sable::test::load_attention("sable-attention-cpu.so", &why);
    ASSERT_NE(api_, nullptr) << why;
    void* lib = dlopen((std::string(SABLE_PLUGIN_DIR) + "/sable-attention-cpu.so").c_str(),
                       RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(lib, nullptr);
    regions_ = static_cast<std::atomic<int64_t>*>(dlsym(lib, "sable_cpu_attention_regions"));
    ASSERT_NE(regions_, nullptr) << "the plugin exports no sable_cpu_attention_regions";
  }

  // Regions opened by one run() of the case's batch; the output is checked against the reference.
  int64_t regions_of_run(const Case& c) {
    World w(c);
    const SableAttentionInit init = w.init();
    SableAttention* attn = nullptr;
    EXPECT_EQ(api_->create(host_.api(), host_.handle(), &init, &attn), SABLE_OK) << host_.last_error();
    if (attn == nullptr) return -1;
    const SableAttentionBatch batch = w.batch();
    EXPECT_EQ(api_->plan(attn, &batch), SABLE_OK) << host_.last_error();
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    std::vector<float> out(static_cast<size_t>(w.tokens) * c.hq * c.d, -7.0f);
    SableTensor q = w.q(), k = w.k(), v = w.v();
    SableTensor o = view(out.data(), {w.tokens, c.hq, c.d}, {int64_t{c.hq} * c.d, c.d, 1});
    SableOpsContext ctx;
    const int64_t before = regions_->load();
    EXPECT_EQ(api_->run(attn, &ctx, World::kLayer, &q, &k, &v, scale, &o), SABLE_OK)
        << host_.last_error();
    const int64_t opened = regions_->load() - before;
    api_->destroy(attn);
    const std::vector<float> ref = w.reference(scale);
    for (size_t i = 0; i < out.size(); ++i) {
      const float tol = 1e-4f * (1.0f + std::fabs(ref[i]));
      EXPECT_NEAR(out[i], ref[i], tol) << c.name << " at " << i;
      if (std::fabs(out[i] - ref[i]) > tol) break;
    }
    return opened;
  }

  const SableAttentionApi* api_ = nullptr;
  std::atomic<int64_t>* regions_ = nullptr;
  sable::test::FakeHost host_;
};

// SmolLM2-135M's heads (9 query, 3 KV, dim 64): batch-8 decode at context 64 (0.3M multiply-adds a
// layer), and a two-prompt prefill of 64 tokens each (4.7M, above the backend's ~1M threshold).
const Case kDecode{"decode_b8", 9, 3, 64, 16, 0,
                   {{63, 1}, {63, 1}, {63, 1}, {63, 1}, {63, 1}, {63, 1}, {63, 1}, {63, 1}}};
const Case kPrefill{"prefill_2x64", 9, 3, 64, 16, 0, {{0, 64}, {0, 64}}};

TEST_F(CpuAttentionThreads, DecodeStepOpensNoRegion) {
  EXPECT_EQ(regions_of_run(kDecode), 0) << "a decode step's attention entered an OpenMP region";
}

TEST_F(CpuAttentionThreads, PrefillOpensOneRegion) { EXPECT_EQ(regions_of_run(kPrefill), 1); }

}  // namespace
