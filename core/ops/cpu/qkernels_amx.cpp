// The AMX kernel table: the AVX-512 VNNI table with its Q8_0 / Q4_0 / Q4_1 multi-row kernels run
// on Intel AMX tile instructions from 8 (Q8_0) or 16 (Q4_0 / Q4_1) activation rows on (prefill,
// batches; kAmxMinRows).
// llama.cpp runs every such matmul with M > 1 on AMX where the CPU has it, which is why it doubled
// Sable's 256-bit tiles at batch 8 and prefill on AMX hosts (bench/NOTES.md "Q4_0 / Q4_1 tiles,
// batch-8 decode, llama.cpp's AMX").
//
// One tile product C[16 x 16] += A[16 x 32] . B[32 x 16] per 32-element block: A holds 16 weight
// rows' quants of the block as bytes (Q8_0 straight from the row layout, a tile load with the row
// stride; Q4_0 / Q4_1 nibbles unpacked once per call and group of 16 weight rows), B the block of
// 16 activation rows in the VNNI order AMX reads (4 consecutive elements of one row per int32
// lane), repacked once per call. C's int32 rows (one per weight row, a lane per activation row) are
// stored, converted and accumulated in fp32 with the scales d_w d_x of the block, plus the Q4_0 /
// Q4_1 offset term (-8 d_w or m_w times the activation block's s) in the same accumulator. So the
// weights keep their row layout (the embedding lookup, LoRA and the tensor-parallel slicing read
// it) and nothing is repacked at load. The integer sums are exact; against the other tables only
// the fp32 summation order differs (and the offset term joins the scaled sums block by block), so
// these outputs are not bit-identical to the single-row kernel (nor are the AVX-512 tiles this
// table keeps below kAmxMinRows): QKernels::rows_exact_below.
//
// Linux lends the AMX tile state to a process only on request (arch_prctl ARCH_REQ_XCOMP_PERM);
// the table is usable only when the CPU has AMX-INT8 and that request succeeds (amx_usable).
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/ops/cpu/qkernels.h"

// GCC 12 flags the undefined lanes inside its own AVX-512 intrinsics (a false positive fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sable::ops::cpu {
namespace {

// From this many activation rows on the tiles run on AMX; below, the AVX-512 VNNI tiles (a B tile
// of 16 activation rows with fewer real rows wastes its products, and each call prepares every
// weight row: Q4_0 / Q4_1 unpack their nibbles). Measured with sable_bench_gemm (bench/NOTES.md
// "AVX-512 tiles and AMX"): at M = 8 AMX beat the 512-bit tiles on Q8_0 (Qwen2.5-0.5B gate_up
// 1.3-1.7 against 1.9-2.0 ms) but not on Q4_1 (1.5-2.6 against 1.7-1.9 ms).
template <int32_t kDtype>
constexpr int64_t kAmxMinRows = kDtype == SABLE_DTYPE_Q8_0 ? 8 : 16;
constexpr int kRows = 16;  // weight rows of a tile (A's rows, C's rows)
constexpr int kCols = 16;  // activation rows of a tile (C's int32 lanes)

template <int32_t kDtype>
constexpr int64_t kBlockBytes = kDtype == SABLE_DTYPE_Q8_0   ? sizeof(BlockQ8_0)
                                : kDtype == SABLE_DTYPE_Q4_0 ? sizeof(BlockQ4_0)
                                                             : sizeof(BlockQ4_1);

// The tile registers: 0, 1 A (weights of blocks b, b + 1), 2, 3 B (activations), 4, 5 C.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void load_tile_config() {
  TileConfig c;
  for (int t = 0; t < 2; ++t) {
    c.rows[t] = kRows;
    c.colsb[t] = 32;
    c.rows[2 + t] = 32 / 4;
    c.colsb[2 + t] = kCols * 4;
    c.rows[4 + t] = kRows;
    c.colsb[4 + t] = kCols * 4;
  }
  _tile_loadconfig(&c);
}

// Block b of 16 activation rows: B's 8 rows of 64 bytes (row r, lane c: elements 4r..4r+3 of
// activation row c), then the rows' d and s (zero past the last row).
struct alignas(64) ASlot {
  int8_t b[8][kCols * 4];
  float d[kCols], s[kCols];
};

const ASlot* aslots(const BlockQ8A* x, int64_t xs, int64_t m, int64_t nb) {
  thread_local std::vector<ASlot> slots;
  const int64_t groups = (m + kCols - 1) / kCols;
  slots.assign(static_cast<size_t>(groups * nb), ASlot{});
  for (int64_t j = 0; j < m; ++j) {
    const int c = static_cast<int>(j % kCols);
    ASlot* g = slots.data() + (j / kCols) * nb;
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ8A& blk = x[j * xs + i];
      for (int r = 0; r < 8; ++r) std::memcpy(g[i].b[r] + 4 * c, blk.qs + 4 * r, 4);
      g[i].d[c] = blk.d;
      g[i].s[c] = blk.s;
    }
  }
  return slots.data();
}

// A group of up to 16 weight rows made ready for the tiles: A's base and stride per block, the
// rows' scales as floats (dw[b * 16 + n]) and the offset factors (ow: -8 d for Q4_0, m for Q4_1).
template <int32_t kDtype>
struct WGroup {
  std::vector<int8_t> q;     // Q4_0 / Q4_1 unpacked, or Q8_0 rows padded to 16 (a tail group)
  std::vector<float> dw, ow;
  const char* base = nullptr;  // A of block b at base + b * step, rows stride apart
  int64_t step = 0, stride = 0;

  void prepare(const char* w, int64_t wrb, int64_t rows, int64_t nb) {
    dw.resize(static_cast<size_t>(nb * kRows));
    if constexpr (kDtype != SABLE_DTYPE_Q8_0) ow.resize(static_cast<size_t>(nb * kRows));
    // The 16 rows' first 4 bytes of block b in one gather: d, and Q4_1's m in the upper half
    // (rows past the last read as zero).
    const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1);
    const __m512i vindex = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int32_t>(wrb)));
    for (int64_t b = 0; b < nb; ++b) {
      const __m512i g = _mm512_mask_i32gather_epi32(
          _mm512_setzero_si512(), live, vindex, w + b * kBlockBytes<kDtype>, 1);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
      _mm512_storeu_ps(dw.data() + b * kRows, d);
      if constexpr (kDtype == SABLE_DTYPE_Q4_0)
        _mm512_storeu_ps(ow.data() + b * kRows, _mm512_mul_ps(d, _mm512_set1_ps(-8.0f)));
      if constexpr (kDtype == SABLE_DTYPE_Q4_1)
        _mm512_storeu_ps(ow.data() + b * kRows,
                         _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
    }
    if constexpr (kDtype == SABLE_DTYPE_Q8_0) {
      if (rows == kRows) {
        base = w + 2;
      } else {  // past the last row A would read beyond the matrix: zero rows instead
        q.assign(static_cast<size_t>(kRows * wrb), 0);
        std::memcpy(q.data(), w, static_cast<size_t>(rows * wrb));
        base = reinterpret_cast<const char*>(q.data()) + 2;
      }
      step = sizeof(BlockQ8_0);
      stride = wrb;
      return;
    }
    // q[(b * 16 + n) * 32 + e]: element e of block b of row n, 0..15.
    if (rows == kRows)
      q.resize(static_cast<size_t>(nb * kRows * 32));
    else
      q.assign(static_cast<size_t>(nb * kRows * 32), 0);
    const __m128i low = _mm_set1_epi8(0x0F);
    for (int64_t n = 0; n < rows; ++n) {
      const char* qs = w + n * wrb + (kDtype == SABLE_DTYPE_Q4_0 ? 2 : 4);
      for (int64_t b = 0; b < nb; ++b) {
        const __m128i t =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + b * kBlockBytes<kDtype>));
        int8_t* dst = q.data() + (b * kRows + n) * 32;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_and_si128(t, low));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16),
                         _mm_and_si128(_mm_srli_epi16(t, 4), low));
      }
    }
    base = reinterpret_cast<const char*>(q.data());
    step = kRows * 32;
    stride = 32;
  }
};

// C (tile T, stored to c) of block b into the 16 accumulators: row n of C times d_w(n) d_x, plus
// the offset term.
template <int32_t kDtype>
__attribute__((always_inline)) inline void accumulate(const int32_t* c, const ASlot& a,
                                                      const float* dw, const float* ow,
                                                      __m512 acc[kRows]) {
  const __m512 dx = _mm512_load_ps(a.d);
  for (int n = 0; n < kRows; ++n) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + n * kCols));
    acc[n] = _mm512_fmadd_ps(v, _mm512_mul_ps(dx, _mm512_set1_ps(dw[n])), acc[n]);
    if constexpr (kDtype != SABLE_DTYPE_Q8_0)
      acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(ow[n]), _mm512_load_ps(a.s), acc[n]);
  }
}

// C(T) = A(T) . B(T) for block b (the tile intrinsics take literal register numbers).
#define SABLE_AMX_BLOCK(A, B, C, a, stride, slot, q8) \
  do {                                                \
    _tile_zero(C);                                    \
    _tile_loadd(A, a, stride);                        \
    _tile_loadd(B, (slot).b, kCols * 4);              \
    if (q8)                                           \
      _tile_dpbssd(C, A, B);                          \
    else                                              \
      _tile_dpbusd(C, A, B); /* unsigned nibbles */   \
  } while (0)

// One group of weight rows against one group of activation rows (its nb slots) into out.
template <int32_t kDtype>
void group_tile(const WGroup<kDtype>& wg, const ASlot* g, int64_t nb, int64_t rows, int64_t cols,
                float* out, int64_t ldo) {
  constexpr bool kQ8 = kDtype == SABLE_DTYPE_Q8_0;
  alignas(64) int32_t c[2][kRows * kCols];
  __m512 acc[kRows];
  for (auto& v : acc) v = _mm512_setzero_ps();
  const float* ow = kQ8 ? nullptr : wg.ow.data();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    SABLE_AMX_BLOCK(0, 2, 4, wg.base + b * wg.step, wg.stride, g[b], kQ8);
    SABLE_AMX_BLOCK(1, 3, 5, wg.base + (b + 1) * wg.step, wg.stride, g[b + 1], kQ8);
    _tile_stored(4, c[0], kCols * 4);
    _tile_stored(5, c[1], kCols * 4);
    accumulate<kDtype>(c[0], g[b], wg.dw.data() + b * kRows, kQ8 ? nullptr : ow + b * kRows, acc);
    accumulate<kDtype>(c[1], g[b + 1], wg.dw.data() + (b + 1) * kRows,
                       kQ8 ? nullptr : ow + (b + 1) * kRows, acc);
  }
  if (b < nb) {
    SABLE_AMX_BLOCK(0, 2, 4, wg.base + b * wg.step, wg.stride, g[b], kQ8);
    _tile_stored(4, c[0], kCols * 4);
    accumulate<kDtype>(c[0], g[b], wg.dw.data() + b * kRows, kQ8 ? nullptr : ow + b * kRows, acc);
  }
  alignas(64) float o[kRows][kCols];
  for (int n = 0; n < kRows; ++n) _mm512_store_ps(o[n], acc[n]);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t n = 0; n < rows; ++n) out[j * ldo + n] = o[n][j];
}

template <int32_t kDtype>
void amx_rows(const void* w, int64_t wrb, int64_t n, const BlockQ8A* x, int64_t xs, int64_t m,
              int64_t k, float* out, int64_t ldo) {
  if (m < kAmxMinRows<kDtype>) {
    avx512vnni_kernels().qdot_rows(kDtype)(w, wrb, n, x, xs, m, k, out, ldo);
    return;
  }
  const int64_t nb = k / 32;
  const ASlot* slots = aslots(x, xs, m, nb);
  thread_local WGroup<kDtype> wg;
  load_tile_config();
  const char* wc = static_cast<const char*>(w);
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, n - r0);
    wg.prepare(wc + r0 * wrb, wrb, rows, nb);
    for (int64_t i = 0; i < m; i += kCols)
      group_tile<kDtype>(wg, slots + (i / kCols) * nb, nb, rows, std::min<int64_t>(kCols, m - i),
                         out + i * ldo + r0, ldo);
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
    return t;
  }();
  return k;
}

}  // namespace sable::ops::cpu
