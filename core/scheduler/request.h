// What travels between a request's submitter (Engine, HTTP server) and the scheduler thread: the
// request itself, its finish reason, the incremental chunks it produces, and the thread-safe
// per-request channel those chunks arrive on.
//
// A chunk is incremental: the token ids, text and log-probabilities produced since the previous
// chunk, plus the counters as they stand (cumulative). The last chunk carries `finish`.
// Thread-safety: RequestStream is safe between one producer (the scheduler thread) and any number
// of consumer threads; everything else is a plain value handed over by move.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sampling/sampling_params.h"
#include "core/scheduler/request_images.h"

namespace sable::scheduler {

// Why a request ended, in SGLang's shapes:
//   {"type":"stop","matched":<token id | string>}, {"type":"length","length":N},
//   {"type":"abort","message":...,"status_code":...}.
struct FinishReason {
  enum class Type { kStop, kLength, kAbort };
  Type type = Type::kStop;
  std::optional<int32_t> matched_token;  // kStop: the EOS / stop token
  std::optional<std::string> matched_text;  // kStop: the stop string
  int64_t length = 0;                     // kLength: tokens generated
  std::string message;                    // kAbort
  int32_t status_code = 0;                // kAbort: HTTP-ish status, 0 = none (a user abort)

  static FinishReason stop_token(int32_t id) {
    FinishReason f;
    f.matched_token = id;
    return f;
  }
  static FinishReason stop_string(std::string s) {
    FinishReason f;
    f.matched_text = std::move(s);
    return f;
  }
  static FinishReason length_reached(int64_t n) {
    FinishReason f;
    f.type = Type::kLength;
    f.length = n;
    return f;
  }
  static FinishReason abort(std::string message, int32_t status_code = 0) {
    FinishReason f;
    f.type = Type::kAbort;
    f.message = std::move(message);
    f.status_code = status_code;
    return f;
  }
  std::string type_name() const {
    return type == Type::kStop ? "stop" : type == Type::kLength ? "length" : "abort";
  }
};

// One log-probability entry: (logprob, token id). logprob is NaN where SGLang reports null (the
// first prompt token).
struct TokenLogprob {
  float logprob = 0.0f;
  int32_t token = 0;
};

// Log-probabilities of one position: the chosen token plus the requested extras.
struct PositionLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;        // top_logprobs_num best, best first
  std::vector<TokenLogprob> token_ids;  // one per token_ids_logprob entry
};

struct LogprobOptions {
  bool return_logprob = false;
  int32_t logprob_start_len = -1;  // -1: output tokens only; else prompt positions from here
  int32_t top_logprobs_num = 0;
  std::vector<int32_t> token_ids_logprob;
};

// Final-norm hidden states of one forward of a request (return_hidden_states), as SGLang reports
// them: a prefill chunk gives one row per prompt token it ran, a decode step one row.
struct HiddenStates {
  bool prefill = false;       // true: `rows` rows (a list of lists); false: one row (a list)
  int32_t rows = 0;
  int32_t hidden_size = 0;
  std::vector<float> values;  // [rows, hidden_size]
};

// Output produced since the previous chunk.
struct StreamChunk {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<PositionLogprobs> output_logprobs;
  std::vector<PositionLogprobs> input_logprobs;  // once, with the first chunk, when asked for
  std::vector<HiddenStates> hidden_states;       // return_hidden_states: one per forward
  std::optional<FinishReason> finish;            // set on the last chunk only
  // Cumulative counters.
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int32_t num_retractions = 0;
  double e2e_latency = 0.0;  // seconds, set on the last chunk
};

// The per-request channel. The scheduler pushes; consumers pop (blocking or not), or register a
// callback that the scheduler thread calls for each chunk instead of queueing it.
class RequestStream {
 public:
  using Callback = std::function<void(const StreamChunk&)>;

  void push(StreamChunk chunk);
  // Blocks until a chunk is available; nullopt once the final chunk has been taken.
  std::optional<StreamChunk> next();
  // As next(), giving up after `timeout` (then nullopt and finished() is still false).
  std::optional<StreamChunk> next_for(std::chrono::milliseconds timeout);
  // Every queued chunk merged into one (ids/text/logprobs appended, counters from the last).
  std::optional<StreamChunk> drain();
  // Async stream mode: delivers the queued chunks to `cb` on the calling thread, then every later
  // chunk on the producer's thread; in push order, one call at a time.
  void set_callback(Callback cb);
  bool finished() const;  // the final chunk has been pushed

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<StreamChunk> queue_;
  Callback callback_;
  bool final_pushed_ = false;
  bool final_taken_ = false;
};

// Text side of a request's output: an incremental detokenizer with stop strings. The scheduler
// feeds each generated token and finishes a request whose stop string completed. Implemented by
// the engine over the tokenizer; nullptr means "no text" (token-only requests).
class OutputDecoder {
 public:
  virtual ~OutputDecoder() = default;
  // Feeds one generated token; returns text that became final. When a stop string completes,
  // sets *matched to it and returns the text up to the stop (including it when no_stop_trim).
  virtual std::string push(int32_t token, std::optional<std::string>* matched) = 0;
  // Remaining text at the end (held-back partial characters / partial stop prefixes).
  virtual std::string finish() = 0;
};

// Constrained decoding of one request (regex, JSON schema, EBNF): which tokens may come next.
// Implemented by the engine over a grammar-engine plugin; nullptr means unconstrained. Used by one
// thread at a time: fill_bitmask on the scheduler's mask worker while the model runs, accept_token
// on the scheduler thread after sampling. The grammar allows the EOS tokens exactly when its text is complete, so
// a constrained request ends through the ordinary EOS stop.
class GrammarMatcher {
 public:
  virtual ~GrammarMatcher() = default;
  // Writes mask.size() words: bit i of word i / 32 set = token i allowed next.
  virtual void fill_bitmask(std::span<uint32_t> mask) = 0;
  // Advances over a sampled token; false when the grammar does not allow it (state unchanged).
  virtual bool accept_token(int32_t token) = 0;
  // Jump-forward, called right after accept_token(last) succeeded. When the grammar forces text
  // next, moves past it and returns the tokens that replace `last`: the tokenizer's own encoding
  // of last's bytes followed by the forced bytes, so that the boundary merges as it would in a
  // prompt (`"` + `, "b": ` gives `",` ` "` `b` `":` ` `). Empty when nothing is forced or the
  // text has no encoding the grammar accepts; the state is then unchanged. Default: never jumps.
  virtual std::vector<int32_t> jump_forward(int32_t last) {
    (void)last;
    return {};
  }
  // Undoes the last `n` accepted tokens (n <= the tokens accepted). Default: unsupported (throws).
  virtual void rollback(int32_t n) {
    if (n != 0) throw std::logic_error("this grammar matcher cannot roll back");
  }
};

// A request as the scheduler receives it. Validated by the submitter (params.validate()).
struct Request {
  std::string rid;
  std::vector<int32_t> input_ids;
  sampling::SamplingParams params;
  LogprobOptions logprobs;
  bool return_hidden_states = false;  // every forward's final-norm hidden states, in the chunks
  std::vector<int32_t> eos_ids;  // tokenizer + generation config EOS ids
  uint64_t seed = 0;             // generator seed when params.sampling_seed is unset
  std::unique_ptr<OutputDecoder> decoder;  // may be null
  std::unique_ptr<GrammarMatcher> grammar; // may be null (unconstrained)
  std::shared_ptr<RequestStream> stream;   // required
  // LoRA: the adapter id the request runs with (0: the base model), and the submitter's hold that
  // keeps that adapter loaded; the scheduler drops it just before pushing the last chunk.
  int32_t lora_id = 0;
  std::shared_ptr<const void> lora_hold;
  // Vision-language models: the request's images (null for a text-only prompt).
  std::shared_ptr<RequestImages> images;
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
};

}  // namespace sable::scheduler
