/* The host interface a plugin receives at creation: logging, error details, the model's Hugging Face
 * configuration, the weight source, persistent allocation, and the ops table.
 *
 * Every function takes the SableHostHandle given to the plugin's create call. The handle outlives
 * the plugin object it was given for. Functions may be called from the thread that called into the
 * plugin; log and set_error are thread-safe.
 */
#ifndef SABLE_HOST_H_
#define SABLE_HOST_H_

#include "sable/comm.h"
#include "sable/ops.h"

typedef struct SableHostHandle SableHostHandle; /* opaque, owned by the host */

typedef enum SableLogLevel {
  SABLE_LOG_TRACE = 0,
  SABLE_LOG_DEBUG = 1,
  SABLE_LOG_INFO = 2,
  SABLE_LOG_WARN = 3,
  SABLE_LOG_ERROR = 4
} SableLogLevel;

typedef struct SableHostApi {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  void (*log)(SableHostHandle* h, int32_t level, const char* message);
  /* Details for the failure the plugin is about to return; the host prefixes the plugin name. */
  void (*set_error)(SableHostHandle* h, const char* message);

  /* --- The model's config.json, addressed by dotted keys ("rope_scaling.factor"). Absent keys and
   * JSON null give SABLE_ERR_NOT_FOUND; a value of another type gives SABLE_ERR_INVALID_ARGUMENT.
   * NULL for non-model plugins. */
  int32_t (*config_has)(SableHostHandle* h, const char* key);
  SableStatus (*config_int)(SableHostHandle* h, const char* key, int64_t* out);
  SableStatus (*config_float)(SableHostHandle* h, const char* key, double* out);
  SableStatus (*config_bool)(SableHostHandle* h, const char* key, int32_t* out);
  /* Copies a NUL-terminated string into buf; *len gets the full length (truncation when >= cap). */
  SableStatus (*config_string)(SableHostHandle* h, const char* key, char* buf, size_t cap,
                               size_t* len);
  /* Integer list (e.g. mlp_only_layers); *count gets the full count. */
  SableStatus (*config_int_list)(SableHostHandle* h, const char* key, int64_t* out, size_t cap,
                                 size_t* count);

  /* --- Weight source: the checkpoint's tensors by name. NULL for non-model plugins. */
  int32_t (*weight_count)(SableHostHandle* h);
  const char* (*weight_name)(SableHostHandle* h, int32_t index); /* valid while the host lives */
  int32_t (*weight_has)(SableHostHandle* h, const char* name);
  /* Loads tensor `name`, checks that its stored shape equals expected_shape[ndim] (an error naming
   * the tensor otherwise), converts it to `dtype` (SABLE_DTYPE_AUTO: the compute dtype) and places
   * it on the model's device. With slice_dim >= 0 only [slice_start, slice_start + slice_len) along
   * that dim is loaded (tensor parallelism). The memory is the host's and lives as long as the model.
   * Every checkpoint tensor must be loaded by someone: after load_weights the host reports any
   * tensor nobody asked for as unexpected. */
  SableStatus (*weight_get)(SableHostHandle* h, const char* name, int32_t ndim,
                            const int64_t* expected_shape, int32_t dtype, int32_t slice_dim,
                            int64_t slice_start, int64_t slice_len, SableTensor* out);
  /* Marks a checkpoint tensor as deliberately unused (e.g. rotary_emb.inv_freq). */
  void (*weight_ignore)(SableHostHandle* h, const char* name);

  /* Zeroed device memory that lives as long as the model (fused weights, caches). */
  SableStatus (*alloc_persistent)(SableHostHandle* h, int32_t dtype, int32_t ndim,
                                  const int64_t* shape, SableTensor* out);
  /* Builds the rotary cos/sin cache [max_positions, rot_dim] F32 for this model from its config's
   * rope_theta and rope scaling (default, linear, dynamic, llama3, yarn; classic keys or
   * rope_parameters). Returns the attention scaling factor some schemes (yarn) imply in *mscale. */
  SableStatus (*rope_cache)(SableHostHandle* h, int32_t rot_dim, SableTensor* out, float* mscale);

  const SableOps* ops;   /* the device's ops table */
  int32_t device_type;   /* SableDeviceType the model runs on */
  int32_t compute_dtype; /* SableDType of activations and weights on that device */
  int32_t tp_rank;       /* tensor-parallel rank of this model instance */
  int32_t tp_size;
  /* Like weight_get, but writes into `dst` instead of allocating: dst is contiguous, on the model's
   * device, with the (sliced) tensor's element count and `dtype` (AUTO: the compute dtype). Plugins
   * fuse tensors with it (q|k|v rows into one persistent weight) without keeping a second copy.
   * May be NULL in hosts older than this field (check with SABLE_HAS). */
  SableStatus (*weight_get_into)(SableHostHandle* h, const char* name, int32_t ndim,
                                 const int64_t* expected_shape, int32_t dtype, int32_t slice_dim,
                                 int64_t slice_start, int64_t slice_len, SableTensor* dst);
  /* end of ABI 1.0 - do not modify above */

  /* since 1.3; check SABLE_HAS(host, comm). This rank's endpoint of the tensor-parallel group
   * (sable/comm.h): comm and comm_handle are both NULL on one rank (tp_size 1) and in older hosts.
   * ops->all_reduce / all_gather already go through it; a plugin calls it directly only from its
   * own kernels. Valid as long as the model. */
  const SableCommApi* comm;
  SableComm* comm_handle;
  /* end of ABI 1.3 - do not modify above */

  /* since 1.7; NULL in older hosts (check SABLE_HAS(host, weight_get_stacked)). Loads `count`
   * whole tensors, names[i] of shape [rows[i], cols] (cols > 0) or [rows[i]] (cols == 0: vectors,
   * e.g. biases), stacked by rows into one [sum rows, cols] (or [sum rows]) tensor in the dtype
   * weight_get(AUTO) would give each of them, held by the host as weight_get's are. For hosts that
   * keep matrices packed (block-quantized on the CPU, where weight_get_into is NULL): a plugin
   * fuses q|k|v or gate|up with it, so one GEMM quantizes the layer's input once. Returns
   * SABLE_ERR_UNSUPPORTED, sets no error and leaves *out untouched when the host does not stack
   * these matrices (stored in different formats, or in one it does not stack): the plugin then
   * loads them apart. A host that stacked matrices stacks vectors too. Other failures are
   * weight_get's (missing tensor, wrong shape), with an error set. */
  SableStatus (*weight_get_stacked)(SableHostHandle* h, int32_t count, const char* const* names,
                                    const int64_t* rows, int64_t cols, SableTensor* out);
  /* end of ABI 1.7 - do not modify above */
} SableHostApi;

#endif /* SABLE_HOST_H_ */
