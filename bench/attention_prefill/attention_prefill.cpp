// Times the "flash" attention plugin on one long prefill at Llama-3.1-8B shapes (32 q heads, 8 KV
// heads, head dim 128, page size 16): 32 layers' worth of run() calls (K/V append + attention) on
// one stream, timed with CUDA events, reported as attention TFLOP/s (4 * T * (prefix + T/2) * Hq *
// D per layer). Runs the tensor-core prefill path, then (unless --no-legacy) the per-token kernel
// on the same batch (planned as decode-only, which selects it) and reports the speedup and the
// largest difference between the two outputs.
// --shape HQ,HK,D sets the heads and head dim (default 32,8,128; Qwen2.5-0.5B: 14,2,64,
// Llama-3.2-1B: 32,8,64).
// Usage: sable_attention_prefill_bench [tokens=8192] [cached_prefix=0] [--no-legacy] [--shape
// HQ,HK,D]
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "sable/cpp/tensor.h"
#include "sable/sable.h"

namespace {

constexpr int kLayers = 32, kPage = 16;

#define CHECK_CUDA(x)                                                            \
  do {                                                                           \
    cudaError_t e_ = (x);                                                        \
    if (e_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));              \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

std::string g_error;
void host_log(SableHostHandle*, int32_t, const char*) {}
void host_error(SableHostHandle*, const char* m) { g_error = m ? m : ""; }

SableTensor tensor(void* data, std::initializer_list<int64_t> shape) {
  return sable::cpp::make_tensor(data, SABLE_DTYPE_BF16, shape, SABLE_DEVICE_CUDA);
}

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 8192, prefix = 0, hq = 32, hk = 8, d = 128;
  bool legacy = true;
  int pos_arg = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-legacy") == 0) {
      legacy = false;
    } else if (std::strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
      if (std::sscanf(argv[++i], "%d,%d,%d", &hq, &hk, &d) != 3 || hq <= 0 || hk <= 0 || d <= 0 ||
          hq % hk != 0) {
        std::fprintf(stderr, "--shape HQ,HK,D: positive, HQ a multiple of HK (got %s)\n", argv[i]);
        return 2;
      }
    } else if (pos_arg++ == 0) {
      tokens = std::atoi(argv[i]);
    } else {
      prefix = std::atoi(argv[i]);
    }
  }
  if (tokens <= 0 || prefix < 0) {
    std::fprintf(stderr, "usage: %s [tokens] [cached_prefix] [--no-legacy] [--shape HQ,HK,D]\n",
                 argv[0]);
    return 2;
  }
  void* lib = dlopen(SABLE_PLUGIN_DIR "/sable-attention-flash.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  auto entry = reinterpret_cast<SablePluginEntryFn>(dlsym(lib, SABLE_PLUGIN_ENTRY_SYMBOL));
  const SablePlugin* plugin = entry ? entry(SABLE_ABI_MAJOR) : nullptr;
  if (!plugin) return 1;
  const auto* api = static_cast<const SableAttentionApi*>(plugin->api);

  const int len = prefix + tokens, pages = (len + kPage - 1) / kPage;
  const size_t pool = size_t(pages) * kPage * hk * d;
  std::vector<void*> bufs;
  auto dalloc = [&](size_t bytes) {
    void* p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, bytes));
    CHECK_CUDA(cudaMemset(p, 0, bytes));
    bufs.push_back(p);
    return p;
  };
  std::vector<SableKvLayer> layers(kLayers);
  for (auto& l : layers) {
    l.k = tensor(dalloc(pool * 2), {pages, kPage, hk, d});
    l.v = tensor(dalloc(pool * 2), {pages, kPage, hk, d});
  }
  // Fused qkv rows (q is a column view with token stride (Hq + 2 Hk) * D), random N(0, 1) values.
  const int64_t row = int64_t(hq + 2 * hk) * d;
  std::vector<uint16_t> host_qkv(size_t(tokens) * row);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : host_qkv) x = to_bf16(nd(rng));
  auto* qkv = static_cast<uint16_t*>(dalloc(host_qkv.size() * 2));
  CHECK_CUDA(cudaMemcpy(qkv, host_qkv.data(), host_qkv.size() * 2, cudaMemcpyHostToDevice));
  auto* out = dalloc(size_t(tokens) * hq * d * 2);
  SableTensor tq = tensor(qkv, {tokens, hq, d}), tk = tensor(qkv + hq * d, {tokens, hk, d}),
              tv = tensor(qkv + (hq + hk) * d, {tokens, hk, d});
  for (SableTensor* t : {&tq, &tk, &tv}) t->strides[0] = row;
  SableTensor to = tensor(out, {tokens, hq, d});

  SableHostApi host{};
  host.struct_size = sizeof(host);
  host.abi_major = SABLE_ABI_MAJOR;
  host.abi_minor = SABLE_ABI_MINOR;
  host.log = &host_log;
  host.set_error = &host_error;
  host.ops = sable::ops::cuda_ops();
  host.device_type = SABLE_DEVICE_CUDA;
  host.compute_dtype = SABLE_DTYPE_BF16;
  host.tp_size = 1;
  SableAttentionInit init{};
  init.struct_size = sizeof(init);
  init.device_type = SABLE_DEVICE_CUDA;
  init.num_layers = kLayers;
  init.num_q_heads = hq;
  init.num_kv_heads = hk;
  init.head_dim = d;
  init.page_size = kPage;
  init.kv_dtype = SABLE_DTYPE_BF16;
  init.max_batch_tokens = tokens;
  init.max_seqs = 1;
  init.layers = layers.data();
  SableAttention* attn = nullptr;
  if (api->create(&host, nullptr, &init, &attn) != SABLE_OK) {
    std::fprintf(stderr, "create: %s\n", g_error.c_str());
    return 1;
  }
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CUDA;
  ctx.stream = stream;
  std::vector<int32_t> qo{0, tokens}, indptr{0, pages}, indices(pages), kv_lens{len};
  std::iota(indices.begin(), indices.end(), 0);
  std::shuffle(indices.begin(), indices.end(), rng);  // scattered pages, as after churn
  const float scale = 1.0f / std::sqrt(float(d));
  const double flops = 4.0 * tokens * (prefix + tokens / 2.0) * hq * d * kLayers;

  // One forward's attention: plan + 32 layers of run(); returns ms per forward.
  auto forward = [&](bool decode_planned, int iters) {
    SableAttentionBatch b{};
    b.struct_size = sizeof(b);
    b.num_seqs = 1;
    b.num_tokens = tokens;
    b.is_decode_only = decode_planned ? 1 : 0;
    b.qo_indptr = qo.data();
    b.kv_indptr = indptr.data();
    b.kv_indices = indices.data();
    b.kv_lens = kv_lens.data();
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    float best = 1e30f;
    for (int it = 0; it < iters; ++it) {
      if (api->plan(attn, &b) != SABLE_OK) {
        std::fprintf(stderr, "plan: %s\n", g_error.c_str());
        std::exit(1);
      }
      CHECK_CUDA(cudaEventRecord(e0, stream));
      for (int l = 0; l < kLayers; ++l)
        if (api->run(attn, &ctx, l, &tq, &tk, &tv, scale, &to) != SABLE_OK) {
          std::fprintf(stderr, "run: %s\n", g_error.c_str());
          std::exit(1);
        }
      CHECK_CUDA(cudaEventRecord(e1, stream));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float ms = 0;
      CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      best = std::min(best, ms);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return best;
  };
  auto download = [&] {
    std::vector<uint16_t> h(size_t(tokens) * hq * d);
    CHECK_CUDA(cudaMemcpy(h.data(), out, h.size() * 2, cudaMemcpyDeviceToHost));
    return h;
  };

  std::printf("prefill T=%d cached_prefix=%d Hq=%d Hk=%d D=%d page=%d layers=%d\n", tokens, prefix,
              hq, hk, d, kPage, kLayers);
  forward(false, 1);  // warm-up
  const float fast_ms = forward(false, 5);
  std::printf("tensor-core prefill: %.3f ms per forward (%.3f ms per layer), %.1f TFLOP/s\n", fast_ms,
              fast_ms / kLayers, flops / (fast_ms * 1e-3) / 1e12);
  if (legacy) {
    const auto fast_out = download();
    const float old_ms = forward(true, 1);
    const auto old_out = download();
    double worst = 0;
    size_t nonfinite = 0;
    for (size_t i = 0; i < fast_out.size(); ++i) {
      const float a = from_bf16(fast_out[i]), b = from_bf16(old_out[i]);
      if (!std::isfinite(a)) ++nonfinite;
      worst = std::max(worst, double(std::fabs(a - b)));
    }
    std::printf("per-token kernel:    %.3f ms per forward, %.1f TFLOP/s; speedup %.1fx\n", old_ms,
                flops / (old_ms * 1e-3) / 1e12, old_ms / fast_ms);
    std::printf("max |fast - per-token| = %.4g, non-finite outputs: %zu\n", worst, nonfinite);
  }
  api->destroy(attn);
  for (void* p : bufs) cudaFree(p);
  cudaStreamDestroy(stream);
  return 0;
}
