// GrammarBackend (grammar_backend.h): the plugin's engine, a compile cache, and matchers.
#include "core/grammar/grammar_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/grammar/jump_forward.h"
#include "core/util/log.h"
#include "sable/grammar.h"

namespace sable::grammar {
namespace {

constexpr size_t kCacheEntries = 64;  // compiled grammars kept for reuse (each caches its masks)
constexpr size_t kEncodingEntries = 4096;  // jump-forward encodings kept (then all dropped)

// Details a plugin reports through set_error, per calling thread (calls are synchronous).
thread_local std::string t_error;

void host_log(SableHostHandle*, int32_t level, const char* message) {
  const std::string text = fmt::format("grammar plugin: {}", message ? message : "");
  switch (level) {
    case SABLE_LOG_ERROR: log::error("{}", text); break;
    case SABLE_LOG_WARN: log::warn("{}", text); break;
    case SABLE_LOG_INFO: log::info("{}", text); break;
    default: log::debug("{}", text); break;
  }
}

void host_set_error(SableHostHandle*, const char* message) {
  if (!t_error.empty()) t_error += ": ";
  t_error += message ? message : "";
}

std::string take_error() { return std::exchange(t_error, std::string()); }

SableHostApi make_host_api() {
  SableHostApi api{};
  api.struct_size = sizeof(SableHostApi);
  api.abi_major = SABLE_ABI_MAJOR;
  api.abi_minor = SABLE_ABI_MINOR;
  api.log = &host_log;
  api.set_error = &host_set_error;
  api.device_type = SABLE_DEVICE_CPU;
  api.compute_dtype = SABLE_DTYPE_F32;
  api.tp_size = 1;
  return api;
}

}  // namespace

// What matchers share: the plugin table, its engine, the tokenizer bytes it was given.
struct GrammarBackend::State {
  std::string name;
  const SableGrammarApi* api = nullptr;
  SableHostApi host = make_host_api();
  SableGrammarEngine* engine = nullptr;
  // Token bytes handed to the engine at create (it may keep pointers into them).
  std::vector<std::string> bytes;
  std::vector<const char*> bytes_ptr;
  std::vector<int32_t> lens;
  std::vector<uint8_t> special;
  std::vector<int32_t> eos;
  // Encodes forced text for jump-forward; the engine keeps it alive longer than the scheduler's
  // requests and their matchers.
  const tokenizer::Tokenizer* tokenizer = nullptr;
  // LRU of compiled grammars by (kind, spec).
  // A matcher holds its Compiled and the State, and drops the Compiled first, so a grammar is
  // always destroyed before the engine (no State reference here: the LRU would form a cycle).
  struct Compiled {
    const SableGrammarApi* api = nullptr;
    SableGrammar* grammar = nullptr;
    ~Compiled() {
      if (grammar != nullptr) api->grammar_destroy(grammar);
    }
  };
  std::mutex mutex;
  std::list<std::pair<std::string, std::shared_ptr<Compiled>>> lru;

  // encode_forced(last, forced), kept by (last, forced): a grammar forces the same few texts (keys,
  // separators) after the same few tokens in request after request, and the encoding (a BPE
  // encode, several times the rest of a jump) runs between a step's sampling and the next launch.
  std::vector<int32_t> encode(int32_t last, std::string_view forced) {
    std::string key(sizeof last, '\0');
    std::memcpy(key.data(), &last, sizeof last);
    key += forced;
    {
      std::lock_guard<std::mutex> lock(encodings_mutex);
      if (auto it = encodings.find(key); it != encodings.end()) return it->second;
    }
    std::vector<int32_t> ids = encode_forced(*tokenizer, last, forced);
    std::lock_guard<std::mutex> lock(encodings_mutex);
    if (encodings.size() >= kEncodingEntries) encodings.clear();
    encodings.emplace(std::move(key), ids);
    return ids;
  }
  std::mutex encodings_mutex;
  std::unordered_map<std::string, std::vector<int32_t>> encodings;

  ~State() {
    lru.clear();
    if (engine != nullptr) api->destroy(engine);
  }
};

namespace {

class PluginMatcher : public scheduler::GrammarMatcher {
 public:
  PluginMatcher(std::shared_ptr<GrammarBackend::State> state, std::shared_ptr<void> grammar,
                SableMatcher* matcher)
      : state_(std::move(state)), grammar_(std::move(grammar)), matcher_(matcher) {}
  ~PluginMatcher() override { state_->api->matcher_destroy(matcher_); }

  void fill_bitmask(std::span<uint32_t> mask) override {
    take_error();
    const SableStatus st =
        state_->api->fill_bitmask(matcher_, mask.data(), static_cast<int32_t>(mask.size()));
    if (st != SABLE_OK)
      throw std::runtime_error(fmt::format("grammar plugin '{}': fill_bitmask failed: {}",
                                           state_->name, take_error()));
  }
  bool accept_token(int32_t token) override {
    take_error();
    const SableStatus st = state_->api->accept_token(matcher_, token);
    if (st == SABLE_OK) return true;
    if (st == SABLE_ERR_REJECTED) return false;
    throw std::runtime_error(fmt::format("grammar plugin '{}': accept_token failed: {}",
                                         state_->name, take_error()));
  }
  void rollback(int32_t n) override {
    take_error();
    if (state_->api->rollback(matcher_, n) != SABLE_OK)
      throw std::runtime_error(fmt::format("grammar plugin '{}': rollback of {} tokens failed: {}",
                                           state_->name, n, take_error()));
  }
  std::vector<int32_t> jump_forward(int32_t last) override {
    const std::string& forced = forced_text();
    if (forced.empty() || state_->tokenizer == nullptr) return {};
    std::vector<int32_t> ids = state_->encode(last, forced);
    if (ids.empty()) return {};
    // Replace `last` by the encoding: every token of it must walk the grammar (it spells the same
    // bytes, but a token the grammar never allows, e.g. one without bytes, ends the attempt).
    rollback(1);
    int32_t accepted = 0;
    for (int32_t id : ids) {
      if (!accept_token(id)) break;
      ++accepted;
    }
    if (accepted == static_cast<int32_t>(ids.size())) return ids;
    rollback(accepted);
    if (!accept_token(last))
      throw std::logic_error("grammar: a rolled-back token is no longer accepted");
    return {};
  }

 private:
  // The bytes every continuation starts with ("" when the plugin has no jump_forward), in a
  // buffer kept for the next call (no allocation per step).
  const std::string& forced_text() {
    std::string& text = forced_;
    text.clear();
    if (state_->api->jump_forward == nullptr) return text;
    text.resize(std::max<size_t>(text.capacity(), 64));
    for (int attempt = 0; attempt < 2; ++attempt) {
      take_error();
      size_t len = 0;
      if (state_->api->jump_forward(matcher_, text.data(), text.size(), &len) != SABLE_OK)
        throw std::runtime_error(fmt::format("grammar plugin '{}': jump_forward failed: {}",
                                             state_->name, take_error()));
      const bool fits = len <= text.size();
      text.resize(len);
      if (fits) return text;
    }
    throw std::runtime_error(
        fmt::format("grammar plugin '{}': jump_forward changed its length", state_->name));
  }

  std::shared_ptr<GrammarBackend::State> state_;
  std::shared_ptr<void> grammar_;  // the compiled grammar this matcher walks
  SableMatcher* matcher_;
  std::string forced_;  // forced_text()'s buffer
};

}  // namespace

std::unique_ptr<GrammarBackend> GrammarBackend::create(const plugin::Registry& registry,
                                                       const std::string& name,
                                                       const tokenizer::Tokenizer& tokenizer,
                                                       int32_t vocab_size) {
  if (name == "none") return nullptr;
  const plugin::PluginInfo* info = nullptr;
  if (name == "auto" || name.empty()) {
    const auto all = registry.of_kind(SABLE_PLUGIN_GRAMMAR);
    if (all.empty()) return nullptr;
    info = all.front();
  } else {
    info = &registry.require(SABLE_PLUGIN_GRAMMAR, name);
  }
  auto state = std::make_shared<State>();
  state->name = info->name;
  state->api = info->api_as<SableGrammarApi>();
  state->tokenizer = &tokenizer;
  const int32_t known = tokenizer.vocab_size();
  state->bytes.resize(static_cast<size_t>(vocab_size));
  state->lens.assign(static_cast<size_t>(vocab_size), 0);
  state->special.assign(static_cast<size_t>(vocab_size), 0);
  for (int32_t id = 0; id < vocab_size && id < known; ++id) {
    state->bytes[id] = std::string(tokenizer.token_bytes(id));
    state->lens[id] = static_cast<int32_t>(state->bytes[id].size());
    state->special[id] = tokenizer.is_special(id) ? 1 : 0;
  }
  for (const std::string& b : state->bytes) state->bytes_ptr.push_back(b.data());
  for (int32_t id : tokenizer.eos_ids())
    if (id >= 0 && id < vocab_size) state->eos.push_back(id);
  SableTokenizerInfo tok{};
  tok.struct_size = sizeof(tok);
  tok.vocab_size = vocab_size;
  tok.token_bytes = state->bytes_ptr.data();
  tok.token_lens = state->lens.data();
  tok.is_special = state->special.data();
  tok.num_eos = static_cast<int32_t>(state->eos.size());
  tok.eos_ids = state->eos.data();
  take_error();
  if (state->api->create(&state->host, reinterpret_cast<SableHostHandle*>(state.get()), &tok,
                         &state->engine) != SABLE_OK) {
    throw std::runtime_error(
        fmt::format("grammar plugin '{}': create failed: {}", state->name, take_error()));
  }
  log::info("constrained decoding: grammar plugin '{}' ({} tokens, {} EOS ids)", state->name,
            vocab_size, state->eos.size());
  return std::unique_ptr<GrammarBackend>(new GrammarBackend(std::move(state)));
}

GrammarBackend::GrammarBackend(std::shared_ptr<State> state) : state_(std::move(state)) {}
GrammarBackend::~GrammarBackend() = default;

const std::string& GrammarBackend::plugin_name() const { return state_->name; }

std::unique_ptr<scheduler::GrammarMatcher> GrammarBackend::matcher(
    const sampling::SamplingParams& p) {
  int32_t kind = -1;
  const std::string* spec = nullptr;
  const char* field = nullptr;
  if (p.regex) kind = SABLE_GRAMMAR_REGEX, spec = &*p.regex, field = "regex";
  if (p.json_schema) kind = SABLE_GRAMMAR_JSON_SCHEMA, spec = &*p.json_schema, field = "json_schema";
  if (p.ebnf) kind = SABLE_GRAMMAR_EBNF, spec = &*p.ebnf, field = "ebnf";
  if (spec == nullptr) return nullptr;

  const std::string key = fmt::format("{}\n{}", kind, *spec);
  std::shared_ptr<State::Compiled> compiled;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    for (auto it = state_->lru.begin(); it != state_->lru.end(); ++it) {
      if (it->first != key) continue;
      state_->lru.splice(state_->lru.begin(), state_->lru, it);  // most recent first
      compiled = it->second;
      break;
    }
  }
  if (!compiled) {  // compile outside the lock: large schemas take a while
    take_error();
    SableGrammar* g = nullptr;
    if (state_->api->compile(state_->engine, kind, spec->data(), spec->size(), &g) != SABLE_OK) {
      std::string why = take_error();
      if (why.empty()) why = "does not compile";
      // The message names the field once (the plugin may have put it first already).
      if (why.rfind(std::string(field) + ":", 0) != 0) why = fmt::format("{}: {}", field, why);
      throw sampling::ValidationError(field, why);
    }
    compiled = std::make_shared<State::Compiled>();
    compiled->api = state_->api;
    compiled->grammar = g;
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->lru.emplace_front(key, compiled);
    if (state_->lru.size() > kCacheEntries) state_->lru.pop_back();
  }
  take_error();
  SableMatcher* m = nullptr;
  if (state_->api->matcher_create(compiled->grammar, &m) != SABLE_OK)
    throw std::runtime_error(fmt::format("grammar plugin '{}': matcher_create failed: {}",
                                         state_->name, take_error()));
  return std::make_unique<PluginMatcher>(state_, compiled, m);
}

}  // namespace sable::grammar
