// Embedding throughput through the Engine (is_embedding): sequences/s and tokens/s of one batch
// of B random prompts of L tokens, embedded by Engine::embed (the embedder's batching, the model
// plugin, the CPU or CUDA ops). One untimed warm-up batch, then `repeats` timed batches; prints
//   model=<dir> device=<d> batch=<B> len=<L> seq_s=<x> tok_s=<y> ms_per_batch=<z>
// A score model (cross-encoder, reward model) runs the same forward plus a head of a few rows, so
// its throughput is the embedding number of its encoder / decoder shape.
// Usage: sable_bench_scoring --model DIR [--batch 64] [--len 128,512] [--repeats 1]
//        [--device cpu] [--plugin-dir DIR]...
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "core/engine/engine.h"

int main(int argc, char** argv) {
  CLI::App app{"Embedding throughput of a checkpoint through the Engine"};
  std::string model, device = "cpu";
  int32_t batch = 64, repeats = 1;
  std::vector<int32_t> lens = {128, 512};
  std::vector<std::string> plugin_dirs;
  app.add_option("--model", model, "checkpoint directory")->required();
  app.add_option("--batch", batch, "prompts per batch");
  app.add_option("--len", lens, "prompt lengths")->delimiter(',');
  app.add_option("--repeats", repeats, "timed batches per length");
  app.add_option("--device", device, "cpu | cuda");
  app.add_option("--plugin-dir", plugin_dirs, "extra plugin folders");
  CLI11_PARSE(app, argc, argv);
  try {
    const int32_t longest = *std::max_element(lens.begin(), lens.end());
    sable::config::ServerConfig c;
    c.model_path = model;
    c.skip_tokenizer_init = true;
    c.is_embedding = true;
    c.device = device;
    c.plugin_dirs = plugin_dirs;
    c.plugin_dirs.push_back(SABLE_BENCH_PLUGIN_DIR);
    // An input must be shorter than the context (SGLang's rule): room for the longest plus one.
    c.context_length = longest + 1;
    c.max_running_requests = batch;
    c.chunked_prefill_size = static_cast<int64_t>(batch) * longest;  // one forward per batch
    c.max_total_tokens = static_cast<int64_t>(batch) * longest;
    c.log_level = "warning";
    sable::engine::Engine engine(c);
    std::mt19937 rng(42);
    std::uniform_int_distribution<int32_t> tok(5, engine.model_info().vocab_size - 1);
    for (int32_t len : lens) {
      auto make = [&] {
        std::vector<sable::engine::EmbedInput> in(static_cast<size_t>(batch));
        for (auto& x : in) {
          for (int32_t i = 0; i < len; ++i) x.input_ids.push_back(tok(rng));
        }
        return in;
      };
      engine.embed(make());  // warm-up: arena growth, BLAS threads
      double secs = 0;
      for (int32_t r = 0; r < repeats; ++r) {
        auto in = make();
        const auto start = std::chrono::steady_clock::now();
        const auto out = engine.embed(std::move(in));
        secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (out.size() != static_cast<size_t>(batch)) throw std::runtime_error("short batch");
      }
      const double per_batch = secs / repeats;
      std::printf("model=%s device=%s batch=%d len=%d seq_s=%.2f tok_s=%.0f ms_per_batch=%.1f\n",
                  model.c_str(), device.c_str(), batch, len, batch / per_batch,
                  static_cast<double>(batch) * len / per_batch, per_batch * 1e3);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
