// ggml's tensor types as GGUF stores them, and their dequantization to float32.
//
// A quantized type packs `block_size` consecutive elements of a row into `type_size` bytes
// (e.g. Q4_0: 32 elements in an f16 scale and 16 bytes of 4-bit values). The dequantizers follow
// ggml's reference dequantize_row_* (ggml-quants.c) and compute each value with the same float32
// operations, in the same order, as gguf-py's numpy dequantization (gguf.quants), so that both give
// bit-identical results (the file is compiled without floating-point contraction).
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sable::gguf {

enum GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
};

struct TypeTraits {
  const char* name;      // "Q4_K", as llama.cpp prints it
  int64_t block_size;    // elements per block (1 for plain types)
  size_t type_size;      // bytes per block
  bool dequantizable;    // dequantize_row() supports it
};

// nullptr for a type id ggml does not define (or one removed from the format, like Q4_2).
const TypeTraits* type_traits(uint32_t type);

// Dequantizes `n` elements (a multiple of the type's block size) from `src` into `dst`.
// The type must be dequantizable. `src` may be unaligned.
void dequantize_row(uint32_t type, const std::byte* src, float* dst, int64_t n);

// llama.cpp's general.file_type (LLAMA_FTYPE_*) as its name ("Q4_1", "Q4_K_M"); "" when unknown.
const char* file_type_name(int64_t file_type);

}  // namespace sable::gguf
