// Rotary position embedding parameters (as a Hugging Face config describes them) and the cos/sin
// cache built from them, following transformers' modeling_rope_utils scheme by scheme.
//
// Precision: transformers computes inv_freq and the angles in float32 (torch.arange(...).float(),
// `base ** x`, `1.0 / x`, `inv_freq @ positions`), and the golden logits were computed that way.
// build_rope_cache therefore reproduces that float32 arithmetic operation by operation (each
// torch op rounded to float32, pow/cos evaluated in double then rounded, which is at least as
// accurate as torch's kernels) rather than computing inv_freq in float64: the angle p * inv_freq
// for large p then matches transformers to the last float32 bit in most cases. Checked once against
// transformers 5.17 itself (its LlamaRotaryEmbedding for tests/golden/models/llama, 512 positions,
// CPU and CUDA forward; transformers computes inv_freq on the CPU in every load path): max |diff|
// 6e-8, one float32 ulp of the cos/sin values.
// Thread-safety: pure functions and plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sable::hf {

struct RopeParams {
  std::string type = "default";  // default | linear | dynamic | llama3 | yarn | longrope
  double theta = 10000.0;        // rope_theta
  // Scaling factor. yarn/longrope configs may omit it: HfConfig::rope() then derives it as
  // max_position_embeddings / original_max_position_embeddings, as transformers does.
  double factor = 1.0;
  double partial_rotary_factor = 1.0;
  int64_t max_position_embeddings = 2048;           // the config's (possibly extended) context
  int64_t original_max_position_embeddings = 0;     // pretraining context; 0 = not given
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  std::optional<double> mscale;
  std::optional<double> mscale_all_dim;
  bool truncate = true;
  // yarn / longrope: explicit attention factor (else derived from factor)
  std::optional<double> attention_factor;
  // longrope: per-frequency divisors, rot_dim / 2 each
  std::vector<double> short_factor;
  std::vector<double> long_factor;

  // Rotary dims for a head of `head_dim`: int(head_dim * partial_rotary_factor), as transformers.
  int32_t rotary_dim(int64_t head_dim) const;
};

// cos/sin cache [max_positions, rot_dim] float32: row p = [cos(p*f_0) .. cos(p*f_{rot/2-1}) |
// sin(p*f_0) .. sin(p*f_{rot/2-1})], each multiplied by attention_factor as transformers does
// (cos = emb.cos() * attention_scaling). Apply it to a neox-style (rotate_half) rotation.
struct RopeCache {
  std::vector<float> cos_sin;
  int64_t max_positions = 0;
  int32_t rot_dim = 0;
  float attention_factor = 1.0f;
};

// The inverse frequencies [rot_dim / 2] in float32 exactly as transformers' init function for the
// scheme computes them at model construction (dynamic: for seq_len = max(seq_len,
// max_position_embeddings); longrope: short_factor when seq_len <= original max, else long_factor),
// and the attention factor. Throws std::invalid_argument naming the problem (odd rot_dim, unknown
// type, missing longrope factors of the wrong length).
struct InvFreq {
  std::vector<float> inv_freq;
  double attention_factor = 1.0;
};
InvFreq compute_inv_freq(const RopeParams& params, int32_t rot_dim, int64_t seq_len = 0);

// The cache for positions [0, max_positions). Scheme notes:
//  - dynamic: transformers recomputes inv_freq when a sequence grows past max_position_embeddings;
//    a static cache uses seq_len = max(max_positions, max_position_embeddings), which equals
//    transformers for every sequence within max_position_embeddings.
//  - longrope: positions below original_max_position_embeddings use short_factor, positions at or
//    beyond it long_factor (transformers switches the whole sequence once it is longer).
RopeCache build_rope_cache(const RopeParams& params, int32_t rot_dim, int64_t max_positions);

}  // namespace sable::hf
