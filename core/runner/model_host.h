// The host side of the plugin boundary for one model: the SableHostApi a model plugin receives.
//
// It answers config lookups from the model's config.json (dotted keys), serves weights from a
// WeightSource (shape checked, converted to the compute dtype or, on the CPU, kept packed as stored,
// placed in DeviceMemory), keeps
// track of which checkpoint tensors were loaded or ignored so that unexpected ones can be named
// after load_weights, builds rope caches, and stores the last error a plugin reported.
// Ownership: the ModelHost owns every tensor it hands out (weights, persistent allocations, rope
// caches); they live until it is destroyed, so it must outlive the plugin's model object.
// Thread-safety: log and set_error may be called from any thread; everything else runs on the
// thread that drives the model.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/runner/device_memory.h"
#include "core/runner/weight_source.h"
#include "sable/host.h"

namespace sable::hf {
class HfConfig;
}

namespace sable::runner {

struct ModelHostOptions {
  std::string plugin_name;  // prefixes log lines and error messages
  int32_t compute_dtype = SABLE_DTYPE_F32;
  int64_t max_positions = 0;  // rows of rope caches; 0: max_position_embeddings (or 4096)
  int32_t tp_rank = 0;
  int32_t tp_size = 1;
  // This rank's endpoint of the tensor-parallel group (SableHostApi.comm); null on one rank.
  const SableCommApi* comm_api = nullptr;
  SableComm* comm = nullptr;
  // CPU: hand matrices out as stored when the source keeps them packed (block-quantized, BF16,
  // F16) instead of converting them to the compute dtype; the CPU GEMM reads them packed. The
  // plugin then gets no weight_get_into (a fused copy would have to be fp32); it fuses q|k|v and
  // gate|up with weight_get_stacked where they share a block-quantized format, else keeps them
  // apart. Off: every tensor is converted (the dequantized-fp32 reference path).
  bool packed_weights = false;
};

class ModelHost {
 public:
  // config, weights and memory must outlive the host; ops is the device's ops table.
  ModelHost(const hf::HfConfig& config, WeightSource& weights, DeviceMemory& memory,
            const SableOps* ops, ModelHostOptions options);
  ModelHost(const ModelHost&) = delete;
  ModelHost& operator=(const ModelHost&) = delete;

  const SableHostApi* api() const { return &api_; }
  SableHostHandle* handle() { return reinterpret_cast<SableHostHandle*>(this); }
  static ModelHost* from(SableHostHandle* h) { return reinterpret_cast<ModelHost*>(h); }

  // Throws std::runtime_error "<what>: <the plugin's message>" when status != SABLE_OK.
  void check(SableStatus status, const std::string& what);
  // The messages set since the last take_error (empty if none), outermost first; clears them.
  // Call it before a call into the plugin so that stale details do not leak into a new error.
  std::string take_error();

  // Checkpoint tensors that nobody fetched or ignored (sorted). Meaningful after load_weights.
  std::vector<std::string> unused_weights() const;
  // Throws naming up to 10 unused tensors when there are any.
  void check_all_weights_used() const;

  const hf::HfConfig& config() const { return config_; }
  DeviceMemory& memory() { return memory_; }
  const ModelHostOptions& options() const { return options_; }

  // --- the SableHostApi functions, as members (the C trampolines call these).
  void log(int32_t level, const char* message) const;
  void set_error(const char* message);
  // With `into` set, the tensor is written there (weight_get_into) instead of a new allocation.
  SableStatus weight_get(const char* name, int32_t ndim, const int64_t* expected_shape,
                         int32_t dtype, int32_t slice_dim, int64_t slice_start, int64_t slice_len,
                         SableTensor* out, const SableTensor* into = nullptr);
  // Stacks whole tensors by rows (weight_get_stacked, ABI 1.7): block-quantized matrices of one
  // format while packing, and then vectors; SABLE_ERR_UNSUPPORTED (no error set) otherwise.
  SableStatus weight_get_stacked(int32_t count, const char* const* names, const int64_t* rows,
                                 int64_t cols, SableTensor* out);
  void weight_ignore(const char* name);
  SableStatus alloc_persistent(int32_t dtype, int32_t ndim, const int64_t* shape, SableTensor* out);
  SableStatus rope_cache(int32_t rot_dim, SableTensor* out, float* mscale);

  WeightSource& weights() { return weights_; }
  // Bytes of everything handed out so far (weights, persistent allocations, rope caches): after
  // load_weights, the weights this rank holds.
  int64_t bytes_held() const { return bytes_held_; }

 private:
  SableTensor allocate(int32_t dtype, const std::vector<int64_t>& shape);
  // Matrix `name` in its packed dtype (the source's packed_dtype), or nullopt-like empty tensor
  // (data == nullptr) when it has none.
  SableTensor load_packed(const char* name, const std::vector<int64_t>& shape);
  // SABLE_OK when the source holds `name` with shape `expected`; else the error, set.
  SableStatus check_stored(const char* name, const std::vector<int64_t>& expected);
  // An uninitialised [rows, cols] matrix of a packed dtype (counted in bytes_held).
  SableTensor packed_matrix(int32_t dtype, int64_t rows, int64_t cols);
  // Registers a loaded packed CPU matrix for the batch-1 kernels' x16 copy (qrepack.h).
  void register_packed(const SableTensor& t);

  const hf::HfConfig& config_;
  WeightSource& weights_;
  DeviceMemory& memory_;
  ModelHostOptions options_;
  SableHostApi api_{};
  bool packing_ = false;  // packed_weights and the source holds packed matrices
  int64_t bytes_held_ = 0;
  std::set<std::string, std::less<>> used_;
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

}  // namespace sable::runner
