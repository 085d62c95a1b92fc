// The CPU implementation of the SDK ops table (sable/ops.h): fp32 compute, OpenBLAS GEMMs,
// the thread pool over rows (thread_pool.h).
//
// Every op validates shapes, dtypes and devices first and on bad input returns
// SABLE_ERR_INVALID_ARGUMENT with a message (ctx->last_error, valid until the next failing op on
// the same thread, and a log line), leaving its outputs untouched. Besides F32, some inputs accept
// BF16/F16 (embedding tables, cast, moe_route logits); everything computed is F32.
// Thread-safety: the table is immutable; one forward context is used by one thread at a time
// (ops spread their own work over the thread pool).
#pragma once

#include "sable/ops.h"

namespace sable::ops {

// Static table, valid for the life of the process.
const SableOps* cpu_ops();

}  // namespace sable::ops
