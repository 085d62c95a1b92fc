// The AMX kernel table: the AVX-512 VNNI table with its Q8_0 / Q4_0 / Q4_1 multi-row kernels run
// on Intel AMX tile instructions from kAmxMinRows activation rows on (batches, prefill). llama.cpp
// runs every such matmul with M > 1 on AMX where the CPU has it, which is why it doubled Sable's
// 256-bit tiles at batch 8 and prefill on AMX hosts (bench/NOTES.md "Q4_0 / Q4_1 tiles, batch-8
// decode, llama.cpp's AMX").
//
// One tile product C[a x 16] += A[a x 32] . B[32 x 16] per 32-element block: A holds a (up to 16)
// activation rows' quants of the block, loaded straight from the BlockQ8A rows (a tile load with
// the row stride: nothing is copied), B the block of 16 weight rows in the VNNI order AMX reads
// (4 consecutive elements of one row per int32 lane), made per call and group of 16 weight rows
// by dword gathers: Q8_0's 8 gathers are B's 8 rows as they are; Q4_0 / Q4_1's 4 gathers give
// rows 0-3 from the low nibbles and 4-7 from the high ones. C's int32 rows (one per activation
// row, a lane per weight row) are stored, converted and accumulated in fp32 with the scales d_w
// d_x of the block, plus the Q4_0 / Q4_1 offset term (-8 d_w or m_w times the activation block's
// s) in the same accumulator, and each accumulator is one activation row's 16 outputs. So the
// weights keep their row layout (the embedding lookup, LoRA and the tensor-parallel slicing read
// it) and nothing is repacked at load. The integer sums are exact; against the other tables only
// the fp32 summation order differs (and the offset term joins the scaled sums block by block), so
// these outputs are not bit-identical to the single-row kernel (nor are the AVX-512 tiles this
// table keeps below kAmxMinRows): QKernels::rows_exact_below.
//
// Linux lends the AMX tile state to a process only on request (arch_prctl ARCH_REQ_XCOMP_PERM);
// the table is usable only when the CPU has AMX-INT8 and that request succeeds (amx_usable).
//
// Q8_0 with 2 to 8 activation rows (decode batches) takes the roles the other way round, the
// weight rows as A loaded straight from the row layout (qkernels_amx_q8a.inc). Both serve the
// weights without an x16 copy (qrepack.h: past its budget, or not registered); a weight with one
// is read from it at every M (qkernels_amx_x16.inc), with no gathers.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/ops/cpu/qkernels.h"
#include "core/ops/cpu/qrepack.h"
#include "core/ops/cpu/thread_pool.h"

// GCC 12 flags the undefined lanes inside its own AVX-512 intrinsics (a false positive fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sable::ops::cpu {
namespace {

// From this many activation rows on the tiles run on AMX; below, the AVX-512 VNNI tiles. Measured
// with sable_bench_gemm (bench/NOTES.md "AVX-512 tiles and AMX"): at M = 4 the two are even on
// Q8_0 and AMX is ahead on Q4_1 (the zmm tile unpacks nibbles per pair and row group), at M = 8
// AMX is ahead on both.
template <int32_t kDtype>
constexpr int64_t kAmxMinRows = kDtype == SABLE_DTYPE_Q8_0 ? 8 : 4;
constexpr int kW = 16;  // weight rows of a tile (B's columns, C's int32 lanes)
constexpr int kA = 16;  // the most activation rows of a tile (A's and C's rows)

template <int32_t kDtype>
constexpr int64_t kBlockBytes = kDtype == SABLE_DTYPE_Q8_0   ? sizeof(BlockQ8_0)
                                : kDtype == SABLE_DTYPE_Q4_0 ? sizeof(BlockQ4_0)
                                                             : sizeof(BlockQ4_1);

// The tile registers: 0, 1 A (blocks b, b + 1: `rows` rows of 32 bytes), 2, 3 B (8 rows of `cols`
// int32 lanes, 4 bytes each), 4, 5 C (`rows` x `cols` int32). Here A is a group's activation rows
// and B 16 weight rows (cols = kW); qkernels_amx_q8a.inc swaps them (rows = kW weight rows).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void load_tile_config(int rows, int cols) {
  TileConfig c;
  for (int t = 0; t < 2; ++t) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = 32;
    c.rows[2 + t] = 32 / 4;
    c.colsb[2 + t] = static_cast<uint16_t>(cols * 4);
    c.rows[4 + t] = static_cast<uint8_t>(rows);
    c.colsb[4 + t] = static_cast<uint16_t>(cols * 4);
  }
  _tile_loadconfig(&c);
}

// A group of up to 16 weight rows made ready for the tiles: B of block b at b[b * 512], the rows'
// scales as floats (dw[b * 16 + n]) and the offset factors (ow: -8 d for Q4_0, m for Q4_1); rows
// past the last are zero.
template <int32_t kDtype>
struct WGroup {
  std::vector<int8_t> b;
  std::vector<float> dw, ow;

  void prepare(const char* w, int64_t wrb, int64_t rows, int64_t nb) {
    b.resize(static_cast<size_t>(nb * 512));
    dw.resize(static_cast<size_t>(nb * kW));
    if constexpr (kDtype != SABLE_DTYPE_Q8_0) ow.resize(static_cast<size_t>(nb * kW));
    const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1);
    const __m512i vindex = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int32_t>(wrb)));
    const __m512i zero = _mm512_setzero_si512(), low = _mm512_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; ++i) {
      const char* blk = w + i * kBlockBytes<kDtype>;
      // The first 4 bytes of the 16 rows' block: d, and Q4_1's m in the upper half.
      const __m512i g = _mm512_mask_i32gather_epi32(zero, live, vindex, blk, 1);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
      _mm512_storeu_ps(dw.data() + i * kW, d);
      if constexpr (kDtype == SABLE_DTYPE_Q4_0)
        _mm512_storeu_ps(ow.data() + i * kW, _mm512_mul_ps(d, _mm512_set1_ps(-8.0f)));
      if constexpr (kDtype == SABLE_DTYPE_Q4_1)
        _mm512_storeu_ps(ow.data() + i * kW,
                         _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
      int8_t* bt = b.data() + i * 512;
      if constexpr (kDtype == SABLE_DTYPE_Q8_0) {
        // B row j, lane n: elements 4j..4j+3 of row n, i.e. the j-th dword of its qs.
        for (int j = 0; j < 8; ++j)
          _mm512_storeu_si512(bt + 64 * j,
                             _mm512_mask_i32gather_epi32(zero, live, vindex, blk + 2 + 4 * j, 1));
      } else {
        const char* qs = blk + (kDtype == SABLE_DTYPE_Q4_0 ? 2 : 4);
        for (int j = 0; j < 4; ++j) {  // qs dword j: elements 4j.. (low), 16 + 4j.. (high)
          const __m512i q = _mm512_mask_i32gather_epi32(zero, live, vindex, qs + 4 * j, 1);
          _mm512_storeu_si512(bt + 64 * j, _mm512_and_si512(q, low));
          _mm512_storeu_si512(bt + 64 * (4 + j), _mm512_and_si512(_mm512_srli_epi32(q, 4), low));
        }
      }
    }
  }
};

// C (stored to c) of block i into the accumulators: row r of C times d_w d_x, plus the offset term.
template <int32_t kDtype, int kRowsA>
__attribute__((always_inline)) inline void accumulate(const int32_t* c, const BlockQ8A* x,
                                                      int64_t xs, int64_t a, const float* dw,
                                                      const float* ow, __m512 acc[kRowsA]) {
  const __m512 d = _mm512_loadu_ps(dw);
  for (int r = 0; r < kRowsA; ++r) {
    if (r >= a) break;  // x has no row r
    const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + r * kW));
    acc[r] = _mm512_fmadd_ps(v, _mm512_mul_ps(d, _mm512_set1_ps(x[r * xs].d)), acc[r]);
    if constexpr (kDtype != SABLE_DTYPE_Q8_0)
      acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(ow), _mm512_set1_ps(x[r * xs].s), acc[r]);
  }
}

// C(T) = A(T) . B(T) for a block (the tile intrinsics take literal register numbers).
#define SABLE_AMX_BLOCK(A, B, C, xa, xstride, bt, q8) \
  do {                                                \
    _tile_zero(C);                                    \
    _tile_loadd(A, xa, xstride);                      \
    _tile_loadd(B, bt, kW * 4);                       \
    if (q8)                                           \
      _tile_dpbssd(C, A, B);                          \
    else                                              \
      _tile_dpbsud(C, A, B); /* x unsigned nibbles */ \
  } while (0)

// One group of weight rows (w rows, prepared in wg) against a (<= kRowsA) activation rows x
// (rows xs blocks apart) into out[r * ldo + n] (the tile configuration has a rows).
template <int32_t kDtype, int kRowsA>
void group_tile(const WGroup<kDtype>& wg, const BlockQ8A* x, int64_t xs, int64_t nb, int64_t a,
                int64_t w, float* out, int64_t ldo) {
  constexpr bool kQ8 = kDtype == SABLE_DTYPE_Q8_0;
  alignas(64) int32_t c[2][kA * kW];
  __m512 acc[kRowsA];
  for (auto& v : acc) v = _mm512_setzero_ps();
  const int64_t xstride = xs * static_cast<int64_t>(sizeof(BlockQ8A));
  const int8_t* bt = wg.b.data();
  const float* dw = wg.dw.data();
  const float* ow = kQ8 ? nullptr : wg.ow.data();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    SABLE_AMX_BLOCK(0, 2, 4, x[i].qs, xstride, bt + i * 512, kQ8);
    SABLE_AMX_BLOCK(1, 3, 5, x[i + 1].qs, xstride, bt + (i + 1) * 512, kQ8);
    _tile_stored(4, c[0], kW * 4);
    _tile_stored(5, c[1], kW * 4);
    accumulate<kDtype, kRowsA>(c[0], x + i, xs, a, dw + i * kW, kQ8 ? nullptr : ow + i * kW, acc);
    accumulate<kDtype, kRowsA>(c[1], x + i + 1, xs, a, dw + (i + 1) * kW,
                               kQ8 ? nullptr : ow + (i + 1) * kW, acc);
  }
  if (i < nb) {
    SABLE_AMX_BLOCK(0, 2, 4, x[i].qs, xstride, bt + i * 512, kQ8);
    _tile_stored(4, c[0], kW * 4);
    accumulate<kDtype, kRowsA>(c[0], x + i, xs, a, dw + i * kW, kQ8 ? nullptr : ow + i * kW, acc);
  }
  const __mmask16 live = static_cast<__mmask16>((1u << w) - 1);
  for (int r = 0; r < kRowsA; ++r)
    if (r < a) _mm512_mask_storeu_ps(out + r * ldo, live, acc[r]);
}

#include "core/ops/cpu/qkernels_amx_q8a.inc"
#include "core/ops/cpu/qkernels_amx_q8a_head.inc"
#include "core/ops/cpu/qkernels_amx_x16.inc"

template <int32_t kDtype>
void amx_rows(const void* w, int64_t wrb, int64_t n, const BlockQ8A* x, int64_t xs, int64_t m,
              int64_t k, float* out, int64_t ldo) {
  const int64_t nb = k / 32;
  if (kDtype == SABLE_DTYPE_Q8_0 && m >= kQ8aMinRows && m <= kQ8aCols) {
    q8a_rows(static_cast<const char*>(w), wrb, n, x, xs, m, nb, out, ldo);
    return;
  }
  if (m < kAmxMinRows<kDtype>) {
    avx512vnni_kernels().qdot_rows(kDtype)(w, wrb, n, x, xs, m, k, out, ldo);
    return;
  }
  const char* wc = static_cast<const char*>(w);
  thread_local WGroup<kDtype> wg;
  int config = -1;
  for (int64_t r0 = 0; r0 < n; r0 += kW) {
    const int64_t rows = std::min<int64_t>(kW, n - r0);
    wg.prepare(wc + r0 * wrb, wrb, rows, nb);
    for (int64_t i = 0; i < m; i += kA) {
      const int a = static_cast<int>(std::min<int64_t>(kA, m - i));
      if (a != config) load_tile_config(config = a, kW);
      const BlockQ8A* xi = x + i * xs;
      float* o = out + i * ldo + r0;
      // The accumulators of a rounded up to 4, 8 or 16 rows (registers for the rest).
      if (a > 8)
        group_tile<kDtype, 16>(wg, xi, xs, nb, a, rows, o, ldo);
      else if (a > 4)
        group_tile<kDtype, 8>(wg, xi, xs, nb, a, rows, o, ldo);
      else
        group_tile<kDtype, 4>(wg, xi, xs, nb, a, rows, o, ldo);
    }
  }
  _tile_release();
}

}  // namespace

bool amx_usable() {
  static const bool ok = [] {
    constexpr long kReqXcompPerm = 0x1023;  // arch_prctl ARCH_REQ_XCOMP_PERM
    constexpr long kXtileData = 18;         // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return ok;
}

const QKernels& amx_kernels() {
  static const QKernels k = [] {
    QKernels t = avx512vnni_kernels();
    t.name = "amx";
    t.q8_0_rows = &amx_rows<SABLE_DTYPE_Q8_0>;
    t.q4_0_rows = &amx_rows<SABLE_DTYPE_Q4_0>;
    t.q4_1_rows = &amx_rows<SABLE_DTYPE_Q4_1>;
    // Every M over a weight's x16 copy: the AVX-512 GEMV up to 4 (Q8_0) / 8 (Q4) rows, then
    // AMX tiles whose B is the copy's blocks as they are (qkernels_amx_x16.inc).
    t.q8_0_x16 = &amx_x16_rows<SABLE_DTYPE_Q8_0>;
    t.q4_0_x16 = &amx_x16_rows<SABLE_DTYPE_Q4_0>;
    t.q4_1_x16 = &amx_x16_rows<SABLE_DTYPE_Q4_1>;
    t.x16_max_rows = t.x16_max_rows_q8_0 = INT64_MAX;
    t.x16_prep = &amx_x16_prep;
    // The Q8_0 head at 2-16 rows over its x16 copy (qkernels_amx_x16.inc; q8a_head_rows serves
    // a head without a copy).
    t.q8_0_x16_head_rows = &amx_x16_head_rows;
    t.x16_head_max_rows = kA;
    // The Q8_0 head at 2-8 rows: int16 activations as two byte tiles (qkernels_amx_q8a_head.inc).
    t.q8_0_head = &q8a_head_rows;
    return t;
  }();
  return k;
}

}  // namespace sable::ops::cpu
