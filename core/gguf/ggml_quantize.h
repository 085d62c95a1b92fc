// Quantization of float32 rows into ggml's block formats, so that tests (and tools) can make
// quantized weights of any checkpoint without llama.cpp.
//
// Q8_0, Q4_0, Q4_1, F16 and BF16 follow ggml's reference quantize_row_*_ref exactly as gguf-py's
// numpy code does (the same float32 operations in the same order; the file is compiled without
// floating-point contraction), so their bytes equal gguf.quants.quantize's: tests/unit/gguf_test
// checks them against a file gguf-py wrote. Q4_K, Q5_K and Q6_K use a plain min/max quantizer of
// this project (ggml's iterative search for the best scales is not reproduced, and gguf-py has no
// K-quant quantizer to compare with): valid blocks that ggml and Sable read alike, a little less
// accurate than llama-quantize's.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sable::gguf {

// True for the GgmlType values quantize() makes.
bool can_quantize(uint32_t type);

// rows x cols floats (row-major; cols a multiple of the type's block size) -> the type's bytes,
// rows one after another. Throws std::invalid_argument for another type or a bad cols.
std::vector<std::byte> quantize(uint32_t type, const float* x, int64_t rows, int64_t cols);

}  // namespace sable::gguf
