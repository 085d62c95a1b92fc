// Engine construction, request submission, the four offline modes and embed() (see engine.h).
#include "core/engine/engine.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <stdexcept>

#include "core/engine/engine_core.h"
#include "core/engine/pooling.h"
#include "core/gguf/gguf_model.h"
#include "core/gguf/gguf_tokenizer.h"
#include "core/hf_config/hf_config.h"
#include "core/ops/cpu/thread_pool.h"
#include "core/runner/model_runner.h"

#ifdef SABLE_HAVE_CUDA
#include "core/sampling/cuda/cuda_sampler.h"
#endif
#include "core/util/log.h"

namespace sable::engine {

// ---------------------------------------------------------------------------------------------
// RunnerBackend / EngineCore

#ifdef SABLE_HAVE_CUDA
struct RunnerBackend::Device {
  sampling::CudaSampler sampler;
};
#else
struct RunnerBackend::Device {};
#endif

RunnerBackend::RunnerBackend(std::unique_ptr<runner::ModelRunner> r) : runner_(std::move(r)) {
#ifdef SABLE_HAVE_CUDA
  if (runner_->device_type() == SABLE_DEVICE_CUDA) device_ = std::make_unique<Device>();
#endif
}
RunnerBackend::~RunnerBackend() = default;

scheduler::ModelBackend::Logits RunnerBackend::forward(std::span<const Sequence> seqs) {
  std::vector<runner::ModelRunner::Sequence> rs(seqs.size());
  std::vector<int32_t> lora_ids(seqs.size()), lora_rows(seqs.size());
  bool any_all_logits = false, any_hidden = false;
  for (size_t i = 0; i < seqs.size(); ++i) {
    rs[i].new_tokens = seqs[i].new_tokens;
    rs[i].num_cached = seqs[i].num_cached;
    rs[i].pages = seqs[i].pages;
    rs[i].all_logits = seqs[i].all_logits;
    any_all_logits |= seqs[i].all_logits;
    lora_ids[i] = seqs[i].lora_id;
    lora_rows[i] = static_cast<int32_t>(seqs[i].new_tokens.size());
    any_hidden |= seqs[i].want_hidden;
  }
  const ops::LoraBatch* lora = lora_ ? lora_->prepare(lora_ids, lora_rows) : nullptr;
  if (std::any_of(seqs.begin(), seqs.end(), [](const Sequence& s) { return s.images != nullptr; }))
    images_.prepare(*runner_, seqs, rs);
  const bool on_device = device_ != nullptr && !any_all_logits;
  runner::ModelRunner::ForwardResult r;
  try {
    r = runner_->forward(rs, any_hidden, on_device, lora);
  } catch (...) {
    if (auto failed = runner_->tp_failure()) {  // the group is gone: the server must stop
      std::lock_guard<std::mutex> lock(fatal_mutex_);
      fatal_ = *failed;
    }
    throw;
  }
  Logits out;
  out.rows = r.rows;
  out.vocab = r.vocab;
  out.data = std::move(r.logits);
  out.hidden_size = r.hidden_size;
  out.hidden = std::move(r.hidden);
  out.on_device = on_device;
  device_logits_ = r.device_logits;
  vocab_ = r.vocab;
  return out;
}

bool RunnerBackend::replays_decode_graphs() const {
  return runner_->cuda_graphs_captured(false) > 0;
}

bool RunnerBackend::forward_returns_at_launch(std::span<const Sequence> seqs) const {
  // The logits stay on the device (forward's on_device) and no hidden states are downloaded.
  return device_ != nullptr && std::none_of(seqs.begin(), seqs.end(), [](const Sequence& s) {
           return s.all_logits || s.want_hidden;
         });
}

void RunnerBackend::sample_on_device(std::span<const int64_t> row_index,
                                     std::span<const SableSamplingRow> rows,
                                     std::span<SableSampleResult> results) {
#ifdef SABLE_HAVE_CUDA
  if (device_ && device_logits_) {
    device_->sampler.sample(const_cast<float*>(device_logits_), vocab_, vocab_, rows, results,
                            runner_->stream(), row_index);
    return;
  }
#endif
  ModelBackend::sample_on_device(row_index, rows, results);
}

void RunnerBackend::parallel_rows(int64_t n, const std::function<void(int64_t)>& fn) {
  ops::cpu::parallel_rows(n, true, fn);
}

std::string EngineCore::fresh_rid() {
  uint64_t a, b;
  {
    std::lock_guard<std::mutex> lock(rng_mutex);
    a = rng();
    b = rng();
  }
  return fmt::format("{:016x}{:016x}", a, b ^ next_rid.fetch_add(1));
}

TextDecoder::TextDecoder(const tokenizer::Tokenizer& tok, const SamplingParams& p)
    : detok_(tok, p.skip_special_tokens, p.spaces_between_special_tokens, p.stop, p.no_stop_trim) {
  for (const std::string& pattern : p.stop_regex) {
    try {
      stop_regex_.push_back(std::make_unique<tokenizer::Regex>(pattern));
    } catch (const std::exception& e) {
      throw ValidationError("stop_regex", fmt::format("stop_regex: {}", e.what()));
    }
  }
}

std::string TextDecoder::push(int32_t token, std::optional<std::string>* matched) {
  std::string text = detok_.push(std::span<const int32_t>(&token, 1));
  if (reported_) return text;
  if (detok_.stopped()) {
    reported_ = true;
    *matched = detok_.matched_stop();
    return text;
  }
  if (!stop_regex_.empty() && !text.empty()) {
    text_ += text;
    std::vector<tokenizer::Regex::Match> found;
    for (const auto& r : stop_regex_) {
      r->find_all(text_, found);
      if (found.empty()) continue;
      reported_ = true;
      *matched = r->pattern();
      break;
    }
  }
  return text;
}

namespace {

// Every id inside the vocabulary and the prompt shorter than the context (400s naming input_ids).
void check_prompt_ids(const EngineCore& c, const std::vector<int32_t>& ids) {
  const int64_t vocab = c.info.vocab_size;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw ValidationError("input_ids", fmt::format("input_ids: token id {} is outside the "
                                                     "vocabulary [0, {})", id, vocab));
    }
  }
  const auto len = static_cast<int64_t>(ids.size());
  if (len >= c.context_length) {
    throw ValidationError("input_ids", fmt::format("The input ({} tokens) is longer than the "
                                                   "model's context length ({} tokens).",
                                                   len, c.context_length));
  }
}

// The request's grammar matcher (nullptr when unconstrained); a clear 400 when constrained decoding
// is off or the spec does not compile.
std::unique_ptr<scheduler::GrammarMatcher> constrain(EngineCore& c, const SamplingParams& p) {
  if (!p.regex && !p.json_schema && !p.ebnf) return nullptr;
  if (!c.grammar) {
    const char* field = p.regex ? "regex" : p.json_schema ? "json_schema" : "ebnf";
    if (c.config.skip_tokenizer_init) {
      throw ValidationError(field, fmt::format("{}: constrained decoding needs the tokenizer, and "
                                               "this engine runs with skip_tokenizer_init",
                                               field));
    }
    throw ValidationError(field, fmt::format("{}: constrained decoding is off (grammar_backend '{}' "
                                             "and no grammar plugin loaded)",
                                             field, c.config.grammar_backend));
  }
  return c.grammar->matcher(p);
}

// The model's tokenizer, or with skip_tokenizer_init one without a vocabulary (ids in, ids out).
// A folder without tokenizer.json is a startup error that names the flag.
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const config::ServerConfig& config) {
  if (config.skip_tokenizer_init) return tokenizer::Tokenizer::ids_only(config.model_path);
  const std::string tok_dir =
      config.tokenizer_path.empty() ? config.model_path : config.tokenizer_path;
  if (gguf::is_gguf_model(tok_dir)) {
    return gguf::load_tokenizer(*gguf::GgufFile::open(gguf::gguf_path(tok_dir)));
  }
  const std::filesystem::path dir = tok_dir;
  if (!std::filesystem::exists(dir / "tokenizer.json")) {
    throw config::ConfigError(fmt::format(
        "{}: no tokenizer.json; pass --skip-tokenizer-init (YAML skip_tokenizer_init: true) to "
        "serve this checkpoint with token ids only (input_ids in, output_ids out), or point "
        "--tokenizer-path at a folder with the tokenizer",
        dir.string()));
  }
  return tokenizer::Tokenizer::load(dir);
}

// Text needs the tokenizer: with skip_tokenizer_init, a clear 400 naming `field`.
void require_tokenizer(const EngineCore& c, const char* field) {
  if (!c.config.skip_tokenizer_init) return;
  throw ValidationError(field, fmt::format("{}: this engine runs with skip_tokenizer_init (no "
                                           "tokenizer): send input_ids instead of text",
                                           field));
}

// chunked_prefill_size 0 (auto): SGLang's size for an 80 GB GPU, a smaller one on the CPU.
// 134515008 -> "134.5M".
std::string human_count(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

int64_t default_chunk(const std::string& device) { return device == "cuda" ? 8192 : 2048; }

constexpr const char* kNoGeneration =
    "this model is served for embeddings (--is-embedding); generation is not available";
constexpr const char* kNoEmbedding =
    "This model does not appear to be an embedding model by default. Please add `--is-embedding` "
    "when launching the server or try another model.";

// `dimensions` of an embedding request, as SGLang validates it (Matryoshka models only).
void check_dimensions(const EngineCore& c, int64_t dimensions) {
  if (dimensions == 0) return;
  const int64_t hidden = c.info.hidden_size;
  if (c.info.output_kind == SABLE_MODEL_OUTPUT_SCORE)
    throw ValidationError("dimensions", "dimensions applies to embeddings, not to scores");
  if (!c.matryoshka)
    throw ValidationError(
        "dimensions",
        fmt::format("Model '{}' does not support matryoshka representation, changing output "
                    "dimensions will lead to poor results.",
                    c.config.model_path));
  if (dimensions < 1) throw ValidationError("dimensions", "Requested dimensions must be greater than 0");
  const auto& allowed = c.matryoshka_dimensions;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), dimensions) == allowed.end())
    throw ValidationError(
        "dimensions",
        fmt::format("Model '{}' only supports [{}] matryoshka dimensions, using other output "
                    "dimensions will lead to poor results.",
                    c.config.model_path, fmt::join(allowed, ", ")));
  if (dimensions > hidden)
    throw ValidationError("dimensions",
                          fmt::format("Provided dimensions are greater than max embedding "
                                      "dimension: {}",
                                      hidden));
}

runner::RunnerOptions runner_options_from(const config::ServerConfig& c,
                                          const plugin::Registry& registry) {
  runner::RunnerOptions o;
  o.model_path = c.model_path;
  o.device = runner::resolve_device(c.device);
  o.mem_fraction_static = c.mem_fraction_static;
  o.cuda_graphs = !c.disable_cuda_graph;
  o.cuda_graph_max_bs = static_cast<int32_t>(c.cuda_graph_max_bs);
  o.dtype = c.dtype;
  o.impl = c.impl;
  o.attention_backend = c.attention_backend;
  o.page_size = static_cast<int32_t>(c.page_size);
  o.max_total_tokens = c.max_total_tokens;
  o.context_length = c.context_length;
  const int32_t max_running = c.max_running_requests > 0 ? static_cast<int32_t>(c.max_running_requests) : 256;
  o.max_seqs = max_running;
  const int64_t chunk = c.chunked_prefill_size > 0 ? c.chunked_prefill_size
                                                  : default_chunk(o.device);
  o.max_batch_tokens = static_cast<int32_t>(
      (c.chunked_prefill_size < 0 ? std::max<int64_t>(c.max_prefill_tokens, 1 << 16) : chunk) +
      max_running);
  o.expert_recording = !c.expert_distribution_recorder_mode.empty();
  o.cpu_threads = static_cast<int32_t>(c.cpu_threads);
  o.packed_weights = !c.cpu_dequantize;
  o.int8_activations = c.cpu_int8_activations;
  o.tp_size = static_cast<int32_t>(c.tp_size);
  o.vision = vision_budget(c.model_path, c.max_image_patches);
  o.registry = &registry;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Engine

Engine::Engine(const config::ServerConfig& config) : core_(std::make_shared<EngineCore>()) {
  EngineCore& c = *core_;
  c.config = config;
  if (config.model_path.empty()) throw config::ConfigError("model_path: required");
  c.rng.seed(config.random_seed >= 0 ? static_cast<uint64_t>(config.random_seed)
                                     : std::random_device{}());
  plugin::DiscoveryOptions discovery;
  discovery.dirs = plugin::default_plugin_dirs(config.plugin_dirs);
  c.registry = plugin::Registry::discover(discovery);
  const auto load_started = std::chrono::steady_clock::now();
  c.tokenizer = load_tokenizer(config);
  c.runner_options = runner_options_from(config, *c.registry);
  c.backend = std::make_unique<RunnerBackend>(runner::ModelRunner::create(c.runner_options));
  runner::ModelRunner& r = c.backend->runner();
  c.info = r.info();
  c.context_length = r.context_length();
  c.max_total_tokens = r.num_pages() * r.page_size();

  scheduler::SchedulerOptions so;
  so.num_pages = r.num_pages();
  so.page_size = r.page_size();
  so.vocab_size = c.info.vocab_size;
  so.context_length = c.context_length;
  so.max_running_requests = c.runner_options.max_seqs;
  so.chunked_prefill_size = config.chunked_prefill_size == 0
                                ? static_cast<int32_t>(default_chunk(c.runner_options.device))
                            : config.chunked_prefill_size < 0 ? 0
                                                              : static_cast<int32_t>(config.chunked_prefill_size);
  so.max_prefill_tokens = static_cast<int32_t>(config.max_prefill_tokens);
  so.schedule_policy = config.schedule_policy;
  so.schedule_conservativeness = config.schedule_conservativeness;
  so.disable_radix_cache = config.disable_radix_cache;
  so.disable_jump_forward = config.disable_jump_forward;
  so.stream_interval = static_cast<int32_t>(config.stream_interval);
  so.random_seed = c.rng();
  start_lora(c);
  if (c.lora) so.max_loras_per_batch = c.lora->options().max_loras_per_batch;
  const SableSamplerApi* sampler = nullptr;
  if (config.sampling_backend != "auto" && config.sampling_backend != "builtin") {
    sampler = c.registry->require(SABLE_PLUGIN_SAMPLER, config.sampling_backend)
                  .api_as<SableSamplerApi>();
  }
  // Grammars compile against token bytes: without a tokenizer there is nothing to compile against.
  if (!config.skip_tokenizer_init) {
    c.grammar = grammar::GrammarBackend::create(*c.registry, config.grammar_backend, *c.tokenizer,
                                                c.info.vocab_size);
  }
  c.scheduler = std::make_unique<scheduler::Scheduler>(so, *c.backend, sampler);
  if (!config.is_embedding && c.info.output_kind != SABLE_MODEL_OUTPUT_LOGITS) {
    throw config::ConfigError(fmt::format(
        "{}: this is a {} model without a language-model head; serve it with --is-embedding "
        "(YAML is_embedding: true)",
        config.model_path,
        c.info.output_kind == SABLE_MODEL_OUTPUT_SCORE ? "sequence-classification" : "encoder"));
  }
  if (config.is_embedding) {
    // The scheduler stays (it owns the runner's thread, weight swaps and expert recording) but
    // never gets a generation request; the embedder borrows the whole KV pool.
    Embedder::Mode mode;
    mode.whole = c.info.bidirectional != 0;
    mode.scores = c.info.output_kind == SABLE_MODEL_OUTPUT_SCORE;
    mode.first_token = c.info.score_token == SABLE_SCORE_FIRST_TOKEN;
    if (mode.scores) {
      const std::string act =
          r.config().get_string("sbert_ce_default_activation_function").value_or("");
      c.score_sigmoid = act == "torch.nn.modules.activation.Sigmoid";
      if (!act.empty() && !c.score_sigmoid && act != "torch.nn.modules.linear.Identity")
        throw config::ConfigError(fmt::format(
            "{}: sbert_ce_default_activation_function '{}' is not supported (Sigmoid, Identity)",
            config.model_path, act));
      log::info("scores: {} label(s) at the {} token{}", c.info.num_labels,
                mode.first_token ? "first" : "last", c.score_sigmoid ? ", sigmoid" : "");
    } else {
      const Pooling pooling = resolve_pooling(c.runner_options.model_path, config.pooling,
                                              config.pooling_normalize, mode.whole);
      mode.pooling = pooling.kind;
      c.pooling_normalize = pooling.normalize;
      log::info("embeddings: {} pooling, {}normalised (from {})", pooling_name(pooling.kind),
                pooling.normalize ? "" : "not ", pooling.source);
    }
    c.matryoshka_dimensions =
        r.config().get_int_list("matryoshka_dimensions").value_or(std::vector<int64_t>{});
    c.matryoshka = !c.matryoshka_dimensions.empty() ||
                   r.config().get_bool("is_matryoshka").value_or(false);
    Embedder::Limits limits;
    limits.max_batch_tokens = c.runner_options.max_batch_tokens;
    limits.max_seqs = c.runner_options.max_seqs;
    limits.num_pages = r.num_pages();
    limits.page_size = r.page_size();
    scheduler::Scheduler* sched = c.scheduler.get();
    RunnerBackend* backend = c.backend.get();
    c.embedder = std::make_unique<Embedder>(
        [sched](std::function<void()> task) { sched->run_exclusive(std::move(task)); },
        [backend]() -> runner::ModelRunner& { return backend->runner(); }, limits, mode);
  }
  // The one line that says what was loaded.
  const auto archs = r.config().architectures();
  c.architecture = archs.empty() ? r.config().model_type() : archs.front();
  c.images = image_settings(r.image_input(), c.architecture, r.config(), config.model_path,
                            config.skip_tokenizer_init ? nullptr : c.tokenizer.get());
  c.images.max_patches = c.runner_options.vision.max_patches;
  if (c.images.enabled)
    log::info("images: at most {} patches per image and per vision-tower call (max_pixels {})",
              c.images.max_patches, c.images.processor.max_pixels);
  log::info("loaded {}: architecture {} (plugin '{}'), {} parameters, weights {}, compute dtype "
            "{}, context {} tokens, KV cache {} tokens ({} pages of {}), device {}, in {:.2f} s",
            config.model_path, archs.empty() ? r.config().model_type() : archs.front(),
            r.plugin_name(), human_count(r.parameter_count()), r.weights_description(),
            r.compute_dtype() == SABLE_DTYPE_BF16 ? "bfloat16" : "float32", c.context_length,
            c.max_total_tokens, r.num_pages(), r.page_size(), r.device(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - load_started).count());
}

Engine::~Engine() { shutdown(); }

void Engine::shutdown() {
  if (core_->shut_down.exchange(true)) return;
  if (core_->embedder) core_->embedder->shutdown();  // its forwards need the scheduler thread
  core_->scheduler->shutdown();
}

const config::ServerConfig& Engine::config() const { return core_->config; }
const tokenizer::Tokenizer& Engine::tokenizer() const { return *core_->tokenizer; }
const SableModelInfo& Engine::model_info() const { return core_->info; }
std::string Engine::fatal_error() const { return core_->backend->fatal_error(); }
int64_t Engine::context_length() const { return core_->context_length; }
int64_t Engine::max_total_tokens() const { return core_->max_total_tokens; }
void Engine::abort(const std::string& rid) { core_->scheduler->abort(rid); }
void Engine::abort_all(const std::string& message) { core_->scheduler->abort_all(message); }
bool Engine::flush_cache() { return core_->scheduler->flush_cache(); }
bool Engine::is_embedding() const { return core_->embedder != nullptr; }

Engine::ModelKind Engine::model_kind() const {
  if (!core_->embedder) return ModelKind::kGeneration;
  return core_->info.output_kind == SABLE_MODEL_OUTPUT_SCORE ? ModelKind::kScore
                                                             : ModelKind::kEmbedding;
}

const std::string& Engine::architecture() const { return core_->architecture; }
bool Engine::image_input() const { return core_->images.enabled; }
const std::string& Engine::image_placeholder() const { return core_->images.placeholder; }

const char* Engine::model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kGeneration: return "generation";
    case ModelKind::kScore: return "score";
    default: return "embedding";
  }
}

scheduler::SchedulerStats Engine::stats() const {
  scheduler::SchedulerStats s = core_->scheduler->stats();
  if (core_->embedder) {
    // Embedding requests never reach the scheduler: report the embedder's queue and counters.
    const Embedder::Stats e = core_->embedder->stats();
    s.running += e.running;
    s.queued += e.queued;
    s.prompt_tokens += e.prompt_tokens;
    s.finished_requests += e.finished_requests;
    s.num_steps += e.num_forwards;
  }
  return s;
}

std::unique_ptr<RequestHandle> Engine::submit(GenerateInput in, int32_t index) {
  EngineCore& c = *core_;
  if (c.shut_down) throw std::runtime_error("engine: shut down");
  if (c.embedder) throw ValidationError("text", kNoGeneration);
  if (in.input_ids.empty()) {
    if (in.text.empty()) {
      throw ValidationError("text", "Either text, input_ids or input_embeds should be provided.");
    }
    require_tokenizer(c, "text");
    in.input_ids = c.tokenizer->encode(in.text, /*add_special_tokens=*/true);
    if (in.input_ids.empty()) throw ValidationError("text", "the text encodes to no tokens");
  }
  const int64_t vocab = c.info.vocab_size;
  std::shared_ptr<scheduler::RequestImages> images = prepare_images(c.images, in.image_data, in.input_ids);
  check_prompt_ids(c, in.input_ids);
  const auto len = static_cast<int64_t>(in.input_ids.size());
  in.params.validate(vocab, c.context_length);
  if (c.config.skip_tokenizer_init && (!in.params.stop.empty() || !in.params.stop_regex.empty())) {
    throw ValidationError(in.params.stop.empty() ? "stop_regex" : "stop",
                          "stop strings match text, which needs the tokenizer (this engine runs "
                          "with skip_tokenizer_init): use stop_token_ids");
  }
  const auto& lp = in.logprobs;
  if (lp.return_logprob && lp.logprob_start_len >= len) {
    throw ValidationError("logprob_start_len",
                          fmt::format("logprob_start_len ({}) is not less than the input length "
                                      "({})", lp.logprob_start_len, len));
  }
  if (lp.top_logprobs_num < 0) {
    throw ValidationError("top_logprobs_num", "top_logprobs_num must be at least 0");
  }
  for (int32_t id : lp.token_ids_logprob) {
    if (id < 0 || id >= vocab) {
      throw ValidationError("token_ids_logprob",
                            fmt::format("token_ids_logprob: {} is outside the vocabulary", id));
    }
  }
  if (in.return_hidden_states && !c.config.enable_return_hidden_states) {
    throw ValidationError("return_hidden_states",
                          "The server is not configured to return hidden states. Please set the "
                          "`--enable-return-hidden-states` flag.");
  }
  scheduler::Request req;
  req.rid = in.rid.empty() ? c.fresh_rid() : in.rid;
  req.return_hidden_states = in.return_hidden_states;
  req.input_ids = std::move(in.input_ids);
  req.images = std::move(images);
  req.eos_ids = c.tokenizer->eos_ids();
  req.seed = c.fresh_seed();
  req.decoder = std::make_unique<TextDecoder>(*c.tokenizer, in.params);
  req.grammar = constrain(c, in.params);
  req.params = std::move(in.params);
  req.logprobs = std::move(in.logprobs);
  req.stream = std::make_shared<scheduler::RequestStream>();
  if (!in.lora_path.empty()) {
    if (!c.lora)
      throw ValidationError("lora_path", "lora_path: LoRA is not enabled on this server (start it "
                                         "with --enable-lora or --lora-paths NAME=PATH)");
    try {
      const lora::LoraManager::Ref ref = c.lora->acquire(in.lora_path);
      req.lora_id = ref.id;
      req.lora_hold = ref.adapter;
    } catch (const std::invalid_argument& e) {
      throw ValidationError("lora_path", fmt::format("lora_path: {}", e.what()));
    }
  }
  auto handle = std::unique_ptr<RequestHandle>(
      new RequestHandle(core_, req.rid, index, req.stream));
  if (req.return_hidden_states) handle->report_hidden_states();
  c.scheduler->submit(std::move(req));
  return handle;
}

std::vector<std::unique_ptr<RequestHandle>> Engine::submit_batch(std::vector<GenerateInput> inputs) {
  // Validate everything first, so a bad item rejects the batch before anything runs.
  if (core_->embedder) throw ValidationError("text", kNoGeneration);
  for (auto& in : inputs) in.params.validate(core_->info.vocab_size, core_->context_length);
  std::vector<std::unique_ptr<RequestHandle>> handles;
  int32_t index = 0;
  for (auto& in : inputs) {
    const int32_t n = in.params.n;
    if (n <= 1) {
      handles.push_back(submit(std::move(in), index++));
      continue;
    }
    // Parallel sampling: cache the prompt once (max_new_tokens 0), then n samples sharing it.
    GenerateInput warm = in;
    warm.rid.clear();
    warm.params.max_new_tokens = 0;
    warm.params.n = 1;
    warm.params.min_new_tokens = 0;
    warm.logprobs = {};
    submit(std::move(warm))->wait();
    for (int32_t j = 0; j < n; ++j) {
      GenerateInput copy = in;
      copy.rid.clear();
      copy.params.n = 1;
      handles.push_back(submit(std::move(copy), index++));
    }
  }
  return handles;
}

std::vector<GenerateResult> Engine::generate(std::vector<GenerateInput> inputs) {
  auto handles = submit_batch(std::move(inputs));
  std::vector<GenerateResult> out;
  for (auto& h : handles) out.push_back(h->wait());
  return out;
}

std::vector<GenerateResult> Engine::generate(const std::vector<std::string>& prompts,
                                             const SamplingParams& params) {
  std::vector<GenerateInput> inputs;
  for (const auto& p : prompts) {
    GenerateInput in;
    in.text = p;
    in.params = params;
    inputs.push_back(std::move(in));
  }
  return generate(std::move(inputs));
}

GenerateStream Engine::generate_stream(std::vector<GenerateInput> inputs) {
  return GenerateStream(submit_batch(std::move(inputs)));
}

std::future<std::vector<GenerateResult>> Engine::async_generate(std::vector<GenerateInput> inputs) {
  auto handles = std::make_shared<std::vector<std::unique_ptr<RequestHandle>>>(
      submit_batch(std::move(inputs)));
  return std::async(std::launch::async, [handles] {
    std::vector<GenerateResult> out;
    for (auto& h : *handles) out.push_back(h->wait());
    return out;
  });
}

std::future<void> Engine::async_generate_stream(
    std::vector<GenerateInput> inputs, std::function<void(const GenerateResult&)> on_update) {
  struct Pending {
    std::mutex mutex;
    size_t remaining = 0;
    std::promise<void> done;
    std::vector<std::unique_ptr<RequestHandle>> handles;
  };
  auto pending = std::make_shared<Pending>();
  auto handles = submit_batch(std::move(inputs));
  std::future<void> fut = pending->done.get_future();
  pending->remaining = handles.size();
  if (handles.empty()) {
    pending->done.set_value();
    return fut;
  }
  std::vector<RequestHandle*> raw;
  for (auto& h : handles) raw.push_back(h.get());
  {
    std::lock_guard<std::mutex> lock(pending->mutex);
    pending->handles = std::move(handles);  // kept alive until every request finished
  }
  for (RequestHandle* h : raw) {
    h->on_update([pending, on_update](const GenerateResult& r) {
      on_update(r);
      if (r.finished()) {
        std::unique_lock<std::mutex> lock(pending->mutex);
        if (--pending->remaining == 0) {
          // The handles are finished: destroying them aborts nothing. Release them off this
          // (scheduler) thread's lock.
          auto keep = std::move(pending->handles);
          lock.unlock();
          pending->done.set_value();
          keep.clear();
        }
      }
    });
  }
  return fut;
}

std::vector<EmbeddingResult> Engine::embed(std::vector<EmbedInput> inputs) {
  EngineCore& c = *core_;
  if (c.shut_down) throw std::runtime_error("engine: shut down");
  if (!c.embedder) throw ValidationError("input", kNoEmbedding);
  const auto start = std::chrono::steady_clock::now();
  const int64_t pool = c.max_total_tokens;
  // Validate (and tokenize) everything first, so a bad item rejects the batch before anything runs.
  for (EmbedInput& in : inputs) {
    if (in.input_ids.empty() && in.text_pair) {
      if (in.text.empty()) throw ValidationError("text", "the first text of a pair cannot be empty");
      require_tokenizer(c, "text");
      try {
        // Inputs must be shorter than the context (SGLang's rule for every request).
        auto pair = c.tokenizer->encode_pair(in.text, *in.text_pair, c.context_length - 1);
        in.input_ids = std::move(pair.ids);
        in.token_types = std::move(pair.type_ids);
      } catch (const std::invalid_argument& e) {
        throw ValidationError("text", fmt::format("the pair does not fit the context length ({} "
                                                  "tokens): {}",
                                                  c.context_length, e.what()));
      }
    } else if (in.input_ids.empty()) {
      if (in.text.empty()) throw ValidationError("text", "Input cannot be empty");
      require_tokenizer(c, "text");
      in.input_ids = c.tokenizer->encode(in.text, /*add_special_tokens=*/true);
      if (in.input_ids.empty()) throw ValidationError("text", "the text encodes to no tokens");
    }
    if (!in.token_types.empty() && in.token_types.size() != in.input_ids.size())
      throw ValidationError("token_type_ids", "token_type_ids must have one entry per input id");
    check_dimensions(c, in.dimensions);
    check_prompt_ids(c, in.input_ids);
    const auto len = static_cast<int64_t>(in.input_ids.size());
    if (len > pool) {
      throw ValidationError("input_ids", fmt::format("The input ({} tokens) is longer than the KV "
                                                     "pool ({} tokens, max_total_tokens).",
                                                     len, pool));
    }
  }
  std::vector<EmbeddingResult> out(inputs.size());
  std::vector<std::future<Embedder::Output>> futures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    out[i].id = inputs[i].rid.empty() ? c.fresh_rid() : inputs[i].rid;
    out[i].prompt_tokens = static_cast<int64_t>(inputs[i].input_ids.size());
    futures.push_back(c.embedder->submit(std::move(inputs[i].input_ids),
                                         inputs[i].normalize && c.pooling_normalize,
                                         std::move(inputs[i].token_types), inputs[i].dimensions));
  }
  // Wait for every future before rethrowing, so no queued item outlives this call unobserved.
  std::exception_ptr error;
  for (size_t i = 0; i < futures.size(); ++i) {
    try {
      out[i].embedding = futures[i].get().embedding;
      if (c.score_sigmoid) {
        for (float& x : out[i].embedding) x = 1.0f / (1.0f + std::exp(-x));
      }
      out[i].e2e_latency =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return out;
}

std::vector<EmbeddingResult> Engine::embed(const std::vector<std::string>& texts) {
  std::vector<EmbedInput> inputs;
  for (const auto& t : texts) {
    EmbedInput in;
    in.text = t;
    inputs.push_back(std::move(in));
  }
  return embed(std::move(inputs));
}

Engine::UpdateWeightsResult Engine::update_weights_from_disk(const std::string& model_path) {
  EngineCore& c = *core_;
  UpdateWeightsResult result;
  // The new runner brings a fresh KV pool, so requests in flight cannot continue: they are
  // aborted (num_paused_requests counts them) and the prefix cache is flushed.
  const auto before = c.scheduler->stats();
  result.num_paused_requests = before.running + before.queued;
  c.scheduler->abort_all("Aborted: the model weights are being updated");
  try {
    c.scheduler->run_exclusive([&] {
      runner::RunnerOptions o = c.runner_options;
      o.model_path = model_path;
      auto fresh = runner::ModelRunner::create(o);
      const SableModelInfo& a = c.info;
      const SableModelInfo& b = fresh->info();
      if (a.num_layers != b.num_layers || a.num_kv_heads != b.num_kv_heads ||
          a.head_dim != b.head_dim || a.vocab_size != b.vocab_size ||
          a.hidden_size != b.hidden_size) {
        throw std::runtime_error("the new checkpoint has a different architecture or shapes");
      }
      if (c.backend->runner().expert_recording()) fresh->set_expert_recording(true);
      c.backend->swap(std::move(fresh));
      c.runner_options = o;
    });
    c.scheduler->flush_cache();
    result.success = true;
    result.message = "Succeeded to update model weights.";
  } catch (const std::exception& e) {
    result.success = false;
    result.message = std::string("Failed to update weights: ") + e.what();
  }
  return result;
}

}  // namespace sable::engine
