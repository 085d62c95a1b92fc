// The inner kernels of the packed-weight GEMM, one table per instruction set: a scalar reference
// (every CPU), AVX2 (vpmaddubsw), AVX-VNNI (vpdpbusd on 256-bit vectors), AVX-512 VNNI (the
// Q8_0 / Q4_0 / Q4_1 multi-row int8 kernels on 512-bit vectors, qkernels_x86_zmm.inc) and AMX
// (that table with the multi-row kernels on AMX tiles from 4 or 8 activation rows on,
// qkernels_amx.cpp; both with the batch-1 GEMV over x16 weight copies, qkernels_x86_x16.inc, and
// the AMX table with tiles over those copies at every larger M, qkernels_amx_x16.inc).
// The best table the running CPU supports is chosen once, at first use
// (best_kernels); tests run every usable table against the scalar one.
//
// A dot kernel multiplies one weight row of K elements with one activation row: quantized formats
// take the activations as BlockQ8A blocks (integer products, fp32 accumulation of the per-block
// scaled sums); BF16/F16 take them as floats. Kernels are pure functions, safe on any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "core/ops/cpu/qblocks.h"

namespace sable::ops::cpu {

struct QKernels {
  using QDot = float (*)(const void* w, const BlockQ8A* x, int64_t k);
  using FDot = float (*)(const void* w, const float* x, int64_t k);
  // n weight rows (w + r * wrb bytes) against m activation rows (x + i * xs blocks) into
  // out[i * ldo + r]: one activation row streams each weight row once; from 2 rows on (x86:
  // qkernels_x86_tile.inc) register tiles of one weight row x 8 activation rows. Bit-identical to
  // n x m calls of the QDot below rows_exact_below activation rows.
  using QDotRows = void (*)(const void* w, int64_t wrb, int64_t n, const BlockQ8A* x, int64_t xs,
                            int64_t m, int64_t k, float* out, int64_t ldo);
  const char* name;
  // x[k] -> k/32 blocks (k a multiple of 32).
  void (*quantize_row)(const float* x, BlockQ8A* out, int64_t k);
  QDot q8_0, q4_0, q4_1, q4_k, q5_k, q6_k;
  FDot bf16, f16;
  QDotRows q8_0_rows, q4_0_rows, q4_1_rows;  // the K-quants run their QDot row by row
  // The *_rows kernels run prefill-sized M in register tiles, faster than unpacking fp32 panels
  // for OpenBLAS (the x86 tables); otherwise prefill keeps the panels.
  bool int8_tiles;
  // out[k] = the packed row w as floats (any packed dtype).
  void (*dequantize_row)(int32_t dtype, const void* w, float* out, int64_t k);
  // One packed row (any packed dtype) against m fp32 activation rows (x + i * ldx) into
  // out[i * os]: the exact products of the dequantized row, up to fp32 summation order.
  void (*fdot_rows)(int32_t dtype, const void* w, const float* x, int64_t ldx, int64_t m,
                    int64_t k, float* out, int64_t os);

  // The LM head's kernel (qgemm.cpp head_gemm): n Q8_0 / Q4_0 / Q4_1 weight rows (w + r * wrb
  // bytes) against m int16 activation rows (x + i * xs blocks) into out[i * ldo + r], the dot of
  // the dequantized rows with the int16-rounded activations (integer products summed per block,
  // or on AVX-512 the exact fp32 values q_w d_w and q_x d_x multiplied in fp32; AMX Q8_0 at 2-8
  // rows: the integer sums again, the int16 values as two byte tiles), and per output
  // bound[i * ldb + r] = sum over blocks of L(w block) * d_x / 2 (qblocks.h block_error_scale: L
  // the largest sum of |w| the block's scales allow, d_x / 2 the largest rounding error of an
  // activation): |out - the dequantized row's dot with the unrounded activations| <= bound,
  // before fp32 rounding (of at most k + k/32 + 4 terms, which head_gemm's slack covers).
  using HeadRows = void (*)(const void* w, int64_t wrb, int64_t n, const BlockQ16A* x, int64_t xs,
                            int64_t m, int64_t k, float* out, int64_t ldo, float* bound,
                            int64_t ldb);
  // x[k] -> k/32 int16 blocks (k a multiple of 32).
  void (*quantize_row16)(const float* x, BlockQ16A* out, int64_t k);
  HeadRows q8_0_head, q4_0_head, q4_1_head;
  // From this many activation rows on, the *_rows kernels may differ from n x m QDot calls by the
  // fp32 summation order (the AVX-512 tiles from 2 rows, qkernels_x86_zmm.inc; the AMX tiles);
  // below it they are bit-identical.
  int64_t rows_exact_below = INT64_MAX;
  // The GEMV over weights in the x16 layout (qrepack.h): row groups [g0, g1) of the copy pk of n
  // rows against m activation rows (x + i * xs blocks) into out[i * ldo + r]; the products of
  // the QDot, summed in another fp32 order. Used for 1..x16_max(dtype) activation rows when the
  // weight has an x16 copy (x16_max); nullptr (and 0) in the tables without it. prep: what
  // x16_prep returned for these activations (nullptr: the kernel prepares them itself).
  using X16Rows = void (*)(const void* pk, int64_t g0, int64_t g1, int64_t n, const BlockQ8A* x,
                           int64_t xs, int64_t m, int64_t k, float* out, int64_t ldo,
                           const void* prep);
  X16Rows q8_0_x16 = nullptr, q4_0_x16 = nullptr, q4_1_x16 = nullptr;
  // Up to this many activation rows (Q4_0 / Q4_1, and Q8_0) the x16 kernel is used.
  int64_t x16_max_rows = 0, x16_max_rows_q8_0 = 0;
  X16Rows x16_rows(int32_t dtype) const;
  // The LM head (HeadRows) for one activation row over the head's x16 copy: row groups [g0, g1)
  // of n rows into out[r] and bound[r]; nullptr in the tables without it.
  using X16Head = void (*)(const void* pk, int64_t g0, int64_t g1, int64_t n, const BlockQ16A* x,
                           int64_t k, float* out, float* bound);
  X16Head q8_0_x16_head = nullptr, q4_0_x16_head = nullptr, q4_1_x16_head = nullptr;
  // The activations of one GEMM in the x16 kernel's own order, made once by the calling thread
  // for every thread's X16Rows call of that GEMM (the AMX table's tiles; nullptr elsewhere). The
  // result lives in the calling thread's storage until its next x16_prep call; nullptr: none.
  using X16Prep = const void* (*)(int32_t dtype, const BlockQ8A* x, int64_t xs, int64_t m,
                                  int64_t k);
  X16Prep x16_prep = nullptr;
  // The LM head (HeadRows: logits and bound) at 2..x16_head_max_rows int16 activation rows over
  // the head's x16 copy, row groups [g0, g1) of n rows; nullptr (and 0) in the tables without it.
  using X16HeadRows = void (*)(const void* pk, int64_t g0, int64_t g1, int64_t n,
                               const BlockQ16A* x, int64_t xs, int64_t m, int64_t k, float* out,
                               int64_t ldo, float* bound, int64_t ldb);
  X16HeadRows q8_0_x16_head_rows = nullptr;
  int64_t x16_head_max_rows = 0;
  X16Head x16_head(int32_t dtype) const {
    return dtype == SABLE_DTYPE_Q8_0   ? q8_0_x16_head
           : dtype == SABLE_DTYPE_Q4_0 ? q4_0_x16_head
           : dtype == SABLE_DTYPE_Q4_1 ? q4_1_x16_head
                                       : nullptr;
  }
  int64_t x16_max(int32_t dtype) const {
    return dtype == SABLE_DTYPE_Q8_0 ? x16_max_rows_q8_0 : x16_max_rows;
  }
  // y[i] = silu(x[i]) * u[i] (u nullptr: silu(x[i])) for i < n, at the table's vector width
  // (silu_lanes.h); within a few ulp of x / (1 + exp(-x)) in every table.
  void (*silu_row)(const float* x, const float* u, float* y, int64_t n) = nullptr;
  // The head kernel of Q8_0 / Q4_0 / Q4_1 (nullptr otherwise).
  HeadRows head_rows(int32_t dtype) const;

  // The dot kernel of a block-quantized dtype (nullptr for BF16/F16 and plain dtypes).
  QDot qdot(int32_t dtype) const;
  // The multi-row kernel of Q8_0 / Q4_0 / Q4_1 (nullptr otherwise).
  QDotRows qdot_rows(int32_t dtype) const;
  // The float dot kernel of BF16/F16 (nullptr otherwise).
  FDot fdot(int32_t dtype) const;
};

const QKernels& scalar_kernels();
// The fastest table this CPU runs (scalar when no x86 extension applies). Thread-safe.
const QKernels& best_kernels();
// Every table compiled in that this CPU can run, scalar first (for tests and the bench).
std::vector<const QKernels*> usable_kernels();

// The x86 tables (qkernels_x86.inc compiled once per instruction set); absent off x86-64.
#if defined(__x86_64__)
const QKernels& avx2_kernels();
const QKernels& avxvnni_kernels();
const QKernels& avx512vnni_kernels();
// The AVX-512 VNNI table with AMX multi-row kernels; only after amx_usable().
const QKernels& amx_kernels();
// The CPU has AMX-INT8 and the kernel granted this process the tile state (asked once).
bool amx_usable();
#endif

}  // namespace sable::ops::cpu
