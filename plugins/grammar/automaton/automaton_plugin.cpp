// The "automaton" grammar engine: regex, JSON schema, choices and (non-recursive) EBNF compiled to
// one byte-level DFA each, with per-state token masks over the tokenizer's vocabulary trie. This
// file is only the C table: it boxes the C++ objects behind the opaque ABI handles and turns every
// exception into a status plus a message for the host (compile errors become a 400 there).
//
// Ownership: a grammar handle holds a shared_ptr to the compiled grammar and every matcher holds
// another, so destroying a grammar (or the host evicting it from its cache) while matchers still
// run is safe. The host handle is kept by each box for error reports; it outlives the engine.
// Error messages carry no plugin prefix (the host adds the plugin name); compile errors start with
// the grammar kind ("regex: ...").
#include <memory>
#include <span>
#include <string>

#include "grammar.h"
#include "matcher.h"
#include "sable/cpp/plugin.h"
#include "sable/grammar.h"
#include "vocabulary.h"

namespace sable::grammar {
namespace {

using sable::cpp::fail;

struct HostRef {
  const SableHostApi* api;
  SableHostHandle* handle;

  void log(int32_t level, const std::string& message) const {
    if (api != nullptr && api->log != nullptr) api->log(handle, level, message.c_str());
  }
  void set_error(const std::string& message) const {
    if (api != nullptr && api->set_error != nullptr) api->set_error(handle, message.c_str());
  }
};

// Cached token masks of all of an engine's grammars together (~27k masks of a 152k vocabulary).
constexpr int64_t kMaskBudgetBytes = int64_t(512) << 20;

struct Engine {
  HostRef host;
  std::shared_ptr<const Vocabulary> vocab;
  std::shared_ptr<MaskBudget> budget = std::make_shared<MaskBudget>(kMaskBudgetBytes);
};

struct GrammarBox {
  HostRef host;
  std::shared_ptr<const CompiledGrammar> grammar;
};

struct MatcherBox {
  HostRef host;
  Matcher matcher;
};

// Opaque handle <-> box. Boxes are created with make_unique and released to the host; the
// destroy functions take ownership back.
template <class Box, class Handle>
Handle* to_handle(std::unique_ptr<Box> box) {
  return reinterpret_cast<Handle*>(box.release());
}
template <class Box, class Handle>
Box* from_handle(Handle* handle) {
  return reinterpret_cast<Box*>(handle);
}

SableStatus create(const SableHostApi* host, SableHostHandle* h,
                   const SableTokenizerInfo* tokenizer, SableGrammarEngine** out) noexcept {
  SABLE_TRY {
    if (tokenizer == nullptr || out == nullptr)
      fail(SABLE_ERR_INVALID_ARGUMENT, "create needs tokenizer info and an output");
    if (!SABLE_HAS(tokenizer, eos_ids))
      fail(SABLE_ERR_INVALID_ARGUMENT, "SableTokenizerInfo is too small (struct_size)");
    auto engine =
        std::make_unique<Engine>(Engine{{host, h}, std::make_shared<Vocabulary>(*tokenizer)});
    engine->host.log(SABLE_LOG_DEBUG, "automaton: " + std::to_string(engine->vocab->size()) +
                                          " tokens, trie of " +
                                          std::to_string(engine->vocab->trie().size()) + " nodes");
    *out = to_handle<Engine, SableGrammarEngine>(std::move(engine));
    return SABLE_OK;
  }
  SABLE_CATCH(host, h)
}

void destroy(SableGrammarEngine* engine) noexcept {
  std::unique_ptr<Engine>(from_handle<Engine>(engine));
}

SableStatus compile(SableGrammarEngine* handle, int32_t kind, const char* spec, size_t spec_len,
                    SableGrammar** out) noexcept {
  Engine* engine = from_handle<Engine>(handle);
  SABLE_TRY {
    if (spec == nullptr && spec_len > 0) fail(SABLE_ERR_INVALID_ARGUMENT, "compile got no spec");
    const std::string_view text(spec == nullptr ? "" : spec, spec_len);
    auto box = std::make_unique<GrammarBox>(
        GrammarBox{engine->host,
                   compile_grammar(kind, text, engine->vocab, kMaxDfaStates, engine->budget)});
    engine->host.log(SABLE_LOG_DEBUG,
                     std::string("automaton: compiled ") + grammar_kind_name(kind) + " to " +
                         std::to_string(box->grammar->dfa().num_states()) +
                         (box->grammar->dfa().lazy() ? " DFA states so far (lazy)" : " DFA states"));
    *out = to_handle<GrammarBox, SableGrammar>(std::move(box));
    return SABLE_OK;
  }
  SABLE_CATCH(engine->host.api, engine->host.handle)
}

void grammar_destroy(SableGrammar* grammar) noexcept {
  std::unique_ptr<GrammarBox>(from_handle<GrammarBox>(grammar));
}

SableStatus matcher_create(SableGrammar* handle, SableMatcher** out) noexcept {
  GrammarBox* g = from_handle<GrammarBox>(handle);
  SABLE_TRY {
    *out = to_handle<MatcherBox, SableMatcher>(
        std::make_unique<MatcherBox>(MatcherBox{g->host, Matcher(g->grammar)}));
    return SABLE_OK;
  }
  SABLE_CATCH(g->host.api, g->host.handle)
}

void matcher_destroy(SableMatcher* matcher) noexcept {
  std::unique_ptr<MatcherBox>(from_handle<MatcherBox>(matcher));
}

SableStatus fill_bitmask(SableMatcher* handle, uint32_t* mask, int32_t words) noexcept {
  MatcherBox* m = from_handle<MatcherBox>(handle);
  SABLE_TRY {
    if (mask == nullptr || words < 0)
      fail(SABLE_ERR_INVALID_ARGUMENT, "fill_bitmask needs a mask buffer");
    m->matcher.fill_bitmask(std::span<uint32_t>(mask, static_cast<size_t>(words)));
    return SABLE_OK;
  }
  SABLE_CATCH(m->host.api, m->host.handle)
}

SableStatus accept_token(SableMatcher* handle, int32_t token) noexcept {
  MatcherBox* m = from_handle<MatcherBox>(handle);
  SABLE_TRY {
    if (m->matcher.accept_token(token)) return SABLE_OK;
    // Not an exception: callers may probe many tokens (speculative drafts), keep it cheap.
    m->host.set_error("token " + std::to_string(token) + " is not allowed here");
    return SABLE_ERR_REJECTED;
  }
  SABLE_CATCH(m->host.api, m->host.handle)
}

int32_t is_terminated(SableMatcher* handle) noexcept {
  return handle != nullptr && from_handle<MatcherBox>(handle)->matcher.is_terminated() ? 1 : 0;
}

SableStatus rollback(SableMatcher* handle, int32_t num_tokens) noexcept {
  MatcherBox* m = from_handle<MatcherBox>(handle);
  SABLE_TRY {
    m->matcher.rollback(num_tokens);
    return SABLE_OK;
  }
  SABLE_CATCH(m->host.api, m->host.handle)
}

SableStatus jump_forward(SableMatcher* handle, char* buf, size_t cap, size_t* len) noexcept {
  MatcherBox* m = from_handle<MatcherBox>(handle);
  SABLE_TRY {
    if (len == nullptr || (buf == nullptr && cap > 0))
      fail(SABLE_ERR_INVALID_ARGUMENT, "jump_forward needs len (and buf when cap > 0)");
    const std::string forced = m->matcher.jump_forward();
    forced.copy(buf, std::min(cap, forced.size()));
    *len = forced.size();
    return SABLE_OK;
  }
  SABLE_CATCH(m->host.api, m->host.handle)
}

const SableGrammarApi kApi = {.struct_size = sizeof(SableGrammarApi),
                              .reserved = 0,
                              .create = &create,
                              .destroy = &destroy,
                              .compile = &compile,
                              .grammar_destroy = &grammar_destroy,
                              .matcher_create = &matcher_create,
                              .matcher_destroy = &matcher_destroy,
                              .fill_bitmask = &fill_bitmask,
                              .accept_token = &accept_token,
                              .is_terminated = &is_terminated,
                              .rollback = &rollback,
                              .jump_forward = &jump_forward};

}  // namespace
}  // namespace sable::grammar

SABLE_EXPORT_PLUGIN("automaton", "0.1.0", SABLE_PLUGIN_GRAMMAR, &sable::grammar::kApi,
                    "regex, JSON schema, choices and non-recursive EBNF as byte DFAs with cached "
                    "token masks")
