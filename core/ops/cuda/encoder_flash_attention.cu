// Encoder attention on tensor cores (ops attention_bidirectional, bf16): the FlashAttention-2
// scheme without a causal mask, for the vision tower's full and windowed blocks and the BERT-style
// encoders. The plain kernel (encoder_attention_kernels.cu) runs one block per (token, head) with
// scalar dot products and finds its sequence by walking the positions; at the 7B vision tower's
// 4,900-patch images that was most of a 0.76 s time to first token (bench/NOTES.md, v8).
//
// A CTA takes 64 consecutive query tokens of one head (4 warps x 16 rows) and walks the keys of
// the sequences those rows belong to in tiles of 64 (K and V double-buffered by cp.async), S = Q·Kᵀ
// and O += P·V by mma.sync m16n8k16 with fp32 accumulators and an online softmax in the log2
// domain. Sequences are runs of positions 0, 1, 2, ... (a row's sequence starts at t - pos[t] and
// ends at the next break in the run); a tile of rows may straddle sequences (vision windows of
// 64 patches need not align with the tiles), so every score is masked by its own row's range.
// Shared memory rows are padded to kD + 8 elements, which keeps ldmatrix conflict-free for
// kD = 64, 80, 128. Grid size depends only on T and the head count (capturable).
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"
#include "sable/cuda/mma.cuh"

namespace sable::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;
using sable::cuda::cp_async16;

constexpr int kRows = 64;  // query tokens per CTA, 16 per warp
constexpr int kKeys = 64;  // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr float kLog2e = 1.4426950408889634f;

template <int kD>
constexpr size_t smem_bytes() {  // Q + two buffers each of K and V
  return static_cast<size_t>(kRows + 4 * kKeys) * (kD + 8) * sizeof(bf16);
}

// Rows [row0, row0 + 64) of a [*, kD] matrix `stride` elements apart into a padded smem tile;
// rows at or past `limit` are zero-filled.
template <int kD>
__device__ __forceinline__ void load_rows(bf16* dst, const bf16* src, int64_t stride, int64_t row0,
                                          int64_t limit) {
  constexpr int kChunks = kD / 8;  // 16-byte pieces of a row
  for (int i = threadIdx.x; i < 64 * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = row0 + r < limit;
    cp_async16(dst + r * (kD + 8) + c, src + (valid ? (row0 + r) * stride : 0) + c, valid);
  }
}

template <int kD>
__global__ void __launch_bounds__(kThreads) flash_bidirectional_kernel(EncoderAttentionArgs a) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  constexpr int kLd = kD + 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_k = s_q + kRows * kLd;      // [2][kKeys][kLd]
  bf16* s_v = s_k + 2 * kKeys * kLd;  // [2][kKeys][kLd]
  __shared__ int s_break[kRows];      // a sequence ends right after row i (or the rows end)
  __shared__ int s_end[kRows];
  __shared__ int s_begin[kRows];
  __shared__ int s_after;  // the first sequence end past the tile's rows

  const int tokens = static_cast<int>(a.tokens);
  const int q0 = blockIdx.x * kRows;
  const int head = blockIdx.y, kv_head = head / a.group;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t* pos = a.positions;

  // Where each row's sequence begins and ends.
  if (tid < kRows) {
    const int t = q0 + tid, next = t + 1;
    s_break[tid] = next >= tokens || pos[next] != pos[t] + 1;
    s_begin[tid] = t < tokens ? t - pos[t] : 0;
  }
  if (tid == 0) s_after = tokens;
  __syncthreads();
  if (!s_break[kRows - 1]) {  // the last rows' sequence runs on past the tile: find its end
    for (int base = q0 + kRows; base < tokens; base += kThreads) {
      const int j = base + tid;  // a break after j: the sequence ends at j + 1
      const bool brk = j < tokens && (j + 1 >= tokens || pos[j + 1] != pos[j] + 1);
      if (brk) atomicMin(&s_after, j + 1);
      if (__syncthreads_or(brk)) break;
    }
  }
  __syncthreads();
  if (tid == 0) {
    int end = s_after;
    for (int i = kRows - 1; i >= 0; --i) {
      if (s_break[i]) end = q0 + i + 1;
      s_end[i] = end;
    }
  }
  __syncthreads();
  const int last_row = min(kRows, tokens - q0) - 1;
  const int k_begin = s_begin[0], k_end = s_end[last_row];
  const int n_tiles = (k_end - k_begin + kKeys - 1) / kKeys;

  const bf16* q = static_cast<const bf16*>(a.q) + head * a.q_head_stride;
  const bf16* k = static_cast<const bf16*>(a.k) + kv_head * a.k_head_stride;
  const bf16* v = static_cast<const bf16*>(a.v) + kv_head * a.v_head_stride;
  load_rows<kD>(s_q, q, a.q_stride, q0, tokens);
  load_rows<kD>(s_k, k, a.k_stride, k_begin, k_end);
  load_rows<kD>(s_v, v, a.v_stride, k_begin, k_end);
  sable::cuda::cp_async_commit();

  // This lane's two rows (g and g + 8 of the warp's 16) and their key ranges.
  const int row_a = warp * 16 + (lane >> 2), row_b = row_a + 8;
  const int beg[2] = {s_begin[row_a], s_begin[row_b]};
  const int end[2] = {s_end[row_a], s_end[row_b]};
  const float scale = a.scale * kLog2e;

  uint32_t qf[kD / 16][4];
  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      const int next = k_begin + (j + 1) * kKeys;
      load_rows<kD>(s_k + (buf ^ 1) * kKeys * kLd, k, a.k_stride, next, k_end);
      load_rows<kD>(s_v + (buf ^ 1) * kKeys * kLd, v, a.v_stride, next, k_end);
      sable::cuda::cp_async_commit();
      sable::cuda::cp_async_wait<1>();
    } else {
      sable::cuda::cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < kD / 16; ++ks)
        sable::cuda::ldmatrix_x4(qf[ks],
                                 s_q + (warp * 16 + (lane & 15)) * kLd + ks * 16 + (lane >> 4) * 8);
    }
    const bf16* tk = s_k + buf * kKeys * kLd;
    const bf16* tv = s_v + buf * kKeys * kLd;

    // S [16 x 64] = Q · Kᵀ for the warp's rows.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
#pragma unroll
      for (int n2 = 0; n2 < kKeys / 16; ++n2) {
        uint32_t kf[4];
        sable::cuda::ldmatrix_x4(kf, tk + (n2 * 16 + (lane & 7) + (lane >> 4) * 8) * kLd + ks * 16 +
                                         ((lane >> 3) & 1) * 8);
        sable::cuda::mma_bf16(s[2 * n2], qf[ks], kf[0], kf[1]);
        sable::cuda::mma_bf16(s[2 * n2 + 1], qf[ks], kf[2], kf[3]);
      }
    }
    // Scale into the log2 domain, mask by each row's sequence, online softmax per row.
    const int key0 = k_begin + j * kKeys + 2 * (lane & 3);
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + n * 8 + (e & 1), hf = e >> 1;
        s[n][e] = key >= beg[hf] && key < end[hf] ? s[n][e] * scale : -INFINITY;
      }
    sable::cuda::online_softmax<kKeys / 8, kD / 8>(s, m, l, o);
    // O += P · V: P's accumulators become A fragments 16 keys at a time.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint32_t pa[4] = {sable::cuda::pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                              sable::cuda::pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                              sable::cuda::pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              sable::cuda::pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dn = 0; dn < kD / 16; ++dn) {
        uint32_t vf[4];
        sable::cuda::ldmatrix_x4_trans(
            vf,
            tv + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd + dn * 16 + (lane >> 4) * 8);
        sable::cuda::mma_bf16(o[2 * dn], pa, vf[0], vf[1]);
        sable::cuda::mma_bf16(o[2 * dn + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // the next iteration's copy overwrites this buffer
  }

  // Normalise and store the lane's two rows.
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    float sum = l[hf];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int t = q0 + (hf == 0 ? row_a : row_b);
    if (t >= tokens) continue;
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    bf16* out =
        static_cast<bf16*>(a.out) + t * a.out_stride + head * a.out_head_stride + 2 * (lane & 3);
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(out + n * 8) =
          __floats2bfloat162_rn(o[n][2 * hf] * inv, o[n][2 * hf + 1] * inv);
  }
}

bool aligned16(const void* p, int64_t head_offset_elems) {
  return (reinterpret_cast<uintptr_t>(p) % 16 == 0) && head_offset_elems % 8 == 0;
}

template <int kD>
cudaError_t launch_flash(const EncoderAttentionArgs& a, void* stream) {
  static const cudaError_t attr = cudaFuncSetAttribute(flash_bidirectional_kernel<kD>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(smem_bytes<kD>()));
  if (attr != cudaSuccess) return attr;
  const dim3 grid(static_cast<unsigned>((a.tokens + kRows - 1) / kRows),
                  static_cast<unsigned>(a.q_heads));
  return sable::cuda::launch(flash_bidirectional_kernel<kD>, grid, dim3(kThreads), smem_bytes<kD>(),
                             as_stream(stream), a);
}

}  // namespace

bool encoder_flash_attention(const EncoderAttentionArgs& a, void* stream, bool* launched) {
  *launched = false;
  static const bool enabled = [] {
    const char* e = std::getenv("SABLE_ENCODER_FLASH");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }();
  // 16-byte row pieces: every row start (strides and head offsets) a multiple of 8 elements.
  const bool fits = enabled && a.dtype == SABLE_DTYPE_BF16 &&
                    (a.head_dim == 64 || a.head_dim == 80 || a.head_dim == 128) && a.group >= 1 &&
                    a.q_heads >= 1 && a.q_heads <= 65535 && a.tokens >= 1 &&
                    a.tokens < INT_MAX / 2 && aligned16(a.q, a.q_stride) &&
                    aligned16(a.k, a.k_stride) && aligned16(a.v, a.v_stride) &&
                    a.q_head_stride % 8 == 0 && a.k_head_stride % 8 == 0 &&
                    a.v_head_stride % 8 == 0 && a.out_stride % 2 == 0 &&
                    a.out_head_stride % 2 == 0 && reinterpret_cast<uintptr_t>(a.out) % 4 == 0;
  if (!fits) return true;
  cudaError_t err = cudaSuccess;
  switch (a.head_dim) {
    case 64:
      err = launch_flash<64>(a, stream);
      break;
    case 80:
      err = launch_flash<80>(a, stream);
      break;
    default:
      err = launch_flash<128>(a, stream);
      break;
  }
  *launched = err == cudaSuccess;
  return err == cudaSuccess;
}

}  // namespace sable::ops::cuda
