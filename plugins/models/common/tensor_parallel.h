// How a decoder splits over tensor-parallel ranks, written once for the model plugins (header-only,
// sdk/ only): the head partition (KV heads split, or replicated when there are fewer than ranks)
// and the vocabulary-parallel embedding and LM head (VocabTables).
//
// Heads (Megatron / SGLang): rank r of N holds query heads [r*Hq/N, (r+1)*Hq/N). With Hk >= N it
// holds KV heads [r*Hk/N, ...); with Hk < N (N a multiple of Hk) it holds the one KV head its query
// heads read, kv head r / (N / Hk), so N / Hk ranks hold a copy of each.
// Vocabulary (SGLang's VocabParallelEmbedding / ParallelLMHead): rank r holds the rows of token
// ids [r*P, min(V, r*P + P)), P = ceil(V / N) (the last rank holds fewer when N does not divide
// V). The embedding looks up the ids this rank holds (zeros for the others, ops embedding_shard)
// and an all-reduce sums the ranks' rows; the LM head gives this rank's logits columns in an
// [L, P] block (padded on the last rank), all_gather along dim 1 concatenates the blocks in rank
// order and the first V columns are the logits. A tied head is the embedding's own slice.
// Thread-safety: plain values; a VocabTables is used by its model's thread only.
#pragma once

#include <algorithm>
#include <string>

#include "sable/cpp/plugin.h"

namespace sable::models {

struct HeadSplit {
  int64_t q_heads = 0;   // per rank
  int64_t kv_heads = 0;  // per rank
  int64_t q_start = 0;   // this rank's first query head
  int64_t kv_start = 0;  // this rank's first KV head
};

// Throws (SABLE_ERR_UNSUPPORTED, naming the counts) when N does not divide the query heads, or
// neither divides the other for the KV heads.
inline HeadSplit split_heads(int64_t q_total, int64_t kv_total, int32_t rank, int32_t size) {
  if (size < 1) size = 1;
  if (q_total % size != 0)
    cpp::fail(SABLE_ERR_UNSUPPORTED, "tp_size " + std::to_string(size) +
                                         " does not divide num_attention_heads " +
                                         std::to_string(q_total));
  if (kv_total % size != 0 && size % kv_total != 0)
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "tp_size " + std::to_string(size) + " and num_key_value_heads " +
                  std::to_string(kv_total) +
                  ": neither divides the other (KV heads are split, or replicated when fewer "
                  "than the ranks)");
  HeadSplit s;
  s.q_heads = q_total / size;
  s.q_start = rank * s.q_heads;
  if (kv_total >= size) {
    s.kv_heads = kv_total / size;
    s.kv_start = rank * s.kv_heads;
  } else {
    s.kv_heads = 1;
    s.kv_start = rank / (size / kv_total);
  }
  return s;
}

// The token embedding and the LM head of a model, each held whole or by vocabulary rows.
class VocabTables {
 public:
  // Loads the embedding `embed_name` [V, H] and the LM head `head_name` [V, H]: the same name for
  // a tied head (one copy of the rows), "" for none (a score head the model loads itself). With
  // tp_size > 1 both hold this rank's rows. The embedding stays whole on a host without ops
  // embedding_shard (ABI < 1.4); both stay whole when the last rank would hold no row (V <= (N-1)·P,
  // a toy vocabulary).
  void load(const cpp::Host& h, const std::string& embed_name, const std::string& head_name,
            int64_t vocab, int64_t hidden) {
    const int32_t n = h.tp_size() > 1 ? h.tp_size() : 1;
    vocab_ = vocab;
    ranks_ = n;
    per_rank_ = (vocab + n - 1) / n;
    first_id_ = static_cast<int64_t>(h.tp_rank()) * per_rank_;
    held_ = std::max<int64_t>(0, std::min(per_rank_, vocab - first_id_));
    const bool split = n > 1 && vocab > (n - 1) * per_rank_;
    const SableOps* ops = h.ops();
    embed_sharded_ = split && SABLE_HAS(ops, embedding_shard) && ops->embedding_shard;
    head_sharded_ = split && !head_name.empty();
    auto rows = [&](const std::string& name) {
      return h.weight_slice(name, {vocab, hidden}, 0, first_id_, held_);
    };
    embed_ = embed_sharded_ ? rows(embed_name) : h.weight(embed_name, {vocab, hidden});
    if (head_name.empty()) return;
    if (head_name != embed_name)
      head_ = head_sharded_ ? rows(head_name) : h.weight(head_name, {vocab, hidden});
    else  // tied: the embedding's own rows, unless only the head is split (an older host)
      head_ = embed_sharded_ || !head_sharded_ ? embed_ : rows(embed_name);
  }

  // out[T, H] = the embeddings of ids[T] (on every rank).
  void embed(const cpp::Ops& ops, const SableTensor& ids, SableTensor& out) const {
    if (!embed_sharded_) return ops.embedding(embed_, ids, out);
    ops.embedding_shard(embed_, ids, first_id_, out);
    ops.all_reduce(out);
  }

  // logits [L, V] F32 = sel [L, H] · headᵀ: directly with a whole head; with a split one, this
  // rank's columns into an [L, P] block (a last rank that holds fewer than P rows leaves the rest
  // of it unset), the blocks gathered from every rank ([L, N·P]) and cut to the first V columns.
  void logits(const cpp::Ops& ops, const SableTensor& sel, SableTensor& logits) const {
    if (!head_sharded_) return ops.gemm(sel, head_, nullptr, logits);
    const int64_t rows = sel.shape[0];
    SableTensor part = ops.alloc(SABLE_DTYPE_F32, {rows, per_rank_});
    if (held_ == per_rank_) {
      ops.gemm(sel, head_, nullptr, part);
    } else {
      SableTensor mine = ops.alloc(SABLE_DTYPE_F32, {rows, held_});
      ops.gemm(sel, head_, nullptr, mine);
      SableTensor dst = cpp::narrow(part, 1, 0, held_);
      ops.copy(mine, dst);
    }
    if (per_rank_ * ranks_ == vocab_) return ops.all_gather(part, 1, logits);
    SableTensor all = ops.alloc(SABLE_DTYPE_F32, {rows, per_rank_ * ranks_});
    ops.all_gather(part, 1, all);
    ops.copy(cpp::narrow(all, 1, 0, vocab_), logits);
  }

 private:
  SableTensor embed_{}, head_{};
  int64_t vocab_ = 0, per_rank_ = 0, first_id_ = 0, held_ = 0;
  int32_t ranks_ = 1;
  bool embed_sharded_ = false, head_sharded_ = false;
};

}  // namespace sable::models
