// The kernel table for AVX2 (vpmaddubsw): qkernels_x86.inc compiled with this file's instruction-set flags
// (core/ops/CMakeLists.txt). Only called after best_kernels() checked the CPU supports it.
#define SABLE_QK_TABLE avx2_kernels
#define SABLE_QK_NAME "avx2"
#include "core/ops/cpu/qkernels_x86.inc"
