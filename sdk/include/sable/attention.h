/* Attention-backend plugins over the core's paged KV pool.
 *
 * KV pool, per layer: K and V of shape [pages, page_size, Hk, D], owned by the core. A batch lists
 * its sequences in order; sequence b has new tokens [qo_indptr[b], qo_indptr[b+1]) of the batch,
 * kv_lens[b] tokens in total after this step (cached prefix + new), stored in the pages
 * kv_indices[kv_indptr[b] .. kv_indptr[b+1]) in order. New token j of sequence b sits at position
 * kv_lens[b] - new_len + j, i.e. page kv_indices[kv_indptr[b] + pos / page_size], slot pos % page_size.
 * A sequence with kv_lens[b] == 0 is padding (CUDA-graph batches padded to a bucket): its tokens
 * write nothing to the cache and their output rows are zeros.
 *
 * plan() runs on the host before each forward, outside graph capture; run() is called once per
 * layer from inside the forward, on the context's stream, and must be capturable. A backend object
 * is used by one thread at a time.
 */
#ifndef SABLE_ATTENTION_H_
#define SABLE_ATTENTION_H_

#include "sable/host.h"

typedef struct SableAttention SableAttention; /* opaque, owned by the plugin */

typedef struct SableKvLayer {
  SableTensor k; /* [pages, page_size, Hk, D] */
  SableTensor v; /* [pages, page_size, Hk, D] */
} SableKvLayer;

typedef struct SableAttentionInit {
  uint32_t struct_size;
  int32_t device_type;  /* SableDeviceType */
  int32_t device_index;
  int32_t num_layers;
  int32_t num_q_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t page_size;
  int32_t kv_dtype;       /* SableDType of the pool */
  int32_t sliding_window; /* 0 = none */
  int32_t max_batch_tokens; /* largest T a forward will carry */
  int32_t max_seqs;         /* largest number of sequences in a batch */
  const SableKvLayer* layers; /* [num_layers], valid for the backend's lifetime */
  /* end of ABI 1.0 - do not modify above */
} SableAttentionInit;

typedef struct SableAttentionBatch {
  uint32_t struct_size;
  int32_t num_seqs;
  int32_t num_tokens;
  int32_t is_decode_only;
  const int32_t* qo_indptr;  /* [num_seqs + 1], host memory */
  const int32_t* kv_indptr;  /* [num_seqs + 1], host memory */
  const int32_t* kv_indices; /* [kv_indptr[num_seqs]], host memory */
  const int32_t* kv_lens;    /* [num_seqs], host memory */
  /* end of ABI 1.0 - do not modify above */
  /* The device stream (cudaStream_t on CUDA) the batch's forward will run on, or NULL. A backend
   * may enqueue the batch's metadata upload on it during plan, stream-ordered before the forward,
   * so that a CUDA graph captured after the plan holds no copy node. */
  void* stream;
  /* end of ABI 1.8 - do not modify above */
} SableAttentionBatch;

typedef struct SableAttentionApi {
  uint32_t struct_size;
  uint32_t reserved;
  /* 0: unusable for this device type here; otherwise a score, higher is preferred. */
  int32_t (*probe)(int32_t device_type);
  /* Head dims this backend supports: NULL means any. */
  int32_t (*supports_head_dim)(int32_t head_dim);
  SableStatus (*create)(const SableHostApi* host, SableHostHandle* h,
                        const SableAttentionInit* init, SableAttention** out);
  void (*destroy)(SableAttention* attn); /* accepts NULL */
  SableStatus (*plan)(SableAttention* attn, const SableAttentionBatch* batch);
  /* q [T,Hq,D], k/v [T,Hk,D] (possibly strided), out [T,Hq,D] contiguous; scale > 0. */
  SableStatus (*run)(SableAttention* attn, SableOpsContext* ctx, int32_t layer,
                     const SableTensor* q, const SableTensor* k, const SableTensor* v,
                     float scale, SableTensor* out);
  /* end of ABI 1.0 - do not modify above */
} SableAttentionApi;

#endif /* SABLE_ATTENTION_H_ */
