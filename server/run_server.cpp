// `sable serve`'s server half (core/cli/run_server.h): builds the engine, binds the HTTP server,
// sends the warm-up request, says that the server is ready, then waits for SIGINT/SIGTERM and
// drains: stop admitting, let in-flight requests finish within shutdown_grace_period_s, abort the
// rest and wait until their answers are written, stop accepting, exit 0.
#include "core/cli/run_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/engine/engine.h"
#include "core/util/log.h"
#include "server/engine_backend.h"
#include "server/http_server.h"

namespace sable::server {

namespace {

using Clock = std::chrono::steady_clock;

// SGLang's warm-up: a short greedy generation through the real HTTP path (/encode for an
// embedding model). With skip_tokenizer_init it sends token ids (SGLang's [10, 11, 12], kept
// inside the vocabulary) instead of text.
bool warm_up(const config::ServerConfig& config, int port, int64_t vocab_size) {
  const std::string host =
      config.host == "0.0.0.0" || config.host == "::" || config.host.empty() ? "127.0.0.1"
                                                                             : config.host;
  httplib::Client client(host, port);
  client.set_read_timeout(600);
  httplib::Headers headers;
  if (!config.api_key.empty()) headers.emplace("Authorization", "Bearer " + config.api_key);
  nlohmann::json body = {{"sampling_params", {{"temperature", 0}, {"max_new_tokens", 8}}}};
  if (config.skip_tokenizer_init) {
    std::vector<int64_t> ids;
    for (int64_t id : {10, 11, 12}) ids.push_back(std::min(id, std::max<int64_t>(vocab_size - 1, 0)));
    body["input_ids"] = ids;
  } else {
    body["text"] = "The capital city of France is";
  }
  const auto res = client.Post(config.is_embedding ? "/encode" : "/generate", headers,
                               body.dump(), "application/json");
  if (!res) {
    sable::log::error("warm-up request failed: {}", httplib::to_string(res.error()));
    return false;
  }
  if (res->status != 200) {
    sable::log::error("warm-up request answered {}: {}", res->status, res->body);
    return false;
  }
  return true;
}

// Waits up to `timeout` for one of the blocked signals; returns it, or 0 on timeout.
int wait_signal(const sigset_t& set, std::chrono::milliseconds timeout) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
  const int sig = ::sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace

int run_server(const config::ServerConfig& config, plugin::Registry& /*plugins*/,
               const plugin::ModelSelection& /*model*/) {
  // Every thread started from here on inherits the blocked mask; only this thread takes signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<engine::Engine> engine;
  try {
    engine = std::make_unique<engine::Engine>(config);
  } catch (const std::exception& e) {
    sable::log::error("cannot start the engine: {}", e.what());
    return 1;
  }
  EngineBackend backend(*engine);
  std::unique_ptr<HttpServer> server;
  int port = 0;
  try {
    server = std::make_unique<HttpServer>(config, backend);
    port = server->bind();
  } catch (const std::exception& e) {
    sable::log::error("cannot start the HTTP server: {}", e.what());
    return 1;
  }
  std::thread http([&] { server->serve(); });
  sable::log::info("HTTP server listening on http://{}:{} ({} worker threads)", config.host, port,
                   kHttpWorkerThreads);

  if (!config.skip_server_warmup && !warm_up(config, port, engine->model_info().vocab_size)) {
    server->stop();
    http.join();
    return 1;
  }
  server->set_ready();
  sable::log::info("The server is fired up and ready to roll! (http://{}:{})", config.host, port);

  // Until a signal, or until the model cannot serve any more (a tensor-parallel rank died): then
  // the server stops on its own with the reason, rather than answering 500s forever.
  int sig = 0;
  std::string fatal;
  while (sig == 0 && fatal.empty()) {
    sig = wait_signal(signals, std::chrono::milliseconds(250));
    fatal = engine->fatal_error();
  }
  if (!fatal.empty())
    sable::log::error("stopping the server: the model cannot serve any more ({})", fatal);
  else
    sable::log::info("received {}: draining (grace period {} s)",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", config.shutdown_grace_period_s);
  server->begin_drain();
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(config.shutdown_grace_period_s * 1000));
  bool forced = false;
  while (server->in_flight() > 0) {
    if (Clock::now() >= deadline || forced) break;
    if (wait_signal(signals, std::chrono::milliseconds(50)) != 0) forced = true;  // a second signal
  }
  if (server->in_flight() > 0) {
    sable::log::warn("aborting {} request(s) still in flight", server->in_flight());
    // Until every answer is written (each client gets its finish_reason abort before the
    // connections close). Repeated: a request that passed admission just before the drain may
    // reach the engine after an abort_all.
    const auto abort_deadline = Clock::now() + std::chrono::seconds(10);
    const std::string why = forced ? "Aborted: the server is shutting down (second signal)"
                                   : fmt::format("Aborted: the server is shutting down (the grace "
                                                 "period of {} s is over)",
                                                 config.shutdown_grace_period_s);
    while (server->in_flight() > 0 && Clock::now() < abort_deadline) {
      backend.abort_all(why);
      wait_signal(signals, std::chrono::milliseconds(50));
    }
  }
  server->stop();
  http.join();
  engine->shutdown();
  sable::log::info("server stopped");
  return fatal.empty() ? 0 : 1;
}

}  // namespace sable::server
