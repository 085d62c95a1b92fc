// What one sable.Engine owns on the C++ side, and one request submitted through it.
//
// Runtime = engine::Engine + the server's EngineBackend + a ServerState: Python requests run the
// very code of the HTTP routes (server/native_calls.h), only without HTTP, so results are the
// dicts /generate returns. Nothing here knows Python; module.cpp binds it (and releases the GIL
// around every blocking call).
//
// Waiting: a PyCall's generations signal it (Generation::set_notify) whenever output is ready.
// Synchronous callers block on the call itself; asynchronous calls are also reported to the
// runtime's ReadyHub, on which one Python thread per engine waits for all of them at once and
// wakes their asyncio tasks.
//
// Thread-safety: Runtime methods may be called from any thread. A PyCall is used by one thread at
// a time (its notify side is thread-safe).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/server_config.h"
#include "core/engine/engine.h"
#include "server/engine_backend.h"
#include "server/native_calls.h"
#include "server/server_state.h"

namespace sable::python {

// Ids of asynchronous calls with output ready, collected for the one waiting Python thread.
class ReadyHub {
 public:
  void push(uint64_t id);
  // Blocks up to `timeout` for ids; returns them (each once) and empties the list.
  std::vector<uint64_t> take(std::chrono::milliseconds timeout);
  void close();  // wakes the waiter for good (engine shutdown)

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<uint64_t> ids_;
  bool closed_ = false;
};

class Runtime;

// One /generate call made from Python (a prompt or a batch; streamed or not).
class PyCall {
 public:
  PyCall(std::shared_ptr<Runtime> runtime, uint64_t id, bool async);
  ~PyCall();  // aborts what did not finish

  uint64_t id() const { return id_; }
  bool stream() const { return call_->request.stream; }
  bool finished() const;
  // Blocks up to `timeout` until output is ready (or the call finished). Returns whether it is.
  bool wait(std::chrono::milliseconds timeout);
  // Takes the output that is ready without blocking. Streaming: the chunks to hand out, as JSON
  // text, in arrival order. Not streaming: nothing until the end, then the whole answer (one
  // object or a batch array). Throws HttpError when an item ended with an error.
  std::vector<std::string> take();
  // Ends every generation of the call (finish_reason abort); take() then reports them.
  void abort();

 private:
  friend class Runtime;
  struct Signal;
  std::shared_ptr<Runtime> runtime_;
  uint64_t id_;
  std::shared_ptr<Signal> signal_;
  std::unique_ptr<server::GenerateCall> call_;
  bool answered_ = false;  // non-streaming: the answer was returned
};

class Runtime : public std::enable_shared_from_this<Runtime> {
 public:
  // Loads the model (throws std::runtime_error / ConfigError naming the problem).
  explicit Runtime(config::ServerConfig config);
  ~Runtime();

  // A /generate body (JSON text) submitted as one call. Throws HttpError / ValidationError for
  // bad input before anything is queued, std::runtime_error after shutdown.
  std::unique_ptr<PyCall> submit(const std::string& body, bool async);
  std::string encode(const std::string& body);  // /encode
  std::string model_info();
  std::string server_info();
  bool flush_cache();
  server::WeightUpdateResult update_weights_from_disk(const std::string& model_path);
  // LoRA adapters: load / unload, each returning the loaded adapters as JSON {name: path}.
  std::string load_lora_adapter(const std::string& name, const std::string& path);
  std::string unload_lora_adapter(const std::string& name);
  void start_expert_distribution_record();
  void stop_expert_distribution_record();
  std::string dump_expert_distribution_record();  // the /dump_expert_distribution_record JSON

  std::vector<int32_t> tokenize(const std::string& text, bool add_special_tokens);
  std::string detokenize(const std::vector<int32_t>& ids, bool skip_special_tokens);
  // {"messages": [...], "add_generation_prompt": bool, "tools": [...]?, and template kwargs}.
  std::string apply_chat_template(const std::string& context_json);
  bool has_chat_template() const;

  ReadyHub& hub() { return *hub_; }
  void shutdown();
  bool is_shut_down() const { return shut_down_; }
  const config::ServerConfig& config() const { return config_; }

 private:
  friend class PyCall;
  void check_open() const;
  config::ServerConfig config_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<server::EngineBackend> backend_;
  std::unique_ptr<server::ServerState> state_;
  std::shared_ptr<ReadyHub> hub_;
  std::atomic<uint64_t> next_call_id_{1};
  std::atomic<bool> shut_down_{false};
};

// Builds a ServerConfig from keyword options: `yaml_file` first (may be empty), then each
// (key, value text) / (key, list) in order, then what `sable serve` resolves (model and tokenizer
// paths through the model resolver, served_model_name, device). Sets the log threshold. Throws
// ConfigError naming the key, or the resolver's error.
struct Option {
  std::string key;
  std::string text;
  std::vector<std::string> items;
  bool is_list = false;
};
config::ServerConfig make_config(const std::string& yaml_file, const std::vector<Option>& options);

}  // namespace sable::python
