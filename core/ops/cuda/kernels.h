// Launchers of Sable's own CUDA kernels, callable from host C++ without CUDA headers.
//
// All pointers are device pointers; every launch is ordered on `stream` (a cudaStream_t) and never
// synchronises with the host, so forwards that use them can be captured in CUDA graphs. dtype is a
// SableDType (F32, F16 or BF16 for float data). Row-major, contiguous unless a stride is given.
// Each launcher returns false when the combination is unsupported (the caller reports the error).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/ops/lora_batch.h"

namespace sable::ops::cuda {

// out[T, H] = table[ids[T], :]   (table and out share dtype)
bool embedding(const void* table, int32_t dtype, const int32_t* ids, int64_t tokens, int64_t hidden,
               int64_t vocab, void* out, void* stream);

// out[T, H] = table[ids[T] - first_id, :] for ids in [first_id, first_id + rows), zero rows for the
// others (one rank's lookup in a vocabulary-parallel embedding; table and out share dtype).
bool embedding_shard(const void* table, int32_t dtype, const int32_t* ids, int64_t tokens,
                     int64_t hidden, int64_t first_id, int64_t rows, void* out, void* stream);

// out[L, H] = x[rows[L], :], x rows `x_stride` elements apart.
bool gather_rows(const void* x, int32_t dtype, int64_t x_stride, const int32_t* rows, int64_t n,
                 int64_t hidden, void* out, void* stream);

// RMSNorm over rows of width H. With residual (may be null): residual += x; out = norm(residual).
// Row r of x starts at (r / inner) * x_stride + (r % inner) * inner_stride (inner = 1 for plain
// rows; per-head views of a fused projection pass inner = heads); out is contiguous.
bool rms_norm(const void* x, int64_t x_stride, int64_t inner, int64_t inner_stride, void* residual,
              const void* weight, int32_t dtype, int64_t rows, int64_t hidden, float eps,
              float weight_offset, void* out, void* stream);
// rms_norm of contiguous rows x [rows, H] (row stride H) plus a LoRA delta (fp32 [rows, H]): x is
// first made bf16(x + delta) and written back, as lora_apply_delta leaves it; then as rms_norm,
// bit for bit. False (nothing launched) for shapes the 16-byte kernel does not take, or f32.
bool rms_norm_delta(void* x, const float* delta, void* residual, const void* weight, int32_t dtype,
                    int64_t rows, int64_t hidden, float eps, float weight_offset, void* out,
                    void* stream);

// LayerNorm with optional weight/bias and the same residual convention.
bool layer_norm(const void* x, int64_t x_stride, void* residual, const void* weight,
                const void* bias, int32_t dtype, int64_t rows, int64_t hidden, float eps, void* out,
                void* stream);

// Rotary embedding in place. q: [T, Hq, D] with token stride q_stride and head stride D (either
// q or k may be null). cos_sin: [max_pos, rot_dim] F32 (cos | sin halves). style 0 neox, 1 interleaved.
bool rope(void* q, int64_t q_stride, int32_t q_heads, void* k, int64_t k_stride, int32_t k_heads,
          int32_t dtype, int32_t head_dim, int32_t rot_dim, const int32_t* positions,
          int64_t tokens, const float* cos_sin, int32_t style, void* stream);

// rope of the q and k heads of fused rows [q | k | v] (row stride ld, q_heads and kv_heads heads
// of head_dim) plus q|k|v's LoRA delta (fp32 [T, q_heads * D], then [T, kv_heads * D] twice):
// every column first made bf16(x + delta) and written back, as lora_apply_delta leaves it, then
// q and k rotated as rope does. False for odd dims.
bool rope_qkv_delta(void* qkv, int64_t ld, int32_t q_heads, int32_t kv_heads, const float* delta,
                    int32_t dtype, int32_t head_dim, int32_t rot_dim, const int32_t* positions,
                    int64_t tokens, const float* cos_sin, int32_t style, void* stream);

// Gated activation: x [T, 2I] = [gate | up] -> out [T, I] = act(gate) * up.
bool act_mul(int32_t act, const void* x, int32_t dtype, int64_t tokens, int64_t inter, void* out,
             void* stream);
// act_mul plus a LoRA delta of gate|up (fp32 [T, I] for gate, then [T, I] for up): gate and up are
// first made bf16(v + delta) and written back to x, as lora_apply_delta leaves them. False
// (nothing launched) for shapes the 16-byte kernel does not take.
bool act_mul_delta(int32_t act, void* x, const float* delta, int32_t dtype, int64_t tokens,
                   int64_t inter, void* out, void* stream);
// out = act(x), n elements.
bool activation(int32_t act, const void* x, int32_t dtype, int64_t n, void* out, void* stream);

// Binary elementwise on [rows, cols]: b broadcast when b_rows == 1 or b_cols == 1. op 0 add, 1 mul.
bool binary(int32_t op, const void* a, const void* b, int64_t b_rows, int64_t b_cols,
            int32_t dtype, int64_t rows, int64_t cols, void* out, void* stream);
// out = x * s; out = sigmoid(x).
bool scale(const void* x, float s, int32_t dtype, int64_t n, void* out, void* stream);
bool sigmoid(const void* x, int32_t dtype, int64_t n, void* out, void* stream);

// Strided copy of up to 4-D views (shapes equal, strides in elements), same dtype.
bool copy_strided(const void* src, const int64_t* src_strides, void* dst, const int64_t* dst_strides,
                  const int64_t* shape, int32_t ndim, int32_t dtype, void* stream);
// Contiguous dtype conversion between F32/F16/BF16/I32.
bool cast(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t n, void* stream);

// Skinny GEMM for decode: bf16 x [M <= 8, K] (rows ldx apart) · w [N, K]ᵀ (+ bias of the output
// dtype) -> out [M, N] bf16 or F32. Returns false (nothing launched) when the shape does not fit.
// accumulate: out += x · wᵀ (+ bias), the sum rounded once.
bool gemv_bf16(const void* x, int64_t ldx, const void* w, const void* bias, void* out,
               int32_t out_dtype, int64_t m, int64_t n, int64_t k, void* stream,
               bool accumulate = false);

// Whether the GEMV kernels load weights with ld.global.nc.L1::no_allocate.L2::256B instead of
// __ldg (default on since v6, bench/NOTES.md; SABLE_GEMV_HINT=0 turns it off for A/B runs).
bool gemv_cache_hint();
// Whether a skinny GEMM may issue its first loads of the bf16 weight w [n, k] before waiting for
// the predecessor (under PDL they overlap its tail) and before the fused norm's prologue: only
// for weights the model host registered (core/ops/weight_ranges.h: a w some kernel writes is never
// read early). On by default (v14: 0.5B batch 1 1.149 -> 1.017 ms on the H100);
// SABLE_GEMV_EARLY=0 for A/B runs.
bool gemv_early_loads(const void* w, int64_t n, int64_t k);
// The most warps one fused-GEMV task is split over along K (8; SABLE_GEMV_MAX_SPLITS=4 for A/B).
int gemv_max_splits();

// gemm_fused for decode (gemv_fused_kernels.cu): bf16 x [m, k] (rows ldx apart), w [n, k], out
// [m, n] (or [m, n/2] when gated) with rows ldo apart; bias bf16 [n] or null. The prologue RMS
// norm (norm_w [k] non-null) and one epilogue mode (rope on columns [0, rope_cols), or gated) plus
// accumulate, as SableGemmFusion describes. bf16 only; m <= kGemvFusedMaxM.
inline constexpr int kGemvFusedMaxM = 8;
struct GemvFusedArgs {
  enum Mode : int32_t { kPlain = 0, kRopeNeox = 1, kRopeInterleaved = 2, kGated = 3 };
  const void* x = nullptr;
  int64_t ldx = 0;
  const void* w = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
  int64_t ldo = 0;
  int64_t m = 0, n = 0, k = 0;
  const void* norm_w = nullptr;
  float eps = 0.0f, norm_offset = 0.0f;
  int32_t mode = kPlain;
  int32_t act = 0;
  int32_t accumulate = 0;
  int32_t rope_cols = 0, head_dim = 0, rot_dim = 0;
  const int32_t* positions = nullptr;
  const float* cos_sin = nullptr;
};
bool gemv_fused_supported(const GemvFusedArgs& args);
bool gemv_fused(const GemvFusedArgs& args, void* stream);

// Encoder attention without a cache (encoder_attention_kernels.cu): token t attends to every token
// of its sequence, the run of positions 0, 1, 2, ... around it. q/out [T, Hq, D], k/v [T, Hk, D]
// with the given token and head strides (elements, unit-stride dims); Hq = group * Hk; D <= 256.
struct EncoderAttentionArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  int64_t q_stride = 0, q_head_stride = 0, k_stride = 0, k_head_stride = 0;
  int64_t v_stride = 0, v_head_stride = 0, out_stride = 0, out_head_stride = 0;
  const int32_t* positions = nullptr;
  int64_t tokens = 0;
  int32_t q_heads = 0, group = 1, head_dim = 0, dtype = 0;
  float scale = 1.0f;
};
bool encoder_attention(const EncoderAttentionArgs& args, void* stream);
// The tensor-core path of encoder_attention for bf16 with head_dim 64, 80 or 128 and 16-byte
// aligned rows (SABLE_ENCODER_FLASH=0 turns it off). *launched says whether it ran; false return:
// a launch error.
bool encoder_flash_attention(const EncoderAttentionArgs& args, void* stream, bool* launched);

// out[T] = argmax over V of x[T, V] (ties: lowest index).
bool argmax(const void* x, int32_t dtype, int64_t rows, int64_t cols, int32_t* out, void* stream);

// MoE routing: logits [T, E] -> ids [T, k] I32, weights [T, k] F32 (softmax or sigmoid scores).
bool moe_route(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int32_t top_k,
               int32_t scoring, bool renormalize, float* weights, int32_t* ids, void* stream);


// Fused MoE experts (moe_kernels.cu), bf16 with fp32 accumulation:
// out[T, H] = sum_j weights[t, j] * down_e(act(gate_e(x[t])) * up_e(x[t])), e = ids[t, j].
// x [T, H] rows ldx apart; w_gate_up [E, 2I, H] ([gate | up] rows); w_down [E, H, I]; weights
// [T, k] F32; ids [T, k] I32 (an id outside [0, E) contributes nothing); out [T, H] contiguous.
// The scratch pointers come from the caller (the forward's arena) and must not alias anything
// else: offsets, tile_offsets [E+1] I32; perm, inv [T*k] I32; gate_up [T*k, 2I], act_out [T*k, I],
// y [T*k, H] bf16. Grid sizes depend only on T, k, E, H, I (CUDA-graph capturable).
// Returns false (nothing launched) for E outside [1, 1024] or sizes beyond int32 indexing.
struct MoeExpertsArgs {
  const void* x = nullptr;
  int64_t ldx = 0;
  const void* w_gate_up = nullptr;
  const void* w_down = nullptr;
  const float* weights = nullptr;
  const int32_t* ids = nullptr;
  int64_t tokens = 0;
  int32_t top_k = 0;
  int32_t experts = 0;
  int64_t hidden = 0;
  int64_t inter = 0;
  int32_t act = 0;  // SableActivation
  void* out = nullptr;
  int32_t* offsets = nullptr;
  int32_t* tile_offsets = nullptr;
  int32_t* perm = nullptr;
  int32_t* inv = nullptr;
  void* gate_up = nullptr;
  void* act_out = nullptr;
  void* y = nullptr;
};
bool moe_experts(const MoeExpertsArgs& args, void* stream);

// Expert-selection counting: counts[ids[i]] += 1 for the n ids in [0, experts) (int64 device
// counters of one layer, accumulated, never cleared here). experts <= 4096.
bool moe_count_experts(const int32_t* ids, int64_t n, int32_t experts, int64_t* counts,
                       void* stream);

// LoRA deltas of up to kLoraMaxStacked projections that read the same x (the `lora` and
// `lora_stacked` ops, lora_kernels.cu), over the step block's tiles (core/ops/lora_batch.h): for
// each tile (slot s and up to kLoraTileRows of its rows) and module m = module[i] whose pool
// A = view.a[layer * COUNT + m] exists and rank r = view.slot_rank[s * COUNT + m] > 0,
//   out[i][row, :] += (x[row] · A[s, :r]ᵀ) · B[s, :, :r]ᵀ     A [S, R, K], B [S, N_i, R], R = rank_stride
// in `dtype` like x and the outs, fp32 accumulation. Grids cover max_tiles tiles; tiles past
// *view.num_tiles exit, so the launches depend only on the shapes and the batch size (graph
// capture). `scratch`: lora_scratch_floats(l, dtype) floats of device memory.
#if defined(__CUDACC__)
#define SABLE_LORA_HD __host__ __device__ __forceinline__
#else
#define SABLE_LORA_HD inline
#endif
struct LoraLaunch {
  const void* x = nullptr;
  int64_t ldx = 0, k = 0;
  int32_t count = 0;
  int32_t module[kLoraMaxStacked] = {};
  void* out[kLoraMaxStacked] = {};
  int64_t ldo[kLoraMaxStacked] = {}, n[kLoraMaxStacked] = {};
  int32_t layer = 0, rank_stride = 0;  // rank_stride: a multiple of kLoraRankAlign
  int64_t max_tiles = 0;
  LoraDeviceView view;
  // lora_expand_to_delta / lora_apply_delta: the rows of x and the outs, and fp32 deltas laid out
  // [rows, n[0]] then [rows, n[1]] ... (lora_delta_floats(l) floats).
  int64_t rows = 0;
  float* delta = nullptr;
  // lora_expand_to_delta: also write zeros to the rows outside every tile (all rows where the
  // module has no pool), so that the whole delta is defined without a memset first. At most
  // kLoraZeroMaxRows rows.
  bool zero_rest = false;
  // Where module i's [rows, n[i]] block starts in delta (i == count: the floats of all of them).
  SABLE_LORA_HD int64_t delta_offset(int i) const {
    int64_t off = 0;
    for (int j = 0; j < i; ++j) off += rows * n[j];
    return off;
  }
};
size_t lora_scratch_floats(const LoraLaunch& l, int32_t dtype);
// The two halves (lora_fork.h may run the shrink on a side stream): the shrink (the K-split
// partials, then a second launch that sums them) writes scratch from x; the expand adds scratch's
// deltas into the outs and must be ordered after the shrink.
bool lora_shrink(const LoraLaunch& l, int32_t dtype, float* scratch, void* stream);
bool lora_expand(const LoraLaunch& l, int32_t dtype, const float* scratch, void* stream);
// The expand split in two so that its math need not wait for the base GEMM (lora_ops.cpp, the
// fused mode; lora_pending.h): lora_expand_to_delta writes the tiles' rows' sums to l.delta (no
// read of the outs), lora_apply_delta adds them into the outs with lora_expand's one rounding, so
// the outs end bit for bit as lora_expand leaves them. Rows outside every tile are not touched,
// except that l.zero_rest has lora_expand_to_delta zero their deltas.
size_t lora_delta_floats(const LoraLaunch& l);
constexpr int64_t kLoraZeroMaxRows = 256;
bool lora_expand_to_delta(const LoraLaunch& l, int32_t dtype, const float* scratch, void* stream);
bool lora_apply_delta(const LoraLaunch& l, int32_t dtype, void* stream);

}  // namespace sable::ops::cuda
