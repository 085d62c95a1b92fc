// The scalar kernel table: plain C++ for every format, the reference the SIMD tables are tested
// against and the fallback on CPUs without AVX2. Each dot computes, per block, the same integer
// sum the SIMD kernels compute, then scales it in fp32; only the order of the fp32 additions
// differs between tables. Also the table choice by CPU features (best_kernels).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "core/ops/cpu/qkernels.h"
#include "core/ops/cpu/silu_lanes.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace sable::ops::cpu {
namespace {

// x[k] -> blocks of 32 integers within +-kMax and one scale (BlockQ8A: int8, BlockQ16A: int16).
template <typename Block, int kMax>
void quantize_blocks(const float* x, Block* out, int64_t k) {
  for (int64_t b = 0; b < k / kQ8ABlock; ++b) {
    const float* v = x + b * kQ8ABlock;
    float amax = 0.0f;
    for (int j = 0; j < kQ8ABlock; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / static_cast<float>(kMax), id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQ8ABlock; ++j) {
      const float q = std::fmin(std::fmax(std::nearbyint(v[j] * id), -kMax), kMax);
      out[b].qs[j] = static_cast<std::remove_reference_t<decltype(out[b].qs[0])>>(q);
      sum += out[b].qs[j];
    }
    out[b].d = d;
    out[b].s = d * static_cast<float>(sum);
  }
}

void quantize_row(const float* x, BlockQ8A* out, int64_t k) {
  quantize_blocks<BlockQ8A, 127>(x, out, k);
}

float dot_q8_0(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ8_0*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 32; ++i) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b[i].qs[j] * x[i].qs[j];
    acc += weights::f16_to_f32(b[i].d) * x[i].d * static_cast<float>(sum);
  }
  return acc;
}

// Sum over a block of nibbles (low: elements 0..15, high: 16..31) times the activations.
int nibble_dot(const uint8_t* qs, const int8_t* x) {
  int sum = 0;
  for (int j = 0; j < 16; ++j) sum += (qs[j] & 0xF) * x[j] + (qs[j] >> 4) * x[j + 16];
  return sum;
}

float dot_q4_0(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ4_0*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 32; ++i) {
    const float d = weights::f16_to_f32(b[i].d);
    // d * sum((q - 8) * xq) * xd = d * (xd * sum(q * xq) - 8 * s)
    acc += d * (x[i].d * static_cast<float>(nibble_dot(b[i].qs, x[i].qs)) - 8.0f * x[i].s);
  }
  return acc;
}

float dot_q4_1(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ4_1*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 32; ++i) {
    acc += weights::f16_to_f32(b[i].d) * x[i].d * static_cast<float>(nibble_dot(b[i].qs, x[i].qs)) +
           weights::f16_to_f32(b[i].m) * x[i].s;
  }
  return acc;
}

// Q4_K and Q5_K share their layout of 4 chunks of 64: the low nibbles of 32 bytes are sub-block
// 2c, the high nibbles sub-block 2c + 1; Q5_K adds bit 2c / 2c + 1 of qh[l] as the fifth bit.
template <bool kFive>
float dot_k45(const uint16_t d16, const uint16_t dmin16, const uint8_t* scales, const uint8_t* qh,
              const uint8_t* qs, const BlockQ8A* x) {
  const float d = weights::f16_to_f32(d16), dmin = weights::f16_to_f32(dmin16);
  float acc = 0.0f;
  for (int c = 0; c < 4; ++c) {
    for (int half = 0; half < 2; ++half) {
      const int sb = 2 * c + half;
      uint8_t sc, m;
      k4_scale_min(sb, scales, &sc, &m);
      int sum = 0;
      for (int l = 0; l < 32; ++l) {
        int q = half == 0 ? (qs[32 * c + l] & 0xF) : (qs[32 * c + l] >> 4);
        if constexpr (kFive) q += ((qh[l] >> sb) & 1) << 4;
        sum += q * x[sb].qs[l];
      }
      acc += d * static_cast<float>(sc) * x[sb].d * static_cast<float>(sum) -
             dmin * static_cast<float>(m) * x[sb].s;
    }
  }
  return acc;
}

float dot_q4_k(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ4_K*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i)
    acc += dot_k45<false>(b[i].d, b[i].dmin, b[i].scales, nullptr, b[i].qs, x + 8 * i);
  return acc;
}

float dot_q5_k(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ5_K*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i)
    acc += dot_k45<true>(b[i].d, b[i].dmin, b[i].scales, b[i].qh, b[i].qs, x + 8 * i);
  return acc;
}

// Q6_K element e (0..255) as its unsigned 6-bit value (the weight is d * scale * (q - 32)).
inline int q6_value(const BlockQ6_K& b, int e) {
  const int n = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
  const uint8_t* ql = b.ql + 64 * n;
  const uint8_t* qh = b.qh + 32 * n;
  const uint8_t byte = ql[l + (quarter == 1 || quarter == 3 ? 32 : 0)];
  const int low = quarter < 2 ? (byte & 0xF) : (byte >> 4);
  const int high = (qh[l] >> (2 * quarter)) & 3;
  return low | (high << 4);
}

float dot_q6_k(const void* w, const BlockQ8A* x, int64_t k) {
  const auto* b = static_cast<const BlockQ6_K*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i) {
    const float d = weights::f16_to_f32(b[i].d);
    for (int sb = 0; sb < 8; ++sb) {  // activation block sb spans scale groups 2sb and 2sb + 1
      int sum = 0;
      for (int l = 0; l < 32; ++l) {
        const int e = 32 * sb + l;
        sum += b[i].scales[e / 16] * (q6_value(b[i], e) - 32) * x[8 * i + sb].qs[l];
      }
      acc += d * x[8 * i + sb].d * static_cast<float>(sum);
    }
  }
  return acc;
}

float bf16_value(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float dot_bf16(const void* w, const float* x, int64_t k) {
  const auto* p = static_cast<const uint16_t*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += bf16_value(p[i]) * x[i];
  return acc;
}

float dot_f16(const void* w, const float* x, int64_t k) {
  const auto* p = static_cast<const uint16_t*>(w);
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += weights::f16_to_f32(p[i]) * x[i];
  return acc;
}

template <float (*kDot)(const void*, const BlockQ8A*, int64_t)>
void rows_of(const void* w, int64_t wrb, int64_t n, const BlockQ8A* x, int64_t xs, int64_t m,
             int64_t k, float* out, int64_t ldo) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < m; ++i)
      out[i * ldo + r] = kDot(static_cast<const char*>(w) + r * wrb, x + i * xs, k);
}

// The block scale and min of block i of a Q8_0 / Q4_0 / Q4_1 row, as floats.
template <int32_t kDtype>
void block_scale(const void* w, int64_t i, float* d, float* m) {
  *m = 0.0f;
  if constexpr (kDtype == SABLE_DTYPE_Q8_0)
    *d = weights::f16_to_f32(static_cast<const BlockQ8_0*>(w)[i].d);
  if constexpr (kDtype == SABLE_DTYPE_Q4_0)
    *d = weights::f16_to_f32(static_cast<const BlockQ4_0*>(w)[i].d);
  if constexpr (kDtype == SABLE_DTYPE_Q4_1) {
    *d = weights::f16_to_f32(static_cast<const BlockQ4_1*>(w)[i].d);
    *m = weights::f16_to_f32(static_cast<const BlockQ4_1*>(w)[i].m);
  }
}

void quantize_row16(const float* x, BlockQ16A* out, int64_t k) {
  quantize_blocks<BlockQ16A, 32767>(x, out, k);
}

// Element j (0..31) of a Q8_0 / Q4_0 / Q4_1 block as its stored integer (nibbles unsigned).
template <int32_t kDtype>
int block_q(const void* w, int64_t i, int j) {
  if constexpr (kDtype == SABLE_DTYPE_Q8_0) return static_cast<const BlockQ8_0*>(w)[i].qs[j];
  const uint8_t* qs = kDtype == SABLE_DTYPE_Q4_0 ? static_cast<const BlockQ4_0*>(w)[i].qs
                                                 : static_cast<const BlockQ4_1*>(w)[i].qs;
  return j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
}

template <int32_t kDtype>
void head_rows_of(const void* w, const BlockQ16A* x, int64_t xs, int64_t m, int64_t k, float* out,
                  int64_t os, float* bound, int64_t bs) {
  for (int64_t r = 0; r < m; ++r) {
    const BlockQ16A* xr = x + r * xs;
    float acc = 0.0f, b = 0.0f;
    for (int64_t i = 0; i < k / 32; ++i) {
      float d, mn;
      block_scale<kDtype>(w, i, &d, &mn);
      int64_t sum = 0;
      for (int j = 0; j < 32; ++j) sum += block_q<kDtype>(w, i, j) * xr[i].qs[j];
      const float dot = xr[i].d * static_cast<float>(sum);
      if constexpr (kDtype == SABLE_DTYPE_Q8_0) acc += d * dot;
      if constexpr (kDtype == SABLE_DTYPE_Q4_0) acc += d * (dot - 8.0f * xr[i].s);
      if constexpr (kDtype == SABLE_DTYPE_Q4_1) acc += d * dot + mn * xr[i].s;
      b += block_error_scale(kDtype, d, mn) * xr[i].d;
    }
    out[r * os] = acc;
    bound[r * bs] = b;
  }
}

template <int32_t kDtype>
void head_rows_n(const void* w, int64_t wrb, int64_t n, const BlockQ16A* x, int64_t xs, int64_t m,
                 int64_t k, float* out, int64_t ldo, float* bound, int64_t ldb) {
  for (int64_t r = 0; r < n; ++r)
    head_rows_of<kDtype>(static_cast<const char*>(w) + r * wrb, x, xs, m, k, out + r, ldo,
                         bound + r, ldb);
}

void dequantize_row(int32_t dtype, const void* w, float* out, int64_t k) {
  switch (dtype) {
    case SABLE_DTYPE_BF16:
      for (int64_t i = 0; i < k; ++i) out[i] = bf16_value(static_cast<const uint16_t*>(w)[i]);
      return;
    case SABLE_DTYPE_F16:
      for (int64_t i = 0; i < k; ++i) out[i] = weights::f16_to_f32(static_cast<const uint16_t*>(w)[i]);
      return;
    case SABLE_DTYPE_Q8_0:
      for (int64_t i = 0; i < k / 32; ++i) {
        const auto& b = static_cast<const BlockQ8_0*>(w)[i];
        const float d = weights::f16_to_f32(b.d);
        for (int j = 0; j < 32; ++j) out[32 * i + j] = d * static_cast<float>(b.qs[j]);
      }
      return;
    case SABLE_DTYPE_Q4_0:
    case SABLE_DTYPE_Q4_1:
      for (int64_t i = 0; i < k / 32; ++i) {
        const bool one = dtype == SABLE_DTYPE_Q4_1;
        const auto* b0 = static_cast<const BlockQ4_0*>(w) + i;
        const auto* b1 = static_cast<const BlockQ4_1*>(w) + i;
        const float d = weights::f16_to_f32(one ? b1->d : b0->d);
        const float m = one ? weights::f16_to_f32(b1->m) : -8.0f * d;
        const uint8_t* qs = one ? b1->qs : b0->qs;
        for (int j = 0; j < 16; ++j) {
          out[32 * i + j] = d * static_cast<float>(qs[j] & 0xF) + m;
          out[32 * i + j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
        }
      }
      return;
    case SABLE_DTYPE_Q4_K:
    case SABLE_DTYPE_Q5_K:
      for (int64_t i = 0; i < k / 256; ++i) {
        const bool five = dtype == SABLE_DTYPE_Q5_K;
        const auto* b4 = static_cast<const BlockQ4_K*>(w) + i;
        const auto* b5 = static_cast<const BlockQ5_K*>(w) + i;
        const float d = weights::f16_to_f32(five ? b5->d : b4->d);
        const float dmin = weights::f16_to_f32(five ? b5->dmin : b4->dmin);
        const uint8_t* scales = five ? b5->scales : b4->scales;
        const uint8_t* qs = five ? b5->qs : b4->qs;
        for (int sb = 0; sb < 8; ++sb) {
          uint8_t sc, m;
          k4_scale_min(sb, scales, &sc, &m);
          const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
          for (int l = 0; l < 32; ++l) {
            const uint8_t byte = qs[32 * (sb / 2) + l];
            int q = sb % 2 == 0 ? (byte & 0xF) : (byte >> 4);
            if (five) q += ((b5->qh[l] >> sb) & 1) << 4;
            out[256 * i + 32 * sb + l] = dl * static_cast<float>(q) - ml;
          }
        }
      }
      return;
    case SABLE_DTYPE_Q6_K:
      for (int64_t i = 0; i < k / 256; ++i) {
        const auto& b = static_cast<const BlockQ6_K*>(w)[i];
        const float d = weights::f16_to_f32(b.d);
        for (int e = 0; e < 256; ++e)
          out[256 * i + e] =
              d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q6_value(b, e) - 32);
      }
      return;
    default:
      return;
  }
}

void fdot_rows(int32_t dtype, const void* w, const float* x, int64_t ldx, int64_t m, int64_t k,
               float* out, int64_t os) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(k));
  dequantize_row(dtype, w, row.data(), k);
  for (int64_t j = 0; j < m; ++j) {
    float acc = 0.0f;
    for (int64_t i = 0; i < k; ++i) acc += row[static_cast<size_t>(i)] * x[j * ldx + i];
    out[j * os] = acc;
  }
}

#if defined(__x86_64__)
// One CPUID feature bit (register 0..3: eax, ebx, ecx, edx). F16C and AVX-VNNI are read this way:
// clang 14's __builtin_cpu_supports does not know their names.
bool cpuid_bit(unsigned leaf, unsigned subleaf, int reg, unsigned bit) {
  unsigned r[4] = {};
  if (!__get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3])) return false;
  return ((r[reg] >> bit) & 1u) != 0;
}
#endif

}  // namespace

QKernels::QDot QKernels::qdot(int32_t dtype) const {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: return q8_0;
    case SABLE_DTYPE_Q4_0: return q4_0;
    case SABLE_DTYPE_Q4_1: return q4_1;
    case SABLE_DTYPE_Q4_K: return q4_k;
    case SABLE_DTYPE_Q5_K: return q5_k;
    case SABLE_DTYPE_Q6_K: return q6_k;
    default: return nullptr;
  }
}

QKernels::QDotRows QKernels::qdot_rows(int32_t dtype) const {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: return q8_0_rows;
    case SABLE_DTYPE_Q4_0: return q4_0_rows;
    case SABLE_DTYPE_Q4_1: return q4_1_rows;
    default: return nullptr;
  }
}

QKernels::HeadRows QKernels::head_rows(int32_t dtype) const {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: return q8_0_head;
    case SABLE_DTYPE_Q4_0: return q4_0_head;
    case SABLE_DTYPE_Q4_1: return q4_1_head;
    default: return nullptr;
  }
}

QKernels::X16Rows QKernels::x16_rows(int32_t dtype) const {
  switch (dtype) {
    case SABLE_DTYPE_Q8_0: return q8_0_x16;
    case SABLE_DTYPE_Q4_0: return q4_0_x16;
    case SABLE_DTYPE_Q4_1: return q4_1_x16;
    default: return nullptr;
  }
}

QKernels::FDot QKernels::fdot(int32_t dtype) const {
  if (dtype == SABLE_DTYPE_BF16) return bf16;
  if (dtype == SABLE_DTYPE_F16) return f16;
  return nullptr;
}

namespace {
// SiLU four lanes wide (one SSE / NEON register on the baseline build; silu_lanes.h).
void silu_row4(const float* x, const float* u, float* y, int64_t n) {
  silu_row_lanes<lanes4::F4, lanes4::I4>(x, u, y, n);
}
}  // namespace

const QKernels& scalar_kernels() {
  static const QKernels k = [] {
    QKernels t{"scalar",           &quantize_row,       &dot_q8_0,
               &dot_q4_0,          &dot_q4_1,           &dot_q4_k,
               &dot_q5_k,          &dot_q6_k,           &dot_bf16,
               &dot_f16,           &rows_of<&dot_q8_0>, &rows_of<&dot_q4_0>,
               &rows_of<&dot_q4_1>, false,              &dequantize_row,
               &fdot_rows,
               &quantize_row16,
               &head_rows_n<SABLE_DTYPE_Q8_0>,
               &head_rows_n<SABLE_DTYPE_Q4_0>,
               &head_rows_n<SABLE_DTYPE_Q4_1>};
    t.silu_row = &silu_row4;
    return t;
  }();
  return k;
}

std::vector<const QKernels*> usable_kernels() {
  std::vector<const QKernels*> out{&scalar_kernels()};
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool f16c = cpuid_bit(1, 0, 2, 29);     // CPUID.1:ECX[29]
  const bool avxvnni = cpuid_bit(7, 1, 0, 4);   // CPUID.(7,1):EAX[4]
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  if (avx2) out.push_back(&avx2_kernels());
  if (avx2 && avxvnni) out.push_back(&avxvnni_kernels());
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512vnni") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  if (avx512) out.push_back(&avx512vnni_kernels());
  const bool amx = cpuid_bit(7, 0, 3, 24) && cpuid_bit(7, 0, 3, 25);  // CPUID.7:EDX[24] tile, [25] int8
  if (avx512 && amx && amx_usable()) out.push_back(&amx_kernels());
#endif
  return out;
}

// The widest table the CPU supports, or the one SABLE_CPU_KERNELS names (scalar, avx2, avxvnni,
// avx512vnni, amx) when the CPU supports it: an A/B switch for hosts where the widest is not the fastest.
const QKernels& best_kernels() {
  static const QKernels* best = [] {
    const auto usable = usable_kernels();
    if (const char* want = std::getenv("SABLE_CPU_KERNELS"); want && *want) {
      for (const QKernels* k : usable)
        if (std::string_view(k->name) == want) return k;
      std::fprintf(stderr, "SABLE_CPU_KERNELS=%s: not a kernel table this CPU runs; using %s\n", want,
                   usable.back()->name);
    }
    return usable.back();
  }();
  return *best;
}

}  // namespace sable::ops::cpu
