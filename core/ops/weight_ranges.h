// The address ranges that hold model weights: memory the model host filled from the checkpoint
// and that no kernel writes during a forward.
//
// Why: a decode GEMV under programmatic dependent launch may issue its first weight loads before
// it waits for the kernel ahead of it (core/ops/cuda/gemv_kernels.cu), which hides that kernel's
// tail. That is only correct for bytes the preceding kernel cannot be writing, and the GEMM op
// itself cannot tell a weight from an activation a plugin passes as its second operand. The model
// host registers what it loads (weight_get, weight_get_into); the GEMM asks here.
// Thread-safety: every function may be called from any thread (a shared mutex).
#pragma once

#include <cstddef>

namespace sable::ops {

// Records [p, p + bytes) as weight memory; ranges that overlap or touch are merged into one.
void register_weight_range(const void* p, size_t bytes);
// Removes [p, p + bytes) from the weight memory (parts of ranges outside it stay): call before
// freeing it.
void forget_weight_ranges(const void* p, size_t bytes);
// True when [p, p + bytes) lies inside one registered range.
bool is_weight_range(const void* p, size_t bytes);

}  // namespace sable::ops
