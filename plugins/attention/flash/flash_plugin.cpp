// The "flash" attention backend: paged bf16 attention on CUDA. Three kernels (paged_attention.cuh):
// the GQA-packed tensor-core decode kernel (split-KV with a fused merge, fused K/V append) serves
// every sequence with one new token; the tensor-core prefill kernel the sequences with more; the
// per-token kernel is the fallback for head dims and group sizes the fast paths lack. A mixed
// batch runs the decode and the prefill kernel side by side on their own token sets.
//
// plan() turns the batch layout into per-token metadata in a pinned host buffer and, where the
// batch names its stream (ABI 1.8), enqueues one host-to-device copy of it there; else the first
// run() after a plan enqueues the copy (inside a CUDA graph capture a memcpy node that re-reads
// the pinned buffer at every replay; a traced 8B decode step sat idle ~330 us after that node,
// bench/NOTES.md v24, so the runner plans with its stream and its graphs hold kernels only).
// (A 1.7 host's batch names no stream: run() copies.) Buffers are sized at create time and never
// move, so captured graphs stay valid.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "flash_plan.h"
#include "paged_attention.cuh"
#include "sable/cpp/plugin.h"

namespace sable::attention::flash {
namespace {

static_assert(kLegacyGroup == kMaxGroup, "flash_plan.h mirrors the per-token kernel's group blocking");

using sable::cpp::fail;

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail(SABLE_ERR_DEVICE, std::string(what) + ": " + cudaGetErrorString(e));
}

// Layout of the metadata block (int32 words): seq[T] begin[T] end[T] slot[T] decode[T] chunk[1]
// num_tiles[1] tiles[max_tiles * kTileWords] casc_begin[R] casc_chunks[R] casc_num_items[1]
// casc_items[max_cascade_items(R) * kCascadeItemWords] casc_members[R] kv_indptr[B+1]
// kv_indices[cap], with R the split rows (the cascade pass serves only batches that split).
struct MetaLayout {
  int64_t seq, begin, end, slot, decode, chunk, num_tiles, tiles, casc_begin, casc_chunks,
      casc_num_items, casc_items, casc_members, indptr, indices, words;
  MetaLayout(int64_t max_tokens, int64_t max_seqs, int64_t max_indices, int64_t split_rows) {
    seq = 0;
    begin = seq + max_tokens;
    end = begin + max_tokens;
    slot = end + max_tokens;
    decode = slot + max_tokens;
    chunk = decode + max_tokens;
    num_tiles = chunk + 1;
    tiles = num_tiles + 1;
    casc_begin = tiles + int64_t(kTileWords) * max_prefill_tiles(static_cast<int32_t>(max_tokens),
                                                                 static_cast<int32_t>(max_seqs));
    casc_chunks = casc_begin + split_rows;
    casc_num_items = casc_chunks + split_rows;
    casc_items = casc_num_items + 1;
    casc_members = casc_items +
                   int64_t(kCascadeItemWords) * max_cascade_items(static_cast<int32_t>(split_rows));
    indptr = casc_members + split_rows;
    indices = indptr + max_seqs + 1;
    words = indices + max_indices;
  }
};

// An integer A/B switch from the environment; `fallback` when unset or empty.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? std::atoi(v) : fallback;
}

class FlashAttention {
 public:
  FlashAttention(const SableHostApi* host, SableHostHandle* h, const SableAttentionInit& init)
      : host_(host), h_(h), init_(init), layers_(init.layers, init.layers + init.num_layers),
        layout_(init.max_batch_tokens, init.max_seqs, max_indices(init),
                std::min(init.max_batch_tokens, init.max_seqs)) {
    if (init.device_type != SABLE_DEVICE_CUDA) fail(SABLE_ERR_UNSUPPORTED, "flash: CUDA only");
    if (init.kv_dtype != SABLE_DTYPE_BF16) fail(SABLE_ERR_UNSUPPORTED, "flash: KV dtype must be bf16");
    if (init.head_dim > 256) fail(SABLE_ERR_UNSUPPORTED, "flash: head_dim > 256 unsupported");
    if (init.num_q_heads % init.num_kv_heads != 0)
      fail(SABLE_ERR_INVALID_ARGUMENT, "flash: q heads not a multiple of kv heads");
    cudaDeviceProp prop{};
    cuda_check(cudaGetDeviceProperties(&prop, init.device_index), "cudaGetDeviceProperties");
    num_sms_ = prop.multiProcessorCount;
    const size_t bytes = static_cast<size_t>(layout_.words) * sizeof(int32_t);
    cuda_check(cudaMallocHost(&host_meta_, bytes), "cudaMallocHost");
    cuda_check(cudaMalloc(&dev_meta_, bytes), "cudaMalloc meta");
    // Splits are planned for decode-only batches alone, whose tokens are at most max_seqs.
    const int64_t part = int64_t(split_rows()) * init.num_q_heads * kMaxSplits;
    cuda_check(cudaMalloc(&part_acc_, part * init.head_dim * sizeof(float)), "cudaMalloc partials");
    cuda_check(cudaMalloc(&part_ml_, part * 2 * sizeof(float)), "cudaMalloc partials");
    const size_t tickets = size_t(split_rows()) * init.num_kv_heads * sizeof(int32_t);
    cuda_check(cudaMalloc(&counters_, tickets), "cudaMalloc split tickets");
    cuda_check(cudaMemset(counters_, 0, tickets), "cudaMemset split tickets");
    const int64_t casc = int64_t(split_rows()) * init.num_q_heads * kMaxCascadeChunks;
    cuda_check(cudaMalloc(&casc_acc_, casc * init.head_dim * sizeof(float)),
               "cudaMalloc cascade partials");
    cuda_check(cudaMalloc(&casc_ml_, casc * 2 * sizeof(float)), "cudaMalloc cascade partials");
    // The GQA-packed decode kernel serves decode tokens wherever it supports the head shape
    // (bench/NOTES.md, "v4"); SABLE_FLASH_DECODE_KERNEL=0 keeps the per-token kernels (A/B runs).
    const char* opt_out = std::getenv("SABLE_FLASH_DECODE_KERNEL");
    decode_path_ = decode_supported(init.head_dim, init.num_q_heads / init.num_kv_heads) &&
                   !(opt_out != nullptr && std::string(opt_out) == "0");
    plan_config_ = PlanConfig{init.page_size, init.sliding_window > 0 ? init.sliding_window : 0,
                              init.num_q_heads, init.num_kv_heads, init.head_dim, num_sms_,
                              split_rows(), decode_path_};
    const char* wave_fit = std::getenv("SABLE_DECODE_WAVE_FIT");
    plan_config_.wave_fit = !(wave_fit != nullptr && std::string(wave_fit) == "0");
    const char* stages = std::getenv("SABLE_DECODE_STAGES");
    plan_config_.decode_stages = stages != nullptr && std::string(stages) == "3" ? 3 : 2;
    // The deep pipeline's default (bench/NOTES.md v14, H100, batch 1, 128-384 positions): Qwen2.5-
    // 0.5B's shape (head dim 64, 2 KV heads) 1.024 -> 0.948 ms a step; Llama-3.2-1B's (64, 8 KV
    // heads) unchanged, 1.279 -> 1.285; Llama-3.1-8B's (128, 8) 5.783 -> 5.698 with 8 warps a CTA
    // (5.781 -> 5.990 with the 4-warp, 6-stage form). So: at most 4 (token, KV head) pairs at head
    // dim 64, 8 at 128 - the measured shapes.
    const int deep_pairs = env_int("SABLE_DECODE_DEEP_PAIRS", -1);
    plan_config_.deep_pairs = deep_pairs >= 0 ? deep_pairs : init.head_dim <= 64 ? 4 : 8;
    const int min_chunk = env_int("SABLE_DECODE_MIN_CHUNK", 0);
    plan_config_.decode_min_chunk = min_chunk > 0 ? std::max(min_chunk, kDecodeN) : 0;
    // Timing only (wrong results): SABLE_ATTN_PROBE stops the decode kernel after its wait (1),
    // after its K/V copies (2), or before combining its warps (3), and 9 launches nothing;
    // SABLE_ATTN_TWICE=1 launches it again (idempotent), so that the step's growth prices the
    // kernel inside a graph (METHOD.md: time a stage done twice).
    attn_probe_ = env_int("SABLE_ATTN_PROBE", 0);
    attn_twice_ = env_int("SABLE_ATTN_TWICE", 0) == 1;
    // Shared-prefix (cascade) pass for decode batches whose sequences share pages (radix cache);
    // SABLE_CASCADE=0 turns it off (A/B runs).
    const char* cascade = std::getenv("SABLE_CASCADE");
    plan_config_.cascade = !(cascade != nullptr && std::string(cascade) == "0");
    // Prefill tiles on Hopper's warpgroup tensor cores where the device runs sm_90a code
    // (SABLE_PREFILL_WGMMA=0: the mma.sync kernel). Defaults from the variants' A/B (bench/NOTES.md
    // v16, H100, 8k prompt): 4 heads a CTA at D 128 296 TFLOP/s against mma.sync's 150; the
    // overlapped loop where fewer heads share a CTA. The shape switches are for A/B runs.
    prefill_wgmma_ =
        env_int("SABLE_PREFILL_WGMMA", 1) == 1 && prefill_wgmma_usable(init.device_index);
    wgmma_stages_ = env_int("SABLE_PREFILL_WGMMA_STAGES", 2);
    wgmma_heads_ = env_int("SABLE_PREFILL_WGMMA_HEADS", 4);
    wgmma_overlap_ = env_int("SABLE_PREFILL_WGMMA_OVERLAP", -1);
    // Groups that 4 does not divide (Qwen2.5's 7) on 4-head CTAs with spare warpgroups (v17, H100,
    // 8k: group 7 at D 128 169 -> 253 TFLOP/s, at D 64 160 -> 186); 0 puts them on 1-head CTAs.
    wgmma_partial_ = env_int("SABLE_PREFILL_WGMMA_PARTIAL", 1);
  }
  ~FlashAttention() {
    cudaFreeHost(host_meta_);
    cudaFree(dev_meta_);
    cudaFree(part_acc_);
    cudaFree(part_ml_);
    cudaFree(counters_);
    cudaFree(casc_acc_);
    cudaFree(casc_ml_);
  }

  void plan(const SableAttentionBatch& b) {
    if (b.num_tokens > init_.max_batch_tokens || b.num_seqs > init_.max_seqs)
      fail(SABLE_ERR_INVALID_ARGUMENT, "flash: batch larger than max_batch_tokens/max_seqs");
    const int64_t n_indices = b.kv_indptr[b.num_seqs];
    if (n_indices > layout_.words - layout_.indices)
      fail(SABLE_ERR_OUT_OF_MEMORY, "flash: page list larger than the metadata buffer");
    int32_t* m = host_meta_;
    const int64_t T = b.num_tokens, R = std::min<int64_t>(T, split_rows());
    PlanArrays arrays{{m + layout_.seq, size_t(T)},        {m + layout_.begin, size_t(T)},
                      {m + layout_.end, size_t(T)},        {m + layout_.slot, size_t(T)},
                      {m + layout_.decode, size_t(T)},     {},
                      {m + layout_.casc_begin, size_t(R)}, {m + layout_.casc_chunks, size_t(R)}};
    const PlanShape shape = plan_batch(b, plan_config_, arrays);
    if (shape.error != nullptr) fail(SABLE_ERR_INVALID_ARGUMENT, shape.error);
    std::memcpy(m + layout_.indptr, b.kv_indptr, sizeof(int32_t) * (b.num_seqs + 1));
    std::memcpy(m + layout_.indices, b.kv_indices, sizeof(int32_t) * n_indices);
    used_indices_ = n_indices;
    num_tokens_ = b.num_tokens;
    decode_only_ = shape.decode_only;
    num_decode_ = shape.num_decode;
    splits_ = shape.splits;
    decode_stages_ = shape.decode_stages;
    m[layout_.chunk] = shape.chunk;
    prefill_ = shape.prefill;
    max_tiles_ = shape.max_tiles;
    m[layout_.num_tiles] = 0;
    casc_max_items_ = shape.cascade_items;
    casc_num_items_ = arrays.cascade.num_items;
    m[layout_.casc_num_items] = casc_num_items_;
    if (arrays.cascade.num_items > 0) {
      std::copy(arrays.cascade.items.begin(), arrays.cascade.items.end(), m + layout_.casc_items);
      std::copy(arrays.cascade.members.begin(), arrays.cascade.members.end(),
                m + layout_.casc_members);
    }
    if (prefill_) {
      const std::vector<PrefillTile>& tiles = arrays.tiles;
      if (static_cast<int32_t>(tiles.size()) > max_tiles_)
        fail(SABLE_ERR_INTERNAL, "flash: prefill work list exceeds its bound");
      int32_t* w = m + layout_.tiles;
      for (const PrefillTile& t : tiles) {
        *w++ = t.seq;
        *w++ = t.q0;
        *w++ = t.rows;
        *w++ = t.pos0;
      }
      m[layout_.num_tiles] = static_cast<int32_t>(tiles.size());
    }
    uploaded_ = false;
    if (SABLE_HAS(&b, stream) && b.stream != nullptr) upload(b.stream);
  }

  // The metadata to the device, stream-ordered after whatever the stream ran before (the previous
  // forward reads the same buffer). Outside a capture only what this plan wrote: the per-token
  // arrays' first T words (one strided copy) and chunk .. the batch's last page index; the block
  // is sized for the whole pool's page list (page size 1: 2 words a KV slot, ~6 MB for 800 k
  // slots, which a decode step would otherwise copy every time). A capture records the whole
  // block: its memcpy node replays with the capture's size.
  void upload(void* stream) {
    const auto s = static_cast<cudaStream_t>(stream);
    if (capturing(stream)) {
      cuda_check(cudaMemcpyAsync(dev_meta_, host_meta_, layout_.words * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, s),
                 "metadata upload");
    } else {
      constexpr size_t kW = sizeof(int32_t);
      // seq, begin, end, slot, decode: max_tokens words apart, up to chunk.
      const int64_t stride = layout_.begin - layout_.seq;
      const size_t arrays = static_cast<size_t>((layout_.chunk - layout_.seq) / stride);
      if (num_tokens_ > 0)
        cuda_check(cudaMemcpy2DAsync(dev_meta_ + layout_.seq, stride * kW, host_meta_ + layout_.seq,
                                     stride * kW, static_cast<size_t>(num_tokens_) * kW, arrays,
                                     cudaMemcpyHostToDevice, s),
                   "metadata upload (per-token arrays)");
      const int64_t end = layout_.indices + used_indices_;
      cuda_check(
          cudaMemcpyAsync(dev_meta_ + layout_.chunk, host_meta_ + layout_.chunk,
                          static_cast<size_t>(end - layout_.chunk) * kW, cudaMemcpyHostToDevice, s),
          "metadata upload");
    }
    uploaded_ = true;
  }

  void run(SableOpsContext* ctx, const SableOps* ops, int32_t layer, const SableTensor& q,
           const SableTensor& k, const SableTensor& v, float scale, SableTensor& out) {
    if (layer < 0 || layer >= init_.num_layers) fail(SABLE_ERR_INVALID_ARGUMENT, "flash: bad layer");
    const int32_t D = init_.head_dim;
    check_view(q, init_.num_q_heads, D, "q");
    check_view(k, init_.num_kv_heads, D, "k");
    check_view(v, init_.num_kv_heads, D, "v");
    if (out.ndim != 3 || out.shape[0] != num_tokens_ || !sable_tensor_is_contiguous(&out) ||
        out.dtype != SABLE_DTYPE_BF16)
      fail(SABLE_ERR_INVALID_ARGUMENT, "flash: out must be contiguous bf16 [T, Hq, D]");
    void* stream = ops->stream(ctx);
    if (!uploaded_) upload(stream);
    auto* kc = static_cast<__nv_bfloat16*>(layers_[layer].k.data);
    auto* vc = static_cast<__nv_bfloat16*>(layers_[layer].v.data);
    AppendParams ap{static_cast<const __nv_bfloat16*>(k.data), static_cast<const __nv_bfloat16*>(v.data),
                    k.strides[0], v.strides[0], kc, vc, dev_meta_ + layout_.slot, num_tokens_,
                    init_.num_kv_heads, D};
    AttentionParams p{};
    p.q = static_cast<const __nv_bfloat16*>(q.data);
    p.q_stride = q.strides[0];
    p.k_cache = kc;
    p.v_cache = vc;
    p.out = static_cast<__nv_bfloat16*>(out.data);
    p.part_acc = part_acc_;
    p.part_ml = part_ml_;
    p.meta = TokenMeta{dev_meta_ + layout_.seq,    dev_meta_ + layout_.begin,
                       dev_meta_ + layout_.end,    dev_meta_ + layout_.slot,
                       dev_meta_ + layout_.indptr, dev_meta_ + layout_.indices,
                       dev_meta_ + layout_.chunk};
    p.num_tokens = num_tokens_;
    p.q_heads = init_.num_q_heads;
    p.kv_heads = init_.num_kv_heads;
    p.head_dim = D;
    p.group = init_.num_q_heads / init_.num_kv_heads;
    p.group_chunks = group_chunks();
    p.page_size = init_.page_size;
    p.splits = splits_;
    p.scale_log2 = scale * 1.4426950408889634f;
    p.tiles = dev_meta_ + layout_.tiles;
    p.num_tiles = dev_meta_ + layout_.num_tiles;
    p.max_tiles = max_tiles_;
    p.window = init_.sliding_window > 0 ? init_.sliding_window : 0;
    p.k_new = static_cast<const __nv_bfloat16*>(k.data);
    p.v_new = static_cast<const __nv_bfloat16*>(v.data);
    p.k_stride = k.strides[0];
    p.v_stride = v.strides[0];
    p.decode_tokens = dev_meta_ + layout_.decode;
    p.num_decode = num_decode_;
    p.counters = counters_;
    p.decode_stages = decode_stages_;
    p.wgmma_stages = wgmma_stages_;
    p.wgmma_heads = wgmma_heads_;
    p.wgmma_partial = wgmma_partial_;
    p.wgmma_overlap = wgmma_overlap_;
    p.casc_begin = dev_meta_ + layout_.casc_begin;
    p.casc_items = dev_meta_ + layout_.casc_items;
    p.casc_num_items = dev_meta_ + layout_.casc_num_items;
    p.casc_members = dev_meta_ + layout_.casc_members;
    p.casc_max_items = casc_max_items_;
    p.casc_acc = casc_acc_;
    p.casc_ml = casc_ml_;

    bool appended = false;
    auto append = [&] {
      if (!appended) launch_append_kv(ap, stream);
      appended = true;
    };
    bool done = false;
    if (decode_path_ && decode_inputs_aligned(p)) {
      // Decode-only: one launch does the append, the attention and the merge. Mixed: the append
      // first (the prefill tiles read their own new rows from the cache), then both kernels.
      if (!decode_only_) append();
      p.store_new = decode_only_ ? 1 : 0;
      // The shared-prefix pass first; the decode kernel reads the members' own ranges only after
      // it ran (casc_chunks). While capturing, it runs whatever this batch's groups: a replay
      // may bring groups (cascade_attention.cu).
      p.casc_chunks = nullptr;
      if (casc_max_items_ > 0 && (casc_num_items_ > 0 || capturing(stream)) &&
          launch_cascade(p, stream))
        p.casc_chunks = dev_meta_ + layout_.casc_chunks;
      p.probe = attn_probe_;
      done = attn_probe_ == 9 || launch_decode(p, stream);
      if (done && attn_twice_) done = launch_decode(p, stream);
      if (done && prefill_) done = run_prefill(p, stream);
    } else if (prefill_ && !decode_path_ && prefill_supported(D, q.data, q.strides[0])) {
      append();
      done = run_prefill(p, stream);
    }
    if (!done) {  // the per-token kernel serves every token of any batch
      append();
      if (!launch_attention(p, stream)) fail(SABLE_ERR_UNSUPPORTED, "flash: unsupported head dim");
    }
    cuda_check(cudaGetLastError(), "flash attention launch");
  }

  const SableHostApi* host() const { return host_; }
  SableHostHandle* handle() const { return h_; }

 private:
  bool run_prefill(const AttentionParams& p, void* stream) const {
    return (prefill_wgmma_ && launch_prefill_wgmma(p, stream)) || launch_prefill(p, stream);
  }
  static bool capturing(void* stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cuda_check(cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status),
               "cudaStreamIsCapturing");
    return status != cudaStreamCaptureStatusNone;
  }
  int32_t split_rows() const { return std::min(init_.max_batch_tokens, init_.max_seqs); }
  static int64_t max_indices(const SableAttentionInit& init) {
    const int64_t pages = init.num_layers > 0 ? init.layers[0].k.shape[0] : 0;
    return std::max<int64_t>(pages * 2 + init.max_seqs, 1 << 16);
  }
  int32_t group_chunks() const {
    const int32_t g = init_.num_q_heads / init_.num_kv_heads;
    return (g + kMaxGroup - 1) / kMaxGroup;
  }
  void check_view(const SableTensor& t, int32_t heads, int32_t d, const char* name) const {
    if (t.dtype != SABLE_DTYPE_BF16 || t.ndim != 3 || t.shape[0] != num_tokens_ ||
        t.shape[1] != heads || t.shape[2] != d || t.strides[2] != 1 || t.strides[1] != d)
      fail(SABLE_ERR_INVALID_ARGUMENT,
           std::string("flash: ") + name + " must be bf16 [T, heads, D] with dense heads");
  }

  const SableHostApi* host_;
  SableHostHandle* h_;
  SableAttentionInit init_;
  std::vector<SableKvLayer> layers_;
  MetaLayout layout_;
  int32_t num_sms_ = 132;
  int32_t* host_meta_ = nullptr;
  int32_t* dev_meta_ = nullptr;
  float* part_acc_ = nullptr;
  float* part_ml_ = nullptr;
  int32_t* counters_ = nullptr;
  float* casc_acc_ = nullptr;
  float* casc_ml_ = nullptr;
  int32_t casc_max_items_ = 0;  // cascade grid bound of the planned batch; 0 = no pass
  int32_t casc_num_items_ = 0;
  int32_t num_tokens_ = 0;
  int32_t num_decode_ = 0;
  bool decode_path_ = false;
  bool decode_only_ = false;
  PlanConfig plan_config_;
  int32_t splits_ = 1;
  int32_t decode_stages_ = 2;
  int32_t attn_probe_ = 0;   // SABLE_ATTN_PROBE (timing only)
  bool attn_twice_ = false;  // SABLE_ATTN_TWICE (timing only)
  int32_t max_tiles_ = 0;
  bool prefill_ = false;
  bool prefill_wgmma_ = false;  // prefill_wgmma.cu for the prefill tiles
  int32_t wgmma_stages_ = 2;    // SABLE_PREFILL_WGMMA_STAGES / _HEADS (A/B runs)
  int32_t wgmma_heads_ = 4;
  int32_t wgmma_overlap_ = -1;  // -1: the overlapped loop below 4 heads a CTA
  int32_t wgmma_partial_ = 1;   // SABLE_PREFILL_WGMMA_PARTIAL
  bool uploaded_ = false;
  int64_t used_indices_ = 0;  // the planned batch's page indices (upload's extent)
};

FlashAttention* self(SableAttention* a) { return reinterpret_cast<FlashAttention*>(a); }

int32_t probe(int32_t device_type) {
  if (device_type != SABLE_DEVICE_CUDA) return 0;
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0 ? 100 : 0;
}
int32_t supports_head_dim(int32_t d) { return d > 0 && d <= 256; }

SableStatus create(const SableHostApi* host, SableHostHandle* h, const SableAttentionInit* init,
                   SableAttention** out) {
  SABLE_TRY {
    *out = reinterpret_cast<SableAttention*>(new FlashAttention(host, h, *init));
    return SABLE_OK;
  }
  SABLE_CATCH(host, h)
}
void destroy(SableAttention* a) { delete self(a); }
SableStatus plan(SableAttention* a, const SableAttentionBatch* b) {
  SABLE_TRY {
    self(a)->plan(*b);
    return SABLE_OK;
  }
  SABLE_CATCH(self(a)->host(), self(a)->handle())
}
SableStatus run(SableAttention* a, SableOpsContext* ctx, int32_t layer, const SableTensor* q,
                const SableTensor* k, const SableTensor* v, float scale, SableTensor* out) {
  SABLE_TRY {
    self(a)->run(ctx, self(a)->host()->ops, layer, *q, *k, *v, scale, *out);
    return SABLE_OK;
  }
  SABLE_CATCH(self(a)->host(), self(a)->handle())
}

const SableAttentionApi kApi = {sizeof(SableAttentionApi), 0, &probe, &supports_head_dim, &create,
                                &destroy, &plan, &run};

}  // namespace
}  // namespace sable::attention::flash

SABLE_EXPORT_PLUGIN("flash", "0.1.0", SABLE_PLUGIN_ATTENTION, &sable::attention::flash::kApi,
                    "paged bf16 attention on CUDA (split-KV decode, prefill)")
