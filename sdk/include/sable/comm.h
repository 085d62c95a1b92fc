/* The communicator: collectives among the ranks of one tensor-parallel group (since ABI 1.3).
 *
 * Why: a model split over N ranks (DESIGN.md "Tensor parallelism") sums partial projections and
 * concatenates vocabulary slices. The host owns the group and gives each rank's model one endpoint
 * (SableHostApi.comm / comm_handle); the ops table's all_reduce / all_gather call it, and a plugin
 * with its own kernels may call it directly. Two implementations live in core/comm: in-process CPU
 * ranks (threads sharing a buffer, deterministic order) and NCCL (one CUDA device per rank).
 *
 * Rules:
 *  - Every rank calls the same collectives in the same order with the same shapes and dtypes
 *    (SPMD). A mismatch the implementation can see (shape, dtype, root) is SABLE_ERR_INVALID_ARGUMENT
 *    on every rank; one it cannot see is undefined.
 *  - Tensors are contiguous, on the rank's device, F32 / BF16 / F16 (all_gather and broadcast also
 *    take I32). `stream` orders the collective on a CUDA stream (cudaStream_t; NULL on the CPU),
 *    and nothing in a call waits for the host on CUDA, so it can be captured in a CUDA graph.
 *  - Sums are added in rank order 0, 1, ..., N-1 on every rank where the implementation controls
 *    it (the CPU one always), so every rank holds bitwise the same result and runs reproduce.
 *  - abort(reason) poisons the group: collectives pending on any rank, and every later one, return
 *    SABLE_ERR_DEVICE promptly with the reason, never hang. It may be called from any thread.
 *  - Functions are noexcept; on failure last_error() gives the message and outputs are untouched
 *    (except in-place all_reduce / broadcast after an abort, whose buffer is then undefined).
 * Thread-safety: one endpoint is used by one thread at a time (its rank's forward); abort is the
 * exception.
 */
#ifndef SABLE_COMM_H_
#define SABLE_COMM_H_

#include "sable/tensor.h"

typedef struct SableComm SableComm; /* opaque: one rank's endpoint, owned by the host */

typedef enum SableReduceOp { SABLE_REDUCE_SUM = 0 } SableReduceOp;

typedef struct SableCommApi {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  const char* name; /* "cpu" (in-process threads) or "nccl" */

  int32_t (*rank)(const SableComm* c);
  int32_t (*size)(const SableComm* c);

  /* In place: x becomes the elementwise `op` (SableReduceOp) of every rank's x. */
  SableStatus (*all_reduce)(SableComm* c, SableTensor* x, int32_t op, void* stream);
  /* out = the ranks' x concatenated along `dim` in rank order: x [.., n, ..] on every rank (same
   * shape), out [.., N*n, ..] with rank r's block at [r*n, (r+1)*n) of that dim. */
  SableStatus (*all_gather)(SableComm* c, const SableTensor* x, int32_t dim, SableTensor* out,
                            void* stream);
  /* In place: every rank's x becomes rank `root`'s x. */
  SableStatus (*broadcast)(SableComm* c, SableTensor* x, int32_t root, void* stream);
  /* Returns when every rank has called it (on CUDA: once the work before it on each rank's stream
   * is ordered before the work after it on every other's). */
  SableStatus (*barrier)(SableComm* c, void* stream);

  /* The message of this endpoint's last failure ("" if none); valid until its next call. */
  const char* (*last_error)(const SableComm* c);
  /* Poisons the group (see above); reason may be NULL. */
  void (*abort)(SableComm* c, const char* reason);
  /* end of ABI 1.3 - do not modify above */
} SableCommApi;

#endif /* SABLE_COMM_H_ */
