// Qwen2.5-VL's vision tower on the host ops table (CPU and CUDA alike): patch embedding (the Conv3d
// as one GEMM over the processor's flattened patches), `depth` pre-norm blocks (RMSNorm, bidirectional
// attention with 2-D rotary embedding, SwiGLU MLP with biases) that attend within windows except
// the full-attention blocks, and the patch merger (RMSNorm, 2×2 patches concatenated, Linear,
// GELU, Linear) into the language model's hidden size.
// Shapes: N patches, C vision hidden, P patch_dim (3·2·14·14), I MLP width, O output hidden,
// U = N / merge² merged tokens. Weights are read by their Hugging Face names under `prefix`
// ("visual.").
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "qwen_vl/vision_layout.h"
#include "sable/cpp/plugin.h"

namespace sable::models {

class VisionTower {
 public:
  // Reads vision_config from config.json.
  explicit VisionTower(const cpp::Host& host) {
    auto req = [&](const char* key) {
      const int64_t v = host.require_int((std::string("vision_config.") + key).c_str());
      if (v <= 0)
        cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                  std::string("config.json: 'vision_config.") + key + "' must be positive");
      return v;
    };
    depth_ = req("depth");
    hidden_ = req("hidden_size");
    heads_ = req("num_heads");
    inter_ = req("intermediate_size");
    out_hidden_ = req("out_hidden_size");
    patch_ = host.get_int("vision_config.patch_size").value_or(14);
    merge_ = host.get_int("vision_config.spatial_merge_size").value_or(2);
    temporal_ = host.get_int("vision_config.temporal_patch_size").value_or(2);
    channels_ = host.get_int("vision_config.in_channels").value_or(3);
    window_ = host.get_int("vision_config.window_size").value_or(112);
    for (int64_t b : host.get_int_list("vision_config.fullatt_block_indexes"))
      full_blocks_.push_back(b);
    theta_ = static_cast<float>(host.get_float("vision_config.rope_parameters.rope_theta")
                                    .value_or(host.get_float("vision_config.rope_theta").value_or(10000.0)));
    const std::string act = host.get_string("vision_config.hidden_act").value_or("silu");
    if (act != "silu")
      cpp::fail(SABLE_ERR_UNSUPPORTED, "config.json: vision_config.hidden_act '" + act +
                                           "' is not supported (silu)");
    if (hidden_ % heads_ != 0 || (hidden_ / heads_) % 4 != 0)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: vision_config hidden_size / num_heads must be a multiple of 4");
    head_dim_ = hidden_ / heads_;
    window_units_ = static_cast<int32_t>(window_ / merge_ / patch_);
    if (window_units_ <= 0)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "config.json: vision_config.window_size is too small");
  }

  int64_t patch_dim() const { return channels_ * temporal_ * patch_ * patch_; }
  int64_t merge() const { return merge_; }
  int64_t out_hidden() const { return out_hidden_; }

  void load(const cpp::Host& h, const std::string& prefix) {
    patch_w_ = cpp::reshape(h.weight(prefix + "patch_embed.proj.weight",
                                     {hidden_, channels_, temporal_, patch_, patch_}),
                            {hidden_, patch_dim()});
    blocks_.resize(static_cast<size_t>(depth_));
    for (int64_t b = 0; b < depth_; ++b) {
      const std::string p = prefix + "blocks." + std::to_string(b) + ".";
      Block& w = blocks_[static_cast<size_t>(b)];
      w.norm1 = h.weight(p + "norm1.weight", {hidden_});
      w.norm2 = h.weight(p + "norm2.weight", {hidden_});
      w.qkv = h.weight(p + "attn.qkv.weight", {3 * hidden_, hidden_});
      w.qkv_b = h.weight(p + "attn.qkv.bias", {3 * hidden_});
      w.proj = h.weight(p + "attn.proj.weight", {hidden_, hidden_});
      w.proj_b = h.weight(p + "attn.proj.bias", {hidden_});
      w.gate = h.weight(p + "mlp.gate_proj.weight", {inter_, hidden_});
      w.gate_b = h.weight(p + "mlp.gate_proj.bias", {inter_});
      w.up = h.weight(p + "mlp.up_proj.weight", {inter_, hidden_});
      w.up_b = h.weight(p + "mlp.up_proj.bias", {inter_});
      w.down = h.weight(p + "mlp.down_proj.weight", {hidden_, inter_});
      w.down_b = h.weight(p + "mlp.down_proj.bias", {hidden_});
      w.full = std::find(full_blocks_.begin(), full_blocks_.end(), b) != full_blocks_.end();
    }
    const int64_t cat = hidden_ * merge_ * merge_;
    ln_q_ = h.weight(prefix + "merger.ln_q.weight", {hidden_});
    mlp0_ = h.weight(prefix + "merger.mlp.0.weight", {cat, cat});
    mlp0_b_ = h.weight(prefix + "merger.mlp.0.bias", {cat});
    mlp2_ = h.weight(prefix + "merger.mlp.2.weight", {out_hidden_, cat});
    mlp2_b_ = h.weight(prefix + "merger.mlp.2.bias", {out_hidden_});
  }

  // pixel_values [N, P] F32 -> out [U, O] (compute dtype), images in the order of `grids`.
  void encode(const cpp::Ops& ops, int32_t dt, const std::vector<VisionGrid>& grids,
              const SableTensor& pixel_values, SableTensor& out) const {
    if (!ops.has_upload())
      cpp::fail(SABLE_ERR_UNSUPPORTED, "image input needs a host with ops upload (ABI 1.3)");
    const VisionLayout lay =
        vision_layout(grids, static_cast<int32_t>(merge_), window_units_,
                      static_cast<int32_t>(head_dim_), theta_);
    const int64_t n = lay.num_patches, units = n / (merge_ * merge_);
    if (pixel_values.ndim != 2 || pixel_values.shape[0] != n || pixel_values.shape[1] != patch_dim())
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "encode_images: pixel_values must be [" +
                                                std::to_string(n) + ", " +
                                                std::to_string(patch_dim()) + "]");
    if (out.ndim != 2 || out.shape[0] != units || out.shape[1] != out_hidden_)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "encode_images: out must be [" + std::to_string(units) +
                                                ", " + std::to_string(out_hidden_) + "]");
    auto upload_i32 = [&](const std::vector<int32_t>& v) {
      SableTensor t = ops.alloc(SABLE_DTYPE_I32, {static_cast<int64_t>(v.size())});
      ops.upload(v.data(), t);
      return t;
    };
    const SableTensor order = upload_i32(lay.patch_order);
    const SableTensor win_pos = upload_i32(lay.window_positions);
    const SableTensor img_pos = upload_i32(lay.image_positions);
    const SableTensor restore = upload_i32(lay.unit_restore);
    std::vector<int32_t> iota(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) iota[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    const SableTensor rope_pos = upload_i32(iota);
    SableTensor rotary = ops.alloc(SABLE_DTYPE_F32, {n, head_dim_});
    ops.upload(lay.rotary.data(), rotary);

    SableTensor pix = pixel_values;
    if (pixel_values.dtype != dt) {
      pix = ops.alloc(dt, {n, patch_dim()});
      ops.cast(pixel_values, pix);
    }
    SableTensor embedded = ops.alloc(dt, {n, hidden_});
    ops.gemm(pix, patch_w_, nullptr, embedded);
    SableTensor x = ops.alloc(dt, {n, hidden_});
    ops.gather_rows(embedded, order, x);  // window order from here on

    SableTensor h = ops.alloc(dt, {n, hidden_});
    SableTensor qkv = ops.alloc(dt, {n, 3 * hidden_});
    SableTensor attn = ops.alloc(dt, {n, hidden_});
    SableTensor proj = ops.alloc(dt, {n, hidden_});
    SableTensor gate = ops.alloc(dt, {n, inter_});
    SableTensor up = ops.alloc(dt, {n, inter_});
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    for (const Block& w : blocks_) {
      ops.rms_norm(x, nullptr, w.norm1, kEps, h);
      ops.gemm(h, w.qkv, &w.qkv_b, qkv);
      SableTensor q3 = cpp::split_last(cpp::narrow(qkv, 1, 0, hidden_), heads_, head_dim_);
      SableTensor k3 = cpp::split_last(cpp::narrow(qkv, 1, hidden_, hidden_), heads_, head_dim_);
      SableTensor v3 = cpp::split_last(cpp::narrow(qkv, 1, 2 * hidden_, hidden_), heads_, head_dim_);
      ops.rope(&q3, &k3, rope_pos, rotary, static_cast<int32_t>(head_dim_), SABLE_ROPE_NEOX);
      SableTensor attn3 = cpp::reshape(attn, {n, heads_, head_dim_});
      ops.attention_bidirectional(q3, k3, v3, w.full ? img_pos : win_pos, scale, attn3);
      ops.gemm(attn, w.proj, &w.proj_b, proj);
      ops.add(x, proj, x);
      ops.rms_norm(x, nullptr, w.norm2, kEps, h);
      ops.gemm(h, w.gate, &w.gate_b, gate);
      ops.gemm(h, w.up, &w.up_b, up);
      ops.activation(SABLE_ACT_SILU, gate, gate);
      ops.mul(gate, up, gate);
      ops.gemm(gate, w.down, &w.down_b, proj);
      ops.add(x, proj, x);
    }
    // Merger: each merged token is its merge² consecutive patches side by side.
    ops.rms_norm(x, nullptr, ln_q_, kEps, h);
    const int64_t cat = hidden_ * merge_ * merge_;
    const SableTensor grouped = cpp::reshape(h, {units, cat});
    SableTensor m1 = ops.alloc(dt, {units, cat});
    ops.gemm(grouped, mlp0_, &mlp0_b_, m1);
    ops.activation(SABLE_ACT_GELU, m1, m1);
    SableTensor m2 = ops.alloc(dt, {units, out_hidden_});
    ops.gemm(m1, mlp2_, &mlp2_b_, m2);
    ops.gather_rows(m2, restore, out);  // back to the images' own token order
  }

 private:
  static constexpr float kEps = 1e-6f;
  struct Block {
    SableTensor norm1{}, norm2{}, qkv{}, qkv_b{}, proj{}, proj_b{};
    SableTensor gate{}, gate_b{}, up{}, up_b{}, down{}, down_b{};
    bool full = false;
  };
  int64_t depth_ = 0, hidden_ = 0, heads_ = 0, head_dim_ = 0, inter_ = 0, out_hidden_ = 0;
  int64_t patch_ = 14, merge_ = 2, temporal_ = 2, channels_ = 3, window_ = 112;
  int32_t window_units_ = 0;
  float theta_ = 10000.0f;
  std::vector<int64_t> full_blocks_;
  SableTensor patch_w_{}, ln_q_{}, mlp0_{}, mlp0_b_{}, mlp2_{}, mlp2_b_{};
  std::vector<Block> blocks_;
};

}  // namespace sable::models
