// Shared handler state: construction from the config and the admission / prompt checks.
#include "server/server_state.h"

#include <fmt/format.h>

#include <algorithm>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"
#include "core/tokenizer/tokenizer.h"
#include "core/util/log.h"
#include "server/http_error.h"

namespace sable::server {

namespace {

std::shared_ptr<const chat::ChatTemplate> load_template(const config::ServerConfig& config,
                                                        const tokenizer::Tokenizer& tok) {
  std::string source = tok.chat_template();
  if (!config.chat_template.empty()) {
    std::ifstream in(config.chat_template);
    if (in) {
      source.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      source = config.chat_template;  // Jinja text given inline
    }
  }
  if (source.empty()) {
    log::warn("no chat template: /v1/chat/completions will answer 400");
    return nullptr;
  }
  return chat::ChatTemplate::compile(source);
}

}  // namespace

ServerState::ServerState(const config::ServerConfig& cfg, Backend& be)
    : config(cfg),
      backend(be),
      tokenizer(be.tokenizer()),
      facts(be.facts()),
      limits(RequestLimits::from(cfg)),
      metrics(cfg.served_model_name.empty() ? cfg.model_path : cfg.served_model_name),
      preferred(std::make_unique<nlohmann::json>(nullptr)),
      started_unix(std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()) {
  chat.tmpl = load_template(cfg, tokenizer);
  chat.bos_token = tokenizer.bos_token();
  chat.eos_token = tokenizer.eos_token();
  if (facts.image_input) chat.image_placeholder = facts.image_placeholder;
  if (!cfg.preferred_sampling_params.empty()) {
    *preferred = nlohmann::json::parse(cfg.preferred_sampling_params);
  }
}

ServerState::~ServerState() = default;

void ServerState::check_admission() const {
  if (draining.load()) throw HttpError::unavailable("the server is shutting down");
  if (config.max_queued_requests > 0 && backend.stats().queued >= config.max_queued_requests) {
    throw HttpError::unavailable(fmt::format(
        "the server is overloaded: {} requests are waiting (max_queued_requests)",
        config.max_queued_requests));
  }
}

std::string ServerState::served_name() const {
  return config.served_model_name.empty() ? facts.model_path : config.served_model_name;
}

bool ServerState::known_model(const std::string& name) const {
  return name == "default" || name == served_name() || name == config.model_path ||
         name == facts.model_path;
}

void ServerState::require_model(const std::string& name) const {
  if (known_model(name)) return;
  throw HttpError::not_found(
      fmt::format("The model '{}' does not exist: this server serves '{}'", name, served_name()),
      "model", "model_not_found");
}

std::string ServerState::lora_of_model(const std::string& name) const {
  if (known_model(name)) return "";
  std::vector<std::string> loaded;
  for (const auto& a : backend.lora_adapters()) {
    if (a.name == name) return name;
    loaded.push_back(a.name);
  }
  const auto colon = name.rfind(':');
  if (colon != std::string::npos && known_model(name.substr(0, colon))) {
    const std::string adapter = name.substr(colon + 1);
    if (std::find(loaded.begin(), loaded.end(), adapter) != loaded.end()) return adapter;
    throw HttpError::bad_request(
        fmt::format("model: unknown LoRA adapter '{}' (loaded: {})", adapter,
                    loaded.empty() ? "none" : fmt::format("{}", fmt::join(loaded, ", "))),
        "model");
  }
  require_model(name);  // throws: neither the base model nor an adapter
  return "";
}

void ServerState::check_prompt_length(std::vector<int32_t>& ids, const char* field) const {
  const int64_t limit = facts.context_length;
  if (limit <= 0 || static_cast<int64_t>(ids.size()) < limit) return;
  if (config.allow_auto_truncate) {
    ids.resize(static_cast<size_t>(limit - 1));
    return;
  }
  // 400 as OpenAI and SGLang answer it (the openai client raises BadRequestError).
  throw HttpError(400,
                  fmt::format("The input ({} tokens) is longer than the model's context length "
                              "({} tokens).",
                              ids.size(), limit),
                  field, "context_length_exceeded");
}

void ServerState::require_tokenizer(const char* field) const {
  if (!config.skip_tokenizer_init) return;
  throw HttpError::bad_request(
      fmt::format("{} needs the tokenizer, and this server runs with --skip-tokenizer-init: send "
                  "token ids (input_ids) and read output_ids",
                  field),
      field);
}

std::vector<int32_t> ServerState::prompt_ids(const std::string& text, bool add_special_tokens,
                                             const char* field) const {
  require_tokenizer(field);
  std::vector<int32_t> ids = tokenizer.encode(text, add_special_tokens);
  if (ids.empty()) throw HttpError::bad_request(fmt::format("{} encodes to no tokens", field), field);
  check_prompt_length(ids, field);
  return ids;
}

}  // namespace sable::server
