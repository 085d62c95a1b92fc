/* Grammar-engine plugins: constrained decoding by per-step token bitmasks.
 *
 * compile() turns a spec (regex, JSON schema, EBNF, or a JSON array of choice strings) into a
 * reusable grammar (the host caches by (kind, spec)); each request gets its own matcher. Matchers
 * are used by one thread at a time; grammars are immutable and shared across threads.
 */
#ifndef SABLE_GRAMMAR_H_
#define SABLE_GRAMMAR_H_

#include "sable/host.h"

typedef struct SableGrammarEngine SableGrammarEngine;
typedef struct SableGrammar SableGrammar;
typedef struct SableMatcher SableMatcher;

typedef enum SableGrammarKind {
  SABLE_GRAMMAR_REGEX = 0,
  SABLE_GRAMMAR_JSON_SCHEMA = 1,
  SABLE_GRAMMAR_EBNF = 2,
  SABLE_GRAMMAR_CHOICES = 3
} SableGrammarKind;

typedef struct SableTokenizerInfo {
  uint32_t struct_size;
  int32_t vocab_size;
  const char* const* token_bytes; /* [vocab_size] decoded bytes of each token (not NUL-terminated) */
  const int32_t* token_lens;      /* [vocab_size] */
  const uint8_t* is_special;      /* [vocab_size] 1 for special/control tokens */
  int32_t num_eos;
  const int32_t* eos_ids;
  /* end of ABI 1.0 - do not modify above */
} SableTokenizerInfo;

typedef struct SableGrammarApi {
  uint32_t struct_size;
  uint32_t reserved;
  SableStatus (*create)(const SableHostApi* host, SableHostHandle* h,
                        const SableTokenizerInfo* tokenizer, SableGrammarEngine** out);
  void (*destroy)(SableGrammarEngine* engine);
  SableStatus (*compile)(SableGrammarEngine* engine, int32_t kind, const char* spec,
                         size_t spec_len, SableGrammar** out);
  void (*grammar_destroy)(SableGrammar* grammar);
  SableStatus (*matcher_create)(SableGrammar* grammar, SableMatcher** out);
  void (*matcher_destroy)(SableMatcher* matcher);
  /* mask [words] with words >= ceil(vocab/32): bit i set = token i allowed next. */
  SableStatus (*fill_bitmask)(SableMatcher* matcher, uint32_t* mask, int32_t words);
  /* SABLE_ERR_REJECTED when the token is not allowed (state unchanged). */
  SableStatus (*accept_token)(SableMatcher* matcher, int32_t token);
  int32_t (*is_terminated)(SableMatcher* matcher);
  SableStatus (*rollback)(SableMatcher* matcher, int32_t num_tokens);
  /* Text that is forced next (may be empty); NULL when unsupported. *len gets the full length. */
  SableStatus (*jump_forward)(SableMatcher* matcher, char* buf, size_t cap, size_t* len);
  /* end of ABI 1.0 - do not modify above */
} SableGrammarApi;

#endif /* SABLE_GRAMMAR_H_ */
