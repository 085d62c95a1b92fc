// The C++ half of sable.Engine (see runtime.h).
#include "python/src/runtime.h"

#include <fmt/format.h>

#include "core/chat_template/chat_template.h"
#include "core/cli/startup.h"
#include "core/tokenizer/tokenizer.h"
#include "server/http_error.h"

namespace sable::python {

using nlohmann::json;

// ---- ReadyHub ---------------------------------------------------------------------------------

void ReadyHub::push(uint64_t id) {
  {
    std::lock_guard lock(mutex_);
    ids_.push_back(id);
  }
  cv_.notify_one();
}

std::vector<uint64_t> ReadyHub::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !ids_.empty() || closed_; });
  std::vector<uint64_t> out;
  out.swap(ids_);
  return out;
}

void ReadyHub::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
}

// ---- PyCall -----------------------------------------------------------------------------------

// Set by the generations' notify (engine thread), cleared by the consumer.
struct PyCall::Signal {
  std::mutex mutex;
  std::condition_variable cv;
  bool pending = false;
  std::weak_ptr<ReadyHub> hub;  // set for async calls
  uint64_t id = 0;
  bool stream = false;  // not streaming: only final outputs wake the consumer

  void notify(bool final) {
    if (!stream && !final) return;
    {
      std::lock_guard lock(mutex);
      pending = true;
    }
    cv.notify_all();
    if (auto h = hub.lock()) h->push(id);
  }
};

PyCall::PyCall(std::shared_ptr<Runtime> runtime, uint64_t id, bool async)
    : runtime_(std::move(runtime)), id_(id), signal_(std::make_shared<Signal>()) {
  signal_->id = id;
  if (async) signal_->hub = runtime_->hub_;
}

PyCall::~PyCall() { call_.reset(); }  // ~GenerateCall aborts unfinished generations

bool PyCall::finished() const {
  for (const auto& g : call_->gens) {
    if (!g->done()) return false;
  }
  return true;
}

bool PyCall::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(signal_->mutex);
  if (!signal_->pending && finished()) return true;
  signal_->cv.wait_for(lock, timeout, [&] { return signal_->pending; });
  return signal_->pending;
}

std::vector<std::string> PyCall::take() {
  {
    std::lock_guard lock(signal_->mutex);
    signal_->pending = false;
  }
  std::vector<std::string> out;
  const bool incremental = runtime_->config().incremental_streaming_output;
  const tokenizer::Tokenizer& tok = runtime_->state_->tokenizer;
  for (size_t i = 0; i < call_->gens.size(); ++i) {
    server::Generation& g = *call_->gens[i];
    while (auto d = g.next(std::chrono::milliseconds(0))) {
      if (!call_->request.stream) {
        call_->outputs[i].apply(*d);
        continue;
      }
      if (server::is_error_abort(d->finish)) {
        call_->outputs[i].apply(*d);
        throw server::HttpError(d->finish->status_code, d->finish->message);
      }
      const json chunk = server::stream_chunk(*call_, i, *d, incremental, tok);
      if (!chunk.is_null()) out.push_back(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  if (!call_->request.stream && !answered_ && finished()) {
    answered_ = true;
    out.push_back(server::generate_response(*call_, tok).dump(-1, ' ', false,
                                                              json::error_handler_t::replace));
  }
  return out;
}

void PyCall::abort() {
  for (const auto& item : call_->request.items) runtime_->backend_->abort(item.input.rid);
}

// ---- Runtime ----------------------------------------------------------------------------------

Runtime::Runtime(config::ServerConfig config)
    : config_(std::move(config)), hub_(std::make_shared<ReadyHub>()) {
  engine_ = std::make_unique<engine::Engine>(config_);
  backend_ = std::make_unique<server::EngineBackend>(*engine_);
  state_ = std::make_unique<server::ServerState>(config_, *backend_);
  state_->ready = true;
}

Runtime::~Runtime() { shutdown(); }

void Runtime::check_open() const {
  if (shut_down_) {
    throw std::runtime_error(
        "this sable.Engine has been shut down (shutdown() was called); create a new Engine");
  }
}

std::unique_ptr<PyCall> Runtime::submit(const std::string& body, bool async) {
  check_open();
  const json parsed = json::parse(body);
  state_->check_admission();
  auto call = std::make_unique<PyCall>(shared_from_this(), next_call_id_++, async);
  std::shared_ptr<PyCall::Signal> signal = call->signal_;
  if (parsed.is_object()) {
    const auto it = parsed.find("stream");
    signal->stream = it != parsed.end() && it->is_boolean() && it->get<bool>();
  }
  call->call_ = server::submit_generate(*state_, parsed, [signal](bool final) {
    signal->notify(final);
  });
  return call;
}

std::string Runtime::encode(const std::string& body) {
  check_open();
  return server::encode_response(*state_, json::parse(body)).dump(-1, ' ', false,
                                                                  json::error_handler_t::replace);
}

std::string Runtime::model_info() {
  check_open();
  return server::model_info(*state_).dump();
}

std::string Runtime::server_info() {
  check_open();
  return server::server_info(*state_).dump();
}

bool Runtime::flush_cache() {
  check_open();
  return backend_->flush_cache();
}

server::WeightUpdateResult Runtime::update_weights_from_disk(const std::string& model_path) {
  check_open();
  if (model_path.empty()) {
    throw std::invalid_argument("model_path is required: the folder of the new checkpoint");
  }
  return backend_->update_weights_from_disk(model_path);
}

namespace {
std::string adapters_json(const server::Backend& backend) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& a : backend.lora_adapters()) out[a.name] = a.path;
  return out.dump();
}
}  // namespace

std::string Runtime::load_lora_adapter(const std::string& name, const std::string& path) {
  check_open();
  backend_->load_lora_adapter(name, path);
  return adapters_json(*backend_);
}

std::string Runtime::unload_lora_adapter(const std::string& name) {
  check_open();
  backend_->unload_lora_adapter(name);
  return adapters_json(*backend_);
}

void Runtime::start_expert_distribution_record() {
  check_open();
  backend_->start_expert_distribution_record();
}

void Runtime::stop_expert_distribution_record() {
  check_open();
  backend_->stop_expert_distribution_record();
}

std::string Runtime::dump_expert_distribution_record() {
  check_open();
  return server::expert_distribution_json(backend_->dump_expert_distribution_record()).dump();
}

std::vector<int32_t> Runtime::tokenize(const std::string& text, bool add_special_tokens) {
  return state_->tokenizer.encode(text, add_special_tokens);
}

std::string Runtime::detokenize(const std::vector<int32_t>& ids, bool skip_special_tokens) {
  const int32_t vocab = state_->tokenizer.vocab_size();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw std::invalid_argument(
          fmt::format("token id {} is outside the vocabulary [0, {})", id, vocab));
    }
  }
  return state_->tokenizer.decode(ids, skip_special_tokens);
}

bool Runtime::has_chat_template() const { return state_->chat.tmpl != nullptr; }

std::string Runtime::apply_chat_template(const std::string& context_json) {
  if (!state_->chat.tmpl) {
    throw std::invalid_argument(
        "this model has no chat template; pass chat_template=<file or Jinja text> to the Engine");
  }
  nlohmann::ordered_json context = nlohmann::ordered_json::parse(context_json);
  if (!context.contains("bos_token")) context["bos_token"] = state_->chat.bos_token;
  if (!context.contains("eos_token")) context["eos_token"] = state_->chat.eos_token;
  try {
    return state_->chat.tmpl->render(context);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("cannot apply the chat template: {}", e.what()));
  }
}

void Runtime::shutdown() {
  if (shut_down_.exchange(true)) return;
  state_->draining = true;
  hub_->close();
  engine_->shutdown();  // requests in flight end with finish_reason abort
}

// ---- options ----------------------------------------------------------------------------------

config::ServerConfig make_config(const std::string& yaml_file, const std::vector<Option>& options) {
  config::ServerConfig c;
  if (!yaml_file.empty()) config::apply_yaml_file(c, yaml_file);
  for (const Option& o : options) {
    const std::string origin = fmt::format("sable.Engine({}=...)", o.key);
    if (o.is_list) {
      config::set_field_list(c, o.key, o.items, origin);
    } else {
      config::set_field(c, o.key, o.text, origin);
    }
  }
  if (c.model_path.empty()) {
    throw config::ConfigError(
        "sable.Engine: model_path is required (a model folder, a .gguf file or a Hub id ORG/NAME)");
  }
  cli::setup_logging(c);  // the process's log threshold: the last Engine's log_level wins
  cli::resolve_model_paths(c);  // Hub ids become local snapshot folders (downloading what lacks)
  c.device = cli::resolve_device(c.device);
  return c;
}

}  // namespace sable::python
