// The GEMM over packed weights (block-quantized, BF16, F16): out[M,N] = x[M,K] · w[N,K]ᵀ (+bias).
//
// Small M (decode): with int8 activations on (cpu_threads.h; the runner's default), the activation
// rows are quantized once to int8 blocks (BlockQ8A) and every weight row is dotted with them by the
// best kernel table of this CPU, the weight row read once for all M rows while it sits in L1 (at
// M = 1, two weight rows at a time); otherwise (and always for a kPreciseActivations weight, the
// LM head) each weight row is unpacked to fp32 and dotted with the fp32 rows. BF16/F16 rows are
// always widened against fp32 activations. Large M (prefill): panels of weight rows are unpacked
// to fp32 and multiplied by OpenBLAS, whose blocked sgemm wins once the unpacking is shared by
// enough rows. Either way the output rows (N) are split in chunks over the CPU ops' thread pool.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qkernels.h"
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

void int8_gemm(const QKernels& kern, int32_t dtype, const char* w, int64_t wrb, const float* x,
               int64_t ldx, const float* bias, float* out, int64_t ldo, int64_t m, int64_t n,
               int64_t k) {
  const QKernels::QDot dot = kern.qdot(dtype);
  const QKernels::QDotRows dot_rows = kern.qdot_rows(dtype);
  const QKernels::QDotPair dot_pair = m == 1 ? kern.qdot_pair(dtype) : nullptr;
  const QKernels::FDot fdot = kern.fdot(dtype);
  const int64_t nb = k / kQ8ABlock;
  thread_local std::vector<BlockQ8A> xq;
  if (dot != nullptr) {
    xq.resize(static_cast<size_t>(m * nb));
    for (int64_t r = 0; r < m; ++r) kern.quantize_row(x + r * ldx, xq.data() + r * nb, k);
  }
  const BlockQ8A* xqp = xq.data();
  const int team = team_size(m, n, k);
  const int64_t chunks = std::min<int64_t>((n + 7) / 8, 4 * team);
  parallel_for(chunks, team, [&](int64_t c) {
    const auto [r0, r1] = share(n, static_cast<int>(c), static_cast<int>(chunks), 8);
    int64_t r = r0;
    if (dot_pair != nullptr) {  // one activation row: weight rows in pairs
      for (; r + 2 <= r1; r += 2) {
        dot_pair(w + r * wrb, w + (r + 1) * wrb, xqp, k, out + r);
        if (bias != nullptr) {
          out[r] += bias[r];
          out[r + 1] += bias[r + 1];
        }
      }
    }
    for (; r < r1; ++r) {
      const char* wr = w + r * wrb;
      const float b = bias != nullptr ? bias[r] : 0.0f;
      if (dot_rows != nullptr) {
        dot_rows(wr, xqp, nb, m, k, out + r, ldo);
        if (bias != nullptr)
          for (int64_t i = 0; i < m; ++i) out[i * ldo + r] += b;
      } else if (dot != nullptr) {
        for (int64_t i = 0; i < m; ++i) out[i * ldo + r] = dot(wr, xqp + i * nb, k) + b;
      } else {
        for (int64_t i = 0; i < m; ++i) out[i * ldo + r] = fdot(wr, x + i * ldx, k) + b;
      }
    }
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

}  // namespace

void packed_gemm(int32_t dtype, const void* w, const float* x, int64_t ldx, const float* bias,
                 float* out, int64_t ldo, int64_t m, int64_t n, int64_t k, bool precise) {
  if (m == 0 || n == 0) return;
  const QKernels& kern = best_kernels();
  const char* wp = static_cast<const char*>(w);
  const int64_t wrb = row_bytes(dtype, k);
  if ((precise || !int8_activations()) && m < kPanelMinRows && sable_dtype_block_elems(dtype) > 0)
    precise_gemm(kern, dtype, wp, wrb, x, ldx, bias, out, ldo, m, n, k);
  else if (m >= kPanelMinRows)
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
