// The cascade (shared-prefix) decode pass of the "flash" CUDA attention plugin
// (plugins/attention/flash/cascade_attention.cu): decode batches whose sequences start on common
// pages (the radix cache's shared prompts) against a float64 reference on the host, against the
// pass switched off (SABLE_CASCADE=0), and through CUDA graphs captured on a batch with groups and
// replayed on one without, and the other way round (bit-identical to the eager steps). Built into
// attention_flash_test.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "tests/gpu/flash_test_util.h"

namespace sable::gputest {
namespace {

// ---- Cascade (shared-prefix) decode: sequences whose page lists start with the same pages ----

struct CascadeCase {
  int hq, hk, d, page_size;
  std::vector<int> shared;                // positions on each group's common (whole) pages
  std::vector<std::pair<int, int>> seqs;  // (group or -1, kv_len with the new token)
};

class FlashCascadeTest : public ::testing::TestWithParam<CascadeCase> {};

TEST_P(FlashCascadeTest, MatchesReferenceEagerAndInGraphs) {
  SABLE_REQUIRE_GPU();
  const CascadeCase& c = GetParam();
  const SableAttentionApi* api = load_flash();
  ASSERT_NE(api, nullptr) << dlerror();
  std::mt19937 rng(77 + c.d + c.page_size);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Two batches of one shape on disjoint pages: `shared` (the case) and `apart` (no page shared).
  int pages = 0;
  auto take = [&](int n) {
    std::vector<int32_t> v(n);
    std::iota(v.begin(), v.end(), pages);
    pages += n;
    return v;
  };
  std::vector<std::vector<int32_t>> common;
  for (int len : c.shared) common.push_back(take(len / c.page_size));
  struct Batch {
    std::vector<int32_t> qo{0}, indptr{0}, indices, lens;
  } shared, apart;
  for (auto [g, len] : c.seqs) {
    const int n = (len + c.page_size - 1) / c.page_size;
    std::vector<int32_t> pg = g >= 0 ? common[g] : std::vector<int32_t>{};
    const std::vector<int32_t> own = take(n - static_cast<int>(pg.size()));
    pg.insert(pg.end(), own.begin(), own.end());
    for (auto [b, list] : {std::pair{&shared, pg}, std::pair{&apart, take(n)}}) {
      b->qo.push_back(b->qo.back() + 1);
      b->indices.insert(b->indices.end(), list.begin(), list.end());
      b->indptr.push_back(static_cast<int32_t>(b->indices.size()));
      b->lens.push_back(len);
    }
  }
  const int B = static_cast<int>(c.seqs.size());
  const size_t row = size_t(c.hk) * c.d, pool_elems = size_t(pages) * c.page_size * row;
  std::vector<float> kp(pool_elems), vp(pool_elems), q(size_t(B) * c.hq * c.d), k(B * row),
      v(B * row);
  for (auto* buf : {&kp, &vp, &q, &k, &v})
    for (float& x : *buf) x = from_bf16(to_bf16(nd(rng)));
  auto bf = [](const std::vector<float>& f) {
    std::vector<uint16_t> h(f.size());
    for (size_t i = 0; i < f.size(); ++i) h[i] = to_bf16(f[i]);
    return h;
  };
  DeviceBuffer kpool(pool_elems * 2), vpool(pool_elems * 2), dq(q.size() * 2), dk(k.size() * 2),
      dv(v.size() * 2), dout(q.size() * 2);
  kpool.upload(bf(kp));
  vpool.upload(bf(vp));
  dq.upload(bf(q));
  dk.upload(bf(k));
  dv.upload(bf(v));
  SableKvLayer layer{cuda_tensor(kpool.get(), SABLE_DTYPE_BF16, {pages, c.page_size, c.hk, c.d}),
                     cuda_tensor(vpool.get(), SABLE_DTYPE_BF16, {pages, c.page_size, c.hk, c.d})};
  TestHost host(sable::ops::cuda_ops());
  SableAttentionInit init{};
  init.struct_size = sizeof(init);
  init.device_type = SABLE_DEVICE_CUDA;
  init.num_layers = 1;
  init.num_q_heads = c.hq;
  init.num_kv_heads = c.hk;
  init.head_dim = c.d;
  init.page_size = c.page_size;
  init.kv_dtype = SABLE_DTYPE_BF16;
  init.max_batch_tokens = 256;
  init.max_seqs = 64;
  init.layers = &layer;
  SableAttention *on = nullptr, *off = nullptr;
  {
    ScopedEnv decode_kernel("SABLE_FLASH_DECODE_KERNEL", true);
    ScopedEnv on_env("SABLE_CASCADE", true);
    ASSERT_EQ(api->create(&host.api, nullptr, &init, &on), SABLE_OK) << TestHost::last_error;
    ScopedEnv off_env("SABLE_CASCADE", false);
    ASSERT_EQ(api->create(&host.api, nullptr, &init, &off), SABLE_OK) << TestHost::last_error;
  }
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CUDA;
  ctx.stream = stream;
  SableTensor tq = cuda_tensor(dq.get(), SABLE_DTYPE_BF16, {B, c.hq, c.d});
  SableTensor tk = cuda_tensor(dk.get(), SABLE_DTYPE_BF16, {B, c.hk, c.d});
  SableTensor tv = cuda_tensor(dv.get(), SABLE_DTYPE_BF16, {B, c.hk, c.d});
  SableTensor to = cuda_tensor(dout.get(), SABLE_DTYPE_BF16, {B, c.hq, c.d});
  auto plan = [&](SableAttention* a, const Batch& b) {
    SableAttentionBatch ab{sizeof(ab),   B, B, 1, b.qo.data(), b.indptr.data(), b.indices.data(),
                           b.lens.data()};
    ASSERT_EQ(api->plan(a, &ab), SABLE_OK) << TestHost::last_error;
  };
  auto step = [&](SableAttention* a, const Batch& b) {  // eager: plan, run, the output
    plan(a, b);
    EXPECT_EQ(api->run(a, &ctx, 0, &tq, &tk, &tv, 1.0f / std::sqrt(float(c.d)), &to), SABLE_OK);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    return dout.download<uint16_t>(q.size());
  };
  auto as_float = [](const std::vector<uint16_t>& h) {
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = from_bf16(h[i]);
    return f;
  };
  const std::vector<uint16_t> casc = step(on, shared), plain = step(off, shared);
  // The fp64 reference: every position from the pool, the new one from the inputs.
  std::vector<float> want(q.size());
  for (int t = 0; t < B; ++t) {
    const int len = shared.lens[t];
    for (int h = 0; h < c.hq; ++h) {
      const int kh = h / (c.hq / c.hk);
      auto kv_row = [&](const std::vector<float>& pool, const std::vector<float>& fresh, int pos) {
        if (pos == len - 1) return &fresh[size_t(t) * row + size_t(kh) * c.d];
        const int32_t pg = shared.indices[shared.indptr[t] + pos / c.page_size];
        return &pool[(size_t(pg) * c.page_size + pos % c.page_size) * row + size_t(kh) * c.d];
      };
      std::vector<double> sc(len);
      double mx = -1e300, sum = 0;
      for (int p = 0; p < len; ++p) {
        double dot = 0;
        for (int d = 0; d < c.d; ++d)
          dot += double(q[(size_t(t) * c.hq + h) * c.d + d]) * kv_row(kp, k, p)[d];
        mx = std::max(mx, sc[p] = dot / std::sqrt(double(c.d)));
      }
      for (double& x : sc) sum += (x = std::exp(x - mx));
      for (int d = 0; d < c.d; ++d) {
        double acc = 0;
        for (int p = 0; p < len; ++p) acc += sc[p] * kv_row(vp, v, p)[d];
        want[(size_t(t) * c.hq + h) * c.d + d] = float(acc / sum);
      }
    }
  }
  EXPECT_LT(rel_l2(as_float(casc), want), 1e-2);
  EXPECT_LT(rel_l2(as_float(casc), as_float(plain)), 1e-2) << "cascade vs the pass switched off";
  const std::vector<uint16_t> casc_apart = step(on, apart);
  EXPECT_EQ(casc_apart, step(off, apart)) << "without groups the decode kernel runs as before";
  // Graphs: captured on one batch, replayed on the other (same shape); a replay must give what
  // the eager step gave, bit for bit, whichever batch had groups at capture.
  for (bool capture_shared : {false, true}) {
    plan(on, capture_shared ? shared : apart);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const SableStatus st = api->run(on, &ctx, 0, &tq, &tk, &tv, 1.0f / std::sqrt(float(c.d)), &to);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_EQ(st, SABLE_OK) << TestHost::last_error;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (const Batch* b : {&shared, &apart, &shared}) {
      plan(on, *b);  // the graph's memcpy node re-reads the planned metadata
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      EXPECT_EQ(dout.download<uint16_t>(q.size()), b == &shared ? casc : casc_apart)
          << "captured " << (capture_shared ? "with" : "without") << " groups";
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
  api->destroy(on);
  api->destroy(off);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Groups, FlashCascadeTest,
    ::testing::Values(
        // Llama-8B heads: a 2,048-token prompt shared by 5 (one of them only the prompt and its
        // new token), a 512-token one by 3, two loners.
        CascadeCase{32,
                    8,
                    128,
                    16,
                    {2048, 512},
                    {{0, 2100},
                     {1, 600},
                     {0, 2049},
                     {-1, 900},
                     {0, 2300},
                     {1, 513},
                     {0, 2064},
                     {1, 1000},
                     {0, 2200},
                     {-1, 40}}},
        // Qwen-0.5B heads, page size 1, a prefix that is neither page- nor tile-aligned.
        CascadeCase{14, 2, 64, 1, {301}, {{0, 400}, {0, 302}, {0, 333}, {0, 700}}},
        // MQA (group 16): 6 members take two row tiles; a second group of 2.
        CascadeCase{16,
                    1,
                    128,
                    16,
                    {1024, 256},
                    {{0, 1100},
                     {0, 1025},
                     {1, 300},
                     {0, 1200},
                     {0, 1050},
                     {1, 257},
                     {0, 1400},
                     {0, 1030}}}));
// clang-format on

}  // namespace
}  // namespace sable::gputest
