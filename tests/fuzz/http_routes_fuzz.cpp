// libFuzzer target over the request handling of every HTTP route, in-process: the real HttpServer
// (all routes, auth off, metrics on, small per-request limits) over the scripted fake backend of the
// unit tests, answered through HttpServer::handle_raw, so no request crosses a socket.
//
// Structure-aware: an input is one byte picking the route and a JSON body. The custom mutator edits
// the body as a JSON tree (a value replaced by one of another type or a boundary number, a field
// name Sable reads inserted, a key or item dropped or duplicated, a string's bytes mutated) so that
// most mutants stay valid JSON and reach the handlers' field checks; one mutation in eight works on
// the raw bytes to keep the JSON parser itself covered.
//
// Invariants checked on every input: the server answers a complete HTTP response, never 500, an
// error answer says why (a JSON body with a message), and no generation outlives its request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/http_server.h"
#include "tests/unit/fake_backend.h"

using nlohmann::json;

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using sable::server::FakeBackend;
using sable::server::HttpServer;

// Every route that reads a request body, and a few that read none.
const char* const kRoutes[] = {
    "POST /generate",           "POST /v1/completions",     "POST /v1/chat/completions",
    "POST /v1/embeddings",      "POST /encode",             "POST /tokenize",
    "POST /v1/tokenize",        "POST /detokenize",         "POST /v1/detokenize",
    "POST /abort_request",      "POST /flush_cache",        "POST /update_weights_from_disk",
    "POST /parse_function_call", "POST /separate_reasoning", "POST /invocations",
    "POST /start_expert_distribution_record",               "POST /dump_expert_distribution_record",
    "PUT /generate",            "GET /v1/models/fake",      "GET /server_info",
    "GET /health_generate",     "GET /metrics",             "POST /classify",
    "POST /v1/rerank",          "POST /v1/score"};
constexpr size_t kNumRoutes = sizeof(kRoutes) / sizeof(kRoutes[0]);

// Field names the routes read, for the mutator to insert.
const char* const kKeys[] = {
    "text", "input_ids", "sampling_params", "stream", "rid", "return_logprob", "logprob_start_len",
    "top_logprobs_num", "token_ids_logprob", "return_text_in_logprobs", "max_new_tokens",
    "min_new_tokens", "temperature", "top_p", "top_k", "min_p", "frequency_penalty",
    "presence_penalty", "repetition_penalty", "stop", "stop_token_ids", "stop_regex", "ignore_eos",
    "n", "regex", "json_schema", "ebnf", "logit_bias", "skip_special_tokens", "no_stop_trim",
    "model", "prompt", "messages", "role", "content", "name", "tool_calls", "tools", "tool_choice",
    "function", "parameters", "arguments", "type", "max_tokens", "max_completion_tokens",
    "response_format", "schema", "json_schema", "logprobs", "top_logprobs", "echo", "suffix",
    "seed", "user", "stream_options", "include_usage", "input", "encoding_format", "dimensions",
    "tokens", "add_special_tokens", "abort_all", "model_path", "tool_call_parser",
    "reasoning_parser", "separate_reasoning", "chat_template_kwargs", "enable_thinking",
    "continue_final_message", "query", "documents", "items", "label_token_ids"};

const json kBoundary[] = {0, -1, 1, 2, 7, 64, 129, 2147483647, 2147483648LL, -2147483649LL,
                          9007199254740993LL, 1e300, -1e300, 0.5, -0.0, 1e-320, true, false,
                          nullptr, "", "a", "\xff", json::array(), json::object()};

struct Fixture {
  FakeBackend backend;
  std::unique_ptr<HttpServer> server;
  Fixture() {
    backend.token_delay = std::chrono::milliseconds(0);
    backend.max_tokens = 12;
    sable::config::ServerConfig c;
    c.host = "127.0.0.1";
    c.port = 0;
    c.served_model_name = "fake";
    c.enable_metrics = true;
    c.max_parallel_samples = 4;
    c.max_prompts_per_request = 4;
    c.max_stop_strings = 8;
    c.max_grammar_bytes = 4096;
    c.tool_call_parser = "qwen25";
    c.reasoning_parser = "qwen3";
    server = std::make_unique<HttpServer>(c, backend);
    server->bind();  // streamed bodies are written only while the listening socket is open
    server->set_ready();
  }
};

Fixture& fixture() {
  static Fixture* f = new Fixture();  // lives to the end: the server's threads may outlive main
  return *f;
}

// All nodes of a JSON tree, for picking one at random.
void collect(json& j, std::vector<json*>& out) {
  out.push_back(&j);
  if (j.is_object() || j.is_array()) {
    for (auto& child : j) collect(child, out);
  }
}

json random_value(std::mt19937& rng, int depth = 0) {
  switch (rng() % (depth > 2 ? 3 : 6)) {
    case 0: return kBoundary[rng() % std::size(kBoundary)];
    case 1: return std::string(kKeys[rng() % std::size(kKeys)]);
    case 2: return static_cast<int64_t>(rng() % 200000);
    case 3: {
      json a = json::array();
      for (unsigned i = rng() % 4; i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    case 4: return json::array({{{"role", "user"}, {"content", "hi"}}});
    default: {
      json o = json::object();
      for (unsigned i = rng() % 3; i > 0; --i) {
        o[kKeys[rng() % std::size(kKeys)]] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

void mutate_tree(json& root, std::mt19937& rng) {
  std::vector<json*> nodes;
  collect(root, nodes);
  json& node = *nodes[rng() % nodes.size()];
  switch (rng() % 6) {
    case 0: node = random_value(rng); break;
    case 1:
      if (node.is_object()) node[kKeys[rng() % std::size(kKeys)]] = random_value(rng);
      else node = kBoundary[rng() % std::size(kBoundary)];
      break;
    case 2:
      if (node.is_object() && !node.empty()) {
        auto it = node.begin();
        std::advance(it, static_cast<long>(rng() % node.size()));
        node.erase(it);
      } else if (node.is_array() && !node.empty()) {
        node.erase(node.begin() + static_cast<long>(rng() % node.size()));
      }
      break;
    case 3:
      if (node.is_string()) {
        std::string s = node.get<std::string>();
        const size_t cap = s.size() + 16;
        s.resize(cap);
        s.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s.data()), node.get<std::string>().size(),
                                  cap));
        node = s;
      } else if (node.is_number()) {
        node = kBoundary[rng() % 12];
      }
      break;
    case 4:
      if (node.is_array() && !node.empty() && node.size() < 64) node.push_back(node[rng() % node.size()]);
      break;
    default:
      if (node.is_object() || node.is_array()) node = node.dump();  // a container sent as a string
      break;
  }
}

std::string http_request(uint8_t route, std::string_view body) {
  const std::string line = kRoutes[route % kNumRoutes];
  const size_t space = line.find(' ');
  std::string req = line.substr(0, space) + " " + line.substr(space + 1) +
                    " HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n";
  if (line.rfind("GET", 0) == 0) return req + "\r\n";
  return req + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

}  // namespace

// Builds the server before fuzzing starts: loading the tokenizer takes seconds under ASan, which
// must not count against the first input's -timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixture();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937 rng(seed);
  if (size < 2 || rng() % 8 == 0) return LLVMFuzzerMutate(data, size, max_size);
  uint8_t route = data[0];
  json body = json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return LLVMFuzzerMutate(data, size, max_size);
  if (rng() % 10 == 0) route = static_cast<uint8_t>(rng());
  else mutate_tree(body, rng);
  const std::string out = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (out.size() + 1 > max_size) return LLVMFuzzerMutate(data, size, max_size);
  data[0] = route;
  std::memcpy(data + 1, out.data(), out.size());
  return out.size() + 1;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string answer = f.server->handle_raw(http_request(data[0], body));
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12) std::abort();  // no answer at all
  const int status = std::atoi(answer.c_str() + 9);
  if (status >= 500 && status != 501 && status != 503) std::abort();  // an internal error
  const size_t head_end = answer.find("\r\n\r\n");
  if (head_end == std::string::npos) std::abort();
  if (status >= 400) {
    // An error says why: the JSON error body, SGLang's {"success": false, "message"} of the
    // control routes, or (/flush_cache) its plain-text note.
    const std::string head = answer.substr(0, head_end);
    const std::string content = answer.substr(head_end + 4);
    if (head.find("Content-Type: application/json") != std::string::npos) {
      const json err = json::parse(content, nullptr, false);
      const bool has_error = err.is_object() && err.contains("error") && err["error"].is_object() &&
                             err["error"].contains("message");
      const bool has_message = err.is_object() && err.contains("message");
      if (!has_error && !has_message) std::abort();
    } else if (content.empty()) {
      std::abort();
    }
  }
  if (f.backend.live.load() != 0) std::abort();  // a generation outlived its request
  return 0;
}
