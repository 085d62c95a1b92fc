// Q8_0 / Q4_0 / Q4_1 weights interleaved 16 rows at a time, for the batch-1 GEMV of the AVX-512
// tables (qkernels_x86_x16.inc; llama.cpp repacks its weights at load for the same reason).
//
// In the GGUF row layout every 32-element block carries its own scale, so a single-row dot spends
// a scale conversion, a multiply and an FMA per 32 products and reads 16-32 bytes per load. The
// "x16" layout puts 16 consecutive weight rows side by side: one 64-byte load holds 4 consecutive
// quant bytes of each of the 16 rows, meets one broadcast 4-byte group of the activations in a
// single vpdpbusd (16 int32 lanes = 16 output rows), and the 16 rows' block scales are one
// 32-byte load. The bytes mean what they meant in the GGUF file; only their order changes (and
// Q8_0's quants are stored biased, q + 128 as uint8, the unsigned operand of vpdpbusd).
//
// Layout of group G (rows 16G .. 16G + 15, rows past n zero), nb = K / 32 blocks:
//   qs   nb x Q blocks of 64 bytes: block i, quad g: byte 4 r + j is row r's quant byte 4 g + j
//        (Q4_0 / Q4_1: qs[4 g + j], low nibble element 4 g + j, high nibble 16 + 4 g + j,
//        Q = 4; Q8_0: q[4 g + j] ^ 0x80, Q = 8)
//   d    nb x 16 fp16: d[i * 16 + r] the scale of row r's block i
//   m    (Q4_1 only) nb x 16 fp16, the mins, ordered as d
// so a group is exactly 16 rows' bytes (16 x row_bytes), and the copy as large as the weight
// (plus the padding of the last group).
//
// The copy is made lazily: the model host registers its CPU weights (the LM head too) at load
// (x16_register), and the first GEMM of 1..QKernels::x16_max activation rows (the head: one row)
// against a registered weight makes its copy (x16_copy) when the kernel table has the x16
// kernels (the AMX table reads the copy at every M: its blocks are AMX B tiles). The row layout
// stays (the embedding, the head's fp32 recheck, LoRA, and the other tables' prefill and batches
// read it), so a decoded weight is held twice: the copies together stay within a budget
// (x16_set_budget; by default SABLE_CPU_X16_BUDGET_MB, else a quarter of the memory available
// when the first copy is made), and a weight whose copy would pass it keeps the row layout.
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sable::ops::cpu {

constexpr int64_t kX16 = 16;  // rows per group

// True for the dtypes with an x16 layout (Q8_0, Q4_0, Q4_1).
bool x16_dtype(int32_t dtype);
// Bytes of the x16 copy of n rows of k elements.
int64_t x16_bytes(int32_t dtype, int64_t n, int64_t k);
// Writes the x16 layout of n rows of k elements (w, row layout) into out (x16_bytes of it).
void x16_pack(int32_t dtype, const void* w, int64_t n, int64_t k, void* out);
// Row `row` of an x16 copy as floats (the reference for tests: equals dequantize_row of the row).
void x16_dequantize_row(int32_t dtype, const void* packed, int64_t k, int64_t row, float* out);

// The registry of weights that may get an x16 copy (keyed by the weight's address, n and k).
void x16_register(int32_t dtype, const void* w, int64_t n, int64_t k);
// Drops the registrations (and copies) of weights inside [p, p + bytes): call before freeing.
void x16_forget(const void* p, size_t bytes);
// The x16 copy of a registered weight with this dtype and shape, made now if needed; nullptr when
// w is not registered so (or the copy cannot be allocated).
const void* x16_copy(int32_t dtype, const void* w, int64_t n, int64_t k);

// The most bytes all copies may take; a negative value restores the default (see above). Copies
// already made stay.
void x16_set_budget(int64_t bytes);
// Bytes the copies take now.
int64_t x16_copied_bytes();

}  // namespace sable::ops::cpu
