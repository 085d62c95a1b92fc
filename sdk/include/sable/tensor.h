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
  int32_t reserved;
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
