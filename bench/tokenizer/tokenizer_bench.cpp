// Encode throughput of sable::tokenizer on the benchmark corpus (make_corpus.py): MB/s and
// tokens/s with one thread and with all hardware threads. Best of 3 passes (the word cache is
// warm after the first, as HF's is). Prints `sable <threads> <MB/s> <tokens/s> <tokens>`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/tokenizer/tokenizer.h"

using sable::tokenizer::Tokenizer;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <tokenizer_dir> <corpus.json> [threads]\n", argv[0]);
    return 2;
  }
  auto tok = Tokenizer::load(argv[1]);
  std::ifstream in(argv[2]);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto docs = nlohmann::json::parse(ss.str()).get<std::vector<std::string>>();
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  const unsigned all = argc > 3 ? std::stoi(argv[3]) : std::max(1u, std::thread::hardware_concurrency());

  for (unsigned threads : {1u, all}) {
    double best = 1e30;
    size_t tokens = 0;
    for (int rep = 0; rep < 3; ++rep) {
      std::atomic<size_t> next{0}, count{0};
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
          size_t local = 0;
          for (size_t i; (i = next.fetch_add(1)) < docs.size();) {
            local += tok->encode(docs[i], false).size();
          }
          count += local;
        });
      }
      for (auto& th : pool) th.join();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
      tokens = count;
    }
    std::printf("sable %u %.2f %.0f %zu\n", threads, bytes / best / 1e6, tokens / best, tokens);
    if (all == 1) break;
  }
  return 0;
}
