// Pins the frozen layout of ABI 1.0 and the SABLE_HAS rule for older (smaller) minor versions.
#include <gtest/gtest.h>

#include "sable/sable.h"

namespace {

TEST(SdkAbi, Version) {
  EXPECT_EQ(SABLE_ABI_MAJOR, 1);
  EXPECT_EQ(SABLE_ABI_MINOR, 9);
}

TEST(SdkAbi, StructSizeComesFirst) {
  EXPECT_EQ(offsetof(SablePlugin, struct_size), 0u);
  EXPECT_EQ(offsetof(SableTensor, struct_size), 0u);
  EXPECT_EQ(offsetof(SableOps, struct_size), 0u);
  EXPECT_EQ(offsetof(SableHostApi, struct_size), 0u);
  EXPECT_EQ(offsetof(SableModelApi, struct_size), 0u);
  EXPECT_EQ(offsetof(SableAttentionApi, struct_size), 0u);
  EXPECT_EQ(offsetof(SableSamplerApi, struct_size), 0u);
  EXPECT_EQ(offsetof(SableGrammarApi, struct_size), 0u);
  EXPECT_EQ(offsetof(SableCommApi, struct_size), 0u);
}

// Frozen offsets of the last field of every 1.0 table: a change here breaks every built plugin.
TEST(SdkAbi, FrozenOffsets) {
  EXPECT_EQ(offsetof(SablePlugin, description), 40u);
  EXPECT_EQ(offsetof(SableTensor, data), 120u);
  EXPECT_EQ(offsetof(SableModelApi, forward), 56u);
  EXPECT_EQ(offsetof(SableOps, stream), 8u + 8u * 21u);
}

// ABI 1.1 appended gemm_fused and its options struct; 1.0 stays as it was.
TEST(SdkAbi, FrozenOffsets_1_1) {
  EXPECT_EQ(offsetof(SableOps, gemm_fused), 8u + 8u * 22u);
  EXPECT_EQ(offsetof(SableOps, gemm_fused) + sizeof(void*), 8u + 8u * 23u);  // where 1.1 ended
  EXPECT_EQ(offsetof(SableGemmFusion, cos_sin), 56u);
  SableOps old{};
  old.struct_size = offsetof(SableOps, gemm_fused);  // a 1.0 host's table
  EXPECT_FALSE(SABLE_HAS(&old, gemm_fused));
}

// ABI 1.2 appended the lora op, SableModelInfo.lora_modules and SableForwardBatch.has_lora, then
// the scoring fields (model info, token types) and encoder attention.
TEST(SdkAbi, FrozenOffsets_1_2) {
  EXPECT_EQ(offsetof(SableOps, lora), 8u + 8u * 23u);
  EXPECT_EQ(offsetof(SableOps, attention_bidirectional), 8u + 8u * 24u);
  EXPECT_EQ(offsetof(SableOps, attention_bidirectional) + sizeof(void*), 8u + 8u * 25u);
  EXPECT_EQ(offsetof(SableModelInfo, lora_modules), 40u);
  EXPECT_EQ(offsetof(SableModelInfo, num_labels), 44u);
  EXPECT_EQ(offsetof(SableModelInfo, bidirectional) + sizeof(int32_t), 56u);
  EXPECT_EQ(offsetof(SableForwardBatch, has_lora), 24u + 3u * sizeof(SableTensor));
  EXPECT_EQ(offsetof(SableForwardBatch, token_type_ids), 32u + 3u * sizeof(SableTensor));
  SableOps old{};
  old.struct_size = offsetof(SableOps, lora);  // a 1.1 host's table
  EXPECT_FALSE(SABLE_HAS(&old, lora));
  EXPECT_FALSE(SABLE_HAS(&old, attention_bidirectional));
  EXPECT_TRUE(SABLE_HAS(&old, gemm_fused));
  SableModelInfo info{};
  info.struct_size = offsetof(SableModelInfo, lora_modules);  // a 1.0 / 1.1 plugin's info
  EXPECT_FALSE(SABLE_HAS(&info, bidirectional));
}

// ABI 1.3 appended image input: the upload op, SableModelInfo.image_input, the forward batch's
// M-RoPE positions and spliced embeddings, and SableModelApi.encode_images.
TEST(SdkAbi, FrozenOffsets_1_3) {
  EXPECT_EQ(offsetof(SableOps, upload), 8u + 8u * 25u);
  EXPECT_EQ(offsetof(SableOps, upload) + sizeof(void*), 8u + 8u * 26u);  // where 1.3 ended
  EXPECT_EQ(offsetof(SableModelInfo, image_input), 56u);
  EXPECT_EQ(sizeof(SableModelInfo), 60u);
  EXPECT_EQ(offsetof(SableForwardBatch, mrope_positions), 32u + 4u * sizeof(SableTensor));
  EXPECT_EQ(offsetof(SableModelApi, encode_images), 64u);
  SableOps old{};
  old.struct_size = offsetof(SableOps, upload);  // a 1.2 host's table
  EXPECT_FALSE(SABLE_HAS(&old, upload));
  EXPECT_TRUE(SABLE_HAS(&old, attention_bidirectional));
  SableModelApi api{};
  api.struct_size = offsetof(SableModelApi, encode_images);  // a 1.2 plugin: no image input
  EXPECT_FALSE(SABLE_HAS(&api, encode_images));
  SableForwardBatch batch{};
  batch.struct_size = offsetof(SableForwardBatch, mrope_positions);  // a 1.2 host's batch
  EXPECT_FALSE(SABLE_HAS(&batch, embed_spans));
}

// ABI 1.3 also appended the communicator endpoint to the host table and added the communicator
// table (tensor parallelism).
TEST(SdkAbi, FrozenOffsets_1_3_Comm) {
  EXPECT_EQ(offsetof(SableHostApi, comm), offsetof(SableHostApi, weight_get_into) + 8u);
  EXPECT_EQ(offsetof(SableHostApi, comm_handle), offsetof(SableHostApi, comm) + 8u);
  EXPECT_EQ(offsetof(SableHostApi, weight_get_stacked), offsetof(SableHostApi, comm_handle) + 8u);
  EXPECT_EQ(offsetof(SableCommApi, rank), 16u);
  EXPECT_EQ(offsetof(SableCommApi, abort), 16u + 8u * 7u);
  EXPECT_EQ(sizeof(SableCommApi), 16u + 8u * 8u);
  SableHostApi old{};
  old.struct_size = offsetof(SableHostApi, comm);  // a 1.2 host's table
  EXPECT_FALSE(SABLE_HAS(&old, comm));
  EXPECT_TRUE(SABLE_HAS(&old, weight_get_into));
}

// ABI 1.4 appended the vocabulary-parallel embedding lookup (embedding_shard).
TEST(SdkAbi, FrozenOffsets_1_4) {
  EXPECT_EQ(offsetof(SableOps, embedding_shard), 8u + 8u * 26u);
  SableOps old{};
  old.struct_size = offsetof(SableOps, embedding_shard);  // a 1.3 host's table
  EXPECT_FALSE(SABLE_HAS(&old, embedding_shard));
  EXPECT_TRUE(SABLE_HAS(&old, upload));
}

// ABI 1.5 appended the stacked LoRA deltas (lora_stacked: q|k|v or gate|up in one call).
TEST(SdkAbi, FrozenOffsets_1_5) {
  EXPECT_EQ(offsetof(SableOps, lora_stacked), 8u + 8u * 27u);
  EXPECT_EQ(offsetof(SableOps, lora_stacked) + sizeof(void*), 8u + 8u * 28u);  // where 1.5 ended
  SableOps old{};
  old.struct_size = offsetof(SableOps, lora_stacked);  // a 1.4 host's table
  EXPECT_FALSE(SABLE_HAS(&old, lora_stacked));
  EXPECT_TRUE(SABLE_HAS(&old, embedding_shard));
}

// ABI 1.6 appended the host's CPU thread pool for plugins' own loops (parallel_for).
TEST(SdkAbi, FrozenOffsets_1_6) {
  EXPECT_EQ(offsetof(SableOps, parallel_for), 8u + 8u * 28u);
  EXPECT_EQ(sizeof(SableOps), 8u + 8u * 29u);
  SableOps old{};
  old.struct_size = offsetof(SableOps, parallel_for);  // a 1.5 host's table
  EXPECT_FALSE(SABLE_HAS(&old, parallel_for));
  EXPECT_TRUE(SABLE_HAS(&old, lora_stacked));
}

// ABI 1.7 appended stacked weight loads to the host table (weight_get_stacked: q|k|v or gate|up
// kept packed in one matrix).
TEST(SdkAbi, FrozenOffsets_1_7) {
  EXPECT_EQ(sizeof(SableHostApi), offsetof(SableHostApi, weight_get_stacked) + 8u);
  SableHostApi old{};
  old.struct_size = offsetof(SableHostApi, weight_get_stacked);  // a 1.6 host's table
  EXPECT_FALSE(SABLE_HAS(&old, weight_get_stacked));
  EXPECT_TRUE(SABLE_HAS(&old, comm_handle));
}

// ABI 1.8 appended the forward's stream to the attention batch (a backend may upload its metadata
// at plan time, so a CUDA graph captured after the plan holds no copy node).
TEST(SdkAbi, FrozenOffsets_1_8) {
  EXPECT_EQ(offsetof(SableAttentionBatch, stream), 48u);
  EXPECT_EQ(sizeof(SableAttentionBatch), 56u);
  SableAttentionBatch old{};
  old.struct_size = offsetof(SableAttentionBatch, stream);  // a 1.7 host's batch
  EXPECT_FALSE(SABLE_HAS(&old, stream));
  EXPECT_TRUE(SABLE_HAS(&old, kv_lens));
}

// ABI 1.9 appended want_logprob to the sampling row (a sampler may skip the log-probability of a
// row nobody reads); a 1.8 host's row, without it, wants every log-probability.
TEST(SdkAbi, FrozenOffsets_1_9) {
  EXPECT_EQ(offsetof(SableSamplingRow, num_prompt_tokens), 104u);
  EXPECT_EQ(offsetof(SableSamplingRow, want_logprob), 108u);
  EXPECT_EQ(sizeof(SableSamplingRow), 112u);  // the field took the padding
  SableSamplingRow old{};
  old.struct_size = offsetof(SableSamplingRow, want_logprob);  // a 1.8 host's row
  EXPECT_FALSE(SABLE_HAS(&old, want_logprob));
  EXPECT_TRUE(SABLE_HAS(&old, num_prompt_tokens));
}

TEST(SdkAbi, HasRespectsStructSize) {
  SableModelInfo info{};
  info.struct_size = offsetof(SableModelInfo, sliding_window);  // an "older minor"
  EXPECT_TRUE(SABLE_HAS(&info, head_dim));
  EXPECT_FALSE(SABLE_HAS(&info, sliding_window));
  EXPECT_FALSE(SABLE_HAS(&info, output_kind));
  info.struct_size = sizeof(SableModelInfo);
  EXPECT_TRUE(SABLE_HAS(&info, output_kind));
  const SableModelInfo* null_info = nullptr;
  EXPECT_FALSE(SABLE_HAS(null_info, head_dim));
}

}  // namespace
