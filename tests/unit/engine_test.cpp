// The Engine on the golden qwen2_tok checkpoint (real Qwen tokenizer, random weights): greedy
// generation of each golden text reproduces greedy_ids and greedy_text exactly in all four modes,
// alone and as one batch; the prefix cache, chunked prefill, n > 1, abort and validation.
#include "core/engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "core/engine/result_json.h"
#include "core/tokenizer/tokenizer.h"

using namespace sable::engine;

namespace {

const std::filesystem::path kModel = std::filesystem::path(SABLE_TEST_DATA_DIR) / "models/qwen2_tok";

const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream f(kModel / "golden.json");
    return nlohmann::json::parse(f);
  }();
  return g;
}

sable::config::ServerConfig config(int64_t max_total_tokens = 2048) {
  sable::config::ServerConfig c;
  c.model_path = kModel.string();
  c.plugin_dirs = {SABLE_PLUGIN_DIR};
  c.device = "cpu";
  c.max_total_tokens = max_total_tokens;
  c.random_seed = 1;
  c.log_level = "warning";
  return c;
}

SamplingParams greedy(int n = 16) {
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = n;
  p.ignore_eos = true;
  return p;
}

std::vector<GenerateInput> golden_inputs() {
  std::vector<GenerateInput> in;
  for (const auto& t : golden()["texts"]) {
    GenerateInput g;
    g.text = t.get<std::string>();
    g.params = greedy();
    in.push_back(std::move(g));
  }
  return in;
}

Engine& shared_engine() {
  static Engine* e = new Engine(config());  // one load for the whole suite
  return *e;
}

void expect_golden(const std::vector<GenerateResult>& results) {
  const auto& g = golden();
  ASSERT_EQ(results.size(), g["texts"].size());
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].output_ids, g["greedy_ids"][i].get<std::vector<int32_t>>()) << i;
    EXPECT_EQ(results[i].text, g["greedy_text"][i].get<std::string>()) << i;
    ASSERT_TRUE(results[i].finished());
    EXPECT_EQ(results[i].meta_info.finish_reason->type, FinishReason::Type::kLength);
    EXPECT_EQ(results[i].meta_info.completion_tokens, 16);
    EXPECT_EQ(results[i].meta_info.prompt_tokens,
              static_cast<int64_t>(g["ids"][i].size()));
  }
}

}  // namespace

TEST(Engine, TokenizesLikeTheGolden) {
  const auto& g = golden();
  for (size_t i = 0; i < g["texts"].size(); ++i) {
    EXPECT_EQ(shared_engine().tokenizer().encode(g["texts"][i].get<std::string>(), true),
              g["ids"][i].get<std::vector<int32_t>>());
  }
}

TEST(Engine, GenerateAloneAndBatched) {
  Engine& e = shared_engine();
  std::vector<GenerateResult> alone;
  for (auto& in : golden_inputs()) alone.push_back(e.generate(std::vector<GenerateInput>{in})[0]);
  expect_golden(alone);
  expect_golden(e.generate(golden_inputs()));
  // From input_ids as well.
  std::vector<GenerateInput> by_ids;
  for (const auto& ids : golden()["ids"]) {
    GenerateInput g;
    g.input_ids = ids.get<std::vector<int32_t>>();
    g.params = greedy();
    by_ids.push_back(std::move(g));
  }
  expect_golden(e.generate(by_ids));
}

TEST(Engine, GenerateStreamIsCumulativeAndEndsWithTheGolden) {
  Engine& e = shared_engine();
  GenerateStream stream = e.generate_stream(golden_inputs());
  const size_t n = golden()["texts"].size();
  std::vector<GenerateResult> last(n);
  std::vector<size_t> prev_len(n, 0);
  size_t updates = 0;
  while (auto r = stream.next()) {
    ASSERT_LT(static_cast<size_t>(r->index), n);
    EXPECT_GE(r->output_ids.size(), prev_len[r->index]);  // cumulative
    prev_len[r->index] = r->output_ids.size();
    EXPECT_EQ(r->finished(), r->output_ids.size() == 16);
    last[r->index] = *r;
    ++updates;
  }
  EXPECT_GE(updates, n * 16);
  expect_golden(last);
}

TEST(Engine, AsyncModes) {
  Engine& e = shared_engine();
  auto fut = e.async_generate(golden_inputs());
  expect_golden(fut.get());
  std::mutex mu;
  std::vector<GenerateResult> last(golden()["texts"].size());
  auto done = e.async_generate_stream(golden_inputs(), [&](const GenerateResult& r) {
    std::lock_guard<std::mutex> lock(mu);
    last[r.index] = r;
  });
  done.get();
  expect_golden(last);
}

// on_delta (the HTTP server's mode): each update holds only what is new; joined, the deltas are
// the cumulative result, logprobs included, and only the last one is finished.
TEST(Engine, DeltaUpdatesJoinToTheResult) {
  Engine& e = shared_engine();
  std::vector<GenerateInput> inputs = golden_inputs();
  for (auto& in : inputs) {
    in.logprobs.return_logprob = true;
    in.logprobs.top_logprobs_num = 2;
  }
  const std::vector<GenerateResult> whole = e.generate(inputs);
  std::mutex mu;
  std::vector<GenerateResult> joined(inputs.size());
  std::vector<int> updates(inputs.size()), finished(inputs.size());
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < inputs.size(); ++i) {
    handles.push_back(e.submit(inputs[i], static_cast<int32_t>(i)));
    handles.back()->on_delta([&, i](const GenerateResult& d) {
      std::lock_guard<std::mutex> lock(mu);
      GenerateResult& j = joined[i];
      EXPECT_EQ(d.index, static_cast<int32_t>(i));
      EXPECT_EQ(finished[i], 0) << "an update after the final one";
      j.text += d.text;
      j.output_ids.insert(j.output_ids.end(), d.output_ids.begin(), d.output_ids.end());
      auto& lp = j.meta_info.output_logprobs;
      lp.insert(lp.end(), d.meta_info.output_logprobs.begin(), d.meta_info.output_logprobs.end());
      j.meta_info.completion_tokens = d.meta_info.completion_tokens;
      updates[i] += 1;
      finished[i] += d.finished() ? 1 : 0;
    });
  }
  auto all_finished = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return std::all_of(finished.begin(), finished.end(), [](int f) { return f != 0; });
  };
  while (!all_finished()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::lock_guard<std::mutex> lock(mu);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(joined[i].output_ids, whole[i].output_ids) << i;
    EXPECT_EQ(joined[i].text, whole[i].text) << i;
    EXPECT_EQ(joined[i].meta_info.completion_tokens, whole[i].meta_info.completion_tokens) << i;
    ASSERT_EQ(joined[i].meta_info.output_logprobs.size(), whole[i].output_ids.size()) << i;
    for (size_t t = 0; t < whole[i].output_ids.size(); ++t) {
      EXPECT_EQ(joined[i].meta_info.output_logprobs[t].chosen.token,
                whole[i].meta_info.output_logprobs[t].chosen.token);
      EXPECT_EQ(joined[i].meta_info.output_logprobs[t].top.size(), 2u);
    }
    EXPECT_GT(updates[i], 1) << i;  // streamed, not one final update
    EXPECT_EQ(finished[i], 1) << i;
  }
}

TEST(Engine, PrefixCacheHitsGiveTheSameOutput) {
  Engine& e = shared_engine();
  GenerateInput in = golden_inputs()[0];
  auto first = e.generate(std::vector<GenerateInput>{in})[0];
  auto second = e.generate(std::vector<GenerateInput>{in})[0];
  EXPECT_GT(second.meta_info.cached_tokens, 0);
  EXPECT_EQ(second.output_ids, first.output_ids);
  // Cache disabled: same output, nothing cached.
  auto c = config();
  c.disable_radix_cache = true;
  Engine off(c);
  auto a = off.generate(std::vector<GenerateInput>{in})[0];
  auto b = off.generate(std::vector<GenerateInput>{in})[0];
  EXPECT_EQ(b.meta_info.cached_tokens, 0);
  EXPECT_EQ(a.output_ids, first.output_ids);
  EXPECT_EQ(b.output_ids, first.output_ids);
}

TEST(Engine, ChunkedPrefillTinyPoolAndRetractionKeepGreedyOutputs) {
  auto c = config(48);  // 4 prompts x (~5 + 16) tokens do not fit at once
  c.chunked_prefill_size = 2;
  c.schedule_conservativeness = 0.0;  // admit greedily, then retract
  Engine small(c);
  auto inputs = golden_inputs();
  for (auto& in : inputs) in.params.max_new_tokens = 16;
  expect_golden(small.generate(inputs));
  EXPECT_TRUE(small.flush_cache());
  EXPECT_EQ(small.stats().free_pages, small.stats().total_pages);
}

TEST(Engine, ParallelSamplingSharesThePrompt) {
  Engine& e = shared_engine();
  GenerateInput in = golden_inputs()[1];
  in.params.n = 3;
  in.params.temperature = 0.8;
  in.params.max_new_tokens = 6;
  auto results = e.generate(std::vector<GenerateInput>{in});
  ASSERT_EQ(results.size(), 3u);
  std::set<std::string> ids;
  for (const auto& r : results) {
    EXPECT_EQ(r.output_ids.size(), 6u);
    EXPECT_GT(r.meta_info.cached_tokens, 0);
    ids.insert(r.meta_info.id);
  }
  EXPECT_EQ(ids.size(), 3u);
}

TEST(Engine, AbortEndsTheStreamAndFreesPages) {
  auto c = config();
  c.disable_radix_cache = true;
  Engine e(c);
  GenerateInput in = golden_inputs()[0];
  in.params.max_new_tokens = 2000;
  auto h = e.submit(in);
  ASSERT_TRUE(h->next().has_value());
  h->abort();
  auto final_state = h->wait();
  ASSERT_TRUE(final_state.finished());
  EXPECT_EQ(final_state.meta_info.finish_reason->type, FinishReason::Type::kAbort);
  // The stats snapshot is published right after the step that pushed the final chunk.
  for (int i = 0; i < 200 && e.stats().free_pages != e.stats().total_pages; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(e.stats().free_pages, e.stats().total_pages);
  auto j = result_json(final_state, false);
  EXPECT_EQ(j["meta_info"]["finish_reason"]["type"], "abort");
}

TEST(Engine, ValidationErrorsNameTheField) {
  Engine& e = shared_engine();
  GenerateInput in;
  EXPECT_THROW(e.submit(in), ValidationError);
  in.input_ids = {1, 2, 999999999};
  try {
    e.submit(in);
    FAIL();
  } catch (const ValidationError& err) {
    EXPECT_EQ(err.field(), "input_ids");
  }
  in.input_ids = {1, 2};
  in.params.top_p = 2.0;
  try {
    e.submit(in);
    FAIL();
  } catch (const ValidationError& err) {
    EXPECT_EQ(err.field(), "top_p");
  }
  in.params = SamplingParams{};
  in.logprobs.return_logprob = true;
  in.logprobs.logprob_start_len = 5;
  EXPECT_THROW(e.submit(in), ValidationError);
}

TEST(Engine, ResultJsonHasSglangShape) {
  Engine& e = shared_engine();
  GenerateInput in = golden_inputs()[0];
  in.params.max_new_tokens = 3;
  in.logprobs.return_logprob = true;
  in.logprobs.top_logprobs_num = 2;
  auto r = e.generate(std::vector<GenerateInput>{in})[0];
  auto j = result_json(r, true);
  EXPECT_EQ(j["meta_info"]["finish_reason"], (nlohmann::json{{"type", "length"}, {"length", 3}}));
  EXPECT_EQ(j["output_ids"].size(), 3u);
  EXPECT_EQ(j["meta_info"]["output_token_logprobs"].size(), 3u);
  EXPECT_EQ(j["meta_info"]["output_top_logprobs"][0].size(), 2u);
  EXPECT_TRUE(j["meta_info"].contains("e2e_latency"));
}

TEST(Engine, ShutdownIsIdempotent) {
  Engine e(config());
  auto h = e.submit(golden_inputs()[0]);
  e.shutdown();
  e.shutdown();
  auto r = h->wait();
  EXPECT_TRUE(r.finished());
  EXPECT_THROW(e.submit(golden_inputs()[0]), std::runtime_error);
}
