// Shared by the attention-backend tests: a backend loaded from the built plugin folder, and a
// paged KV pool with one batch's layout and a naive dense reference (World), so that the
// conformance suite and the CPU backend's own tests build their cases the same way.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sable/sable.h"

namespace sable::test {

struct Seq {
  int32_t prefix;   // tokens already cached
  int32_t new_len;  // tokens in this forward
};
struct Case {
  const char* name;
  int32_t hq, hk, d, page_size, window;
  std::vector<Seq> seqs;
};
// One loaded plugin; the library stays open for the process (backends may keep statics).
inline const SableAttentionApi* load_attention(const std::string& file, std::string* why) {
  const std::string path = std::string(SABLE_PLUGIN_DIR) + "/" + file;
  if (!std::filesystem::exists(path)) {
    *why = "not built: " + path;
    return nullptr;
  }
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    *why = std::string("dlopen failed: ") + dlerror();
    return nullptr;
  }
  auto entry = reinterpret_cast<SablePluginEntryFn>(dlsym(lib, SABLE_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    *why = "no sable_plugin_entry in " + path;
    return nullptr;
  }
  const SablePlugin* p = entry(SABLE_ABI_MAJOR);
  if (p == nullptr || p->kind != SABLE_PLUGIN_ATTENTION || p->api == nullptr) {
    *why = "not an attention plugin of ABI " + std::to_string(SABLE_ABI_MAJOR);
    return nullptr;
  }
  return static_cast<const SableAttentionApi*>(p->api);
}

inline SableTensor view(float* data, std::initializer_list<int64_t> shape,
                 std::initializer_list<int64_t> strides) {
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = SABLE_DTYPE_F32;
  t.device_type = SABLE_DEVICE_CPU;
  t.ndim = static_cast<int32_t>(shape.size());
  std::copy(shape.begin(), shape.end(), t.shape);
  std::copy(strides.begin(), strides.end(), t.strides);
  t.data = data;
  return t;
}

// A paged pool of `layers` layers plus the batch layout for one case, with the prefixes cached.
struct World {
  static constexpr int32_t kLayers = 2;
  static constexpr int32_t kLayer = 1;  // the layer under test
  Case c;
  int32_t pages = 0;
  std::vector<std::vector<float>> k_pool, v_pool;  // per layer [pages, ps, hk, d]
  std::vector<SableKvLayer> kv;
  std::vector<int32_t> qo_indptr{0}, kv_indptr{0}, kv_indices, kv_lens;
  // Dense reference cache per sequence: [len, hk, d].
  std::vector<std::vector<float>> k_dense, v_dense;
  int32_t tokens = 0;
  std::vector<float> qkv;  // fused projection [T, (hq + 2 hk) d]; q/k/v are column views
  std::mt19937 rng{1234};

  float rnd() { return std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng); }
  int64_t row() const { return static_cast<int64_t>(c.hk) * c.d; }
  int64_t width() const { return static_cast<int64_t>(c.hq + 2 * c.hk) * c.d; }
  float* slot(std::vector<float>& pool, int32_t b, int32_t pos) {
    const int32_t page = kv_indices[kv_indptr[b] + pos / c.page_size];
    return pool.data() + (static_cast<int64_t>(page) * c.page_size + pos % c.page_size) * row();
  }

  explicit World(const Case& cs) : c(cs) {
    int32_t need = 0;
    for (const Seq& s : c.seqs) need += (s.prefix + s.new_len + c.page_size - 1) / c.page_size;
    pages = need + 3;  // a few spare pages that nobody owns
    std::vector<int32_t> perm(pages);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int32_t l = 0; l < kLayers; ++l) {
      // Garbage everywhere, so reading a wrong slot shows.
      k_pool.emplace_back(static_cast<size_t>(pages) * c.page_size * row());
      v_pool.emplace_back(static_cast<size_t>(pages) * c.page_size * row());
      for (float& x : k_pool.back()) x = 50.0f * rnd();
      for (float& x : v_pool.back()) x = 50.0f * rnd();
    }
    int32_t next = 0;
    for (const Seq& s : c.seqs) {
      const int32_t len = s.prefix + s.new_len;
      const int32_t np = (len + c.page_size - 1) / c.page_size;
      for (int32_t i = 0; i < np; ++i) kv_indices.push_back(perm[next++]);
      kv_indptr.push_back(static_cast<int32_t>(kv_indices.size()));
      qo_indptr.push_back(qo_indptr.back() + s.new_len);
      kv_lens.push_back(len);
      tokens += s.new_len;
    }
    qkv.resize(static_cast<size_t>(tokens) * width());
    for (float& x : qkv) x = rnd();
    for (size_t b = 0; b < c.seqs.size(); ++b) {
      const Seq& s = c.seqs[b];
      k_dense.emplace_back(static_cast<size_t>(s.prefix + s.new_len) * row());
      v_dense.emplace_back(static_cast<size_t>(s.prefix + s.new_len) * row());
      for (int32_t pos = 0; pos < s.prefix; ++pos) {  // cached prefix, written by "earlier steps"
        for (int64_t i = 0; i < row(); ++i) {
          const float kx = rnd(), vx = rnd();
          k_dense[b][pos * row() + i] = kx;
          v_dense[b][pos * row() + i] = vx;
          slot(k_pool[kLayer], static_cast<int32_t>(b), pos)[i] = kx;
          slot(v_pool[kLayer], static_cast<int32_t>(b), pos)[i] = vx;
        }
      }
      for (int32_t j = 0; j < s.new_len; ++j) {  // the new tokens' k/v come from the projection
        const int64_t t = qo_indptr[b] + j;
        const float* kk = qkv.data() + t * width() + static_cast<int64_t>(c.hq) * c.d;
        std::copy(kk, kk + row(), k_dense[b].begin() + (s.prefix + j) * row());
        std::copy(kk + row(), kk + 2 * row(), v_dense[b].begin() + (s.prefix + j) * row());
      }
    }
    for (int32_t l = 0; l < kLayers; ++l) {
      const int64_t ps = c.page_size;
      kv.push_back({view(k_pool[l].data(), {pages, ps, c.hk, c.d}, {ps * row(), row(), c.d, 1}),
                    view(v_pool[l].data(), {pages, ps, c.hk, c.d}, {ps * row(), row(), c.d, 1})});
    }
  }

  SableAttentionInit init() const {
    SableAttentionInit in{};
    in.struct_size = sizeof(in);
    in.device_type = SABLE_DEVICE_CPU;
    in.num_layers = kLayers;
    in.num_q_heads = c.hq;
    in.num_kv_heads = c.hk;
    in.head_dim = c.d;
    in.page_size = c.page_size;
    in.kv_dtype = SABLE_DTYPE_F32;
    in.sliding_window = c.window;
    in.max_batch_tokens = 256;
    in.max_seqs = 16;
    in.layers = kv.data();
    return in;
  }
  SableAttentionBatch batch() const {
    SableAttentionBatch b{};
    b.struct_size = sizeof(b);
    b.num_seqs = static_cast<int32_t>(c.seqs.size());
    b.num_tokens = tokens;
    b.is_decode_only = std::all_of(c.seqs.begin(), c.seqs.end(), [](const Seq& s) { return s.new_len == 1; });
    b.qo_indptr = qo_indptr.data();
    b.kv_indptr = kv_indptr.data();
    b.kv_indices = kv_indices.data();
    b.kv_lens = kv_lens.data();
    return b;
  }
  SableTensor q() { return view(qkv.data(), {tokens, c.hq, c.d}, {width(), c.d, 1}); }
  SableTensor k() { return view(qkv.data() + c.hq * c.d, {tokens, c.hk, c.d}, {width(), c.d, 1}); }
  SableTensor v() {
    return view(qkv.data() + (c.hq + c.hk) * c.d, {tokens, c.hk, c.d}, {width(), c.d, 1});
  }

  // Naive dense causal attention: out [T, hq, d].
  std::vector<float> reference(float scale) const {
    std::vector<float> out(static_cast<size_t>(tokens) * c.hq * c.d);
    const int32_t group = c.hq / c.hk;
    for (size_t b = 0; b < c.seqs.size(); ++b) {
      const Seq& s = c.seqs[b];
      for (int32_t j = 0; j < s.new_len; ++j) {
        const int64_t t = qo_indptr[b] + j;
        const int32_t pos = s.prefix + j;
        const int32_t lo = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
        for (int32_t h = 0; h < c.hq; ++h) {
          const float* qv = qkv.data() + t * width() + static_cast<int64_t>(h) * c.d;
          const int32_t kvh = h / group;
          std::vector<double> w;
          double mx = -1e300;
          for (int32_t p = lo; p <= pos; ++p) {
            double dot = 0;
            for (int32_t d = 0; d < c.d; ++d) dot += qv[d] * k_dense[b][(p * c.hk + kvh) * c.d + d];
            w.push_back(dot * scale);
            mx = std::max(mx, w.back());
          }
          double sum = 0;
          for (double& x : w) sum += (x = std::exp(x - mx));
          for (int32_t d = 0; d < c.d; ++d) {
            double acc = 0;
            for (int32_t p = lo; p <= pos; ++p) acc += w[p - lo] * v_dense[b][(p * c.hk + kvh) * c.d + d];
            out[(t * c.hq + h) * c.d + d] = static_cast<float>(acc / sum);
          }
        }
      }
    }
    return out;
  }
};

}  // namespace sable::test
