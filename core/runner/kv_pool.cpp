// KvPool: one K and one V tensor per layer, allocated from the model's DeviceMemory.
#include "core/runner/kv_pool.h"

#include <stdexcept>
#include <string>

namespace sable::runner {
namespace {

void require_positive(int64_t v, const char* field) {
  if (v <= 0)
    throw std::invalid_argument(std::string("KV pool: ") + field + " must be positive, got " +
                                std::to_string(v));
}

SableTensor make_layer_tensor(const KvGeometry& g, DeviceMemory& memory) {
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = g.dtype;
  t.device_type = memory.device_type();
  t.device_index = memory.device_index();
  t.ndim = 4;
  const int64_t shape[4] = {g.num_pages, g.page_size, g.num_kv_heads, g.head_dim};
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = stride;
    stride *= shape[i];
  }
  t.data = memory.allocate(static_cast<size_t>(stride) * sable_dtype_size(g.dtype));
  return t;
}

}  // namespace

KvPool::KvPool(const KvGeometry& geometry, DeviceMemory& memory) : geometry_(geometry) {
  require_positive(geometry.num_layers, "num_layers");
  require_positive(geometry.num_kv_heads, "num_kv_heads");
  require_positive(geometry.head_dim, "head_dim");
  require_positive(geometry.page_size, "page_size");
  require_positive(geometry.num_pages, "num_pages");
  if (sable_dtype_size(geometry.dtype) == 0)
    throw std::invalid_argument("KV pool: unsupported dtype " + std::to_string(geometry.dtype));
  layers_.reserve(static_cast<size_t>(geometry.num_layers));
  for (int32_t l = 0; l < geometry.num_layers; ++l) {
    SableKvLayer layer{};
    layer.k = make_layer_tensor(geometry, memory);
    layer.v = make_layer_tensor(geometry, memory);
    layers_.push_back(layer);
  }
}

int64_t KvPool::bytes_per_token() const {
  const KvGeometry& g = geometry_;
  return 2LL * g.num_layers * g.num_kv_heads * g.head_dim *
         static_cast<int64_t>(sable_dtype_size(g.dtype));
}

int64_t KvPool::bytes_for(const KvGeometry& g) {
  return 2LL * g.num_layers * g.num_pages * g.page_size * g.num_kv_heads * g.head_dim *
         static_cast<int64_t>(sable_dtype_size(g.dtype));
}

}  // namespace sable::runner
