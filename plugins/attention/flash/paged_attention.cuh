// Paged attention kernels for the "flash" CUDA backend (bf16 KV, fp32 softmax).
//
// The per-token kernel below is the general fallback (any head dim up to 256, any group size);
// decode_attention.cu and prefill_attention.cu are the tensor-core fast paths.
// One kernel family serves decode and prefill: a block owns one query token, up to kMaxGroup query
// heads of one KV head (a GQA group), and one split (a contiguous range) of the token's visible KV
// positions. Lanes split the head dim, warps split positions; online softmax in the log2 domain.
// With more than one split, partial (max, sum, acc) go to a workspace and a merge kernel combines
// them (flash-decoding). All per-batch values live in device memory written by plan(), so the
// launch parameters are fixed per batch size and the launches can be captured in CUDA graphs.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace sable::attention::flash {

constexpr int kMaxGroup = 8;  // query heads per block
constexpr int kWarps = 4;

// Per-token metadata uploaded by plan(); [T] arrays unless noted.
struct TokenMeta {
  const int32_t* seq;    // sequence index of the token
  const int32_t* begin;  // first visible KV position (sliding window; 0 otherwise)
  const int32_t* end;    // one past the last visible position (= position + 1); 0 = padding
  const int32_t* slot;   // pool slot (page * page_size + offset) where its K/V go; -1 = none
  const int32_t* kv_indptr;   // [B + 1]
  const int32_t* kv_indices;  // pages
  const int32_t* chunk;       // [1] positions per split
};

struct AttentionParams {
  const __nv_bfloat16* q;  // [T, Hq, D] rows q_stride apart
  int64_t q_stride;
  __nv_bfloat16* k_cache;  // [pages, page_size, Hk, D]
  __nv_bfloat16* v_cache;
  __nv_bfloat16* out;      // [T, Hq, D] contiguous
  float* part_acc;         // [T, Hq, splits, D]
  float* part_ml;          // [T, Hq, splits, 2]
  TokenMeta meta;
  const int32_t* tiles;      // prefill work list [max_tiles, kTileWords] (prefill_schedule.h)
  const int32_t* num_tiles;  // [1] tiles in use
  int32_t max_tiles, window;  // grid bound; sliding window (0 = none)
  int32_t num_tokens, q_heads, kv_heads, head_dim, group, group_chunks, page_size, splits;
  float scale_log2;        // softmax scale * log2(e)
  // Decode kernel (decode_attention.cu): the new tokens' K/V inputs [T, Hk, D] rows *_stride
  // apart, the tokens it serves (indices into the batch), and the split tickets [T, Hk] (zero
  // between launches).
  const __nv_bfloat16* k_new;
  const __nv_bfloat16* v_new;
  int64_t k_stride, v_stride;
  const int32_t* decode_tokens;  // [num_decode]
  int32_t num_decode;
  int32_t store_new;             // 1: the kernel writes the tokens' K/V into the cache
  int32_t* counters;
  int32_t decode_stages;  // 2 or 3 K/V tiles in the decode kernel's pipeline
  int32_t wgmma_stages;   // prefill_wgmma.cu: K/V stages (2-4), q heads a CTA (1, 2 or 4)
  int32_t wgmma_heads;
  int32_t wgmma_partial;  // 1: groups the heads do not divide on CTAs with spare warpgroups
  int32_t wgmma_overlap;  // 1: S of tile j beside P·V of tile j - 1 (3-4 stages); -1: below 4 heads
  int32_t probe;          // timing only (SABLE_ATTN_PROBE): 1 stop after the wait, 2 after the K/V
  // Cascade pass (cascade_attention.cu, plan in cascade_schedule.h): its work list, and per token
  // the start of its own positions and its shared partials [T, Hq, kMaxCascadeChunks] to merge.
  // casc_chunks is null unless the pass runs before the decode kernel: the decode kernel then
  // ignores the rest.
  const int32_t* casc_begin;      // [T]
  const int32_t* casc_chunks;     // [T]; 0 = not in a group
  const int32_t* casc_items;      // [casc_max_items, kCascadeItemWords]
  const int32_t* casc_num_items;  // [1]
  const int32_t* casc_members;    // token indices, in item order
  int32_t casc_max_items;         // grid bound
  float* casc_acc;                // [T, Hq, kMaxCascadeChunks, D]
  float* casc_ml;                 // [T, Hq, kMaxCascadeChunks, 2]
};

struct AppendParams {
  const __nv_bfloat16* k;  // [T, Hk, D] rows k_stride apart
  const __nv_bfloat16* v;
  int64_t k_stride, v_stride;
  __nv_bfloat16* k_cache;
  __nv_bfloat16* v_cache;
  const int32_t* slot;
  int32_t num_tokens, kv_heads, head_dim;
};

// Launchers (stream = cudaStream_t). Return false for unsupported head dims.
bool launch_append_kv(const AppendParams& p, void* stream);
bool launch_attention(const AttentionParams& p, void* stream);
// Tensor-core prefill (prefill_attention.cu): head dims 64 and 128, 16-byte aligned q rows; false
// when the shape is not on the fast path (the caller then uses launch_attention).
bool prefill_supported(int32_t head_dim, const void* q, int64_t q_stride);
bool launch_prefill(const AttentionParams& p, void* stream);
// The same work list on Hopper's warpgroup tensor cores (prefill_wgmma.cu, sm_90a): usable on
// compute capability 9.0 devices; false when the shape is not supported (then launch_prefill).
bool prefill_wgmma_usable(int device);
bool launch_prefill_wgmma(const AttentionParams& p, void* stream);
// GQA-packed tensor-core decode (decode_attention.cu, index math in decode_schedule.h): one token
// per sequence, head dims 64 and 128, up to 16 q heads per KV head, 16-byte aligned q/k/v rows.
// Fuses the K/V append (store_new) and the split merge. False when the shape is not supported.
bool decode_inputs_aligned(const AttentionParams& p);
bool launch_decode(const AttentionParams& p, void* stream);
// The shared-prefix pass (cascade_attention.cu) of a decode-only batch, run before launch_decode;
// false when it cannot launch (the decode kernel must then run without casc_chunks).
bool launch_cascade(const AttentionParams& p, void* stream);

}  // namespace sable::attention::flash
