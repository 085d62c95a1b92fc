// The "flash" CUDA attention plugin against a naive fp32 reference on the host: prefill, decode and
// mixed batches over randomly assigned pages, GQA/MQA, several head dims and page sizes, sliding
// window, padding sequences, the split-KV path for long decodes, and the tensor-core prefill path
// (head dims 64/128) with cached prefixes, ragged tiles, page size 1 and windows; and the cascade
// (shared-prefix) decode pass, eager and in CUDA graphs.
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <tuple>
#include <utility>

#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

struct Case {
  int hq, hk, d, page_size, window;
  std::vector<int> prefix;  // tokens each sequence caches in step 1
  std::vector<int> extend;  // tokens each sequence adds in step 2 (1 = decode)
};

const SableAttentionApi* load_flash() {
  static void* lib = dlopen(SABLE_PLUGIN_DIR "/sable-attention-flash.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return nullptr;
  auto entry = reinterpret_cast<SablePluginEntryFn>(dlsym(lib, SABLE_PLUGIN_ENTRY_SYMBOL));
  const SablePlugin* p = entry ? entry(SABLE_ABI_MAJOR) : nullptr;
  return p ? static_cast<const SableAttentionApi*>(p->api) : nullptr;
}

// The init of a one-layer flash backend over `layer` (a bf16 pool) with hq / hk heads of d dims.
SableAttentionInit one_layer_init(const SableKvLayer& layer, int32_t hq, int32_t hk, int32_t d,
                                  int32_t page_size, int32_t max_batch_tokens, int32_t window = 0) {
  SableAttentionInit init{};
  init.struct_size = sizeof(init);
  init.device_type = SABLE_DEVICE_CUDA;
  init.num_layers = 1;
  init.num_q_heads = hq;
  init.num_kv_heads = hk;
  init.head_dim = d;
  init.page_size = page_size;
  init.kv_dtype = SABLE_DTYPE_BF16;
  init.sliding_window = window;
  init.max_batch_tokens = max_batch_tokens;
  init.max_seqs = 64;
  init.layers = &layer;
  return init;
}

class FlashAttentionTest : public ::testing::TestWithParam<Case> {};

// flash_plugin.cpp reads its switches when the backend is created: SABLE_FLASH_DECODE_KERNEL (0:
// off; each case runs with the GQA-packed decode kernel off and on) and SABLE_PREFILL_WGMMA.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name); }
  const char* name;
};
struct DecodeKernelEnv : ScopedEnv {
  explicit DecodeKernelEnv(bool on) : ScopedEnv("SABLE_FLASH_DECODE_KERNEL", on ? "1" : "0") {}
};

void check_case(const Case& c);

// The mma.sync prefill kernel (the wgmma one is the default on compute capability 9.0) with the
// split decode kernel; the defaults in the next case.
TEST_P(FlashAttentionTest, MatchesReference) {
  SABLE_REQUIRE_GPU();
  ScopedEnv mma("SABLE_PREFILL_WGMMA", "0");
  DecodeKernelEnv env(false);
  check_case(GetParam());
}

TEST_P(FlashAttentionTest, DecodeKernelMatchesReference) {
  SABLE_REQUIRE_GPU();
  DecodeKernelEnv env(true);
  check_case(GetParam());
}

// The prefill tiles on Hopper's warpgroup tensor cores (prefill_wgmma.cu), read at creation as
// SABLE_PREFILL_WGMMA; only compute capability 9.0 runs its sm_90a code. Four shapes of it: one
// head a CTA with 3 stages; up to 4 heads with 2 (2 or 1 where the group is not a multiple of 4);
// the same with partial CTAs (SABLE_PREFILL_WGMMA_PARTIAL: the groups of 7 on CTAs of 4 and 3 live
// heads); the overlapped loop with up to 2 heads.
TEST_P(FlashAttentionTest, PrefillWgmmaMatchesReference) {
  SABLE_REQUIRE_GPU();
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  if (prop.major != 9 || prop.minor != 0) GTEST_SKIP() << "wgmma needs compute capability 9.0";
  ScopedEnv wgmma("SABLE_PREFILL_WGMMA", "1");
  DecodeKernelEnv env(true);
  const struct {
    const char *heads, *stages, *overlap, *partial;
  } shapes[] = {
      {"1", "3", "0", "0"}, {"4", "2", "0", "0"}, {"4", "2", "0", "1"}, {"2", "3", "1", "0"}};
  for (const auto& sh : shapes) {
    SCOPED_TRACE(testing::Message() << "heads " << sh.heads << " stages " << sh.stages
                                    << " overlap " << sh.overlap << " partial " << sh.partial);
    ScopedEnv partial("SABLE_PREFILL_WGMMA_PARTIAL", sh.partial);
    ScopedEnv heads("SABLE_PREFILL_WGMMA_HEADS", sh.heads);
    ScopedEnv stages("SABLE_PREFILL_WGMMA_STAGES", sh.stages);
    ScopedEnv overlap("SABLE_PREFILL_WGMMA_OVERLAP", sh.overlap);
    check_case(GetParam());
  }
}

void check_case(const Case& c) {
  const SableAttentionApi* api = load_flash();
  ASSERT_NE(api, nullptr) << dlerror();
  std::mt19937 rng(1234 + c.d + c.page_size);
  std::normal_distribution<float> nd(0.0f, 1.0f);

  const int nseq = static_cast<int>(c.prefix.size());
  int max_len = 0;
  for (int s = 0; s < nseq; ++s) max_len = std::max(max_len, c.prefix[s] + c.extend[s]);
  const int pages_per_seq = (max_len + c.page_size - 1) / c.page_size;
  const int num_pages = pages_per_seq * nseq + 3;
  std::vector<int32_t> perm(num_pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);

  const size_t pool_elems = size_t(num_pages) * c.page_size * c.hk * c.d;
  DeviceBuffer kpool(pool_elems * 2), vpool(pool_elems * 2);
  cudaMemset(kpool.get(), 0, pool_elems * 2);
  cudaMemset(vpool.get(), 0, pool_elems * 2);
  SableKvLayer layer{cuda_tensor(kpool.get(), SABLE_DTYPE_BF16, {num_pages, c.page_size, c.hk, c.d}),
                     cuda_tensor(vpool.get(), SABLE_DTYPE_BF16, {num_pages, c.page_size, c.hk, c.d})};
  TestHost host(sable::ops::cuda_ops());
  const SableAttentionInit init = one_layer_init(layer, c.hq, c.hk, c.d, c.page_size, 4096, c.window);
  SableAttention* attn = nullptr;
  ASSERT_EQ(api->create(&host.api, nullptr, &init, &attn), SABLE_OK) << TestHost::last_error;

  // Host-side history of K/V (bf16-rounded) per sequence for the reference.
  std::vector<std::vector<float>> hist_k(nseq), hist_v(nseq);
  const float scale = 1.0f / std::sqrt(float(c.d));
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CUDA;

  for (int step = 0; step < 2; ++step) {
    std::vector<int32_t> qo{0}, kv_indptr{0}, kv_indices, kv_lens;
    for (int s = 0; s < nseq; ++s) {
      const int n = step == 0 ? c.prefix[s] : c.extend[s];
      const int len = c.prefix[s] + (step == 0 ? 0 : c.extend[s]);
      qo.push_back(qo.back() + n);
      const int used = (len + c.page_size - 1) / c.page_size;
      for (int p = 0; p < used; ++p) kv_indices.push_back(perm[s * pages_per_seq + p]);
      kv_indptr.push_back(static_cast<int32_t>(kv_indices.size()));
      kv_lens.push_back(len);
    }
    // A padding sequence at the end (kv_len 0): must write nothing and output zeros.
    qo.push_back(qo.back() + 1);
    kv_indptr.push_back(kv_indptr.back());
    kv_lens.push_back(0);
    const int T = qo.back();
    const int bs = nseq + 1;
    std::vector<float> q(size_t(T) * c.hq * c.d), k(size_t(T) * c.hk * c.d), v(k.size());
    for (auto* buf : {&q, &k, &v})
      for (auto& x : *buf) x = from_bf16(to_bf16(nd(rng)));
    auto bf = [](const std::vector<float>& f) {
      std::vector<uint16_t> h(f.size());
      for (size_t i = 0; i < f.size(); ++i) h[i] = to_bf16(f[i]);
      return h;
    };
    DeviceBuffer dq(q.size() * 2), dk(k.size() * 2), dv(v.size() * 2), dout(q.size() * 2);
    dq.upload(bf(q));
    dk.upload(bf(k));
    dv.upload(bf(v));
    SableAttentionBatch b{};
    b.struct_size = sizeof(b);
    b.num_seqs = bs;
    b.num_tokens = T;
    b.is_decode_only = step == 1 && std::all_of(c.extend.begin(), c.extend.end(),
                                                 [](int e) { return e == 1; });
    b.qo_indptr = qo.data();
    b.kv_indptr = kv_indptr.data();
    b.kv_indices = kv_indices.data();
    b.kv_lens = kv_lens.data();
    ASSERT_EQ(api->plan(attn, &b), SABLE_OK) << TestHost::last_error;
    SableTensor tq = cuda_tensor(dq.get(), SABLE_DTYPE_BF16, {T, c.hq, c.d});
    SableTensor tk = cuda_tensor(dk.get(), SABLE_DTYPE_BF16, {T, c.hk, c.d});
    SableTensor tv = cuda_tensor(dv.get(), SABLE_DTYPE_BF16, {T, c.hk, c.d});
    SableTensor to = cuda_tensor(dout.get(), SABLE_DTYPE_BF16, {T, c.hq, c.d});
    ASSERT_EQ(api->run(attn, &ctx, 0, &tq, &tk, &tv, scale, &to), SABLE_OK) << TestHost::last_error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> got_h = dout.download<uint16_t>(q.size());
    // Running the same step again (as a graph replay does) gives the same bits: the split tickets
    // of the decode kernel are back at zero, and re-appending the same K/V changes nothing.
    ASSERT_EQ(api->plan(attn, &b), SABLE_OK) << TestHost::last_error;
    ASSERT_EQ(api->run(attn, &ctx, 0, &tq, &tk, &tv, scale, &to), SABLE_OK) << TestHost::last_error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(dout.download<uint16_t>(q.size()), got_h) << "step " << step << " run twice";

    // Reference, on a sample of each sequence's new rows: the float64 reference is quadratic in
    // the prompt (a 4000-token prefill alone took minutes), the kernels tile rows alike, so the
    // first and last 8 rows plus 32 spread between them exercise every tile kind.
    // The reference depends only on the case (its inputs come from the case's seed): every test
    // and variant that checks the case shares it, computed once per process (the sampled rows'
    // fp64 sums took 3-4 s of each large case, four times over in PrefillWgmmaMatchesReference).
    using Key = std::tuple<int, int, int, int, int, std::vector<int>, std::vector<int>, int>;
    static std::map<Key, std::vector<float>> references;
    std::vector<float>& cached =
        references[Key{c.hq, c.hk, c.d, c.page_size, c.window, c.prefix, c.extend, step}];
    const bool have = !cached.empty();
    std::vector<float> got, want;
    std::vector<float> got_all(q.size());
    for (size_t i = 0; i < got_all.size(); ++i) got_all[i] = from_bf16(got_h[i]);
    const int group = c.hq / c.hk;
    for (int s = 0; s < nseq; ++s) {
      const int n = qo[s + 1] - qo[s];
      for (int j = 0; j < n; ++j) {
        const int t = qo[s] + j;
        hist_k[s].insert(hist_k[s].end(), k.begin() + size_t(t) * c.hk * c.d,
                         k.begin() + size_t(t + 1) * c.hk * c.d);
        hist_v[s].insert(hist_v[s].end(), v.begin() + size_t(t) * c.hk * c.d,
                         v.begin() + size_t(t + 1) * c.hk * c.d);
      }
      std::vector<int> rows;
      for (int j = 0; j < n; ++j)
        if (n <= 48 || j < 8 || j >= n - 8 || (j - 8) % ((n - 16 + 31) / 32) == 0) rows.push_back(j);
      for (int j : rows) {
        const int t = qo[s] + j, pos = kv_lens[s] - n + j;
        const int begin = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
        for (int h = 0; h < c.hq; ++h) {
          for (int d = 0; d < c.d; ++d) got.push_back(got_all[(size_t(t) * c.hq + h) * c.d + d]);
          if (have) continue;
          const int kh = h / group;
          std::vector<double> sc;
          double mx = -1e300;
          for (int p = begin; p <= pos; ++p) {
            double dot = 0;
            for (int d = 0; d < c.d; ++d)
              dot += double(q[(size_t(t) * c.hq + h) * c.d + d]) *
                     hist_k[s][(size_t(p) * c.hk + kh) * c.d + d];
            sc.push_back(dot * scale);
            mx = std::max(mx, sc.back());
          }
          double sum = 0;
          for (double& x : sc) sum += (x = std::exp(x - mx));
          for (int d = 0; d < c.d; ++d) {
            double acc = 0;
            for (int p = begin; p <= pos; ++p)
              acc += sc[p - begin] * hist_v[s][(size_t(p) * c.hk + kh) * c.d + d];
            want.push_back(float(acc / sum));
          }
        }
      }
    }
    if (have)
      want = cached;
    else
      cached = want;
    EXPECT_LT(rel_l2(got, want), 1e-2) << "step " << step;
    // The padding token's output is zero.
    for (int i = 0; i < c.hq * c.d; ++i) ASSERT_EQ(got_all[size_t(T - 1) * c.hq * c.d + i], 0.0f);
  }
  api->destroy(attn);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, FlashAttentionTest,
    ::testing::Values(Case{4, 2, 16, 1, 0, {7, 1, 33}, {1, 5, 1}},         // golden llama-like
                      Case{4, 2, 32, 16, 0, {96, 7}, {1, 1}},              // decode, page 16
                      Case{14, 2, 64, 16, 0, {40, 3, 17}, {9, 1, 30}},     // G=7 mixed
                      Case{32, 8, 128, 1, 0, {300, 5}, {1, 1}},            // llama-8B heads
                      Case{32, 8, 128, 16, 0, {1500}, {1}},                // long decode: splits
                      Case{16, 1, 128, 16, 0, {50, 20}, {4, 1}},           // MQA, G>8
                      Case{8, 8, 64, 4, 16, {60, 10}, {3, 1}},             // sliding window
                      Case{8, 2, 80, 8, 0, {21}, {2}},                     // odd head dim
                      // Tensor-core prefill path (head dims 64/128, every non-decode batch):
                      Case{8, 2, 128, 16, 0, {300}, {1000}},               // 1000 after 300 cached
                      Case{8, 2, 64, 16, 0, {5, 100, 1, 70}, {130, 65, 200, 3}},  // ragged tiles
                      Case{8, 2, 128, 1, 0, {37, 64}, {150, 129}},         // page size 1
                      Case{8, 2, 128, 16, 100, {120, 10}, {200, 90}},      // window < tiles span
                      Case{4, 4, 64, 5, 24, {50}, {90}},                   // window < tile, page 5
                      Case{32, 8, 128, 16, 0, {1, 1}, {64, 63}},           // llama heads, one tile
                      // Large decode batch (T * Hq >= 2 * SMs): the tile kernel serves decode.
                      Case{32, 8, 128, 16, 0,
                           {700, 9, 64, 129, 1, 300, 17, 33, 500, 2, 80, 64, 63, 200, 31, 5},
                           std::vector<int>(16, 1)},
                      Case{32, 8, 128, 1, 50,
                           {700, 9, 64, 129, 1, 300, 17, 33, 500, 2, 80, 64, 63, 200, 31, 5},
                           std::vector<int>(16, 1)},  // ... with a sliding window
                      // GQA-packed decode kernel (head dims 64/128, group <= 16), split-KV with
                      // the fused merge, and mixed batches where it serves the one-token rows:
                      Case{14, 2, 64, 16, 0, {383}, {1}},                  // Qwen2.5-0.5B, batch 1
                      Case{32, 8, 128, 16, 0, {4000}, {1}},                // Llama-8B, batch 1, 4k
                      Case{16, 1, 128, 16, 0, {50, 900}, {1, 1}},          // group 16
                      Case{16, 8, 128, 1, 0, {257, 31, 0}, {1, 1, 1}},     // group 2, page 1, empty
                      Case{32, 8, 128, 16, 500, {3000, 20}, {1, 1}},       // window, splits
                      Case{8, 2, 128, 16, 100, {120, 10, 300}, {200, 1, 1}},  // mixed + window
                      Case{28, 4, 128, 5, 0, {64, 63, 65, 1}, {1, 1, 1, 300}}));  // group 7, page 5

// ---- Cascade (shared-prefix) decode pass (cascade_attention.cu): decode batches whose sequences
// start on common pages, against the reference, against the pass switched off (SABLE_CASCADE=0),
// and through CUDA graphs captured on a batch with groups and replayed on one without, and the
// other way round (bit-identical to the eager steps), with the metadata copy in the graph or
// enqueued by the plan (ABI 1.8's batch stream; then the graph holds no copy node).

struct CascadeEnv {  // flash_plugin.cpp reads SABLE_CASCADE (0: off) at create
  explicit CascadeEnv(bool on) { setenv("SABLE_CASCADE", on ? "1" : "0", 1); }
  ~CascadeEnv() { unsetenv("SABLE_CASCADE"); }
};

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
  const SableAttentionInit init = one_layer_init(layer, c.hq, c.hk, c.d, c.page_size, 256);
  SableAttention *on = nullptr, *off = nullptr;
  {
    DecodeKernelEnv decode_kernel(true);
    CascadeEnv on_env(true);
    ASSERT_EQ(api->create(&host.api, nullptr, &init, &on), SABLE_OK) << TestHost::last_error;
    CascadeEnv off_env(false);
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
  // upload_on_stream: the batch names the stream (ABI 1.8), so plan enqueues the metadata copy
  // itself; else the first run() after the plan does.
  auto plan = [&](SableAttention* a, const Batch& b, bool upload_on_stream = false) {
    SableAttentionBatch ab{sizeof(ab),   B, B, 1, b.qo.data(), b.indptr.data(), b.indices.data(),
                           b.lens.data()};
    ab.stream = upload_on_stream ? stream : nullptr;
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
  // the eager step gave, bit for bit, whichever batch had groups at capture. Planned without the
  // stream, the graph holds the metadata copy (a memcpy node re-reading the pinned buffer);
  // planned with it (the runner's way), the plan uploads before the capture and before each
  // replay, and the graph holds kernels only.
  for (bool upload_on_stream : {false, true}) {
    for (bool capture_shared : {false, true}) {
      SCOPED_TRACE(testing::Message() << "captured " << (capture_shared ? "with" : "without")
                                      << " groups, upload at plan: " << upload_on_stream);
      plan(on, capture_shared ? shared : apart, upload_on_stream);
      cudaGraph_t graph = nullptr;
      cudaGraphExec_t exec = nullptr;
      ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
      const SableStatus st =
          api->run(on, &ctx, 0, &tq, &tk, &tv, 1.0f / std::sqrt(float(c.d)), &to);
      ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
      ASSERT_EQ(st, SABLE_OK) << TestHost::last_error;
      size_t count = 0;
      ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &count), cudaSuccess);
      std::vector<cudaGraphNode_t> nodes(count);
      ASSERT_EQ(cudaGraphGetNodes(graph, nodes.data(), &count), cudaSuccess);
      int copies = 0;
      for (cudaGraphNode_t n : nodes) {
        cudaGraphNodeType type{};
        ASSERT_EQ(cudaGraphNodeGetType(n, &type), cudaSuccess);
        copies += type == cudaGraphNodeTypeMemcpy;
      }
      EXPECT_EQ(copies == 0, upload_on_stream) << copies << " memcpy nodes";
      ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
      for (const Batch* b : {&shared, &apart, &shared}) {
        plan(on, *b, upload_on_stream);
        ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        EXPECT_EQ(dout.download<uint16_t>(q.size()), b == &shared ? casc : casc_apart);
      }
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(graph);
    }
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
