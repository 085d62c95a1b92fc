// CudaExec (see cuda_exec.h): eager forwards over staged inputs, and decode graphs per bucket.
#include "core/runner/cuda_exec.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "core/ops/cuda/gemm.h"
#include "core/ops/cuda/lora_pending.h"
#include "core/ops/expert_recorder.h"
#include "core/ops/lora_batch.h"
#include "core/runner/attention_backend.h"
#include "core/util/log.h"
#include "core/weights/dtype_convert.h"

namespace sable::runner {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(fmt::format("CUDA {}: {}", what, cudaGetErrorString(e)));
}

SableTensor dev_tensor(void* data, int32_t dtype, int64_t a, int64_t b = -1) {
  SableTensor t{};
  t.struct_size = sizeof(t);
  t.dtype = dtype;
  t.device_type = SABLE_DEVICE_CUDA;
  t.ndim = b < 0 ? 1 : 2;
  t.shape[0] = a;
  t.strides[0] = b < 0 ? 1 : b;
  if (b >= 0) {
    t.shape[1] = b;
    t.strides[1] = 1;
  }
  t.data = data;
  return t;
}

std::vector<int32_t> buckets_up_to(int32_t max_bs) {
  std::vector<int32_t> b;
  for (int32_t v : {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512})
    if (v <= max_bs) b.push_back(v);
  if (b.empty() || b.back() != max_bs) b.push_back(max_bs);
  return b;
}

}  // namespace

struct CudaExec::Impl {
  Options opt;
  const SableOps* ops = nullptr;
  cudaStream_t stream = nullptr;
  ops::Arena arena{std::make_unique<ops::CudaBacking>(), 0};
  ops::Arena graph_arena{std::make_unique<ops::CudaBacking>(), 0};
  // Persistent inputs (fixed addresses: graphs read them) and their pinned staging.
  int32_t* d_tokens = nullptr;
  int32_t* d_positions = nullptr;
  int32_t* d_rows = nullptr;
  int32_t* d_types = nullptr;  // token types (BERT pairs), uploaded only when a batch has them
  int32_t* h_stage = nullptr;  // [4 * max_batch_tokens]
  float* d_graph_logits = nullptr;  // [graph_max_bs, vocab]
  std::vector<int32_t> buckets;
  std::map<int32_t, cudaGraphExec_t> graphs;
  bool graphs_ready = false;
  // Padded copies of the batch arrays for graph buckets.
  std::vector<int32_t> p_qo, p_kv_indptr, p_kv_lens;
  // Expert counters [expert_layers, expert_experts] (null without them), the counts folded out of
  // them so far, and the recorder moe_route requires beside them (never written: counters win).
  int64_t* d_expert = nullptr;
  std::vector<int64_t> expert_base;
  bool recording = false;
  ops::ExpertRecorder expert_recorder;
  std::vector<uint16_t> h_embeds;  // image embeddings cast to bf16 for upload
  // LoRA decode graphs: their own arena; the step block they were captured against (null: none
  // yet); off after a failed capture. Pinned staging of the step block.
  ops::Arena lora_arena{std::make_unique<ops::CudaBacking>(), 0};
  std::map<int32_t, cudaGraphExec_t> lora_graphs;
  const void* lora_graph_block = nullptr;
  bool lora_graphs_ok = true;
  void* h_lora = nullptr;
  size_t h_lora_bytes = 0;

  ~Impl() {
    for (auto& [bs, g] : graphs) cudaGraphExecDestroy(g);
    for (auto& [bs, g] : lora_graphs) cudaGraphExecDestroy(g);
    cudaFreeHost(h_lora);
    cudaFree(d_tokens);
    cudaFree(d_positions);
    cudaFree(d_rows);
    cudaFree(d_types);
    cudaFree(d_graph_logits);
    cudaFree(d_expert);
    cudaFreeHost(h_stage);
    if (stream) cudaStreamDestroy(stream);
  }

  void stage(const ExecBatch& b, int64_t t, int64_t rows) {
    const int64_t n = opt.max_batch_tokens;
    std::memcpy(h_stage, b.token_ids.data(), b.token_ids.size() * 4);
    std::memcpy(h_stage + n, b.positions.data(), b.positions.size() * 4);
    std::memcpy(h_stage + 2 * n, b.output_rows.data(), b.output_rows.size() * 4);
    for (int64_t i = static_cast<int64_t>(b.token_ids.size()); i < t; ++i) {
      h_stage[i] = 0;
      h_stage[n + i] = 0;
    }
    for (int64_t i = static_cast<int64_t>(b.output_rows.size()); i < rows; ++i) h_stage[2 * n + i] = static_cast<int32_t>(i);
    check_cuda(cudaMemcpyAsync(d_tokens, h_stage, t * 4, cudaMemcpyHostToDevice, stream), "upload tokens");
    check_cuda(cudaMemcpyAsync(d_positions, h_stage + n, t * 4, cudaMemcpyHostToDevice, stream), "upload positions");
    check_cuda(cudaMemcpyAsync(d_rows, h_stage + 2 * n, rows * 4, cudaMemcpyHostToDevice, stream), "upload rows");
    if (!b.token_types.empty()) {
      std::memcpy(h_stage + 3 * n, b.token_types.data(), b.token_types.size() * 4);
      check_cuda(cudaMemcpyAsync(d_types, h_stage + 3 * n, b.token_types.size() * 4,
                                 cudaMemcpyHostToDevice, stream),
                 "upload token types");
    }
  }

  // The LoRA step block of the batch into its device buffer, ordered before the forward.
  void stage_lora(const ops::LoraBatch& lb) {
    if (lb.step_bytes == 0) return;
    if (lb.step_device == nullptr)
      throw std::runtime_error("CUDA: the LoRA batch has no device step block");
    if (h_lora_bytes < lb.step_bytes) {
      check_cuda(cudaStreamSynchronize(stream), "sync");  // an earlier copy may read the old one
      cudaFreeHost(h_lora);
      h_lora = nullptr;
      h_lora_bytes = std::max(lb.step_bytes, 2 * h_lora_bytes);
      check_cuda(cudaMallocHost(&h_lora, h_lora_bytes), "malloc host");
    }
    std::memcpy(h_lora, lb.step_host, lb.step_bytes);
    check_cuda(cudaMemcpyAsync(lb.step_device, h_lora, lb.step_bytes, cudaMemcpyHostToDevice, stream),
               "upload LoRA step block");
  }

  SableForwardBatch make_batch(int64_t t, int64_t seqs, int64_t rows, bool decode) const {
    SableForwardBatch fb{};
    fb.struct_size = sizeof(fb);
    fb.num_tokens = static_cast<int32_t>(t);
    fb.num_seqs = static_cast<int32_t>(seqs);
    fb.num_outputs = static_cast<int32_t>(rows);
    fb.is_decode_only = decode ? 1 : 0;
    fb.token_ids = dev_tensor(d_tokens, SABLE_DTYPE_I32, t);
    fb.positions = dev_tensor(d_positions, SABLE_DTYPE_I32, t);
    fb.output_rows = dev_tensor(d_rows, SABLE_DTYPE_I32, rows);
    return fb;
  }

  // A device copy of host `bytes` in the forward arena (pageable source: reusable on return).
  void* upload(ops::Arena& a, const void* src, size_t bytes, const char* what) {
    void* d = a.allocate(bytes, 256);
    if (d == nullptr) throw std::runtime_error(fmt::format("CUDA: out of memory for {}", what));
    check_cuda(cudaMemcpyAsync(d, src, bytes, cudaMemcpyHostToDevice, stream), what);
    return d;
  }

  // ABI 1.3 vision-language inputs of an eager forward: M-RoPE positions and image embeddings.
  void stage_vision(const ExecBatch& b, int64_t t, SableForwardBatch& fb) {
    if (!b.mrope.empty()) {
      void* d = upload(arena, b.mrope.data(), b.mrope.size() * 4, "upload mrope positions");
      fb.mrope_positions = dev_tensor(d, SABLE_DTYPE_I32, 3, t);
    }
    if (b.embed_spans.empty()) return;
    const int64_t rows = static_cast<int64_t>(b.embeds.size()) / opt.hidden;
    void* d = nullptr;
    if (opt.compute_dtype == SABLE_DTYPE_F32) {
      d = upload(arena, b.embeds.data(), b.embeds.size() * 4, "upload image embeddings");
    } else if (opt.compute_dtype == SABLE_DTYPE_BF16) {
      h_embeds.resize(b.embeds.size());
      for (size_t i = 0; i < b.embeds.size(); ++i) h_embeds[i] = weights::f32_to_bf16(b.embeds[i]);
      d = upload(arena, h_embeds.data(), h_embeds.size() * 2, "upload image embeddings");
    } else {
      throw std::invalid_argument("CUDA: image embeddings need a bf16 or f32 compute dtype");
    }
    fb.embeds = dev_tensor(d, opt.compute_dtype, rows, opt.hidden);
    fb.num_embed_spans = static_cast<int32_t>(b.embed_spans.size() / 3);
    fb.embed_spans = b.embed_spans.data();
  }

  SableOpsContext context(ops::Arena& a) const {
    SableOpsContext ctx;
    ctx.device_type = SABLE_DEVICE_CUDA;
    ctx.device_index = opt.device_index;
    ctx.stream = stream;
    ctx.arena = &a;
    ctx.tp_rank = opt.tp_rank;
    ctx.tp_size = opt.tp_size;
    ctx.comm_api = opt.comm_api;
    ctx.comm = opt.comm;
    return ctx;
  }

  // `count`: moe_route adds its selections into the expert counters (when there are any).
  void forward(const SableModelApi* api, SableModel* model, AttentionBackend* attention,
               ops::Arena& a, const SableForwardBatch& fb, SableForwardOutput& out,
               const CheckFn& check, bool count, const ops::LoraBatch* lora = nullptr) {
    SableOpsContext ctx = context(a);
    ctx.lora = lora;
    if (count && d_expert != nullptr) {
      ctx.expert_recorder = &expert_recorder;
      ctx.expert_counts_device = d_expert;
      ctx.expert_counts_layers = opt.expert_layers;
      ctx.expert_counts_experts = opt.expert_experts;
    }
    if (attention != nullptr) attention->bind(ctx);
    // LoRA deltas of o, down and gate|up may wait for the op that reads them (lora_pending.h);
    // the last one lands before the forward ends.
    ops::cuda::LoraPendingScope pending;
    const SableStatus s = api->forward(model, &ctx, &fb, &out);
    if (s == SABLE_OK && !ops::cuda::lora_flush_pending()) {
      const cudaError_t e = cudaGetLastError();
      check_cuda(e != cudaSuccess ? e : cudaErrorUnknown, "adding a pending LoRA delta");
    }
    check(s, "forward", ctx.last_error);
  }

  void zero_expert_counters() {
    if (d_expert == nullptr) return;
    check_cuda(cudaMemsetAsync(d_expert, 0, expert_base.size() * 8, stream), "zero expert counters");
    check_cuda(cudaStreamSynchronize(stream), "sync");
  }
  std::vector<int64_t> download_expert_counters() const {
    std::vector<int64_t> h(expert_base.size(), 0);
    if (d_expert == nullptr) return h;
    check_cuda(cudaMemcpyAsync(h.data(), d_expert, h.size() * 8, cudaMemcpyDeviceToHost, stream),
               "download expert counters");
    check_cuda(cudaStreamSynchronize(stream), "sync");
    return h;
  }
  // Moves the device counts into expert_base and zeroes the device counters.
  void fold_expert_counters() {
    if (d_expert == nullptr) return;
    const std::vector<int64_t> h = download_expert_counters();
    for (size_t i = 0; i < h.size(); ++i) expert_base[i] += h[i];
    zero_expert_counters();
  }

  // Pads a decode batch of `seqs` sequences to `bs` (padding: kv_len 0, no pages).
  SableAttentionBatch padded(const ExecBatch& b, int32_t bs) {
    const int32_t seqs = static_cast<int32_t>(b.kv_lens.size());
    p_qo.assign(b.qo_indptr.begin(), b.qo_indptr.end());
    p_kv_indptr.assign(b.kv_indptr.begin(), b.kv_indptr.end());
    p_kv_lens.assign(b.kv_lens.begin(), b.kv_lens.end());
    for (int32_t i = seqs; i < bs; ++i) {
      p_qo.push_back(p_qo.back() + 1);
      p_kv_indptr.push_back(p_kv_indptr.back());
      p_kv_lens.push_back(0);
    }
    SableAttentionBatch ab{};
    ab.struct_size = sizeof(ab);
    ab.stream = stream;  // the upload before the graph, not a node in it
    ab.num_seqs = bs;
    ab.num_tokens = bs;
    ab.is_decode_only = 1;
    ab.qo_indptr = p_qo.data();
    ab.kv_indptr = p_kv_indptr.data();
    ab.kv_indices = b.kv_indices.data();
    ab.kv_lens = p_kv_lens.data();
    return ab;
  }

  // The graphs of the base model, or of the LoRA path when b.lora is set (its kernels read the
  // step block that run() uploaded; the host-side LoraBatch is read only while capturing).
  void capture_all(const SableModelApi* api, SableModel* model, AttentionBackend& attention,
                   const ExecBatch& b, const CheckFn& check) {
    const bool lora = b.lora != nullptr;
    std::map<int32_t, cudaGraphExec_t>& set = lora ? lora_graphs : graphs;
    ops::Arena& arena_g = lora ? lora_arena : graph_arena;
    ops::LoraBatch cap;
    if (lora) cap = *b.lora;
    auto batch_of = [&](int32_t bs) {
      SableForwardBatch fb = make_batch(bs, bs, bs, true);
      fb.has_lora = lora ? 1 : 0;
      cap.num_tokens = bs;
      return fb;
    };
    const ops::LoraBatch* lp = lora ? &cap : nullptr;
    // Warm-up at the largest bucket sizes the graph arena, creates library handles and plans.
    const int32_t top = buckets.back();
    SableForwardOutput out{};
    out.struct_size = sizeof(out);
    out.hidden = dev_tensor(nullptr, opt.compute_dtype, top, opt.hidden);
    out.logits = dev_tensor(d_graph_logits, SABLE_DTYPE_F32, top, opt.vocab);
    attention.plan(padded(b, top));
    stage(b, top, top);
    // The warm-up counts too (loading the counting kernel before capture); its padded counts are
    // discarded, after the ones recorded so far are kept.
    if (recording) fold_expert_counters();
    forward(api, model, &attention, arena_g, batch_of(top), out, check, true, lp);
    check_cuda(cudaStreamSynchronize(stream), "graph warm-up");
    zero_expert_counters();
    arena_g.reset();
    arena_g.set_growth(false);
    size_t before = cuda_memory_info().first;
    for (auto it = buckets.rbegin(); it != buckets.rend(); ++it) {
      const int32_t bs = *it;
      out.logits = dev_tensor(d_graph_logits, SABLE_DTYPE_F32, bs, opt.vocab);
      out.hidden = dev_tensor(nullptr, opt.compute_dtype, bs, opt.hidden);
      attention.plan(padded(b, bs));  // uploaded before the capture: the graph has no copy node
      if (bs != top && ops::cuda::gemm_tune_enabled()) {
        // One eager forward at this size first (the top one had the warm-up): its GEMM shapes
        // meet their first call eagerly, so they time their algorithms (gemm.cpp) and the capture
        // records the chosen ones. Without adapters, also for the LoRA graphs: the same GEMM
        // shapes, and no LoRA kernel reads the step block's tiles, whose rows may lie past this
        // size. The inputs are the warm-up's staged rows; the plan is made again for the capture
        // (uploaded again, before the capture),
        // and the forward's expert counts are dropped.
        arena_g.reset();
        forward(api, model, &attention, arena_g, make_batch(bs, bs, bs, true), out, check, true,
                nullptr);
        check_cuda(cudaStreamSynchronize(stream), "GEMM tuning forward");
        zero_expert_counters();
        attention.plan(padded(b, bs));
      }
      arena_g.reset();
      cudaGraph_t graph = nullptr;
      check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
      try {
        forward(api, model, &attention, arena_g, batch_of(bs), out, check, true, lp);
      } catch (...) {
        cudaStreamEndCapture(stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
      cudaGraphExec_t exec = nullptr;
      check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate graph");
      cudaGraphDestroy(graph);
      set[bs] = exec;
    }
    arena_g.reset();
    log::info("CUDA graphs: captured {} {}decode buckets (1..{}), graph memory {:.1f} MiB",
              set.size(), lora ? "LoRA " : "", top,
              (arena_g.capacity() + double(before - cuda_memory_info().first)) / 1048576.0);
    if (ops::cuda::gemm_tune_enabled()) {
      const ops::cuda::GemmTuneCounts c = ops::cuda::gemm_tune_counts();
      log::info("SABLE_GEMM_TUNE: {} GEMM shapes timed, {} left to the heuristic", c.timed,
                c.untimed);
    }
    if (lora)
      lora_graph_block = b.lora->step_device;
    else
      graphs_ready = true;
  }

  void drop_lora_graphs() {
    for (auto& [bs, g] : lora_graphs) cudaGraphExecDestroy(g);
    lora_graphs.clear();
    lora_graph_block = nullptr;
    lora_arena.set_growth(true);
  }
};

CudaExec::CudaExec(const Options& options, const SableOps* ops) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  m.ops = ops;
  check_cuda(cudaSetDevice(options.device_index), "cudaSetDevice");
  check_cuda(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "stream");
  const size_t n = static_cast<size_t>(options.max_batch_tokens);
  check_cuda(cudaMalloc(&m.d_tokens, n * 4), "malloc");
  check_cuda(cudaMalloc(&m.d_positions, n * 4), "malloc");
  check_cuda(cudaMalloc(&m.d_rows, n * 4), "malloc");
  check_cuda(cudaMalloc(&m.d_types, n * 4), "malloc");
  check_cuda(cudaMallocHost(&m.h_stage, 4 * n * 4), "malloc host");
  int32_t max_bs = options.graph_max_bs > 0 ? options.graph_max_bs : std::min(options.max_seqs, 256);
  max_bs = std::min({max_bs, options.max_seqs, options.max_batch_tokens});
  m.buckets = buckets_up_to(std::max(max_bs, 1));
  m.opt.graphs = options.graphs && max_bs >= 1;
  if (m.opt.graphs)
    check_cuda(cudaMalloc(&m.d_graph_logits, size_t(m.buckets.back()) * options.vocab * 4), "malloc logits");
  if (options.expert_layers > 0 && options.expert_experts > 0) {
    m.expert_base.assign(size_t(options.expert_layers) * options.expert_experts, 0);
    check_cuda(cudaMalloc(&m.d_expert, m.expert_base.size() * 8), "malloc expert counters");
    m.zero_expert_counters();
  }
}

CudaExec::~CudaExec() = default;

void* CudaExec::stream() const { return impl_->stream; }
void CudaExec::synchronize() const { check_cuda(cudaStreamSynchronize(impl_->stream), "synchronize"); }

int32_t CudaExec::graphs_captured(bool lora) const {
  return static_cast<int32_t>((lora ? impl_->lora_graphs : impl_->graphs).size());
}
size_t CudaExec::arena_bytes() const { return impl_->arena.capacity(); }

const float* CudaExec::run(const SableModelApi* api, SableModel* model, AttentionBackend* attention,
                           const ExecBatch& b, float* hidden_host, const CheckFn& check) {
  Impl& m = *impl_;
  check_cuda(cudaSetDevice(m.opt.device_index), "cudaSetDevice");  // a rank's own thread
  const int64_t t = static_cast<int64_t>(b.token_ids.size());
  const int64_t seqs = static_cast<int64_t>(b.kv_lens.size());
  const int64_t rows = static_cast<int64_t>(b.output_rows.size());
  const bool lora = b.lora != nullptr;
  if (lora) m.stage_lora(*b.lora);
  auto graphs_ready = [&] {
    return m.opt.graphs && (lora ? m.lora_graphs_ok && m.lora_graph_block == b.lora->step_device
                                 : m.graphs_ready);
  };
  const bool graph_ok = m.opt.graphs && attention != nullptr && b.decode_only &&
                        hidden_host == nullptr && rows == seqs && (!lora || m.lora_graphs_ok) &&
                        b.mrope.empty() && b.embed_spans.empty() && seqs <= m.buckets.back();
  if (graph_ok && !graphs_ready()) {
    if (lora) m.drop_lora_graphs();  // none yet, or captured against another manager's block
    capture_all_or_disable(api, model, *attention, b, check, lora);
  }
  if (graph_ok && graphs_ready()) {
    const int32_t bs = *std::lower_bound(m.buckets.begin(), m.buckets.end(), static_cast<int32_t>(seqs));
    // While recording, padding rows would be counted: only exact buckets replay.
    if (!m.recording || bs == seqs) {
      attention->plan(m.padded(b, bs));
      m.stage(b, bs, bs);
      check_cuda(cudaGraphLaunch((lora ? m.lora_graphs : m.graphs).at(bs), m.stream),
                 "graph launch");
      return m.d_graph_logits;
    }
  }
  // Eager.
  SableAttentionBatch ab{};
  ab.struct_size = sizeof(ab);
  ab.stream = m.stream;
  ab.num_seqs = static_cast<int32_t>(seqs);
  ab.num_tokens = static_cast<int32_t>(t);
  ab.is_decode_only = b.decode_only ? 1 : 0;
  ab.qo_indptr = b.qo_indptr.data();
  ab.kv_indptr = b.kv_indptr.data();
  ab.kv_indices = b.kv_indices.data();
  ab.kv_lens = b.kv_lens.data();
  if (attention != nullptr) attention->plan(ab);  // an encoder has no attention backend
  m.arena.reset();
  m.stage(b, t, rows);
  // A model without logits (an encoder's hidden states) still gets a valid, empty tensor.
  auto* logits = static_cast<float*>(
      m.arena.allocate(size_t(rows) * std::max<int32_t>(m.opt.vocab, 1) * 4, 256));
  void* hidden = hidden_host ? m.arena.allocate(size_t(rows) * m.opt.hidden * 2, 256) : nullptr;
  if (!logits || (hidden_host && !hidden)) throw std::runtime_error("CUDA: out of memory for logits");
  SableForwardOutput out{};
  out.struct_size = sizeof(out);
  out.logits = dev_tensor(logits, SABLE_DTYPE_F32, rows, m.opt.vocab);
  out.hidden = dev_tensor(hidden, m.opt.compute_dtype, rows, m.opt.hidden);
  SableForwardBatch fb = m.make_batch(t, seqs, rows, b.decode_only);
  fb.has_lora = b.lora != nullptr ? 1 : 0;
  if (!b.token_types.empty()) fb.token_type_ids = dev_tensor(m.d_types, SABLE_DTYPE_I32, t);
  m.stage_vision(b, t, fb);
  m.forward(api, model, attention, m.arena, fb, out, check, m.recording, b.lora);
  if (hidden_host) {
    std::vector<uint16_t> h(size_t(rows) * m.opt.hidden);
    check_cuda(cudaMemcpyAsync(h.data(), hidden, h.size() * 2, cudaMemcpyDeviceToHost, m.stream), "download hidden");
    check_cuda(cudaStreamSynchronize(m.stream), "sync");
    for (size_t i = 0; i < h.size(); ++i) {
      const uint32_t u = static_cast<uint32_t>(h[i]) << 16;
      std::memcpy(hidden_host + i, &u, 4);
    }
  }
  return logits;
}

void CudaExec::encode_images(const SableModelApi* api, SableModel* model,
                             std::span<const float> pixels, int64_t patch_dim,
                             std::span<const int32_t> grid_thw, int64_t units, float* out_host,
                             const CheckFn& check) {
  Impl& m = *impl_;
  check_cuda(cudaSetDevice(m.opt.device_index), "cudaSetDevice");
  m.arena.reset();
  const int64_t patches = static_cast<int64_t>(pixels.size()) / patch_dim;
  void* d_pixels = m.upload(m.arena, pixels.data(), pixels.size() * 4, "upload pixel values");
  const size_t elem = m.opt.compute_dtype == SABLE_DTYPE_F32 ? 4 : 2;
  void* d_out = m.arena.allocate(static_cast<size_t>(units * m.opt.hidden) * elem, 256);
  if (d_out == nullptr) throw std::runtime_error("CUDA: out of memory for image embeddings");
  SableImageBatch images{};
  images.struct_size = sizeof(images);
  images.num_images = static_cast<int32_t>(grid_thw.size() / 3);
  images.grid_thw = grid_thw.data();
  images.pixel_values = dev_tensor(d_pixels, SABLE_DTYPE_F32, patches, patch_dim);
  SableTensor out = dev_tensor(d_out, m.opt.compute_dtype, units, m.opt.hidden);
  SableOpsContext ctx = m.context(m.arena);
  const SableStatus s = api->encode_images(model, &ctx, &images, &out);
  check(s, "encode_images", ctx.last_error);
  const size_t n = static_cast<size_t>(units * m.opt.hidden);
  if (elem == 4) {
    check_cuda(cudaMemcpyAsync(out_host, d_out, n * 4, cudaMemcpyDeviceToHost, m.stream),
               "download image embeddings");
    check_cuda(cudaStreamSynchronize(m.stream), "sync");
  } else {
    std::vector<uint16_t> h(n);
    check_cuda(cudaMemcpyAsync(h.data(), d_out, n * 2, cudaMemcpyDeviceToHost, m.stream),
               "download image embeddings");
    check_cuda(cudaStreamSynchronize(m.stream), "sync");
    for (size_t i = 0; i < n; ++i) out_host[i] = weights::bf16_to_f32(h[i]);
  }
  m.arena.reset();
}

void CudaExec::capture_all_or_disable(const SableModelApi* api, SableModel* model,
                                      AttentionBackend& attention, const ExecBatch& b,
                                      const CheckFn& check, bool lora) {
  try {
    impl_->capture_all(api, model, attention, b, check);
  } catch (const std::exception& e) {
    cudaGetLastError();
    if (lora) {
      log::warn("CUDA graphs for LoRA batches disabled: capture failed: {}", e.what());
      impl_->drop_lora_graphs();
      impl_->lora_graphs_ok = false;
    } else {
      log::warn("CUDA graphs disabled: capture failed: {}", e.what());
      impl_->opt.graphs = false;
      impl_->graph_arena.set_growth(true);
    }
    try {
      impl_->zero_expert_counters();  // the warm-up's counts (recorded ones were folded out)
    } catch (const std::exception&) {
      cudaGetLastError();
    }
  }
}

bool CudaExec::has_expert_counters() const { return impl_->d_expert != nullptr; }

void CudaExec::set_expert_recording(bool on) {
  Impl& m = *impl_;
  if (m.d_expert == nullptr || on == m.recording) return;
  if (on) {
    m.zero_expert_counters();  // drop what graph replays counted while off
  } else {
    m.fold_expert_counters();
  }
  m.recording = on;
}

std::vector<int64_t> CudaExec::expert_counts() const {
  const Impl& m = *impl_;
  std::vector<int64_t> counts = m.expert_base;
  if (m.recording) {
    const std::vector<int64_t> live = m.download_expert_counters();
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += live[i];
  }
  return counts;
}

void CudaExec::reset_expert_counts() {
  std::fill(impl_->expert_base.begin(), impl_->expert_base.end(), 0);
  impl_->zero_expert_counters();
}

void CudaExec::download(const float* device_logits, int64_t rows, float* host) const {
  check_cuda(cudaMemcpyAsync(host, device_logits, size_t(rows) * impl_->opt.vocab * 4,
                             cudaMemcpyDeviceToHost, impl_->stream),
             "download logits");
  check_cuda(cudaStreamSynchronize(impl_->stream), "sync");
}

int32_t cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::pair<size_t, size_t> cuda_memory_info() {
  size_t f = 0, t = 0;
  cudaMemGetInfo(&f, &t);
  return {f, t};
}

}  // namespace sable::runner
