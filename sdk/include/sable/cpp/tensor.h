// Header-only helpers to build and reshape SableTensor views in C++ plugin code.
#pragma once

#include <cstring>
#include <initializer_list>
#include <span>

#include "sable/cpp/error.h"
#include "sable/tensor.h"

namespace sable::cpp {

// A contiguous view of `data` with the given shape.
inline SableTensor make_tensor(void* data, int32_t dtype, std::span<const int64_t> shape,
                               int32_t device_type = SABLE_DEVICE_CPU, int32_t device_index = 0) {
  if (shape.size() > SABLE_MAX_DIMS) fail(SABLE_ERR_INVALID_ARGUMENT, "tensor rank too large");
  SableTensor t;
  std::memset(&t, 0, sizeof(t));
  t.struct_size = sizeof(SableTensor);
  t.dtype = dtype;
  t.device_type = device_type;
  t.device_index = device_index;
  t.ndim = static_cast<int32_t>(shape.size());
  int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = stride;
    stride *= shape[i];
  }
  t.data = data;
  return t;
}

inline SableTensor make_tensor(void* data, int32_t dtype, std::initializer_list<int64_t> shape,
                               int32_t device_type = SABLE_DEVICE_CPU, int32_t device_index = 0) {
  return make_tensor(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()),
                     device_type, device_index);
}

// Same memory, new shape; the tensor must be contiguous.
inline SableTensor reshape(const SableTensor& t, std::initializer_list<int64_t> shape) {
  if (!sable_tensor_is_contiguous(&t)) fail(SABLE_ERR_INVALID_ARGUMENT, "reshape of a strided view");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n != sable_tensor_numel(&t)) fail(SABLE_ERR_INVALID_ARGUMENT, "reshape changes element count");
  return make_tensor(t.data, t.dtype, shape, t.device_type, t.device_index);
}

// View of [start, start + len) along `dim` (strided when dim is not the outermost).
inline SableTensor narrow(const SableTensor& t, int32_t dim, int64_t start, int64_t len) {
  if (dim < 0 || dim >= t.ndim || start < 0 || start + len > t.shape[dim])
    fail(SABLE_ERR_INVALID_ARGUMENT, "narrow out of range");
  if (sable_dtype_size(t.dtype) == 0)
    fail(SABLE_ERR_INVALID_ARGUMENT, "narrow of a block-quantized tensor (pass it whole to ops)");
  SableTensor v = t;
  v.shape[dim] = len;
  v.data = static_cast<char*>(t.data) +
           start * t.strides[dim] * static_cast<int64_t>(sable_dtype_size(t.dtype));
  return v;
}

// Splits the last dim into [a, b] without copying: [.., a*b] -> [.., a, b] (strides preserved).
inline SableTensor split_last(const SableTensor& t, int64_t a, int64_t b) {
  const int32_t last = t.ndim - 1;
  if (t.shape[last] != a * b || t.strides[last] != 1 || t.ndim >= SABLE_MAX_DIMS)
    fail(SABLE_ERR_INVALID_ARGUMENT, "split_last: bad shape");
  SableTensor v = t;
  v.ndim = t.ndim + 1;
  v.shape[last] = a;
  v.shape[last + 1] = b;
  v.strides[last] = b;
  v.strides[last + 1] = 1;
  return v;
}

}  // namespace sable::cpp
