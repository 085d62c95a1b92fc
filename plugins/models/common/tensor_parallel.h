// How a decoder splits over tensor-parallel ranks, written once for the model plugins (header-only,
// sdk/ only): the head partition (KV heads split, or replicated when there are fewer than ranks)
// and the vocabulary-parallel LM head whose slices the ranks gather into the full logits row.
//
// Layout (Megatron / SGLang): rank r of N holds query heads [r*Hq/N, (r+1)*Hq/N). With Hk >= N it
// holds KV heads [r*Hk/N, ...); with Hk < N (N a multiple of Hk) it holds the one KV head its query
// heads read, kv head r / (N / Hk), so N / Hk ranks hold a copy of each. The LM head's rows
// [r*V/N, (r+1)*V/N) give logits columns of that range; all_gather along dim 1 concatenates them
// in rank order. A vocabulary N does not divide keeps a replicated LM head (no gather).
// Thread-safety: plain values, no state.
#pragma once

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

// True when the LM head is split by vocabulary rows over `size` ranks (else it is replicated).
inline bool vocab_parallel(int64_t vocab, int32_t size) { return size > 1 && vocab % size == 0; }

// The LM head this rank holds: rows [r*V/N, (r+1)*V/N) of `name` [V, H] when vocab_parallel,
// else all of it.
inline SableTensor lm_head_slice(const cpp::Host& h, const std::string& name, int64_t vocab,
                                 int64_t hidden) {
  const int32_t n = h.tp_size() > 0 ? h.tp_size() : 1;
  if (!vocab_parallel(vocab, n)) return h.weight(name, {vocab, hidden});
  const int64_t per = vocab / n;
  return h.weight_slice(name, {vocab, hidden}, 0, h.tp_rank() * per, per);
}

// logits [L, V] F32 = sel [L, H] · lm_headᵀ: directly with a replicated head; with a
// vocabulary-parallel one ([V/N, H]), this rank's [L, V/N] columns, then gathered from every rank.
inline void lm_head_logits(const cpp::Ops& ops, const SableTensor& sel, const SableTensor& lm_head,
                           SableTensor& logits) {
  const int64_t rows = sel.shape[0];
  if (lm_head.shape[0] == logits.shape[1]) return ops.gemm(sel, lm_head, nullptr, logits);
  SableTensor part = ops.alloc(SABLE_DTYPE_F32, {rows, lm_head.shape[0]});
  ops.gemm(sel, lm_head, nullptr, part);
  ops.all_gather(part, 1, logits);
}

}  // namespace sable::models
