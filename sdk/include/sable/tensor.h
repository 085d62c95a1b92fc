/* The tensor view that crosses the plugin boundary: a non-owning description of memory.
 *
 * Shapes are written [d0, d1, ...] outermost first; strides are in elements, not bytes. A view never
 * owns its data: whoever allocated it (host arena, weight source, plugin) frees it.
 */
#ifndef SABLE_TENSOR_H_
#define SABLE_TENSOR_H_

#include "sable/abi.h"

typedef enum SableDType {
  SABLE_DTYPE_F32 = 0,
  SABLE_DTYPE_F16 = 1,
  SABLE_DTYPE_BF16 = 2,
  SABLE_DTYPE_I32 = 3,
  SABLE_DTYPE_I64 = 4,
  SABLE_DTYPE_U8 = 5,
  SABLE_DTYPE_U32 = 6,
  /* Block-quantized weights in ggml's layouts (as GGUF stores them): each row of the last dim is
   * a run of blocks, sable_dtype_block_elems() elements in sable_dtype_block_bytes() bytes. The CPU
   * host hands them out from weight_get(AUTO) for matrices stored that way; they are opaque to a
   * plugin, which passes them whole to gemm / embedding / copy / cast (never narrow or reshape).
   * Shapes and strides still count elements. */
  SABLE_DTYPE_Q8_0 = 16,
  SABLE_DTYPE_Q4_0 = 17,
  SABLE_DTYPE_Q4_1 = 18,
  SABLE_DTYPE_Q4_K = 19,
  SABLE_DTYPE_Q5_K = 20,
  SABLE_DTYPE_Q6_K = 21,
  SABLE_DTYPE_AUTO = -1 /* in requests: "the host's compute dtype" */
} SableDType;

typedef enum SableDeviceType { SABLE_DEVICE_CPU = 0, SABLE_DEVICE_CUDA = 1 } SableDeviceType;

#define SABLE_MAX_DIMS 6

typedef struct SableTensor {
  uint32_t struct_size;
  int32_t dtype;        /* SableDType */
  int32_t device_type;  /* SableDeviceType */
  int32_t device_index; /* CUDA ordinal, 0 on CPU */
  int32_t ndim;         /* 0..SABLE_MAX_DIMS */
  int32_t reserved; /* 0 in tensors a plugin makes; the host may set hints in the weights it
                     * hands out (core/ops/cpu/qblocks.h), which plugins copy along untouched */
  int64_t shape[SABLE_MAX_DIMS];
  int64_t strides[SABLE_MAX_DIMS]; /* in elements */
  void* data;
  /* end of ABI 1.0 - do not modify above */
} SableTensor;

static inline size_t sable_dtype_size(int32_t dtype) {
  switch (dtype) {
    case SABLE_DTYPE_F32: case SABLE_DTYPE_I32: case SABLE_DTYPE_U32: return 4;
    case SABLE_DTYPE_F16: case SABLE_DTYPE_BF16: return 2;
    case SABLE_DTYPE_I64: return 8;
    case SABLE_DTYPE_U8: return 1;
    default: return 0;
  }
}

/* Elements per block of a block-quantized dtype; 0 for every other dtype. */
static inline int64_t sable_dtype_block_elems(int32_t dtype) {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: case SABLE_DTYPE_Q4_0: case SABLE_DTYPE_Q4_1: return 32;
    case SABLE_DTYPE_Q4_K: case SABLE_DTYPE_Q5_K: case SABLE_DTYPE_Q6_K: return 256;
    default: return 0;
  }
}

/* Bytes per block of a block-quantized dtype; 0 for every other dtype. */
static inline size_t sable_dtype_block_bytes(int32_t dtype) {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: return 34;
    case SABLE_DTYPE_Q4_0: return 18;
    case SABLE_DTYPE_Q4_1: return 20;
    case SABLE_DTYPE_Q4_K: return 144;
    case SABLE_DTYPE_Q5_K: return 176;
    case SABLE_DTYPE_Q6_K: return 210;
    default: return 0;
  }
}

static inline int64_t sable_tensor_numel(const SableTensor* t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

/* True when the elements are laid out densely in row-major order. */
static inline int sable_tensor_is_contiguous(const SableTensor* t) {
  int64_t expected = 1;
  for (int32_t i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->strides[i] != expected) return 0;
    expected *= t->shape[i];
  }
  return 1;
}

#endif /* SABLE_TENSOR_H_ */
