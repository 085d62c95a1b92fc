// The host side of the "flash" backend's plan(): which kernel serves which token of a batch, and
// the launch shape. Pure C++ (no CUDA), so tests/unit/attention_flash_plan_test.cpp checks the
// routing on the CPU: every token is served exactly once, decode-only batches of one shape get one
// launch shape whatever their lengths (a captured CUDA graph's grid stays right), and the split
// ranges cover each token's visible positions.
//
// Routing: with the GQA-packed decode kernel on, it serves every sequence with one new token
// (padding sequences of a decode batch included) and the tensor-core prefill kernel the others;
// without it, decode-only batches go to the per-token kernel (split-KV) or, once they fill the GPU
// alone, to the prefill kernel, and every other batch to the prefill kernel. run() falls back to
// the per-token kernel for all tokens when a fast path refuses the shape.
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "cascade_plan.h"
#include "decode_schedule.h"
#include "prefill_schedule.h"
#include "sable/attention.h"

namespace sable::attention::flash {

constexpr int32_t kLegacyGroup = 8;  // q heads per block of the per-token kernel (paged_attention.cuh)

struct PlanConfig {
  int32_t page_size = 16;
  int32_t window = 0;  // sliding window, 0 = none
  int32_t q_heads = 0, kv_heads = 0, head_dim = 0;
  int32_t num_sms = 132;
  int32_t split_rows = 0;  // rows of the split partial buffers: decode-only batches up to this split
  bool decode_kernel = false;
  bool wave_fit = true;  // decode_splits' last-wave fill (SABLE_DECODE_WAVE_FIT=0: off, A/B runs)
  int32_t decode_stages = 2;  // K/V pipeline stages of the decode kernel (SABLE_DECODE_STAGES=3)
  // decode_chunk's floor: 0 = decode_floor's choice (two-stage batches); else this many positions
  // (SABLE_DECODE_MIN_CHUNK, A/B runs: 64 is the one-tile floor before v23).
  int32_t decode_min_chunk = 0;
  // Decode-only batches of at most this many (token, KV head) pairs take the deep pipeline
  // (kDeepStages, splits of kDeepChunk positions at least); 0 = never. The plugin sets 4 at head
  // dim 64, 8 at 128 (measured, flash_plugin.cpp); SABLE_DECODE_DEEP_PAIRS overrides.
  int32_t deep_pairs = 0;
  bool cascade = false;       // shared-prefix pass for decode-only batches (SABLE_CASCADE=0: off)
  int32_t cascade_min_shared = kCascadeMinShared;
};

// Per-token metadata [T] (seq: sequence index; begin/end: visible positions, end 0 = padding;
// slot: where its K/V go, -1 = none), the decode-token list, the prefill work list; for the
// cascade pass (cascade_schedule.h) per token its own range start and shared chunk count (0: not
// in a group; spans left empty: no cascade) and the pass's work list.
struct PlanArrays {
  std::span<int32_t> seq, begin, end, slot, decode;  // each of capacity >= num_tokens
  std::vector<PrefillTile> tiles;
  std::span<int32_t> casc_begin = {}, casc_chunks = {};
  CascadePlan cascade = {};
};

// The launch shape; for decode-only batches a function of (num_tokens, num_seqs) alone.
struct PlanShape {
  int32_t num_decode = 0;
  int32_t splits = 1;
  int32_t chunk = 32;  // positions per split (device-side value; lengths may change it)
  int32_t decode_stages = 2;  // K/V tiles in flight in the decode kernel (shape-only)
  bool decode_only = false;
  bool prefill = false;
  int32_t max_tiles = 0;  // prefill grid bound
  int32_t cascade_items = 0;    // cascade grid bound (shape-only); 0 = no cascade pass
  const char* error = nullptr;  // set when the batch is inconsistent; nothing else is then valid
};

// The cascade pass of a decode-only batch that splits (its partial buffers exist): the grid bound
// from the shape alone, the groups from the page lists. Members keep their begin (the fallback
// kernels read it); the decode kernel reads casc_begin instead when the pass ran.
inline void plan_cascade(const SableAttentionBatch& b, const PlanConfig& c, PlanShape& shape,
                         PlanArrays& out) {
  out.cascade = {};
  const auto T = static_cast<size_t>(b.num_tokens);
  if (!c.cascade || !c.decode_kernel || c.window > 0 || !shape.decode_only ||
      b.num_tokens > c.split_rows || out.casc_chunks.size() < T || out.casc_begin.size() < T)
    return;
  std::fill_n(out.casc_chunks.begin(), T, 0);
  std::fill_n(out.casc_begin.begin(), T, 0);
  shape.cascade_items = max_cascade_items(shape.num_decode);
  if (shape.cascade_items == 0) return;
  const std::vector<CascadeGroup> groups =
      find_cascade_groups(b, c.page_size, out.decode.first(static_cast<size_t>(shape.num_decode)),
                          out.seq, c.cascade_min_shared);
  out.cascade = build_cascade_plan(groups, c.q_heads / c.kv_heads, c.kv_heads, c.num_sms,
                                   out.casc_begin, out.casc_chunks);
  if (out.cascade.num_items > shape.cascade_items)
    shape.error = "flash: cascade work list exceeds its bound";
}

inline PlanShape plan_batch(const SableAttentionBatch& b, const PlanConfig& c, PlanArrays& out) {
  PlanShape shape;
  int32_t max_len = 0;
  for (int32_t s = 0; s < b.num_seqs; ++s) {
    const int32_t q0 = b.qo_indptr[s], n = b.qo_indptr[s + 1] - q0;
    const int32_t kv_len = b.kv_lens[s];
    const bool padding = kv_len == 0;
    if (!padding && kv_len < n) {
      shape.error = "flash: kv_len < new tokens";
      return shape;
    }
    const int32_t* pages = b.kv_indices + b.kv_indptr[s];
    const int32_t n_pages = b.kv_indptr[s + 1] - b.kv_indptr[s];
    if (!padding && int64_t(n_pages) * c.page_size < kv_len) {
      shape.error = "flash: too few pages for kv_len";
      return shape;
    }
    for (int32_t j = 0; j < n; ++j) {
      const int32_t t = q0 + j, pos = kv_len - n + j;
      out.seq[t] = s;
      out.end[t] = padding ? 0 : pos + 1;
      out.begin[t] = padding ? 0 : row_begin(pos, c.window);
      out.slot[t] = padding ? -1 : pages[pos / c.page_size] * c.page_size + pos % c.page_size;
      max_len = std::max(max_len, padding ? 0 : pos + 1);
    }
  }
  shape.decode_only = b.is_decode_only != 0;
  if (c.decode_kernel)
    for (int32_t t : decode_token_list(b.qo_indptr, b.num_seqs)) out.decode[shape.num_decode++] = t;
  // Split-KV only for decode-only batches too small to fill the GPU; shape-only.
  if (shape.decode_only && b.num_tokens <= c.split_rows) {
    if (c.decode_kernel) {
      shape.decode_stages =
          b.num_tokens * c.kv_heads <= c.deep_pairs ? kDeepStages : c.decode_stages;
      shape.splits = decode_splits(b.num_tokens, c.kv_heads, c.head_dim, c.num_sms, c.wave_fit,
                                   shape.decode_stages);
    } else {
      const int32_t chunks = (c.q_heads / c.kv_heads + kLegacyGroup - 1) / kLegacyGroup;
      const int32_t blocks = std::max(b.num_tokens * c.kv_heads * chunks, 1);
      shape.splits = std::clamp((2 * c.num_sms + blocks - 1) / blocks, 1, kMaxSplits);
    }
  }
  plan_cascade(b, c, shape, out);
  const int32_t floor =
      c.decode_min_chunk > 0 || shape.decode_stages >= kDeepStages || !shape.decode_only
          ? std::max(c.decode_min_chunk, kDecodeN)
          : decode_floor(b.num_tokens, c.kv_heads, c.head_dim, c.num_sms, shape.splits, max_len,
                         shape.decode_stages);
  const int32_t min_chunk =
      shape.decode_stages >= kDeepStages ? std::max(floor, kDeepChunk) : floor;
  shape.chunk = c.decode_kernel ? decode_chunk(max_len, shape.splits, min_chunk)
                                : std::max(32, (max_len + shape.splits - 1) / shape.splits);
  // Without the decode kernel, decode batches that fill the GPU alone (one CTA per token and q
  // head) take the prefill kernel, which streams K/V tiles where the per-token kernel is
  // latency-bound.
  shape.prefill = !shape.decode_only ||
                  (!c.decode_kernel && b.num_tokens * c.q_heads >= 2 * c.num_sms);
  shape.max_tiles = shape.prefill ? max_prefill_tiles(b.num_tokens, b.num_seqs) : 0;
  out.tiles.clear();
  if (shape.prefill)
    out.tiles = build_prefill_tiles(b.qo_indptr, b.kv_lens, b.num_seqs, c.window,
                                    /*skip_single=*/c.decode_kernel);
  return shape;
}

}  // namespace sable::attention::flash
