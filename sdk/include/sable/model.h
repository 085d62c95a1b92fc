/* Model-architecture plugins: read the HF config, declare KV geometry, load weights, run forward.
 *
 * Lifecycle: create (config only) -> get_info -> load_weights -> forward* -> destroy.
 * forward runs a mixed batch (prefill chunks and decode steps, in sequence order); attention goes
 * through ops->attention, which the host has planned for this batch before the call. A model object
 * is used by one thread at a time.
 */
#ifndef SABLE_MODEL_H_
#define SABLE_MODEL_H_

#include "sable/host.h"

typedef struct SableModel SableModel; /* opaque, owned by the plugin */

typedef enum SableModelFlags {
  SABLE_MODEL_GENERIC = 1u << 0 /* claims any causal LM (impl=auto falls back to it) */
} SableModelFlags;

typedef enum SableModelOutputKind {
  SABLE_MODEL_OUTPUT_LOGITS = 0, /* causal LM: logits [L, vocab] */
  SABLE_MODEL_OUTPUT_SCORE = 1,  /* sequence classification: scores [L, num_labels] */
  SABLE_MODEL_OUTPUT_HIDDEN = 2  /* since 1.2: an encoder without a head: only `hidden` is filled */
} SableModelOutputKind;

/* since 1.2: the token of a sequence whose row a SCORE model scores. */
typedef enum SableScoreToken {
  SABLE_SCORE_LAST_TOKEN = 0, /* decoder reward models: the last token */
  SABLE_SCORE_FIRST_TOKEN = 1 /* BERT-family classifiers: the [CLS] / <s> token */
} SableScoreToken;

typedef struct SableModelInfo {
  uint32_t struct_size;
  int32_t num_layers;     /* layers with a KV cache */
  int32_t num_q_heads;    /* per tensor-parallel rank */
  int32_t num_kv_heads;   /* per tensor-parallel rank */
  int32_t head_dim;
  int32_t hidden_size;
  int32_t vocab_size;     /* width of the logits row */
  int32_t max_position;   /* context length the model supports */
  int32_t sliding_window; /* 0 = none */
  int32_t output_kind;    /* SableModelOutputKind */
  /* end of ABI 1.0 - do not modify above */
  /* since 1.2: bit (1 << SableLoraModule) set for each projection whose output the plugin passes
   * through ops->lora. 0 (or a 1.0/1.1 plugin): LoRA adapters cannot be served on this model. */
  uint32_t lora_modules;

  /* since 1.2 (zero in older plugins, which is the 1.0 meaning). */
  int32_t num_labels;    /* SCORE: width of the score row (the `logits` tensor); vocab_size stays
                            the token vocabulary that ids are checked against */
  int32_t score_token;   /* SCORE: SableScoreToken, the row the host asks for per sequence */
  int32_t bidirectional; /* nonzero: an encoder. Attention is bidirectional within a sequence
                            (ops attention_bidirectional), nothing is cached (num_layers 0 asks
                            for no KV pool), and every sequence runs whole in one forward from
                            position 0 */
  /* end of ABI 1.2 - do not modify above */
  /* since 1.3: nonzero when encode_images works for this model (a vision-language model); the
   * host then reads the vision settings (image_token_id, vision_config) from config.json. */
  int32_t image_input;
  /* end of ABI 1.3 - do not modify above */
} SableModelInfo;

typedef struct SableForwardBatch {
  uint32_t struct_size;
  int32_t num_tokens;     /* T: all new tokens of all sequences, in sequence order */
  int32_t num_seqs;
  int32_t num_outputs;    /* L: rows that need logits */
  int32_t is_decode_only; /* every sequence contributes exactly one token */
  int32_t reserved;
  SableTensor token_ids;   /* [T] I32, on the device */
  SableTensor positions;   /* [T] I32 position of each token in its sequence, on the device */
  SableTensor output_rows; /* [L] I32 indices into [0, T) whose logits are wanted, on the device */
  /* end of ABI 1.0 - do not modify above */
  /* since 1.2: nonzero when some row uses a LoRA adapter, so the plugin must call ops->lora after
   * each projection it declared (SableModelInfo.lora_modules) before fusing anything past it. */
  int32_t has_lora;
  /* since 1.2: [T] I32 segment of each token (BERT token types: 0 for the first text of a pair, 1
   * for the second), on the device; data NULL means every token is segment 0. */
  SableTensor token_type_ids;
  /* end of ABI 1.2 - do not modify above */
  /* since 1.3 (vision-language models; zero / NULL data in text-only batches):
   * mrope_positions [3, T] I32 on the device: the (temporal, height, width) rotary positions of
   * each token (Qwen2-VL's M-RoPE). Text tokens carry their position (plus the sequence's offset
   * after its images) in all three rows. data NULL: every row equals `positions`. */
  SableTensor mrope_positions;
  /* embeds [E, H] compute dtype on the device: rows that replace the token embeddings of image
   * placeholder tokens. embed_spans (host memory, [num_embed_spans, 3] I32): for each span, the
   * first token row in [0, T), the row count, and the first row of `embeds` it takes. */
  SableTensor embeds;
  int32_t num_embed_spans;
  const int32_t* embed_spans;
  /* end of ABI 1.3 - do not modify above */
} SableForwardBatch;

/* since 1.3: preprocessed images for encode_images. */
typedef struct SableImageBatch {
  uint32_t struct_size;
  int32_t num_images;
  const int32_t* grid_thw;  /* host memory [num_images, 3]: patches in time, height, width */
  SableTensor pixel_values; /* [sum t*h*w, patch_dim] F32 on the device, image after image, each
                               row (channel, time, patch row, patch column) as the HF processor */
} SableImageBatch;

typedef struct SableForwardOutput {
  uint32_t struct_size;
  SableTensor logits; /* [L, vocab] F32, allocated by the host; the model fills it */
  SableTensor hidden; /* [L, hidden] compute dtype final-norm output; data NULL when not wanted */
  /* end of ABI 1.0 - do not modify above */
} SableForwardOutput;

typedef struct SableModelApi {
  uint32_t struct_size;
  uint32_t flags;                          /* SableModelFlags */
  uint32_t num_architectures;
  const char* const* architectures;        /* HF `architectures` strings served natively */

  /* Reads and validates the config through `host`; no weights yet. An unsupported config value is
   * an error naming the field and value. `host` and `h` outlive the model. */
  SableStatus (*create)(const SableHostApi* host, SableHostHandle* h, SableModel** out);
  void (*destroy)(SableModel* model); /* accepts NULL */
  SableStatus (*get_info)(SableModel* model, SableModelInfo* out);
  /* Fetches every tensor through host->weight_get. */
  SableStatus (*load_weights)(SableModel* model);
  SableStatus (*forward)(SableModel* model, SableOpsContext* ctx, const SableForwardBatch* batch,
                         SableForwardOutput* out);
  /* end of ABI 1.0 - do not modify above */

  /* since 1.3; may be NULL (check SABLE_HAS, and SableModelInfo.image_input). Runs the vision
   * tower over the preprocessed images of `images` and writes their merged embeddings, the rows
   * that replace the image placeholder tokens, image after image, into out [E, H] (compute dtype,
   * allocated by the host; E = sum of t*h*w / merge^2 over the images). */
  SableStatus (*encode_images)(SableModel* model, SableOpsContext* ctx,
                               const SableImageBatch* images, SableTensor* out);
  /* end of ABI 1.3 - do not modify above */
} SableModelApi;

#endif /* SABLE_MODEL_H_ */
