// ModelHost: the C trampolines of SableHostApi and the weight / memory / rope functions behind
// them. Config lookups live in model_host_config.cpp.
#include "core/runner/model_host.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "core/hf_config/hf_config.h"
#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/qrepack.h"
#include "core/ops/weight_ranges.h"
#include "core/util/log.h"

namespace sable::runner {

void fill_config_api(SableHostApi& api);  // model_host_config.cpp

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

ModelHost* self(SableHostHandle* h) {
  return ModelHost::from(h);
}

void c_log(SableHostHandle* h, int32_t level, const char* message) {
  self(h)->log(level, message);
}
void c_set_error(SableHostHandle* h, const char* message) {
  self(h)->set_error(message);
}
int32_t c_weight_count(SableHostHandle* h) {
  return static_cast<int32_t>(self(h)->weights().names().size());
}
const char* c_weight_name(SableHostHandle* h, int32_t index) {
  const auto& names = self(h)->weights().names();
  if (index < 0 || static_cast<size_t>(index) >= names.size()) return nullptr;
  return names[static_cast<size_t>(index)].c_str();
}
int32_t c_weight_has(SableHostHandle* h, const char* name) {
  return name != nullptr && self(h)->weights().has(name) ? 1 : 0;
}
SableStatus c_weight_get(SableHostHandle* h, const char* name, int32_t ndim,
                         const int64_t* expected_shape, int32_t dtype, int32_t slice_dim,
                         int64_t slice_start, int64_t slice_len, SableTensor* out) {
  return self(h)->weight_get(name, ndim, expected_shape, dtype, slice_dim, slice_start, slice_len,
                             out);
}
SableStatus c_weight_get_into(SableHostHandle* h, const char* name, int32_t ndim,
                              const int64_t* expected_shape, int32_t dtype, int32_t slice_dim,
                              int64_t slice_start, int64_t slice_len, SableTensor* dst) {
  if (dst == nullptr) {
    self(h)->set_error("weight_get_into: NULL destination");
    return SABLE_ERR_INVALID_ARGUMENT;
  }
  SableTensor ignored;
  return self(h)->weight_get(name, ndim, expected_shape, dtype, slice_dim, slice_start, slice_len,
                             &ignored, dst);
}
SableStatus c_weight_get_stacked(SableHostHandle* h, int32_t count, const char* const* names,
                                 const int64_t* rows, int64_t cols, SableTensor* out) {
  return self(h)->weight_get_stacked(count, names, rows, cols, out);
}
void c_weight_ignore(SableHostHandle* h, const char* name) {
  self(h)->weight_ignore(name);
}
SableStatus c_alloc_persistent(SableHostHandle* h, int32_t dtype, int32_t ndim,
                               const int64_t* shape, SableTensor* out) {
  return self(h)->alloc_persistent(dtype, ndim, shape, out);
}
SableStatus c_rope_cache(SableHostHandle* h, int32_t rot_dim, SableTensor* out, float* mscale) {
  return self(h)->rope_cache(rot_dim, out, mscale);
}

}  // namespace

ModelHost::ModelHost(const hf::HfConfig& config, WeightSource& weights, DeviceMemory& memory,
                     const SableOps* ops, ModelHostOptions options)
    : config_(config), weights_(weights), memory_(memory), options_(std::move(options)) {
  api_.struct_size = sizeof(SableHostApi);
  api_.abi_major = SABLE_ABI_MAJOR;
  api_.abi_minor = SABLE_ABI_MINOR;
  api_.log = &c_log;
  api_.set_error = &c_set_error;
  fill_config_api(api_);
  api_.weight_count = &c_weight_count;
  api_.weight_name = &c_weight_name;
  api_.weight_has = &c_weight_has;
  api_.weight_get = &c_weight_get;
  api_.weight_get_into = &c_weight_get_into;
  api_.weight_ignore = &c_weight_ignore;
  api_.alloc_persistent = &c_alloc_persistent;
  api_.rope_cache = &c_rope_cache;
  api_.ops = ops;
  api_.device_type = memory.device_type();
  api_.compute_dtype = options_.compute_dtype;
  api_.tp_rank = options_.tp_rank;
  api_.tp_size = options_.tp_size;
  api_.comm = options_.comm_api;
  api_.comm_handle = options_.comm;
  api_.weight_get_stacked = &c_weight_get_stacked;
  if (options_.packed_weights && !weights_.fabricates()) {
    for (const std::string& n : weights_.names()) packing_ = packing_ || weights_.packed_dtype(n) >= 0;
  }
  if (packing_) api_.weight_get_into = nullptr;  // fused fp32 copies would undo the packing
}

void ModelHost::log(int32_t level, const char* message) const {
  const auto lvl = static_cast<log::Level>(std::clamp(level, 0, 4));
  if (log::enabled(lvl))
    log::write(lvl, fmt::format("[{}] {}", options_.plugin_name, message ? message : ""));
}

void ModelHost::set_error(const char* message) {
  // A plugin that sees a host call fail usually reports a short "<call> failed" on top of the
  // detail the host already stored; keep both, outermost first.
  std::lock_guard<std::mutex> lock(error_mutex_);
  std::string m = message ? message : "";
  last_error_ = last_error_.empty() ? std::move(m) : m + ": " + last_error_;
}

std::string ModelHost::take_error() {
  std::lock_guard<std::mutex> lock(error_mutex_);
  std::string e = std::move(last_error_);
  last_error_.clear();
  return e;
}

void ModelHost::check(SableStatus status, const std::string& what) {
  if (status == SABLE_OK) return;
  std::string detail = take_error();
  if (detail.empty()) detail = fmt::format("status {}", status);
  throw std::runtime_error(fmt::format("{}: {}", what, detail));
}

SableTensor ModelHost::allocate(int32_t dtype, const std::vector<int64_t>& shape) {
  const size_t esize = sable_dtype_size(dtype);
  if (esize == 0) throw std::invalid_argument(fmt::format("unsupported dtype {}", dtype));
  if (shape.size() > SABLE_MAX_DIMS)
    throw std::invalid_argument(fmt::format("rank {} exceeds {}", shape.size(), SABLE_MAX_DIMS));
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = dtype;
  t.device_type = memory_.device_type();
  t.device_index = memory_.device_index();
  t.ndim = static_cast<int32_t>(shape.size());
  int64_t n = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (shape[static_cast<size_t>(i)] < 0)
      throw std::invalid_argument("negative dimension in " + shape_text(shape));
    t.shape[i] = shape[static_cast<size_t>(i)];
    t.strides[i] = n;
    n *= t.shape[i];
  }
  t.data = memory_.allocate(static_cast<size_t>(n) * esize);
  bytes_held_ += static_cast<int64_t>(static_cast<size_t>(n) * esize);
  return t;
}

SableStatus ModelHost::weight_get(const char* name, int32_t ndim, const int64_t* expected_shape,
                                  int32_t dtype, int32_t slice_dim, int64_t slice_start,
                                  int64_t slice_len, SableTensor* out, const SableTensor* into) {
  try {
    if (name == nullptr || out == nullptr || ndim < 0 || ndim > SABLE_MAX_DIMS ||
        (ndim > 0 && expected_shape == nullptr)) {
      set_error("weight_get: bad arguments");
      return SABLE_ERR_INVALID_ARGUMENT;
    }
    const std::vector<int64_t> expected(expected_shape, expected_shape + ndim);
    if (const SableStatus s = check_stored(name, expected); s != SABLE_OK) return s;
    std::vector<int64_t> shape = expected;
    if (slice_dim >= 0) {
      if (slice_dim >= ndim || slice_start < 0 || slice_len < 0 ||
          slice_start + slice_len > expected[static_cast<size_t>(slice_dim)]) {
        set_error(fmt::format("tensor '{}': slice [{}, {}) of dim {} is outside shape {}", name,
                              slice_start, slice_start + slice_len, slice_dim, shape_text(expected))
                      .c_str());
        return SABLE_ERR_INVALID_ARGUMENT;
      }
      shape[static_cast<size_t>(slice_dim)] = slice_len;
    }
    const int32_t dst_dtype = dtype == SABLE_DTYPE_AUTO ? options_.compute_dtype : dtype;
    if (packing_ && into == nullptr && dtype == SABLE_DTYPE_AUTO && slice_dim < 0) {
      const SableTensor p = load_packed(name, shape);
      if (p.data != nullptr) {
        used_.insert(name);
        *out = p;
        return SABLE_OK;
      }
    }
    SableTensor t;
    if (into != nullptr) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      if (into->data == nullptr || into->dtype != dst_dtype || sable_tensor_numel(into) != n ||
          !sable_tensor_is_contiguous(into) || into->device_type != memory_.device_type()) {
        set_error(fmt::format("weight_get_into '{}': destination must be contiguous, on the "
                              "model's device, with {} elements of the requested dtype",
                              name, n)
                      .c_str());
        return SABLE_ERR_INVALID_ARGUMENT;
      }
      t = *into;
    } else {
      t = allocate(dst_dtype, shape);
    }
    if (memory_.host_accessible()) {
      weights_.read(name, dst_dtype, slice_dim, slice_start, slice_len, t.data);
    } else {
      std::vector<std::byte> staging(static_cast<size_t>(sable_tensor_numel(&t)) *
                                     sable_dtype_size(dst_dtype));
      weights_.read(name, dst_dtype, slice_dim, slice_start, slice_len, staging.data());
      memory_.upload(t.data, staging.data(), staging.size());
    }
    // Checkpoint bytes: no kernel writes them in a forward (the decode GEMV's early loads).
    ops::register_weight_range(
        t.data, static_cast<size_t>(sable_tensor_numel(&t)) * sable_dtype_size(dst_dtype));
    used_.insert(name);
    *out = t;
    return SABLE_OK;
  } catch (const std::bad_alloc&) {
    set_error(fmt::format("out of memory loading tensor '{}'", name ? name : "").c_str());
    return SABLE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(fmt::format("loading tensor '{}': {}", name ? name : "", e.what()).c_str());
    return SABLE_ERR_IO;
  }
}

SableStatus ModelHost::check_stored(const char* name, const std::vector<int64_t>& expected) {
  if (!weights_.fabricates() && !weights_.has(name)) {
    set_error(fmt::format("{} has no tensor '{}'", weights_.describe(), name).c_str());
    return SABLE_ERR_NOT_FOUND;
  }
  const std::vector<int64_t> stored = weights_.shape(name, expected);
  if (stored != expected) {
    set_error(fmt::format("tensor '{}' has shape {} in the {}, the model expects {}", name,
                          shape_text(stored), weights_.describe(), shape_text(expected))
                  .c_str());
    return SABLE_ERR_INVALID_ARGUMENT;
  }
  return SABLE_OK;
}

namespace {
// Bytes of one row of `cols` elements of a packed dtype; 0 when cols is not whole blocks.
size_t packed_row_bytes(int32_t dtype, int64_t cols) {
  const int64_t block = sable_dtype_block_elems(dtype);
  if (block > 0)
    return cols % block == 0 ? static_cast<size_t>(cols / block) * sable_dtype_block_bytes(dtype)
                             : 0;
  return static_cast<size_t>(cols) * sable_dtype_size(dtype);
}
}  // namespace

SableTensor ModelHost::packed_matrix(int32_t dtype, int64_t rows, int64_t cols) {
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = dtype;
  t.device_type = memory_.device_type();
  t.device_index = memory_.device_index();
  t.ndim = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  t.strides[0] = cols;
  t.strides[1] = 1;
  const size_t bytes = packed_row_bytes(dtype, cols) * static_cast<size_t>(rows);
  t.data = memory_.allocate(bytes);
  bytes_held_ += static_cast<int64_t>(bytes);
  return t;
}

void ModelHost::register_packed(const SableTensor& t) {
  // CPU matrices (the LM head too) may get the batch-1 kernels' interleaved copy at their first
  // decode (made lazily; the memory's destructor drops it).
  if (t.device_type == SABLE_DEVICE_CPU && memory_.host_accessible())
    ops::cpu::x16_register(t.dtype, t.data, t.shape[0], t.shape[1]);
}

SableTensor ModelHost::load_packed(const char* name, const std::vector<int64_t>& shape) {
  const int32_t dtype = weights_.packed_dtype(name);
  if (dtype < 0 || shape.size() != 2 || packed_row_bytes(dtype, shape[1]) == 0)
    return SableTensor{};
  SableTensor t = packed_matrix(dtype, shape[0], shape[1]);
  weights_.read_packed(name, t.data);
  // A [vocab, hidden] matrix is the LM head (or the embedding a tied head reuses): its GEMM keeps
  // fp32 activations, so int8 rounding does not decide near-tied next tokens.
  if (config_.get_int("vocab_size").value_or(-1) == shape[0]) t.reserved = ops::cpu::kPreciseActivations;
  register_packed(t);
  return t;
}

SableStatus ModelHost::weight_get_stacked(int32_t count, const char* const* names,
                                          const int64_t* rows, int64_t cols, SableTensor* out) {
  const char* current = nullptr;
  try {
    if (count <= 0 || names == nullptr || rows == nullptr || out == nullptr || cols < 0) {
      set_error("weight_get_stacked: bad arguments");
      return SABLE_ERR_INVALID_ARGUMENT;
    }
    int64_t total = 0;
    for (int32_t i = 0; i < count; ++i) {
      if (names[i] == nullptr || rows[i] < 0) {
        set_error("weight_get_stacked: bad arguments");
        return SABLE_ERR_INVALID_ARGUMENT;
      }
      std::vector<int64_t> shape{rows[i]};
      if (cols > 0) shape.push_back(cols);
      if (const SableStatus s = check_stored(names[i], shape); s != SABLE_OK) return s;
      total += rows[i];
    }
    // Only block-quantized matrices are stacked: their GEMM quantizes its activations first, once
    // per call, so q|k|v in one matrix quantize a layer's input once instead of three times. BF16
    // / F16 and converted matrices keep their separate GEMMs (and weight_get_into is there for
    // hosts that convert everything). Vectors (biases) come in the compute dtype, as weight_get
    // hands them out.
    if (!packing_) return SABLE_ERR_UNSUPPORTED;
    if (cols == 0) {
      const int32_t dt = options_.compute_dtype;
      SableTensor t = allocate(dt, {total});
      int64_t at = 0;
      for (int32_t i = 0; i < count; ++i) {
        current = names[i];
        weights_.read(
            names[i], dt, -1, 0, 0,
            static_cast<std::byte*>(t.data) + static_cast<size_t>(at) * sable_dtype_size(dt));
        at += rows[i];
      }
      ops::register_weight_range(t.data, static_cast<size_t>(total) * sable_dtype_size(dt));
      for (int32_t i = 0; i < count; ++i) used_.insert(names[i]);
      *out = t;
      return SABLE_OK;
    }
    const int32_t dtype = weights_.packed_dtype(names[0]);
    if (sable_dtype_block_elems(dtype) == 0 || packed_row_bytes(dtype, cols) == 0)
      return SABLE_ERR_UNSUPPORTED;
    for (int32_t i = 1; i < count; ++i)
      if (weights_.packed_dtype(names[i]) != dtype) return SABLE_ERR_UNSUPPORTED;
    SableTensor t = packed_matrix(dtype, total, cols);
    const size_t row = packed_row_bytes(dtype, cols);
    int64_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
      current = names[i];
      weights_.read_packed(names[i],
                           static_cast<std::byte*>(t.data) + static_cast<size_t>(at) * row);
      at += rows[i];
    }
    register_packed(t);
    for (int32_t i = 0; i < count; ++i) used_.insert(names[i]);
    *out = t;
    return SABLE_OK;
  } catch (const std::bad_alloc&) {
    set_error("weight_get_stacked: out of memory");
    return SABLE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(fmt::format("loading tensor '{}': {}", current ? current : "", e.what()).c_str());
    return SABLE_ERR_IO;
  }
}

void ModelHost::weight_ignore(const char* name) {
  if (name != nullptr) used_.insert(name);
}

SableStatus ModelHost::alloc_persistent(int32_t dtype, int32_t ndim, const int64_t* shape,
                                        SableTensor* out) {
  try {
    if (out == nullptr || ndim < 0 || ndim > SABLE_MAX_DIMS || (ndim > 0 && shape == nullptr)) {
      set_error("alloc_persistent: bad arguments");
      return SABLE_ERR_INVALID_ARGUMENT;
    }
    const int32_t dt = dtype == SABLE_DTYPE_AUTO ? options_.compute_dtype : dtype;
    *out = allocate(dt, std::vector<int64_t>(shape, shape + ndim));
    return SABLE_OK;
  } catch (const std::bad_alloc&) {
    set_error("alloc_persistent: out of memory");
    return SABLE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(fmt::format("alloc_persistent: {}", e.what()).c_str());
    return SABLE_ERR_INVALID_ARGUMENT;
  }
}

SableStatus ModelHost::rope_cache(int32_t rot_dim, SableTensor* out, float* mscale) {
  try {
    if (out == nullptr) {
      set_error("rope_cache: NULL output");
      return SABLE_ERR_INVALID_ARGUMENT;
    }
    // Rows for every position the model may see: the context length when the runner set one,
    // else the config's max_position_embeddings.
    const int64_t rows =
        options_.max_positions > 0 ? options_.max_positions : config_.max_position_embeddings();
    const hf::RopeCache cache = hf::build_rope_cache(config_.rope(), rot_dim, rows);
    SableTensor t = allocate(SABLE_DTYPE_F32, {cache.max_positions, cache.rot_dim});
    memory_.upload(t.data, cache.cos_sin.data(), cache.cos_sin.size() * sizeof(float));
    *out = t;
    // The cache already carries the factor (as transformers applies it to cos and sin).
    if (mscale != nullptr) *mscale = cache.attention_factor;
    return SABLE_OK;
  } catch (const std::bad_alloc&) {
    set_error("rope_cache: out of memory");
    return SABLE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(fmt::format("rope_cache: {}", e.what()).c_str());
    return SABLE_ERR_INVALID_ARGUMENT;
  }
}

std::vector<std::string> ModelHost::unused_weights() const {
  std::vector<std::string> unused;
  for (const std::string& n : weights_.names())
    if (used_.find(n) == used_.end()) unused.push_back(n);
  std::sort(unused.begin(), unused.end());
  return unused;
}

void ModelHost::check_all_weights_used() const {
  const auto unused = unused_weights();
  if (unused.empty()) return;
  const size_t shown = std::min<size_t>(unused.size(), 10);
  std::vector<std::string> head(unused.begin(), unused.begin() + static_cast<long>(shown));
  throw std::runtime_error(
      fmt::format("{} has {} unexpected tensor(s) that model plugin '{}' did not load: {}{}",
                  weights_.describe(), unused.size(), options_.plugin_name, fmt::join(head, ", "),
                  unused.size() > shown ? ", ..." : ""));
}

}  // namespace sable::runner
