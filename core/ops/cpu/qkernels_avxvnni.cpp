// The kernel table for AVX-VNNI (vpdpbusd): qkernels_x86.inc compiled with this file's instruction-set flags
// (core/ops/CMakeLists.txt). Only called after best_kernels() checked the CPU supports it.
#define SABLE_QK_TABLE avxvnni_kernels
#define SABLE_QK_NAME "avxvnni"
#include "core/ops/cpu/qkernels_x86.inc"
