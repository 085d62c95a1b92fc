// Model plugin "qwen_vl": Qwen2_5_VLForConditionalGeneration, a vision tower (vision_tower.h) in
// front of a Qwen2 decoder whose rotary embedding is M-RoPE.
//
// The decoder is the shared one (../common/decoder.h, Qwen2 options: q/k/v biases). M-RoPE splits
// the rotary frequencies into three sections (rope_scaling.mrope_section, e.g. [16, 24, 24] of
// head_dim/2); section s rotates by the token's position on axis s (time, height, width), which
// the host sends as SableForwardBatch.mrope_positions [3, T] (text tokens: the same value on all
// three axes). A forward with M-RoPE rows builds a per-token cos|sin table [T, head_dim] from the
// host's rope cache (three row gathers, one per axis, and column copies of each section) and
// rotates with it. Decode steps after the images have equal axes: the host sends those as plain
// positions (no mrope_positions), so they take the text path and CUDA graphs.
// Images: encode_images runs the tower; the host splices its rows into the prompt embeddings
// (SableForwardBatch.embeds / embed_spans, handled by the shared decoder).
#include <numeric>
#include <string>
#include <vector>

#include "common/decoder.h"
#include "qwen_vl/vision_tower.h"

namespace sable::models {
namespace {

DecoderOptions qwen_vl_options(const cpp::Host& host) {
  const std::string type = host.get_string("model_type").value_or("");
  if (type != "qwen2_5_vl")
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: model_type '" + type + "' is not served by the qwen_vl plugin");
  DecoderOptions opt;
  opt.qkv_bias = true;
  opt.read_sliding_window = false;
  return opt;
}

std::vector<int64_t> mrope_section(const cpp::Host& host) {
  for (const char* key : {"rope_scaling.mrope_section", "rope_parameters.mrope_section"}) {
    auto v = host.get_int_list(key);
    if (!v.empty()) return v;
  }
  cpp::fail(SABLE_ERR_NOT_FOUND, "config.json: rope_scaling.mrope_section is missing");
}

class QwenVlModel final : public DecoderModel {
 public:
  explicit QwenVlModel(cpp::Host host)
      : DecoderModel(host, qwen_vl_options(host)), vision_(host) {
    const auto section = mrope_section(host);
    if (section.size() != 3 ||
        std::accumulate(section.begin(), section.end(), int64_t{0}) * 2 != rot_dim())
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: mrope_section must be three parts summing to head_dim / 2 (" +
                    std::to_string(rot_dim() / 2) + ")");
    for (int i = 0; i < 3; ++i) section_[i] = section[static_cast<size_t>(i)];
    if (vision_.out_hidden() != hidden_size())
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: vision_config.out_hidden_size must equal hidden_size");
  }

  SableModelInfo info() const override {
    SableModelInfo i = DecoderModel::info();
    i.lora_modules = 0;  // the M-RoPE rows take the unfused path; adapters are not wired for it
    i.image_input = 1;
    return i;
  }

  void load_weights() override {
    DecoderModel::load_weights();
    vision_.load(host(), "visual.");
  }

  void forward(const cpp::Ops& ops, const SableForwardBatch& batch,
               SableForwardOutput& out) override {
    table_ = SableTensor{};
    if (has_mrope(batch) && batch.num_tokens > 0) build_table(ops, batch);
    DecoderModel::forward(ops, batch, out);
  }

  void encode_images(const cpp::Ops& ops, const SableImageBatch& images,
                     SableTensor& out) override {
    std::vector<VisionGrid> grids;
    for (int32_t i = 0; i < images.num_images; ++i) {
      const int32_t* g = images.grid_thw + 3 * i;
      if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || g[1] % vision_.merge() != 0 ||
          g[2] % vision_.merge() != 0)
        cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "encode_images: image " + std::to_string(i) +
                                                  " has a grid not divisible by the merge size");
      grids.push_back({g[0], g[1], g[2]});
    }
    vision_.encode(ops, host().compute_dtype(), grids, images.pixel_values, out);
  }

 protected:
  bool needs_unfused(const SableForwardBatch& batch) const override { return has_mrope(batch); }

  void apply_rope(const cpp::Ops& ops, const SableForwardBatch& batch, SableTensor& q3,
                  SableTensor& k3) override {
    if (table_.data == nullptr) return DecoderModel::apply_rope(ops, batch, q3, k3);
    ops.rope(&q3, &k3, table_rows_, table_, rot_dim(), SABLE_ROPE_NEOX);
  }

 private:
  static bool has_mrope(const SableForwardBatch& batch) {
    return SABLE_HAS(&batch, mrope_positions) && batch.mrope_positions.data != nullptr;
  }

  // Row s of mrope_positions as a [T] tensor.
  static SableTensor axis(const SableForwardBatch& batch, int32_t s) {
    SableTensor v = cpp::narrow(batch.mrope_positions, 0, s, 1);
    v.ndim = 1;
    v.shape[0] = batch.num_tokens;
    v.strides[0] = 1;
    return v;
  }

  // table_ [T, rot] F32: for each section, the cos and sin columns of the cache row at that axis.
  void build_table(const cpp::Ops& ops, const SableForwardBatch& batch) {
    const int64_t t = batch.num_tokens, rot = rot_dim(), half = rot / 2;
    table_ = ops.alloc(SABLE_DTYPE_F32, {t, rot});
    SableTensor rows = ops.alloc(SABLE_DTYPE_F32, {t, rot});
    int64_t start = 0;
    for (int32_t s = 0; s < 3; ++s) {
      ops.gather_rows(rope_cache_table(), axis(batch, s), rows);
      for (const int64_t base : {int64_t{0}, half}) {
        SableTensor dst = cpp::narrow(table_, 1, base + start, section_[s]);
        ops.copy(cpp::narrow(rows, 1, base + start, section_[s]), dst);
      }
      start += section_[s];
    }
    iota_.resize(static_cast<size_t>(t));
    std::iota(iota_.begin(), iota_.end(), 0);
    table_rows_ = ops.alloc(SABLE_DTYPE_I32, {t});
    ops.upload(iota_.data(), table_rows_);
  }

  VisionTower vision_;
  int64_t section_[3] = {0, 0, 0};
  SableTensor table_{}, table_rows_{};  // valid during one forward
  std::vector<int32_t> iota_;
};

}  // namespace
}  // namespace sable::models

SABLE_MODEL_PLUGIN("qwen_vl", "0.1.0", sable::models::QwenVlModel, 0,
                   "Qwen2_5_VLForConditionalGeneration")
