// Header-only C++ view of SableHostApi: config lookups, weights and ops that throw sable::cpp::Error
// instead of returning statuses. Lives inside one plugin object; not thread-safe by itself.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "sable/cpp/error.h"
#include "sable/cpp/tensor.h"
#include "sable/host.h"

namespace sable::cpp {

class Host {
 public:
  Host(const SableHostApi* api, SableHostHandle* h) : api_(api), h_(h) {}

  const SableHostApi* api() const { return api_; }
  SableHostHandle* handle() const { return h_; }
  const SableOps* ops() const { return api_->ops; }
  int32_t compute_dtype() const { return api_->compute_dtype; }
  int32_t tp_rank() const { return api_->tp_rank; }
  int32_t tp_size() const { return api_->tp_size; }

  void log(int32_t level, const std::string& msg) const { api_->log(h_, level, msg.c_str()); }

  // --- config.json
  bool has(const char* key) const { return api_->config_has(h_, key) != 0; }
  std::optional<int64_t> get_int(const char* key) const {
    int64_t v = 0;
    return lookup(api_->config_int(h_, key, &v), key) ? std::optional<int64_t>(v) : std::nullopt;
  }
  std::optional<double> get_float(const char* key) const {
    double v = 0;
    return lookup(api_->config_float(h_, key, &v), key) ? std::optional<double>(v) : std::nullopt;
  }
  std::optional<bool> get_bool(const char* key) const {
    int32_t v = 0;
    return lookup(api_->config_bool(h_, key, &v), key) ? std::optional<bool>(v != 0) : std::nullopt;
  }
  std::optional<std::string> get_string(const char* key) const {
    size_t len = 0;
    char buf[256];
    if (!lookup(api_->config_string(h_, key, buf, sizeof(buf), &len), key)) return std::nullopt;
    if (len < sizeof(buf)) return std::string(buf, len);
    std::string s(len + 1, '\0');
    check(api_->config_string(h_, key, s.data(), s.size(), &len), key);
    s.resize(len);
    return s;
  }
  std::vector<int64_t> get_int_list(const char* key) const {
    size_t count = 0;
    if (!lookup(api_->config_int_list(h_, key, nullptr, 0, &count), key)) return {};
    std::vector<int64_t> v(count);
    check(api_->config_int_list(h_, key, v.data(), v.size(), &count), key);
    return v;
  }
  int64_t require_int(const char* key) const {
    auto v = get_int(key);
    if (!v) fail(SABLE_ERR_NOT_FOUND, std::string("config.json: missing required key '") + key + "'");
    return *v;
  }
  double require_float(const char* key) const {
    auto v = get_float(key);
    if (!v) fail(SABLE_ERR_NOT_FOUND, std::string("config.json: missing required key '") + key + "'");
    return *v;
  }

  // --- weights
  bool has_weight(const std::string& name) const { return api_->weight_has(h_, name.c_str()) != 0; }
  SableTensor weight(const std::string& name, std::initializer_list<int64_t> shape,
                     int32_t dtype = SABLE_DTYPE_AUTO) const {
    return weight_slice(name, shape, -1, 0, 0, dtype);
  }
  SableTensor weight_slice(const std::string& name, std::initializer_list<int64_t> shape,
                           int32_t slice_dim, int64_t start, int64_t len,
                           int32_t dtype = SABLE_DTYPE_AUTO) const {
    std::vector<int64_t> s(shape);
    SableTensor t;
    check(api_->weight_get(h_, name.c_str(), static_cast<int32_t>(s.size()), s.data(), dtype,
                           slice_dim, start, len, &t),
          "weight_get");
    return t;
  }
  void ignore_weight(const std::string& name) const { api_->weight_ignore(h_, name.c_str()); }
  // True when the host can load a tensor into memory the plugin provides (weight_get_into).
  bool can_load_into() const { return SABLE_HAS(api_, weight_get_into) && api_->weight_get_into; }
  // Loads `name` (full shape `shape`, optionally sliced) into `dst` (contiguous, same numel).
  void weight_into(const std::string& name, std::initializer_list<int64_t> shape, SableTensor& dst,
                   int32_t slice_dim = -1, int64_t start = 0, int64_t len = 0) const {
    std::vector<int64_t> s(shape);
    check(api_->weight_get_into(h_, name.c_str(), static_cast<int32_t>(s.size()), s.data(),
                                dst.dtype, slice_dim, start, len, &dst),
          "weight_get_into");
  }
  // True when the host can stack tensors into one (weight_get_stacked, since ABI 1.7).
  bool can_stack() const {
    return SABLE_HAS(api_, weight_get_stacked) && api_->weight_get_stacked != nullptr;
  }
  // names[i] (whole [rows[i], cols] matrices, or [rows[i]] vectors when cols is 0) stacked by rows
  // into one tensor; nullopt when the host declines (they are stored in different formats, or it
  // keeps them apart): load them one by one then. Throws on any other failure.
  std::optional<SableTensor> weight_stacked(std::initializer_list<std::string> names,
                                            std::initializer_list<int64_t> rows,
                                            int64_t cols) const {
    if (names.size() != rows.size())
      fail(SABLE_ERR_INVALID_ARGUMENT, "weight_stacked: sizes differ");
    std::vector<const char*> n;
    for (const std::string& s : names) n.push_back(s.c_str());
    std::vector<int64_t> r(rows);
    SableTensor t;
    const SableStatus s =
        api_->weight_get_stacked(h_, static_cast<int32_t>(n.size()), n.data(), r.data(), cols, &t);
    if (s == SABLE_ERR_UNSUPPORTED) return std::nullopt;
    check(s, "weight_get_stacked");
    return t;
  }
  std::vector<std::string> weight_names() const {
    std::vector<std::string> names;
    const int32_t n = api_->weight_count(h_);
    for (int32_t i = 0; i < n; ++i) names.emplace_back(api_->weight_name(h_, i));
    return names;
  }

  SableTensor alloc_persistent(int32_t dtype, std::initializer_list<int64_t> shape) const {
    std::vector<int64_t> s(shape);
    SableTensor t;
    check(api_->alloc_persistent(h_, dtype, static_cast<int32_t>(s.size()), s.data(), &t),
          "alloc_persistent");
    return t;
  }
  SableTensor rope_cache(int32_t rot_dim, float* mscale = nullptr) const {
    SableTensor t;
    float m = 1.0f;
    check(api_->rope_cache(h_, rot_dim, &t, &m), "rope_cache");
    if (mscale) *mscale = m;
    return t;
  }

 private:
  // true: found; false: absent; throws on a type mismatch (the host has set the message).
  static bool lookup(SableStatus s, const char* key) {
    if (s == SABLE_OK) return true;
    if (s == SABLE_ERR_NOT_FOUND) return false;
    fail(s, std::string("config.json: key '") + key + "' has the wrong type");
  }
  const SableHostApi* api_;
  SableHostHandle* h_;
};

// The ops table bound to one forward context; each call throws on failure.
class Ops {
 public:
  Ops(const SableOps* ops, SableOpsContext* ctx) : o_(ops), c_(ctx) {}

  SableTensor alloc(int32_t dtype, std::initializer_list<int64_t> shape) const {
    std::vector<int64_t> s(shape);
    SableTensor t;
    check(o_->alloc(c_, dtype, static_cast<int32_t>(s.size()), s.data(), &t), "alloc");
    return t;
  }
  void embedding(const SableTensor& table, const SableTensor& ids, SableTensor& out) const {
    check(o_->embedding(c_, &table, &ids, &out), "embedding");
  }
  void gemm(const SableTensor& x, const SableTensor& w, const SableTensor* bias,
            SableTensor& out) const {
    check(o_->gemm(c_, &x, &w, bias, &out), "gemm");
  }
  // gemm_fused (since ABI 1.1): only when has_gemm_fused(); hosts of ABI 1.0 lack it.
  bool has_gemm_fused() const { return SABLE_HAS(o_, gemm_fused) && o_->gemm_fused != nullptr; }
  void gemm_fused(const SableTensor& x, const SableTensor& w, const SableTensor* bias,
                  const SableGemmFusion& fusion, SableTensor& out) const {
    check(o_->gemm_fused(c_, &x, &w, bias, &fusion, &out), "gemm_fused");
  }
  // lora (since ABI 1.2): the adapters' delta added into a projection's output (ops.h).
  bool has_lora() const { return SABLE_HAS(o_, lora) && o_->lora != nullptr; }
  void lora(int32_t layer, int32_t module, const SableTensor& x, SableTensor& out) const {
    check(o_->lora(c_, layer, module, &x, &out), "lora");
  }
  // lora_stacked (since ABI 1.5): the deltas of modules first_module.. into outs[i] (ops.h).
  bool has_lora_stacked() const { return SABLE_HAS(o_, lora_stacked) && o_->lora_stacked != nullptr; }
  void lora_stacked(int32_t layer, int32_t first_module, const SableTensor& x,
                    std::span<SableTensor> outs) const {
    check(o_->lora_stacked(c_, layer, first_module, static_cast<int32_t>(outs.size()), &x,
                           outs.data()),
          "lora_stacked");
  }
  // parallel_for (since ABI 1.6): fn(i) for every i in [0, n) on the host's CPU pool (ops.h); a
  // loop on the calling thread where the host has none (older hosts, CUDA). fn must not throw.
  bool has_parallel_for() const {
    return SABLE_HAS(o_, parallel_for) && o_->parallel_for != nullptr;
  }
  template <class F>
  void parallel_for(int64_t n, F&& fn) const {
    if (!has_parallel_for() || n <= 1) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    auto trampoline = [](void* user, int64_t i) { (*static_cast<Fn*>(user))(i); };
    check(o_->parallel_for(c_, n, trampoline, const_cast<void*>(static_cast<const void*>(&fn))),
          "parallel_for");
  }
  void rms_norm(const SableTensor& x, SableTensor* residual, const SableTensor& w, float eps,
                SableTensor& out, float weight_offset = 0.0f) const {
    check(o_->rms_norm(c_, &x, residual, &w, eps, weight_offset, &out), "rms_norm");
  }
  void layer_norm(const SableTensor& x, SableTensor* residual, const SableTensor* w,
                  const SableTensor* b, float eps, SableTensor& out) const {
    check(o_->layer_norm(c_, &x, residual, w, b, eps, &out), "layer_norm");
  }
  void rope(SableTensor* q, SableTensor* k, const SableTensor& positions,
            const SableTensor& cos_sin, int32_t rot_dim, int32_t style) const {
    check(o_->rope(c_, q, k, &positions, &cos_sin, rot_dim, style), "rope");
  }
  void act_mul(int32_t act, const SableTensor& x, SableTensor& out) const {
    check(o_->act_mul(c_, act, &x, &out), "act_mul");
  }
  void activation(int32_t act, const SableTensor& x, SableTensor& out) const {
    check(o_->activation(c_, act, &x, &out), "activation");
  }
  void add(const SableTensor& a, const SableTensor& b, SableTensor& out) const {
    check(o_->add(c_, &a, &b, &out), "add");
  }
  void mul(const SableTensor& a, const SableTensor& b, SableTensor& out) const {
    check(o_->mul(c_, &a, &b, &out), "mul");
  }
  void scale(const SableTensor& x, float s, SableTensor& out) const {
    check(o_->scale(c_, &x, s, &out), "scale");
  }
  void sigmoid(const SableTensor& x, SableTensor& out) const {
    check(o_->sigmoid(c_, &x, &out), "sigmoid");
  }
  void copy(const SableTensor& src, SableTensor& dst) const {
    check(o_->copy(c_, &src, &dst), "copy");
  }
  void cast(const SableTensor& src, SableTensor& dst) const {
    check(o_->cast(c_, &src, &dst), "cast");
  }
  void gather_rows(const SableTensor& x, const SableTensor& rows, SableTensor& out) const {
    check(o_->gather_rows(c_, &x, &rows, &out), "gather_rows");
  }
  void attention(int32_t layer, const SableTensor& q, const SableTensor& k, const SableTensor& v,
                 float scale, SableTensor& out) const {
    check(o_->attention(c_, layer, &q, &k, &v, scale, &out), "attention");
  }
  // attention_bidirectional (since ABI 1.2): only when has_attention_bidirectional().
  bool has_attention_bidirectional() const {
    return SABLE_HAS(o_, attention_bidirectional) && o_->attention_bidirectional != nullptr;
  }
  void attention_bidirectional(const SableTensor& q, const SableTensor& k, const SableTensor& v,
                               const SableTensor& positions, float scale, SableTensor& out) const {
    check(o_->attention_bidirectional(c_, &q, &k, &v, &positions, scale, &out),
          "attention_bidirectional");
  }
  // upload (since ABI 1.3): host bytes into a contiguous device tensor (ops.h).
  bool has_upload() const { return SABLE_HAS(o_, upload) && o_->upload != nullptr; }
  void upload(const void* src, SableTensor& dst) const { check(o_->upload(c_, src, &dst), "upload"); }
  // embedding_shard (since ABI 1.4): one rank's rows of a vocabulary-parallel embedding (ops.h).
  bool has_embedding_shard() const {
    return SABLE_HAS(o_, embedding_shard) && o_->embedding_shard != nullptr;
  }
  void embedding_shard(const SableTensor& table, const SableTensor& ids, int64_t first_id,
                       SableTensor& out) const {
    check(o_->embedding_shard(c_, &table, &ids, first_id, &out), "embedding_shard");
  }
  void moe_route(int32_t layer, const SableTensor& logits, int32_t top_k, int32_t scoring,
                 bool renormalize, SableTensor& weights, SableTensor& ids) const {
    check(o_->moe_route(c_, layer, &logits, top_k, scoring, renormalize ? 1 : 0, &weights, &ids),
          "moe_route");
  }
  void moe_experts(const SableTensor& x, const SableTensor& w_gate_up, const SableTensor& w_down,
                   const SableTensor& weights, const SableTensor& ids, int32_t act,
                   SableTensor& out) const {
    check(o_->moe_experts(c_, &x, &w_gate_up, &w_down, &weights, &ids, act, &out), "moe_experts");
  }
  void all_reduce(SableTensor& x) const { check(o_->all_reduce(c_, &x), "all_reduce"); }
  void all_gather(const SableTensor& x, int32_t dim, SableTensor& out) const {
    check(o_->all_gather(c_, &x, dim, &out), "all_gather");
  }
  void argmax(const SableTensor& x, SableTensor& out) const {
    check(o_->argmax(c_, &x, &out), "argmax");
  }
  void* stream() const { return o_->stream(c_); }
  SableOpsContext* context() const { return c_; }

 private:
  const SableOps* o_;
  SableOpsContext* c_;
};

}  // namespace sable::cpp
