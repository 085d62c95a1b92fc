/* The ops table: every computation a model plugin needs, implemented by the host for its device.
 *
 * A model computes only through this table, so one plugin runs on the CPU and on CUDA. Every op is
 * ordered on the forward context's stream and never waits for the host, so decode forwards can be
 * captured as CUDA graphs. Tensors live on the context's device; unless an op says otherwise,
 * inputs and outputs are contiguous and share the compute dtype (fp32 on CPU, bf16 on CUDA).
 * Shape letters: T tokens in the batch, H hidden size, V vocab, E experts, k top-k, I intermediate,
 * Hq/Hk query/key heads, D head dim, L output rows.
 * Thread-safety: one forward context is used by one thread at a time.
 */
#ifndef SABLE_OPS_H_
#define SABLE_OPS_H_

#include "sable/tensor.h"

typedef struct SableOpsContext SableOpsContext; /* opaque: device, stream, scratch arena */
typedef struct SableGemmFusion SableGemmFusion; /* since 1.1, defined below SableOps */

/* since 1.6: one index of a parallel_for (below); `user` is the caller's pointer. */
typedef void (*SableParallelFn)(void* user, int64_t index);

typedef enum SableActivation {
  SABLE_ACT_SILU = 0,
  SABLE_ACT_GELU = 1,      /* exact erf GELU */
  SABLE_ACT_GELU_TANH = 2, /* tanh approximation */
  SABLE_ACT_RELU = 3,
  SABLE_ACT_TANH = 4 /* since 1.2 (classifier heads); `activation` only, not gated */
} SableActivation;

typedef enum SableRopeStyle {
  SABLE_ROPE_NEOX = 0,       /* rotate halves: (x[i], x[i + rot/2]) */
  SABLE_ROPE_INTERLEAVED = 1 /* rotate pairs: (x[2i], x[2i + 1]) */
} SableRopeStyle;

typedef enum SableMoeScoring { SABLE_MOE_SOFTMAX = 0, SABLE_MOE_SIGMOID = 1 } SableMoeScoring;

/* since 1.2: the projections a LoRA adapter may target (PEFT's target module names). */
typedef enum SableLoraModule {
  SABLE_LORA_Q = 0,    /* q_proj */
  SABLE_LORA_K = 1,    /* k_proj */
  SABLE_LORA_V = 2,    /* v_proj */
  SABLE_LORA_O = 3,    /* o_proj */
  SABLE_LORA_GATE = 4, /* gate_proj */
  SABLE_LORA_UP = 5,   /* up_proj */
  SABLE_LORA_DOWN = 6, /* down_proj */
  SABLE_LORA_MODULE_COUNT = 7
} SableLoraModule;

typedef struct SableOps {
  uint32_t struct_size;
  uint32_t reserved;

  /* Scratch tensor valid until the current forward returns (bump-allocated; deterministic
   * addresses for identical call sequences, which CUDA graph replay relies on). Contiguous. */
  SableStatus (*alloc)(SableOpsContext* ctx, int32_t dtype, int32_t ndim, const int64_t* shape,
                       SableTensor* out);

  /* out[T,H] = table[ids[T], :]; ids are I32. */
  SableStatus (*embedding)(SableOpsContext* ctx, const SableTensor* table, const SableTensor* ids,
                           SableTensor* out);

  /* out[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N] when not NULL). `w` uses the Hugging Face layout
   * [out_features, in_features]. `out` may be F32 while x and w are the compute dtype. */
  SableStatus (*gemm)(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                      const SableTensor* bias, SableTensor* out);

  /* RMSNorm over the last dim. Without residual: out = x / rms(x) * (weight + weight_offset).
   * With residual [T,H] (in/out): residual += x, then out = norm(residual). weight_offset is 0 for
   * Llama and 1 for Gemma's (1 + w). `x` may be a [rows, D] view of per-head vectors (q/k norm). */
  SableStatus (*rms_norm)(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                          const SableTensor* weight, float eps, float weight_offset,
                          SableTensor* out);

  /* LayerNorm over the last dim, same residual convention; weight and bias may be NULL. */
  SableStatus (*layer_norm)(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                            const SableTensor* weight, const SableTensor* bias, float eps,
                            SableTensor* out);

  /* Rotary embedding in place on q[T,Hq,D] and k[T,Hk,D] (either may be NULL) for the first
   * rot_dim dims of each head. cos_sin[max_pos, rot_dim] F32 holds cos in [:, :rot/2] and sin in
   * [:, rot/2:] (made by the host's rope_cache). positions[T] I32. q/k may be strided views. */
  SableStatus (*rope)(SableOpsContext* ctx, SableTensor* q, SableTensor* k,
                      const SableTensor* positions, const SableTensor* cos_sin, int32_t rot_dim,
                      int32_t style);

  /* Gated activation: x[T, 2I] = [gate | up] -> out[T, I] = act(gate) * up. */
  SableStatus (*act_mul)(SableOpsContext* ctx, int32_t act, const SableTensor* x,
                         SableTensor* out);
  /* Plain activation, elementwise: out = act(x). */
  SableStatus (*activation)(SableOpsContext* ctx, int32_t act, const SableTensor* x,
                            SableTensor* out);

  /* out = a + b. b may be [1, N] broadcast over a's rows. out may alias a. */
  SableStatus (*add)(SableOpsContext* ctx, const SableTensor* a, const SableTensor* b,
                     SableTensor* out);
  /* out = a * b elementwise; b may be [T, 1] (per-row scalar) or [1, N] broadcast. */
  SableStatus (*mul)(SableOpsContext* ctx, const SableTensor* a, const SableTensor* b,
                     SableTensor* out);
  /* out = x * s. out may alias x. */
  SableStatus (*scale)(SableOpsContext* ctx, const SableTensor* x, float s, SableTensor* out);
  /* out = sigmoid(x). */
  SableStatus (*sigmoid)(SableOpsContext* ctx, const SableTensor* x, SableTensor* out);

  /* dst = src for same shapes; either may be a strided view (slicing fused projections). */
  SableStatus (*copy)(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst);
  /* dst = src converted to dst's dtype; same shape, contiguous. */
  SableStatus (*cast)(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst);
  /* out[L, H] = x[rows[L], :]; rows I32. Picks the rows that need logits before the LM head. */
  SableStatus (*gather_rows)(SableOpsContext* ctx, const SableTensor* x, const SableTensor* rows,
                             SableTensor* out);

  /* Causal attention of layer `layer` through the configured attention backend: appends the new
   * k/v [T,Hk,D] to the paged KV cache and computes out[T,Hq,D] over cached prefix + new tokens.
   * scale <= 0 means 1/sqrt(D). q/k/v may be strided views (e.g. columns of a fused projection). */
  SableStatus (*attention)(SableOpsContext* ctx, int32_t layer, const SableTensor* q,
                           const SableTensor* k, const SableTensor* v, float scale,
                           SableTensor* out);

  /* MoE routing: logits[T,E] (any float dtype) -> top-k expert ids[T,k] I32 and weights[T,k] F32.
   * Scores are softmax or sigmoid of the logits; renormalize divides the k weights by their sum.
   * `layer` feeds the host's expert-distribution recorder (no cost when it is off). */
  SableStatus (*moe_route)(SableOpsContext* ctx, int32_t layer, const SableTensor* logits,
                           int32_t top_k, int32_t scoring, int32_t renormalize,
                           SableTensor* weights, SableTensor* ids);

  /* Fused experts: out[T,H] = sum_j weights[t,j] * down_e(act(gate_e(x)) * up_e(x)), e = ids[t,j],
   * with w_gate_up[E, 2I, H] ([gate | up] rows) and w_down[E, H, I]. Tokens are grouped by expert
   * (a grouped GEMM on CUDA), never one launch per token. */
  SableStatus (*moe_experts)(SableOpsContext* ctx, const SableTensor* x,
                             const SableTensor* w_gate_up, const SableTensor* w_down,
                             const SableTensor* weights, const SableTensor* ids, int32_t act,
                             SableTensor* out);

  /* Tensor parallelism: sum x across ranks in place / concatenate along `dim`. No-ops on one rank. */
  SableStatus (*all_reduce)(SableOpsContext* ctx, SableTensor* x);
  SableStatus (*all_gather)(SableOpsContext* ctx, const SableTensor* x, int32_t dim,
                            SableTensor* out);

  /* out[T] I32 = argmax over the last dim of x[T, V]. */
  SableStatus (*argmax)(SableOpsContext* ctx, const SableTensor* x, SableTensor* out);

  /* The device stream of this context (cudaStream_t on CUDA, NULL on CPU), for plugin kernels. */
  void* (*stream)(SableOpsContext* ctx);
  /* end of ABI 1.0 - do not modify above */

  /* since 1.1; may be NULL in hosts of ABI 1.0 (check SABLE_HAS(ops, gemm_fused)).
   * A projection with the elementwise work around it, so that small decode batches run it as one
   * kernel (the same results as the unfused ops, up to the rounding of the intermediates, which
   * the fused form keeps in fp32). For x[M,K], w[N,K] and the fusion f (NULL = none):
   *   x' = f->norm_weight ? rms_norm(x, f->norm_weight, f->norm_eps, f->norm_offset) : x
   *   y  = x' · wᵀ (+ bias)                                               [M, N]
   *   rope on y[:, :f->rope_cols] seen as heads of f->rope_head_dim          (rope_cols > 0)
   *   y  = act(y[:, :N/2]) * y[:, N/2:]                                   [M, N/2] (gated)
   *   out = y, or out += y when f->accumulate (out read first: a residual stream)
   * out is [M, N], or [M, N/2] when gated; it must not overlap x. */
  SableStatus (*gemm_fused)(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                            const SableTensor* bias, const SableGemmFusion* fusion,
                            SableTensor* out);
  /* end of ABI 1.1 - do not modify above */

  /* since 1.2; may be NULL in older hosts (check SABLE_HAS(ops, lora)).
   * The LoRA delta of projection `module` (SableLoraModule) of layer `layer`, added after the base
   * projection wrote `out`: for every row t whose sequence uses an adapter s that targets it,
   *   out[t, :] += (x[t, :] · A_sᵀ) · B_sᵀ        A_s [r_s, K], B_s [N, r_s] (scaling folded in)
   * computed per segment of consecutive rows that share an adapter (shrink, then expand). Rows of
   * the base model and modules no adapter of the batch targets are left as they are. The host
   * holds the adapters and the batch's row segments; the plugin only names the projection.
   * x [T, K]; out [T, N] may be a strided column view (one part of a fused q|k|v or gate|up
   * output). Call it between the projection and anything that reads its output (rope, act_mul). */
  SableStatus (*lora)(SableOpsContext* ctx, int32_t layer, int32_t module, const SableTensor* x,
                      SableTensor* out);
  /* since 1.2; may be NULL in older hosts (check SABLE_HAS(ops, attention_bidirectional)).
   * Encoder attention without a KV cache: out[T,Hq,D] = softmax(q·kᵀ·scale)·v where token t
   * attends to every token of its own sequence, before and after it. Sequences are the runs of
   * consecutive positions 0, 1, 2, ... in positions[T] I32 (each sequence of an encoder forward
   * starts at position 0). q [T,Hq,D], k/v [T,Hk,D] (possibly strided, GQA allowed); scale <= 0
   * means 1/sqrt(D). */
  SableStatus (*attention_bidirectional)(SableOpsContext* ctx, const SableTensor* q,
                                         const SableTensor* k, const SableTensor* v,
                                         const SableTensor* positions, float scale,
                                         SableTensor* out);
  /* end of ABI 1.2 - do not modify above */

  /* since 1.3; may be NULL in older hosts (check SABLE_HAS(ops, upload)).
   * Copies numel(dst) * dtype size bytes of host memory `src` into the contiguous device tensor
   * `dst`, ordered on the context's stream; `src` may be reused once the call returns. For index
   * and table tensors a plugin computes on the host (vision window orders, 2-D rotary tables).
   * Not for captured forwards (decode): it reads host memory at call time. */
  SableStatus (*upload)(SableOpsContext* ctx, const void* src, SableTensor* dst);
  /* end of ABI 1.3 - do not modify above */

  /* since 1.4; may be NULL in older hosts (check SABLE_HAS(ops, embedding_shard)).
   * One rank's lookup in a vocabulary-parallel embedding: table[R, H] holds the rows of token ids
   * [first_id, first_id + R), and
   *   out[t, :] = table[ids[t] - first_id, :]   when first_id <= ids[t] < first_id + R
   *   out[t, :] = 0                              otherwise (a row another rank holds).
   * all_reduce over the ranks then gives every rank the full embedding (exactly: one rank adds the
   * row, the others zeros). ids [T] I32; out [T, H] contiguous, F32 or the table's dtype. */
  SableStatus (*embedding_shard)(SableOpsContext* ctx, const SableTensor* table,
                                 const SableTensor* ids, int64_t first_id, SableTensor* out);
  /* end of ABI 1.4 - do not modify above */

  /* since 1.5; may be NULL in older hosts (check SABLE_HAS(ops, lora_stacked)).
   * `lora` for num_modules (1..3) consecutive projections first_module, first_module + 1, ... of
   * layer `layer` that read the same x: q|k|v (SABLE_LORA_Q, 3) or gate|up (SABLE_LORA_GATE, 2).
   * outs[i] [T, N_i] is the output (view) of module first_module + i, e.g. its column view of a
   * fused q|k|v output. The same result as one `lora` call per module; a host can run all the
   * modules' shrinks in one launch and all their expands in another. */
  SableStatus (*lora_stacked)(SableOpsContext* ctx, int32_t layer, int32_t first_module,
                              int32_t num_modules, const SableTensor* x, SableTensor* outs);
  /* end of ABI 1.5 - do not modify above */

  /* since 1.6; NULL in older hosts and on devices whose host offers no CPU pool (CUDA): check
   * SABLE_HAS(ops, parallel_for) and the pointer, and run the indices in a loop otherwise.
   * Calls fn(user, i) once for every i in [0, n) on the host's CPU thread pool - the calling
   * thread and up to --cpu-threads - 1 workers claim the indices (in contiguous runs when n is in
   * the tens of thousands), in no fixed order - and returns when every call has returned. For a
   * plugin's own host loops (the CPU attention backend's heads): they share the threads the CPU ops
   * use instead of opening a team of their own, which would oversubscribe the cores and cost
   * system calls on every layer. It runs now, not on the context's stream. fn must not throw or
   * fail (keep a failure in `user`) and must not wait for another index; a parallel_for called
   * from inside fn runs its indices inline. n == 0 does nothing; n < 0 or fn == NULL give
   * SABLE_ERR_INVALID_ARGUMENT. Worth calling when the work is tens of microseconds or more. */
  SableStatus (*parallel_for)(SableOpsContext* ctx, int64_t n, SableParallelFn fn, void* user);
  /* end of ABI 1.6 - do not modify above */
} SableOps;

/* since 1.1: what gemm_fused fuses (see there). Zero-initialised, it fuses nothing. */
struct SableGemmFusion {
  uint32_t struct_size;
  int32_t gated; /* nonzero: the gated-activation epilogue y = act(gate) * up */
  int32_t act;   /* its SableActivation */
  float norm_eps;
  const SableTensor* norm_weight; /* [K]: RMS-normalise x first; NULL: x as it is */
  float norm_offset;              /* 0 for Llama, 1 for Gemma's (1 + w) */
  /* Rotary embedding of the first rope_cols output columns (0: none), as `rope` does for q/k
   * heads of rope_head_dim whose first rope_dim dims rotate: positions [M] I32, cos_sin F32. */
  int32_t rope_cols;
  int32_t rope_head_dim;
  int32_t rope_dim;
  int32_t rope_style; /* SableRopeStyle */
  int32_t accumulate; /* nonzero: out += result */
  const SableTensor* positions;
  const SableTensor* cos_sin;
  /* end of ABI 1.1 - do not modify above */
};

#endif /* SABLE_OPS_H_ */
