// The startup warm-up that sizes a CUDA runner's scratch before the KV pool takes the rest of
// device memory. The forward arena grows to the largest need it meets and keeps that memory
// (core/ops/arena.h), so the warm-up runs the largest work the server will ever give it:
//   - one forward of max_batch_tokens tokens (sequences no longer than the context) over a
//     throw-away KV pool; for a vision-language model every row is an image row (M-RoPE
//     positions and spliced embeddings: the decoder's unfused path and the embedding upload);
//   - for a vision-language model, one vision-tower call of RunnerOptions::vision.max_patches
//     patches, the largest call the engine makes (it splits bigger work into such calls).
// What is left after that is the KV pool's, so a large image can never run a server out of device
// memory mid-request; if the warm-up itself does not fit, startup stops with a message naming it.
//
// The shapes are plain functions (tested on the CPU); running them needs a CUDA runner and lives
// in ModelRunner::warm_up (warm_up.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace sable::runner {

// The text side of the warm-up: max_batch_tokens tokens in sequences of at most context_length
// tokens (at most max_seqs of them, the last one shorter), each over its own pages of a scratch
// pool, one output row per sequence. With image_rows, every row also carries M-RoPE positions
// (the token's position on all three axes) and an image embedding (one span per sequence).
struct WarmUpBatch {
  std::vector<int32_t> token_ids, positions, output_rows;
  std::vector<int32_t> qo_indptr, kv_indptr, kv_indices, kv_lens;
  int64_t num_pages = 0;             // pages of the scratch pool the batch addresses
  std::vector<int32_t> mrope;        // [3, T], or empty
  std::vector<int32_t> embed_spans;  // [spans, 3] (row, count, embeds row), or empty
  int64_t embed_rows = 0;            // rows of embeddings the spans address
};

WarmUpBatch warm_up_batch(int64_t max_batch_tokens, int64_t context_length, int64_t max_seqs,
                          int32_t page_size, bool image_rows);

// grid_thw [1, 3] of one image of exactly `patches` patches whose sides are multiples of `merge`,
// as square as the count allows (the tower's scratch grows with the patch count, not the shape).
// Throws std::invalid_argument unless patches is a positive multiple of merge².
std::vector<int32_t> vision_warm_up_grid(int64_t patches, int32_t merge);

}  // namespace sable::runner
