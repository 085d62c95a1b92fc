// RequestStream's hand-over from queueing to a callback (set_callback) while the scheduler keeps
// pushing: every chunk reaches the callback once, in push order, never from two threads at once.
// The e2e LoRA suite caught the bug this pins: a chunk pushed while the queued ones were being
// delivered went to the callback first, and a later token stood early in /generate's output_ids.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/scheduler/request.h"

using namespace sable::scheduler;

namespace {

StreamChunk chunk(int32_t id, bool last) {
  StreamChunk c;
  c.token_ids = {id};
  if (last) c.finish = FinishReason::length_reached(id + 1);
  return c;
}

}  // namespace

TEST(RequestStream, CallbackSeesQueuedThenLaterChunksInOrder) {
  constexpr int32_t kChunks = 64;
  for (int round = 0; round < 100; ++round) {
    RequestStream stream;
    std::atomic<int32_t> pushed{0};
    std::thread producer([&] {
      for (int32_t i = 0; i < kChunks; ++i) {
        stream.push(chunk(i, i + 1 == kChunks));
        pushed = i + 1;
        std::this_thread::sleep_for(std::chrono::microseconds(2));  // a step apart
      }
    });
    // Switch to the callback mid-stream, with a few chunks queued.
    while (pushed.load() < 1 + round % 8) std::this_thread::yield();
    std::vector<int32_t> seen;
    std::atomic<int> inside{0};
    bool overlapped = false;
    stream.set_callback([&](const StreamChunk& c) {
      if (inside.fetch_add(1) != 0) overlapped = true;
      // Slow deliveries widen the window in which the producer pushes more.
      std::this_thread::sleep_for(std::chrono::microseconds(5));
      seen.insert(seen.end(), c.token_ids.begin(), c.token_ids.end());
      inside.fetch_sub(1);
    });
    producer.join();
    ASSERT_FALSE(overlapped) << "round " << round;
    ASSERT_EQ(static_cast<int32_t>(seen.size()), kChunks) << "round " << round;
    for (int32_t i = 0; i < kChunks; ++i) ASSERT_EQ(seen[i], i) << "round " << round;
    EXPECT_TRUE(stream.finished());
  }
}

TEST(RequestStream, CallbackAfterTheFinalChunkGetsEverything) {
  RequestStream stream;
  for (int32_t i = 0; i < 3; ++i) stream.push(chunk(i, i == 2));
  stream.push(chunk(9, false));  // after the final chunk: dropped
  std::vector<int32_t> seen;
  stream.set_callback([&](const StreamChunk& c) {
    seen.insert(seen.end(), c.token_ids.begin(), c.token_ids.end());
  });
  EXPECT_EQ(seen, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_FALSE(stream.next().has_value());  // the final chunk was taken by the callback
}
