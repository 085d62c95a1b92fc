// The HTTP server end to end in-process: a real HttpServer on a loopback port over a scripted fake
// backend (no model), spoken to with httplib's client. Covers routing, streaming shapes, auth, the
// body limit, error statuses, overload, and that a client going away aborts its generation.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/tokenizer/tokenizer.h"
#include "server/http_server.h"
#include "tests/unit/fake_backend.h"

namespace sable::server {
namespace {

using nlohmann::json;

class ServerHttp : public ::testing::Test {
 protected:
  void start(config::ServerConfig c) {
    c.host = "127.0.0.1";
    c.port = 0;
    if (c.served_model_name.empty()) c.served_model_name = "fake";
    server_ = std::make_unique<HttpServer>(c, backend_);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    server_->set_ready();
  }
  void SetUp() override {
    config::ServerConfig c;
    c.enable_metrics = true;
    start(c);
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(20);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body, httplib::Headers headers = {}) {
    return client().Post(path.c_str(), headers, body.dump(), "application/json");
  }
  // The data: payloads of an SSE body.
  static std::vector<std::string> events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      const size_t end = body.find("\n\n", pos);
      out.push_back(body.substr(pos + 6, end - pos - 6));
      pos = end;
    }
    return out;
  }

  FakeBackend backend_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(ServerHttp, GenerateNonStreamAndStreamAgree) {
  auto r = post("/generate", {{"text", "hello"}, {"sampling_params", {{"max_new_tokens", 5}}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["text"], fake_text(5));
  EXPECT_EQ(j["output_ids"].size(), 5u);
  EXPECT_EQ(j["meta_info"]["finish_reason"]["type"], "length");
  EXPECT_EQ(j["meta_info"]["completion_tokens"], 5);

  auto s = post("/generate",
                {{"text", "hello"}, {"stream", true}, {"sampling_params", {{"max_new_tokens", 5}}}});
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  EXPECT_EQ(s->get_header_value("Content-Type"), "text/event-stream");
  const auto ev = events(s->body);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.back(), "[DONE]");
  const json last = json::parse(ev[ev.size() - 2]);
  EXPECT_EQ(last["text"], j["text"]);  // cumulative text
  EXPECT_TRUE(json::parse(ev[0])["meta_info"]["finish_reason"].is_null());
}

TEST_F(ServerHttp, GenerateBatch) {
  auto r = post("/generate", {{"input_ids", {{1, 2}, {3}}}, {"sampling_params", {{"max_new_tokens", 2}}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["meta_info"]["prompt_tokens"], 1);
}

TEST_F(ServerHttp, OpenAIRoutes) {
  auto r = post("/v1/completions", {{"model", "fake"}, {"prompt", "hi"}, {"max_tokens", 3}});
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["text"], fake_text(3));
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);

  r = post("/v1/chat/completions", {{"model", "fake"},
                                    {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                    {"max_tokens", 4},
                                    {"stream", true},
                                    {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const auto ev = events(r->body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json c = json::parse(ev[i]);
    if (!c["choices"].empty()) text += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, fake_text(4));
  const json usage = json::parse(ev[ev.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 4);

  r = client().Get("/v1/models");
  EXPECT_EQ(json::parse(r->body)["data"][0]["id"], "fake");
  EXPECT_EQ(client().Get("/v1/models/fake")->status, 200);
  EXPECT_EQ(client().Get("/v1/models/other")->status, 404);
}

TEST_F(ServerHttp, ErrorStatuses) {
  auto r = client().Post("/generate", "{not json", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(json::parse(r->body)["error"].contains("message"));
  r = post("/generate", {{"text", "a"}, {"sampling_params", {{"top_p", 2}}}});
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "top_p");
  r = post("/v1/completions", {{"model", "nope"}, {"prompt", "hi"}});
  EXPECT_EQ(r->status, 404);  // as OpenAI answers it: the openai client raises NotFoundError
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "model");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_not_found");
  r = post("/v1/completions", {{"model", "fake"}, {"prompt", "hi"}, {"temperature", "x"}});
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "temperature");
  r = client().Get("/no/such/route");
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "not_found");
  // Context length 64: a 100-token prompt is too long.
  r = post("/generate", {{"input_ids", std::vector<int>(100, 5)}});
  EXPECT_EQ(r->status, 400);  // as OpenAI and SGLang answer it
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "context_length_exceeded");
  r = post("/generate", {{"input_ids", {1, 999999}}});
  EXPECT_EQ(r->status, 400);
  // Body over max_request_body_bytes (64 MiB default here: send more than that would be slow,
  // so the limit is tested in ServerHttpLimits).
}

TEST_F(ServerHttp, InfoRoutes) {
  auto r = client().Get("/get_model_info");
  ASSERT_EQ(r->status, 200);
  json j = json::parse(r->body);
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"model_path", "served_model_name", "is_generation",
                                         "tokenizer_path", "preferred_sampling_params",
                                         "weight_version", "reasoning_parser", "tool_call_parser",
                                         "has_image_understanding", "has_audio_understanding"}));
  EXPECT_EQ(j["served_model_name"], "fake");
  // SGLang 0.5's names and the older aliases answer the same.
  EXPECT_EQ(json::parse(client().Get("/model_info")->body), j);
  EXPECT_EQ(json::parse(client().Get("/server_info")->body)["port"], 0);
  EXPECT_EQ(client().Get("/ready")->status, 200);
  EXPECT_EQ(client().Get("/ping")->status, 200);
  EXPECT_EQ(client().Get("/")->status, 200);
  j = json::parse(client().Get("/get_server_info")->body);
  EXPECT_EQ(j["port"], 0);
  EXPECT_EQ(j["max_total_num_tokens"], 1024);
  EXPECT_EQ(j["internal_states"][0]["num_running_reqs"], 0);
  EXPECT_EQ(client().Get("/health")->status, 200);
  EXPECT_EQ(client().Get("/health_generate")->status, 200);
  EXPECT_EQ(client().Get("/flush_cache")->status, 200);

  r = post("/tokenize", {{"prompt", "Hello world"}});
  j = json::parse(r->body);
  EXPECT_EQ(j["tokens"], json(qwen().encode("Hello world", true)));
  EXPECT_EQ(j["count"], j["tokens"].size());
  EXPECT_EQ(j["max_model_len"], 64);
  r = post("/detokenize", {{"tokens", j["tokens"]}});
  EXPECT_EQ(json::parse(r->body)["text"], "Hello world");

  r = post("/update_weights_from_disk", {{"model_path", "/models/fake"}});
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(json::parse(r->body)["success"]);
  r = post("/update_weights_from_disk", {{"model_path", "/nowhere"}});
  EXPECT_EQ(r->status, 400);
  EXPECT_FALSE(json::parse(r->body)["success"]);
  EXPECT_NE(json::parse(r->body)["message"].get<std::string>().find("/nowhere"), std::string::npos);

  EXPECT_EQ(post("/abort_request", {{"rid", "x"}})->status, 200);
  EXPECT_EQ(post("/abort_request", json::object())->status, 400);

  post("/generate", {{"text", "hi"}, {"sampling_params", {{"max_new_tokens", 3}}}});
  r = client().Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("sglang:time_to_first_token_seconds_count{model_name=\"fake\"}"),
            std::string::npos);
  EXPECT_NE(r->body.find("sglang:num_running_reqs{model_name=\"fake\"} 0"), std::string::npos);
}

// Sends `request` as raw bytes and returns the status code of the answer (-1 on no answer).
int raw_status(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};  // far below the server's read timeout: a wait for a body fails the test
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int status = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[256] = {};
    if (::recv(fd, buf, sizeof(buf) - 1, 0) > 12) status = std::atoi(buf + 9);  // "HTTP/1.1 200"
  }
  ::close(fd);
  return status;
}

TEST_F(ServerHttp, BodilessPostIsAnEmptyBody) {
  // `curl -X POST /flush_cache`: no Content-Length, connection kept open.
  EXPECT_EQ(raw_status(port_, "POST /flush_cache HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
  EXPECT_EQ(raw_status(port_, "POST /start_profile HTTP/1.1\r\nHost: x\r\n\r\n"), 501);
  // A route that needs input says what is missing, at once.
  EXPECT_EQ(raw_status(port_, "POST /generate HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST_F(ServerHttp, UnimplementedSglangRoutesAnswer501NamingTheFeature) {
  auto r = post("/v1/classify", {{"input", "q"}});
  ASSERT_EQ(r->status, 501);
  json e = json::parse(r->body)["error"];
  EXPECT_EQ(e["code"], "not_implemented");
  EXPECT_NE(e["message"].get<std::string>().find("classification"), std::string::npos);
  r = client().Get("/v1/responses/resp_123");
  EXPECT_EQ(r->status, 501);
  EXPECT_NE(r->body.find("Responses API"), std::string::npos);
  EXPECT_EQ(client().Delete("/hicache/storage-backend")->status, 501);
}

TEST_F(ServerHttp, ClientGoneAbortsGeneration) {
  httplib::Client c("127.0.0.1", port_);
  httplib::Request req;
  req.method = "POST";
  req.path = "/generate";
  req.body = json({{"text", "hi"}, {"stream", true}, {"sampling_params", {{"max_new_tokens", 100000}}}}).dump();
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
  httplib::Response res;
  httplib::Error err;
  c.send(req, res, err);  // the receiver's false cancels the read and closes the connection
  EXPECT_GE(chunks, 3);
  for (int i = 0; i < 200 && backend_.live > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(backend_.live, 0);
  EXPECT_EQ(backend_.aborted, 1);
}

TEST_F(ServerHttp, OverloadedAndDraining) {
  server_->begin_drain();
  EXPECT_EQ(client().Get("/health")->status, 503);
  auto r = post("/generate", {{"text", "hi"}});
  EXPECT_EQ(r->status, 503);
}

class ServerHttpLimits : public ServerHttp {
 protected:
  void SetUp() override {
    config::ServerConfig c;
    c.api_key = "sekret";
    c.max_request_body_bytes = 4096;
    c.max_queued_requests = 2;
    start(c);
  }
};

TEST_F(ServerHttpLimits, AuthBodyLimitOverload) {
  EXPECT_EQ(client().Get("/health")->status, 200);  // exempt
  auto r = client().Get("/get_model_info");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
  r = client().Get("/get_model_info", {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(r->status, 401);
  const httplib::Headers auth = {{"Authorization", "Bearer sekret"}};
  EXPECT_EQ(client().Get("/get_model_info", auth)->status, 200);
  EXPECT_EQ(client().Get("/metrics", auth)->status, 404);  // metrics off

  r = post("/generate", {{"text", std::string(10000, 'a')}}, auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);

  backend_.queued = 5;
  r = post("/generate", {{"text", "hi"}}, auth);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "overloaded");
}

}  // namespace
}  // namespace sable::server
