// ModelRunner: loading one rank's model (config -> plugin selection -> host -> load_weights ->
// KV pool -> attention backend) and the forward that turns sequences into a SableForwardBatch.
// Tensor-parallel groups of ranks: model_runner_tp.cpp.
#include "core/runner/model_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <map>
#include <stdexcept>

#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qkernels.h"
#include "core/runner/model_runner_impl.h"
#include "core/runner/vision_staging.h"
#include "core/sampling/sampler.h"
#include "core/util/log.h"

#ifdef SABLE_HAVE_CUDA
#include "core/ops/cuda/cuda_ops.h"
#endif

namespace sable::runner {

namespace {

// "1.25 GiB" / "3.4 MiB" for the startup lines.
std::string human_bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1073741824.0) return fmt::format("{:.2f} GiB", b / 1073741824.0);
  return fmt::format("{:.1f} MiB", b / 1048576.0);
}

int32_t parse_dtype(const std::string& dtype, const std::string& device) {
  if (device == "cuda") {
    if (dtype == "auto" || dtype == "bfloat16" || dtype == "bf16") return SABLE_DTYPE_BF16;
    throw std::invalid_argument(fmt::format(
        "dtype '{}' is not supported on device 'cuda' (CUDA computes in bfloat16; use auto)",
        dtype));
  }
  if (dtype == "auto" || dtype == "float32" || dtype == "fp32") return SABLE_DTYPE_F32;
  throw std::invalid_argument(fmt::format(
      "dtype '{}' is not supported on device '{}' (the CPU computes in float32; use auto)", dtype,
      device));
}

}  // namespace

std::string resolve_device(const std::string& device) {
#ifdef SABLE_HAVE_CUDA
  const bool have_gpu = cuda_device_count() > 0;
#else
  const bool have_gpu = false;
#endif
  if (device == "auto") return have_gpu ? "cuda" : "cpu";
  if (device == "cpu") return device;
  if (device == "cuda") {
    if (!have_gpu)
      throw std::invalid_argument(
          "device 'cuda' requested but no CUDA device is available (this build: " +
          std::string(
#ifdef SABLE_HAVE_CUDA
              "CUDA on"
#else
              "CUDA off"
#endif
              ) +
          ")");
    return device;
  }
  throw std::invalid_argument(
      fmt::format("unknown device '{}' (expected cpu, cuda or auto)", device));
}

namespace {

SableTensor host_tensor(void* data, int32_t dtype, std::initializer_list<int64_t> shape) {
  SableTensor t{};
  t.struct_size = sizeof(SableTensor);
  t.dtype = dtype;
  t.device_type = SABLE_DEVICE_CPU;
  t.ndim = static_cast<int32_t>(shape.size());
  int64_t stride = 1;
  std::vector<int64_t> s(shape);
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[i] = s[static_cast<size_t>(i)];
    t.strides[i] = stride;
    stride *= t.shape[i];
  }
  t.data = data;
  return t;
}

// The logits row width a model's info implies; refuses inconsistent infos by the plugin's name.
int32_t logits_width_of(const SableModelInfo& info, const std::string& plugin) {
  switch (info.output_kind) {
    case SABLE_MODEL_OUTPUT_LOGITS: return info.vocab_size;
    case SABLE_MODEL_OUTPUT_SCORE:
      if (info.num_labels < 1)
        throw std::runtime_error(fmt::format(
            "model plugin '{}' declares a score model with num_labels {}", plugin, info.num_labels));
      return info.num_labels;
    case SABLE_MODEL_OUTPUT_HIDDEN: return 0;
    default:
      throw std::runtime_error(fmt::format("model plugin '{}' declares an unknown output kind {}",
                                           plugin, info.output_kind));
  }
}

}  // namespace

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

std::unique_ptr<ModelRunner> ModelRunner::create_rank(const RunnerOptions& options, int32_t rank,
                                                      int32_t size, const SableCommApi* comm_api,
                                                      SableComm* comm) {
  if (options.registry == nullptr)
    throw std::invalid_argument("RunnerOptions.registry is required (the loaded plugins)");
  const std::string device = resolve_device(options.device);
  if (options.page_size <= 0)
    throw std::invalid_argument(
        fmt::format("page_size must be positive, got {}", options.page_size));
  if (options.max_batch_tokens <= 0 || options.max_seqs <= 0)
    throw std::invalid_argument("max_batch_tokens and max_seqs must be positive");
  const int32_t compute_dtype = parse_dtype(options.dtype, device);

  auto impl = std::make_unique<Impl>();
  Impl& r = *impl;
  r.options = options;
  r.options.device_index = options.device_index + rank;  // CUDA: one device per rank
  r.device = device;
  r.tp_rank = rank;
  r.tp_size = size;
  // The plugin sees a config and named weights whichever format holds them (DESIGN: "Where
  // models come from"): a GGUF file brings its config from metadata and its tensors dequantized.
  if (gguf::is_gguf_model(options.model_path)) {
    r.gguf = gguf::GgufModel::open(options.model_path);
    r.config = std::make_unique<hf::HfConfig>(
        hf::HfConfig::parse(r.gguf->config_json(), r.gguf->file().path().string() + " metadata"));
    r.source = make_gguf_source(*r.gguf);
    r.parameters = r.gguf->parameter_count();
    r.weights_description = "GGUF " + r.gguf->quantization();
  } else {
    r.config =
        std::make_unique<hf::HfConfig>(hf::HfConfig::load(options.model_path / "config.json"));
  }
  const std::vector<std::string> archs = r.config->architectures();
  const plugin::ModelSelection sel =
      plugin::select_model_plugin(*options.registry, archs, options.impl);
  r.plugin = sel.plugin;
  r.api = sel.plugin->api_as<SableModelApi>();
  log::info("{}", sel.reason);

  if (!r.gguf) {
    r.checkpoint = weights::Checkpoint::open(options.model_path);
    r.source = make_checkpoint_source(*r.checkpoint);
    std::map<std::string, int64_t> by_dtype;
    for (const std::string& name : r.checkpoint->names()) {
      const weights::TensorInfo& t = r.checkpoint->at(name);
      r.parameters += t.numel();
      by_dtype[weights::dtype_to_safetensors(t.dtype)] += t.numel();
    }
    std::string dtypes;
    for (const auto& [dtype, n] : by_dtype) dtypes += (dtypes.empty() ? "" : "+") + dtype;
    r.weights_description = "safetensors " + dtypes;
  }
  r.compute_dtype = compute_dtype;
  const SableOps* ops_table = ops::cpu_ops();
#ifdef SABLE_HAVE_CUDA
  if (device == "cuda") {
    r.memory = make_cuda_memory(r.options.device_index);
    ops_table = ops::cuda_ops();
  }
#endif
  if (!r.memory) r.memory = make_cpu_memory();
  log::info("device: {} (compute dtype {})", device,
            compute_dtype == SABLE_DTYPE_BF16 ? "bfloat16" : "float32");
  ModelHostOptions host_options;
  host_options.plugin_name = r.plugin->name;
  host_options.compute_dtype = compute_dtype;
  host_options.max_positions = options.context_length;
  host_options.packed_weights = device == "cpu" && options.packed_weights;
  host_options.tp_rank = rank;
  host_options.tp_size = size;
  host_options.comm_api = comm_api;
  host_options.comm = comm;
  if (device == "cpu") {
    ops::cpu::set_threads(options.cpu_threads);
    ops::cpu::set_int8_activations(options.int8_activations);
    log::info("cpu: {} threads, {} kernels, weights {}, {} activations, {}", ops::cpu::threads(),
              ops::cpu::best_kernels().name,
              host_options.packed_weights ? "packed as stored" : "converted to float32",
              options.int8_activations ? "int8" : "float32", ops::cpu::blas_name());
    if (const std::string core = ops::cpu::blas_core_override(); !core.empty())
      log::warn("OpenBLAS runs its Prescott (SSE3) kernels on this CPU, which it does not "
                "recognise: float32 GEMMs (prefill of formats without int8 tiles) are several times "
                "slower than they should be; start with OPENBLAS_CORETYPE={} in the environment",
                core);
  }
  r.host = std::make_unique<ModelHost>(*r.config, *r.source, *r.memory, ops_table, host_options);

  const std::string who = fmt::format("model plugin '{}'", r.plugin->name);
  r.host->take_error();
  r.host->check(r.api->create(r.host->api(), r.host->handle(), &r.model), who + " create");
  r.host->check(r.api->get_info(r.model, &r.info), who + " get_info");
  r.host->check(r.api->load_weights(r.model), who + " load_weights");
  r.host->check_all_weights_used();
  const Fault fault = fault_from_env();
  if (fault.rank == rank && fault.at_start)
    throw std::runtime_error("fault injected at start (SABLE_FAULT_TP_RANK)");
  if (fault.rank == rank) r.fault_forward = fault.forward;
  log::info("tp rank {} of {}: device {}, {} of weights held", rank, size,
            device == "cuda" ? fmt::format("cuda:{}", r.options.device_index) : std::string("cpu"),
            human_bytes(r.host->bytes_held()));

  r.logits_width = logits_width_of(r.info, r.plugin->name);

  r.num_experts = static_cast<int32_t>(r.config->get_int("num_experts").value_or(
      r.config->get_int("num_local_experts").value_or(
          r.config->get_int("n_routed_experts").value_or(0))));
  r.context_length = options.context_length > 0 ? options.context_length : r.info.max_position;
  if (r.context_length <= 0) r.context_length = 4096;
  int64_t num_pages = options.num_pages;
  KvGeometry geometry;
  geometry.num_layers = r.info.num_layers;
  geometry.num_kv_heads = r.info.num_kv_heads;
  geometry.head_dim = r.info.head_dim;
  geometry.page_size = options.page_size;
  geometry.num_pages = 1;
  geometry.dtype = compute_dtype;
#ifdef SABLE_HAVE_CUDA
  auto make_exec = [&] {
    CudaExec::Options eo;
    eo.device_index = r.options.device_index;
    eo.tp_rank = rank;
    eo.tp_size = size;
    eo.comm_api = comm_api;
    eo.comm = comm;
    eo.max_batch_tokens = options.max_batch_tokens;
    eo.max_seqs = options.max_seqs;
    eo.vocab = r.logits_width;
    eo.hidden = r.info.hidden_size;
    eo.compute_dtype = compute_dtype;
    // Decode graphs serve generation; score and encoder models never decode.
    eo.graphs = options.cuda_graphs && r.info.output_kind == SABLE_MODEL_OUTPUT_LOGITS;
    eo.graph_max_bs = options.cuda_graph_max_bs;
    if (options.expert_recording) {
      eo.expert_layers = r.info.num_layers;
      eo.expert_experts = r.num_experts;
    }
    r.cuda = std::make_unique<CudaExec>(eo, ops_table);
  };
  if (device == "cuda") make_exec();
  // An encoder keeps no KV (no layers in the pool): its pages cost nothing and the default sizing
  // below applies.
  if (device == "cuda" && num_pages <= 0 && KvPool::bytes_for(geometry) > 0) {
    // Size the activation arena first (warm_up.h): the largest forward over a scratch KV pool
    // (MoE scratch and image rows included) and the largest vision-tower call, before the KV pool
    // takes the rest of mem_fraction_static, or the max_total_tokens asked for.
    warm_up(r, geometry);
    const auto [free_bytes, total_bytes] = cuda_memory_info();
    const double fraction = options.mem_fraction_static > 0 ? options.mem_fraction_static : 0.85;
    const double used = static_cast<double>(total_bytes - free_bytes);
    // Left free: decode-graph arenas and logits, library workspaces, fragmentation.
    const double reserve = 2.0 * (1 << 30) + 8.0 * options.max_seqs * r.info.vocab_size;
    const double page_bytes = static_cast<double>(KvPool::bytes_for(geometry));
    constexpr double kGiB = 1073741824.0;
    if (options.max_total_tokens > 0) {
      // The pool asked for must fit now, not fail a forward later with out-of-memory.
      const int64_t pages = (options.max_total_tokens + options.page_size - 1) / options.page_size;
      if (pages * page_bytes > free_bytes - reserve)
        throw std::runtime_error(fmt::format(
            "max_total_tokens {} needs {:.1f} GiB of KV cache, but {:.1f} GiB are free after the "
            "weights and activations ({:.1f} GiB kept for graphs and workspaces): lower "
            "max_total_tokens (or leave it 0 to size the pool from free memory)",
            options.max_total_tokens, pages * page_bytes / kGiB, free_bytes / kGiB,
            reserve / kGiB));
      num_pages = pages;
    } else {
      const double kv_bytes = std::min(total_bytes * fraction - used, free_bytes - reserve);
      num_pages = static_cast<int64_t>(kv_bytes / page_bytes);
      if (num_pages <= 0)
        throw std::runtime_error(fmt::format(
            "no device memory left for the KV cache: {:.1f} GiB used of {:.1f} GiB after loading "
            "the weights and sizing activations{} (mem_fraction_static {})",
            used / kGiB, total_bytes / kGiB,
            options.vision.max_patches > 0 && r.info.image_input != 0
                ? fmt::format(" and the vision tower's {} patches per call", options.vision.max_patches)
                : std::string(),
            fraction));
    }
    log::info("device memory: {:.2f} GiB in use after weights and activations, KV pool {:.2f} GiB",
              used / kGiB, num_pages * page_bytes / kGiB);
  }
#endif
  if (num_pages <= 0) {
    const int64_t tokens =
        options.max_total_tokens > 0 ? options.max_total_tokens : 4 * r.context_length;
    num_pages = (tokens + options.page_size - 1) / options.page_size;
  }
  geometry.num_pages = num_pages;
  r.num_pages = num_pages;
  if (r.info.bidirectional != 0) {
    // An encoder caches nothing: no KV pool, no attention backend (ops attention_bidirectional).
    // Pages still budget the tokens of a batch for the embedder, at no memory cost: by default
    // enough for the largest forward.
    if (options.num_pages <= 0 && options.max_total_tokens <= 0)
      num_pages = std::max<int64_t>(num_pages, (options.max_batch_tokens + options.page_size - 1) /
                                                   options.page_size);
    r.num_pages = num_pages;
    log::info("model loaded: plugin '{}', encoder of {} heads, no KV cache, {} tokens per batch",
              r.plugin->name, r.info.num_q_heads, num_pages * options.page_size);
    return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
  }
  r.kv = std::make_unique<KvPool>(geometry, *r.memory);
  r.attention = AttentionBackend::create(*options.registry, options.attention_backend, *r.host,
                                         r.info, *r.kv, options.max_batch_tokens, options.max_seqs);
  log::info("model loaded: plugin '{}', {} layers, {} KV pages of {} tokens, attention '{}'",
            r.plugin->name, r.info.num_layers, num_pages, options.page_size, r.attention->name());
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

const SableModelInfo& ModelRunner::info() const {
  return impl_->info;
}
const hf::HfConfig& ModelRunner::config() const {
  return *impl_->config;
}
const std::string& ModelRunner::plugin_name() const {
  return impl_->plugin->name;
}
int64_t ModelRunner::parameter_count() const { return impl_->parameters; }
const std::string& ModelRunner::weights_description() const { return impl_->weights_description; }
const std::string& ModelRunner::device() const { return impl_->device; }
int32_t ModelRunner::compute_dtype() const { return impl_->compute_dtype; }
int64_t ModelRunner::num_pages() const { return impl_->num_pages; }
int32_t ModelRunner::page_size() const { return impl_->options.page_size; }
int64_t ModelRunner::context_length() const {
  return impl_->context_length;
}
int32_t ModelRunner::logits_width() const { return impl_->logits_width; }
int32_t ModelRunner::device_type() const {
  return impl_->device == "cuda" ? SABLE_DEVICE_CUDA : SABLE_DEVICE_CPU;
}
void* ModelRunner::stream() const {
#ifdef SABLE_HAVE_CUDA
  if (impl_->cuda) return impl_->cuda->stream();
#endif
  return nullptr;
}

std::optional<std::vector<int64_t>> ModelRunner::weight_shape(const std::string& name) const {
  if (!impl_->source || !impl_->source->has(name)) return std::nullopt;
  return impl_->source->shape(name, {});
}

bool ModelRunner::image_input() const {
  return SABLE_HAS(&impl_->info, image_input) && impl_->info.image_input != 0 &&
         SABLE_HAS(impl_->api, encode_images) && impl_->api->encode_images != nullptr;
}

int64_t ModelRunner::max_image_patches() const { return impl_->options.vision.max_patches; }

std::vector<float> ModelRunner::encode_images(std::span<const float> pixel_values,
                                              std::span<const int32_t> grid_thw, int64_t merge) {
  Impl& r = *impl_;
  if (!image_input())
    throw std::invalid_argument(
        fmt::format("model plugin '{}' takes no image input", r.plugin->name));
  if (grid_thw.empty() || grid_thw.size() % 3 != 0 || merge <= 0)
    throw std::invalid_argument("encode_images: grid_thw must hold 3 values per image");
  int64_t patches = 0, units = 0;
  for (size_t i = 0; i < grid_thw.size(); i += 3) {
    const int64_t n = int64_t{grid_thw[i]} * grid_thw[i + 1] * grid_thw[i + 2];
    if (n <= 0 || n % (merge * merge) != 0)
      throw std::invalid_argument(fmt::format("encode_images: image {} has a bad grid", i / 3));
    patches += n;
    units += n / (merge * merge);
  }
  if (r.options.vision.max_patches > 0 && patches > r.options.vision.max_patches)
    throw std::invalid_argument(fmt::format(
        "encode_images: {} patches in one call exceed the {} the vision warm-up reserved memory "
        "for (max_image_patches)",
        patches, r.options.vision.max_patches));
  if (pixel_values.empty() || pixel_values.size() % static_cast<size_t>(patches) != 0)
    throw std::invalid_argument(fmt::format(
        "encode_images: {} pixel values do not divide into {} patches", pixel_values.size(), patches));
  const int64_t patch_dim = static_cast<int64_t>(pixel_values.size()) / patches;
  std::vector<float> out(static_cast<size_t>(units * r.info.hidden_size));
#ifdef SABLE_HAVE_CUDA
  if (r.cuda) {
    r.host->take_error();
    r.cuda->encode_images(r.api, r.model, pixel_values, patch_dim, grid_thw, units, out.data(),
                          r.check_fn(fmt::format("model plugin '{}'", r.plugin->name)));
    return out;
  }
#endif
  if (r.device == "cpu") ops::cpu::adopt_threads();
  SableImageBatch images{};
  images.struct_size = sizeof(images);
  images.num_images = static_cast<int32_t>(grid_thw.size() / 3);
  images.grid_thw = grid_thw.data();
  images.pixel_values = host_tensor(const_cast<float*>(pixel_values.data()), SABLE_DTYPE_F32,
                                    {patches, patch_dim});
  SableTensor out_t = host_tensor(out.data(), SABLE_DTYPE_F32, {units, r.info.hidden_size});
  r.host->take_error();
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CPU;
  ctx.arena = &r.arena;
  const SableStatus status = r.api->encode_images(r.model, &ctx, &images, &out_t);
  r.arena.reset();
  if (status != SABLE_OK && ctx.last_error != nullptr)
    r.host->check(status, fmt::format("model plugin '{}' encode_images ({})", r.plugin->name,
                                      ctx.last_error));
  r.host->check(status, fmt::format("model plugin '{}' encode_images", r.plugin->name));
  return out;
}

int32_t ModelRunner::cuda_graphs_captured(bool lora) const {
#ifdef SABLE_HAVE_CUDA
  if (impl_->cuda) return impl_->cuda->graphs_captured(lora);
#endif
  (void)lora;
  return 0;
}

uint32_t ModelRunner::lora_modules() const {
  return SABLE_HAS(&impl_->info, lora_modules) ? impl_->info.lora_modules : 0u;
}

ModelRunner::ForwardResult ModelRunner::forward(std::span<const Sequence> seqs, bool want_hidden,
                                                bool device_logits, const ops::LoraBatch* lora) {
  Impl& r = *impl_;
  if (!r.tp) return execute(seqs, stage(seqs), want_hidden, device_logits, lora);
  // Tensor parallelism: bad input is refused here, before any rank runs; then every rank runs the
  // same batch and rank 0's logits are returned (the peers keep theirs on their own device).
  if (auto failed = r.tp->failure()) throw std::runtime_error(*failed);
  const Staged staged = stage(seqs);
  ForwardResult result;
  // Peers leave their logits on the device (CUDA: no download; nobody reads them).
  r.tp->run([&](ModelRunner& peer) { peer.forward(seqs, false, true, lora); },
            [&] { result = execute(seqs, staged, want_hidden, device_logits, lora); });
  return result;
}

ModelRunner::Staged ModelRunner::stage(std::span<const Sequence> seqs) {
  Impl& r = *impl_;
  const int32_t page = page_size();
  if (seqs.empty()) throw std::invalid_argument("forward: the batch has no sequences");
  if (static_cast<int64_t>(seqs.size()) > r.options.max_seqs)
    throw std::invalid_argument(
        fmt::format("forward: {} sequences exceed max_seqs {}", seqs.size(), r.options.max_seqs));
  r.token_ids.clear();
  r.positions.clear();
  r.output_rows.clear();
  r.token_types.clear();
  bool any_types = false, any_mrope = false;
  for (const Sequence& s : seqs) {
    any_types = any_types || !s.token_types.empty();
    any_mrope = any_mrope || !s.mrope_positions.empty();
    if ((!s.mrope_positions.empty() || !s.embeds.empty()) && !image_input())
      throw std::invalid_argument("forward: image inputs given to a model without image input");
  }
  r.embeds.clear();
  r.embed_spans.clear();
  r.qo_indptr.assign(1, 0);
  r.kv_indptr.assign(1, 0);
  r.kv_indices.clear();
  r.kv_lens.clear();
  bool decode_only = true;
  const int64_t pool_pages = num_pages();
  for (size_t b = 0; b < seqs.size(); ++b) {
    const Sequence& s = seqs[b];
    const int64_t n = static_cast<int64_t>(s.new_tokens.size());
    if (n == 0)
      throw std::invalid_argument(fmt::format("forward: sequence {} has no new tokens", b));
    if (s.num_cached < 0)
      throw std::invalid_argument(
          fmt::format("forward: sequence {} has num_cached {} < 0", b, s.num_cached));
    if (r.info.bidirectional != 0 && s.num_cached != 0)
      throw std::invalid_argument(fmt::format(
          "forward: sequence {} continues from {} cached tokens, but an encoder runs every "
          "sequence whole in one forward",
          b, s.num_cached));
    if (!s.token_types.empty() && static_cast<int64_t>(s.token_types.size()) != n)
      throw std::invalid_argument(fmt::format(
          "forward: sequence {} has {} token types for {} new tokens", b, s.token_types.size(), n));
    const int64_t total = s.num_cached + n;
    if (total > r.context_length)
      throw std::invalid_argument(
          fmt::format("forward: sequence {} reaches position {} but the context length is {}", b,
                      total - 1, r.context_length));
    const int64_t need = (total + page - 1) / page;
    if (static_cast<int64_t>(s.pages.size()) < need)
      throw std::invalid_argument(
          fmt::format("forward: sequence {} has {} tokens and needs {} pages of {}, got {}", b,
                      total, need, page, s.pages.size()));
    // The page list of every sequence is staged again each step (a decode batch of 256 at 5 k
    // tokens: 1.3 M pages at page size 1), so it is checked as one min/max reduction and appended
    // in one copy: 0.95 -> 0.55 ms for that batch on this host's CPU (bench/NOTES.md v24).
    const std::span<const int32_t> used = s.pages.first(static_cast<size_t>(need));
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (const int32_t p : used) {
      lo = std::min(lo, p);
      hi = std::max(hi, p);
    }
    if (need > 0 && (lo < 0 || hi >= pool_pages)) {
      const int32_t bad = *std::find_if(used.begin(), used.end(),
                                        [&](int32_t p) { return p < 0 || p >= pool_pages; });
      throw std::invalid_argument(fmt::format(
          "forward: sequence {} uses page {} outside the pool [0, {})", b, bad, pool_pages));
    }
    r.kv_indices.insert(r.kv_indices.end(), used.begin(), used.end());
    const int64_t first_row = static_cast<int64_t>(r.token_ids.size());
    for (int64_t j = 0; j < n; ++j) {
      const int32_t tok = s.new_tokens[static_cast<size_t>(j)];
      if (tok < 0 || tok >= r.info.vocab_size)
        throw std::invalid_argument(
            fmt::format("forward: sequence {} token {} has id {} outside the vocabulary [0, {})", b,
                        j, tok, r.info.vocab_size));
      r.token_ids.push_back(tok);
      r.positions.push_back(static_cast<int32_t>(s.num_cached + j));
      if (any_types)
        r.token_types.push_back(s.token_types.empty() ? 0 : s.token_types[static_cast<size_t>(j)]);
      const bool wanted = s.all_logits || (s.first_token ? j == 0 : j == n - 1);
      if (wanted) r.output_rows.push_back(static_cast<int32_t>(first_row + j));
    }
    if (n != 1) decode_only = false;
    stage_embeds(s, b, n, first_row, r.info.hidden_size, r.embeds, r.embed_spans);
    r.qo_indptr.push_back(static_cast<int32_t>(r.token_ids.size()));
    r.kv_indptr.push_back(static_cast<int32_t>(r.kv_indices.size()));
    r.kv_lens.push_back(static_cast<int32_t>(total));
  }
  const int64_t t = static_cast<int64_t>(r.token_ids.size());
  if (t > r.options.max_batch_tokens)
    throw std::invalid_argument(fmt::format("forward: {} new tokens exceed max_batch_tokens {}", t,
                                            r.options.max_batch_tokens));
  if (any_mrope) stage_mrope(seqs, r.positions, r.mrope);
  // Decode steps after the images have equal M-RoPE axes: the plain rope at that position is the
  // same rotation (the plugin's decode path), so the batch runs as a text one (fused projections,
  // and a CUDA graph) with those positions.
  if (any_mrope && decode_only && mrope_axes_agree(r.mrope)) {
    std::copy_n(r.mrope.begin(), r.positions.size(), r.positions.begin());
    any_mrope = false;
  }
  Staged staged;
  staged.tokens = t;
  staged.decode_only = decode_only;
  staged.any_types = any_types;
  staged.any_mrope = any_mrope;
  return staged;
}

ModelRunner::ForwardResult ModelRunner::execute(std::span<const Sequence> seqs,
                                                const Staged& staged, bool want_hidden,
                                                bool device_logits, const ops::LoraBatch* lora) {
  Impl& r = *impl_;
  const int64_t t = staged.tokens;
  const bool decode_only = staged.decode_only, any_types = staged.any_types;
  const bool any_mrope = staged.any_mrope;
  if (r.device == "cpu") ops::cpu::adopt_threads();  // plugins' OpenMP regions too
  if (r.fault_forward > 0 && ++r.forwards == r.fault_forward)
    throw std::runtime_error(
        fmt::format("fault injected on forward {} (SABLE_FAULT_TP_RANK)", r.forwards));

#ifdef SABLE_HAVE_CUDA
  if (r.cuda) {
    ExecBatch eb;
    eb.token_ids = r.token_ids;
    eb.positions = r.positions;
    eb.output_rows = r.output_rows;
    eb.qo_indptr = r.qo_indptr;
    eb.kv_indptr = r.kv_indptr;
    eb.kv_indices = r.kv_indices;
    eb.kv_lens = r.kv_lens;
    eb.token_types = r.token_types;
    eb.decode_only = decode_only;
    eb.lora = lora;
    if (any_mrope) eb.mrope = r.mrope;
    eb.embeds = r.embeds;
    eb.embed_spans = r.embed_spans;
    ForwardResult result;
    result.rows = static_cast<int64_t>(r.output_rows.size());
    result.vocab = r.logits_width;
    if (want_hidden) {
      result.hidden_size = r.info.hidden_size;
      result.hidden.assign(static_cast<size_t>(result.rows * r.info.hidden_size), 0.0f);
    }
    r.host->take_error();
    const CudaExec::CheckFn check = r.check_fn(fmt::format("model plugin '{}'", r.plugin->name));
    const float* logits = r.cuda->run(r.api, r.model, r.attention.get(), eb,
                                      want_hidden ? result.hidden.data() : nullptr, check);
    if (device_logits) {
      result.device_logits = logits;
    } else {
      result.logits.resize(static_cast<size_t>(result.rows * result.vocab));
      r.cuda->download(logits, result.rows, result.logits.data());
    }
    return result;
  }
#endif
  (void)device_logits;
  SableAttentionBatch ab{};
  ab.struct_size = sizeof(ab);
  ab.num_seqs = static_cast<int32_t>(seqs.size());
  ab.num_tokens = static_cast<int32_t>(t);
  ab.is_decode_only = decode_only ? 1 : 0;
  ab.qo_indptr = r.qo_indptr.data();
  ab.kv_indptr = r.kv_indptr.data();
  ab.kv_indices = r.kv_indices.data();
  ab.kv_lens = r.kv_lens.data();
  if (r.attention) r.attention->plan(ab);

  const int64_t rows = static_cast<int64_t>(r.output_rows.size());
  ForwardResult result;
  result.rows = rows;
  result.vocab = r.logits_width;
  result.logits.assign(static_cast<size_t>(rows * r.logits_width), 0.0f);
  if (want_hidden) {
    result.hidden_size = r.info.hidden_size;
    result.hidden.assign(static_cast<size_t>(rows * r.info.hidden_size), 0.0f);
  }

  // On the CPU the batch tensors and outputs are host memory already; a device runner uploads
  // them into the arena and downloads the outputs.
  SableForwardBatch batch{};
  batch.struct_size = sizeof(batch);
  batch.num_tokens = static_cast<int32_t>(t);
  batch.num_seqs = static_cast<int32_t>(seqs.size());
  batch.num_outputs = static_cast<int32_t>(rows);
  batch.is_decode_only = ab.is_decode_only;
  batch.token_ids = host_tensor(r.token_ids.data(), SABLE_DTYPE_I32, {t});
  batch.positions = host_tensor(r.positions.data(), SABLE_DTYPE_I32, {t});
  batch.output_rows = host_tensor(r.output_rows.data(), SABLE_DTYPE_I32, {rows});
  batch.has_lora = lora != nullptr ? 1 : 0;
  batch.token_type_ids =
      host_tensor(any_types ? r.token_types.data() : nullptr, SABLE_DTYPE_I32, {t});
  batch.mrope_positions = host_tensor(any_mrope ? r.mrope.data() : nullptr, SABLE_DTYPE_I32, {3, t});
  batch.num_embed_spans = static_cast<int32_t>(r.embed_spans.size() / 3);
  batch.embed_spans = r.embed_spans.data();
  batch.embeds = host_tensor(r.embeds.empty() ? nullptr : r.embeds.data(), SABLE_DTYPE_F32,
                             {static_cast<int64_t>(r.embeds.size()) / r.info.hidden_size,
                              r.info.hidden_size});
  SableForwardOutput out{};
  out.struct_size = sizeof(out);
  out.logits = host_tensor(r.logits_width > 0 ? result.logits.data() : nullptr, SABLE_DTYPE_F32,
                           {rows, r.logits_width});
  out.hidden = host_tensor(want_hidden ? result.hidden.data() : nullptr, SABLE_DTYPE_F32,
                           {rows, r.info.hidden_size});

  r.host->take_error();
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CPU;
  ctx.arena = &r.arena;
  if (r.expert_recording) ctx.expert_recorder = &r.expert_recorder;
  ctx.lora = lora;
  ctx.tp_rank = r.tp_rank;
  ctx.tp_size = r.tp_size;
  ctx.comm_api = r.host->api()->comm;
  ctx.comm = r.host->api()->comm_handle;
  if (r.attention) r.attention->bind(ctx);
  const SableStatus status = r.api->forward(r.model, &ctx, &batch, &out);
  r.arena.reset();
  if (status != SABLE_OK && ctx.last_error != nullptr)
    r.host->check(status,
                  fmt::format("model plugin '{}' forward ({})", r.plugin->name, ctx.last_error));
  r.host->check(status, fmt::format("model plugin '{}' forward", r.plugin->name));
  return result;
}

int32_t ModelRunner::num_experts() const {
  return impl_->num_experts;
}

void ModelRunner::set_expert_recording(bool on) {
  Impl& r = *impl_;
  if (!r.options.expert_recording)
    throw std::invalid_argument(
        "expert recording was not enabled when the runner was created "
        "(RunnerOptions.expert_recording / expert_distribution_recorder_mode)");
#ifdef SABLE_HAVE_CUDA
  if (r.cuda) {
    if (on && !r.cuda->has_expert_counters())
      throw std::invalid_argument(fmt::format(
          "expert recording on CUDA needs the expert count, but {} has no num_experts, "
          "num_local_experts or n_routed_experts",
          r.config->source()));
    r.cuda->set_expert_recording(on);
  }
#endif
  r.expert_recording = on;
}

bool ModelRunner::expert_recording() const {
  return impl_->expert_recording;
}

std::vector<std::vector<int64_t>> ModelRunner::expert_counts() const {
  const Impl& r = *impl_;
  const auto layers = static_cast<size_t>(std::max(r.info.num_layers, 0));
  ops::ExpertRecorder::Counts counts;
#ifdef SABLE_HAVE_CUDA
  if (r.cuda) {
    const auto experts = static_cast<size_t>(r.num_experts);
    counts.assign(layers, std::vector<int64_t>(experts, 0));
    if (r.cuda->has_expert_counters()) {
      const std::vector<int64_t> flat = r.cuda->expert_counts();
      for (size_t l = 0; l < layers; ++l)
        std::copy_n(flat.begin() + static_cast<std::ptrdiff_t>(l * experts), experts,
                    counts[l].begin());
    }
    return counts;
  }
#endif
  // The recorder discovers layers and experts as ids arrive: pad to [num_layers, num_experts].
  counts = r.expert_recorder.snapshot();
  size_t experts = static_cast<size_t>(r.num_experts);
  for (const auto& row : counts) experts = std::max(experts, row.size());
  counts.resize(std::max(layers, counts.size()));
  for (auto& row : counts) row.resize(experts, 0);
  return counts;
}

void ModelRunner::reset_expert_counts() {
  Impl& r = *impl_;
  r.expert_recorder.reset();
#ifdef SABLE_HAVE_CUDA
  if (r.cuda) r.cuda->reset_expert_counts();
#endif
}

int32_t argmax(std::span<const float> row) {
  if (row.empty()) throw std::invalid_argument("argmax of an empty row");
  return sampling::argmax(row);  // vectorised: the CPU bench's greedy step reads 150k logits a row
}

}  // namespace sable::runner
