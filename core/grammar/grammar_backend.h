// Constrained decoding for the engine: turns a request's `regex` / `json_schema` / `ebnf` into a
// scheduler::GrammarMatcher, through a grammar-engine plugin (sdk/include/sable/grammar.h).
//
// The backend creates the plugin's engine once, with every token's bytes from the tokenizer (ids
// the tokenizer does not know, e.g. padded embedding rows, get no bytes and are never allowed), and
// compiles each distinct (kind, spec) once: compiled grammars are kept in a small LRU cache and
// shared by the matchers of every request that uses them. Jump-forward encodings are kept by
// (sampled token, forced text) the same way: requests of one grammar meet the same ones.
// Ownership: matchers keep what they use alive (the plugin engine and their grammar), so they may
// outlive the backend. Thread-safety: matcher() may be called from any thread; each matcher is used
// by one thread at a time (the scheduler's).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/plugin/registry.h"
#include "core/sampling/sampling_params.h"
#include "core/scheduler/request.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::grammar {

class GrammarBackend {
 public:
  // name: "none" (no constrained decoding: returns nullptr), "auto" (the first grammar plugin
  // loaded, nullptr when there is none) or a grammar plugin's name (a startup error naming the
  // loaded plugins when it is absent). vocab_size: the model's logits width. The matchers encode
  // jump-forward text with `tokenizer`, which must outlive them.
  static std::unique_ptr<GrammarBackend> create(const plugin::Registry& registry,
                                                const std::string& name,
                                                const tokenizer::Tokenizer& tokenizer,
                                                int32_t vocab_size);
  ~GrammarBackend();
  GrammarBackend(const GrammarBackend&) = delete;
  GrammarBackend& operator=(const GrammarBackend&) = delete;

  // The matcher for a request's constraint, nullptr when it has none. Throws
  // sampling::ValidationError naming the field when the spec does not compile.
  std::unique_ptr<scheduler::GrammarMatcher> matcher(const sampling::SamplingParams& params);

  const std::string& plugin_name() const;

  struct State;  // shared with the matchers (grammar_backend.cpp)

 private:
  explicit GrammarBackend(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace sable::grammar
