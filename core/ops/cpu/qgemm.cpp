// The GEMM over packed weights (block-quantized, BF16, F16): out[M,N] = x[M,K] · w[N,K]ᵀ (+bias).
//
// With int8 activations on (cpu_threads.h; --cpu-int8-activations, the bench's default), the
// activation rows are quantized once to int8 blocks (BlockQ8A) and dotted with the weight rows by
// the best kernel table of this CPU: at batch 1 every weight row is read once (the rows stream
// from memory in order; on AVX-512 Q8_0 / Q4_0 / Q4_1 weights the model host registered are read
// from their x16 copy, 16 rows per vector, up to QKernels::x16_max activation rows - on AMX at
// every M, the copy's blocks being the tiles' B: qrepack.h, qkernels_amx_x16.inc); Q8_0 / Q4_0 /
// Q4_1 at batch and prefill sizes in register tiles of one weight row x 8 activation rows
// (QKernels::int8_tiles), faster than fp32 panels + OpenBLAS at every M measured (bench/NOTES.md
// "Q4_0 / Q4_1 tiles"); the K-quants row by row up to
// kPanelMinRows. A kPreciseActivations weight (the LM head) then has the rows that could be its
// argmax recomputed in fp32 (head_gemm). Otherwise, at small M each weight row is unpacked to fp32
// and dotted with the fp32 rows, BF16/F16 rows always widened against fp32 activations; at large M
// (prefill without int8 tiles) panels of weight rows are unpacked to fp32 and multiplied by
// OpenBLAS, whose blocked sgemm wins once the unpacking is shared by enough rows. Either way the
// output rows (N) are split in chunks over the CPU ops' thread pool.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qkernels.h"
#include "core/ops/cpu/qrepack.h"
#include "core/ops/cpu/thread_pool.h"

namespace sable::ops::cpu {
namespace {

// From this many activation rows on, unpacking weight panels for sgemm beats the int8 dots
// (measured on AVX2; bench/NOTES.md).
constexpr int64_t kPanelMinRows = 24;
constexpr int64_t kPanelRows = 32;  // weight rows per fp32 panel (32 x K floats stay in L2)

// Threads worth waking for n output rows of k inputs: about 64K multiply-adds each at least.
int team_size(int64_t rows, int64_t n, int64_t k) {
  const int64_t work = rows * n * k;
  return static_cast<int>(std::clamp<int64_t>(work >> 16, 1, threads()));
}

// [begin, end) of n split evenly over `parts`, in multiples of `align`.
std::pair<int64_t, int64_t> share(int64_t n, int part, int parts, int64_t align) {
  const int64_t units = (n + align - 1) / align;
  const int64_t b = units * part / parts, e = units * (part + 1) / parts;
  return {std::min(n, b * align), std::min(n, e * align)};
}

// From this many activation elements on (about 64 rows of a 1K-wide layer input), the rows are
// quantized by the pool's threads rather than the calling thread alone: at prefill sizes the
// serial loop was ~4 % of a Qwen2.5-0.5B Q8_0 prefill at one thread, all of it idle time for the
// other threads. Each row is quantized by the same kernel either way: the blocks are the same.
constexpr int64_t kQuantizeSplitElems = int64_t{1} << 16;

// x [m, k] (rows ldx apart) -> xq [m, k / 32] BlockQ8A.
void quantize_rows(const QKernels& kern, const float* x, int64_t ldx, BlockQ8A* xq, int64_t m,
                   int64_t k) {
  const int64_t nb = k / kQ8ABlock;
  parallel_rows(m, m * k >= kQuantizeSplitElems,
                [&](int64_t r) { kern.quantize_row(x + r * ldx, xq + r * nb, k); });
}

void int8_gemm(const QKernels& kern, int32_t dtype, const char* w, int64_t wrb, const float* x,
               int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
               int64_t k) {
  const QKernels::QDot dot = kern.qdot(dtype);
  const QKernels::QDotRows dot_rows = kern.qdot_rows(dtype);
  const QKernels::FDot fdot = kern.fdot(dtype);
  const int64_t nb = k / kQ8ABlock;
  thread_local std::vector<BlockQ8A> xq;
  if (dot != nullptr) {
    xq.resize(static_cast<size_t>(m * nb));
    quantize_rows(kern, x, ldx, xq.data(), m, k);
  }
  const BlockQ8A* xqp = xq.data();
  const int team = team_size(m, n, k);
  const int64_t chunks = std::min<int64_t>((n + 7) / 8, 4 * team);
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [r0, r1] = share(n, static_cast<int>(c), static_cast<int>(chunks), 8);
    if (dot_rows != nullptr) {
      dot_rows(w + r0 * wrb, wrb, r1 - r0, xqp, nb, m, k, out + r0, ldo);
      if (bias != nullptr)
        for (int64_t i = 0; i < m; ++i)
          for (int64_t r = r0; r < r1; ++r) out[i * ldo + r] += bias[r];
      return;
    }
    for (int64_t r = r0; r < r1; ++r) {
      const char* wr = w + r * wrb;
      const float b = bias != nullptr ? bias[r] : 0.0f;
      if (dot != nullptr) {
        for (int64_t i = 0; i < m; ++i) out[i * ldo + r] = dot(wr, xqp + i * nb, k) + b;
      } else {
        for (int64_t i = 0; i < m; ++i) out[i * ldo + r] = fdot(wr, x + i * ldx, k) + b;
      }
    }
  });
}

// 1..QKernels::x16_max activation rows against a weight's x16 copy (qrepack.h): the row groups of 16
// split over the threads.
void x16_gemm(const QKernels& kern, int32_t dtype, const void* pk, const float* x,
              int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
              int64_t k) {
  const int64_t nb = k / kQ8ABlock;
  thread_local std::vector<BlockQ8A> xq;
  xq.resize(static_cast<size_t>(m * nb));
  quantize_rows(kern, x, ldx, xq.data(), m, k);
  const BlockQ8A* xqp = xq.data();
  // Once here, not in every thread's chunk (at 16 threads the AMX tiles' copy of a batch-8
  // activation block was redone ~64 times a GEMM).
  const QKernels::X16Rows rows = kern.x16_rows(dtype);
  const void* prep = kern.x16_prep != nullptr ? kern.x16_prep(dtype, xqp, nb, m, k) : nullptr;
  const int64_t groups = (n + kX16 - 1) / kX16;
  const int team = team_size(m, n, k);
  const int64_t chunks = std::min<int64_t>(groups, 4 * team);
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [g0, g1] = share(groups, static_cast<int>(c), static_cast<int>(chunks), 1);
    rows(pk, g0, g1, n, xqp, nb, m, k, out, ldo, prep);
    if (bias != nullptr)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t r = g0 * kX16; r < std::min(n, g1 * kX16); ++r) out[i * ldo + r] += bias[r];
  });
}

void panel_gemm(const QKernels& kern, int32_t dtype, const char* w, int64_t wrb, const float* x,
                int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
                int64_t k) {
  const float beta = bias != nullptr ? 1.0f : 0.0f;
  if (bias != nullptr)
    for (int64_t r = 0; r < m; ++r) std::memcpy(out + r * ldo, bias, static_cast<size_t>(n) * 4);
  const int team = team_size(m, n, k);
  const int64_t panels = (n + kPanelRows - 1) / kPanelRows;
  parallel_for(panels, team, [&](int64_t pi) {
    thread_local std::vector<float> panel;
    panel.resize(static_cast<size_t>(kPanelRows * k));
    const int64_t p = pi * kPanelRows, rows = std::min(kPanelRows, n - p);
    for (int64_t j = 0; j < rows; ++j)
      kern.dequantize_row(dtype, w + (p + j) * wrb, panel.data() + j * k, k);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
                static_cast<blasint>(rows), static_cast<blasint>(k), 1.0f, x,
                static_cast<blasint>(ldx), panel.data(), static_cast<blasint>(k), beta, out + p,
                static_cast<blasint>(ldo));
  });
}

// fp32 activations: each weight row unpacked to fp32 (in registers for the 32-element formats)
// and dotted with every x row.
void precise_gemm(const QKernels& kern, int32_t dtype, const char* w, int64_t wrb, const float* x,
                  int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
                  int64_t k) {
  const int team = team_size(m, n, k);
  const int64_t chunks = std::min<int64_t>((n + 7) / 8, 4 * team);
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [r0, r1] = share(n, static_cast<int>(c), static_cast<int>(chunks), 8);
    for (int64_t r = r0; r < r1; ++r) {
      kern.fdot_rows(dtype, w + r * wrb, x, ldx, m, k, out + r, ldo);
      if (bias != nullptr)
        for (int64_t i = 0; i < m; ++i) out[i * ldo + r] += bias[r];
    }
  });
}

// The largest o[r] - slack * b[r] over [r0, r1), in 16 independent maxima (one running max is a
// serial chain); a NaN term never wins std::max.
float lower_end_max(const float* o, const float* b, int64_t r0, int64_t r1, float slack) {
  float lane[16];
  std::fill(lane, lane + 16, -INFINITY);
  int64_t r = r0;
  for (; r + 16 <= r1; r += 16)
    for (int j = 0; j < 16; ++j) lane[j] = std::max(lane[j], o[r + j] - slack * b[r + j]);
  float best = -INFINITY;
  for (; r < r1; ++r) best = std::max(best, o[r] - slack * b[r]);
  for (const float v : lane) best = std::max(best, v);
  return best;
}

// The LM head with int8 activations on (Q8_0 / Q4_0 / Q4_1 weights): every logit by integer dot
// products against int16 activations (HeadRows: about the int8 kernels' cost, a bound on the
// rounding error 258 times tighter), then every row that could still be the largest in fp32 (its
// logit + bound reaches the largest logit - bound; the bound widened by `slack` for the fp32
// rounding of both paths) recomputed by the fp32 path at batch 1. So each output row's argmax is
// the fp32 path's, with its fp32 logit, whatever the batch; the other logits keep the integer
// values, within their bound of fp32. Greedy answers are those of the fp32 head.
void head_gemm(const QKernels& kern, int32_t dtype, const char* w, int64_t wrb, const float* x,
               int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
               int64_t k) {
  const QKernels::HeadRows head = kern.head_rows(dtype);
  const int64_t nb = k / kQ8ABlock;
  thread_local std::vector<BlockQ16A> xq;
  thread_local std::vector<float> bound, floors;
  xq.resize(static_cast<size_t>(m * nb));
  bound.resize(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r) kern.quantize_row16(x + r * ldx, xq.data() + r * nb, k);
  const BlockQ16A* xqp = xq.data();
  float* bp = bound.data();
  const int team = team_size(m, n, k);
  // The head's x16 copy when the table reads it: one activation row (16 rows per vector), or
  // Q8_0 at 2..x16_head_max_rows (AMX tiles whose B is the copy).
  const QKernels::X16Head x16 = m == 1 ? kern.x16_head(dtype) : nullptr;
  const QKernels::X16HeadRows x16m =
      dtype == SABLE_DTYPE_Q8_0 && m >= 2 && m <= kern.x16_head_max_rows
          ? kern.q8_0_x16_head_rows
          : nullptr;
  const void* pk = x16 != nullptr || x16m != nullptr ? x16_copy(dtype, w, n, k) : nullptr;
  const int64_t units = pk != nullptr ? (n + kX16 - 1) / kX16 : n;
  const int64_t chunks = std::min<int64_t>(pk != nullptr ? units : (n + 7) / 8, 4 * team);
  auto rows_of = [&](int64_t c) {  // chunk c's output rows
    const auto [u0, u1] = share(units, static_cast<int>(c), static_cast<int>(chunks), pk ? 1 : 8);
    return pk != nullptr ? std::pair{u0 * kX16, std::min(n, u1 * kX16)} : std::pair{u0, u1};
  };
  // Either path's fp32 sums round by at most (terms + 4) * 2^-24 of their sum of |terms|, which
  // is at most 65534 times the bound (|activation| <= 32767 steps, |w| within the bound's L).
  const float slack = 1.001f + 2.0f * 65534.0f * static_cast<float>(k + nb + 4) * 0x1p-24f;
  // Each chunk also leaves, per activation row, the largest lower end (logit - slack * bound) of
  // its rows while they are in cache: the rows' floor is the largest of the chunks' (computed on
  // the calling thread over all n rows, it was 3.8 % of a Qwen2.5-0.5B batch-8 step at one
  // thread, serial at any thread count).
  floors.assign(static_cast<size_t>(chunks * m), -INFINITY);
  float* fp = floors.data();  // thread_local: the workers reach it through this pointer
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [r0, r1] = rows_of(c);
    if (pk != nullptr && m == 1) {
      x16(pk, r0 / kX16, (r1 + kX16 - 1) / kX16, n, xqp, k, out, bp);
    } else if (pk != nullptr) {
      x16m(pk, r0 / kX16, (r1 + kX16 - 1) / kX16, n, xqp, nb, m, k, out, ldo, bp, n);
    } else {
      head(w + r0 * wrb, wrb, r1 - r0, xqp, nb, m, k, out + r0, ldo, bp + r0, n);
    }
    for (int64_t i = 0; i < m; ++i) {
      float* o = out + i * ldo;
      if (bias != nullptr)
        for (int64_t r = r0; r < r1; ++r) o[r] += bias[r];
      fp[c * m + i] = lower_end_max(o, bp + i * n, r0, r1, slack);
    }
  });
  for (int64_t c = 1; c < chunks; ++c)  // the rows' floors into chunk 0's
    for (int64_t i = 0; i < m; ++i) fp[i] = std::max(fp[i], fp[c * m + i]);
  // Every row that could be its activation row's argmax (its upper end reaches the floor; a NaN
  // or infinite floor: every row) recomputed in fp32, each chunk over its own rows.
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [r0, r1] = rows_of(c);
    for (int64_t i = 0; i < m; ++i) {
      float* o = out + i * ldo;
      const float* b = bp + i * n;
      const float f = fp[i];
      for (int64_t r = r0; r < r1; ++r) {
        if (std::isfinite(f) && o[r] + slack * b[r] < f) continue;
        kern.fdot_rows(dtype, w + r * wrb, x + i * ldx, ldx, 1, k, o + r, 1);
        if (bias != nullptr) o[r] += bias[r];
      }
    }
  });
}

}  // namespace

void packed_gemm(int32_t dtype, const void* w, const float* x, int64_t ldx, const float* bias,
                 float* out, int64_t ldo, int64_t m, int64_t n, int64_t k, bool precise) {
  if (m == 0 || n == 0) return;
  const QKernels& kern = best_kernels();
  const char* wp = static_cast<const char*>(w);
  const int64_t wrb = row_bytes(dtype, k);
  const bool int8 = int8_activations();
  if (int8 && !precise && m <= kern.x16_max(dtype) && kern.x16_rows(dtype) != nullptr)
    if (const void* pk = x16_copy(dtype, w, n, k))
      return x16_gemm(kern, dtype, pk, x, ldx, bias, out, ldo, m, n, k);
  if (precise && int8 && m < kPanelMinRows && kern.head_rows(dtype) != nullptr)
    head_gemm(kern, dtype, wp, wrb, x, ldx, bias, out, ldo, m, n, k);
  else if ((precise || !int8) && m < kPanelMinRows && sable_dtype_block_elems(dtype) > 0)
    precise_gemm(kern, dtype, wp, wrb, x, ldx, bias, out, ldo, m, n, k);
  else if (m >= kPanelMinRows && !(int8 && !precise && kern.int8_tiles && kern.qdot_rows(dtype)))
    panel_gemm(kern, dtype, wp, wrb, x, ldx, bias, out, ldo, m, n, k);
  else
    int8_gemm(kern, dtype, wp, wrb, x, ldx, bias, out, ldo, m, n, k);
}

void dequantize_rows(int32_t dtype, const void* w, int64_t k, const int32_t* ids, int64_t count,
                     float* out, int64_t ldo) {
  const QKernels& kern = best_kernels();
  const int64_t wrb = row_bytes(dtype, k);
  for (int64_t i = 0; i < count; ++i)
    kern.dequantize_row(dtype, static_cast<const char*>(w) + (ids ? ids[i] : i) * wrb,
                        out + i * ldo, k);
}

}  // namespace sable::ops::cpu
