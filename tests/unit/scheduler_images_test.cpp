// The scheduler with image requests (vision-language models): the radix cache keys placeholder
// tokens by image content (request_images.h), so the same image reuses its cached prefix and a
// different image behind the same token ids never does; and every forward of such a request hands
// the backend its images (prefill chunks and decode steps alike).
#include <gtest/gtest.h>

#include <mutex>

#include "core/scheduler/scheduler.h"

using namespace sable::scheduler;

namespace {

constexpr int32_t kVocab = 32;
constexpr int32_t kPad = 7;  // the image placeholder token

// Constant logits (token 1 wins); records the images pointer of every sequence it runs.
class RecordingModel : public ModelBackend {
 public:
  Logits forward(std::span<const Sequence> seqs) override {
    Logits out;
    out.vocab = kVocab;
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& s : seqs) {
      seen.emplace_back(s.images, static_cast<int64_t>(s.new_tokens.size()));
      const int64_t rows = s.all_logits ? static_cast<int64_t>(s.new_tokens.size()) : 1;
      for (int64_t r = 0; r < rows; ++r) {
        out.data.resize(static_cast<size_t>((out.rows + 1) * kVocab), 0.0f);
        out.data[static_cast<size_t>(out.rows * kVocab + 1)] = 1.0f;
        ++out.rows;
      }
    }
    return out;
  }
  std::mutex mutex;
  std::vector<std::pair<RequestImages*, int64_t>> seen;  // (images, new tokens) per sequence
};

// 4 text tokens, an image of 6 placeholder tokens, 3 text tokens.
std::vector<int32_t> image_prompt() { return {3, 4, 5, 6, kPad, kPad, kPad, kPad, kPad, kPad, 8, 9, 10}; }

std::shared_ptr<RequestImages> images_with_hash(uint64_t hash) {
  auto im = std::make_shared<RequestImages>();
  RequestImage i;
  i.row = 4;
  i.tokens = 6;
  i.grid[1] = 2;
  i.grid[2] = 12;
  i.hash = hash;
  im->images.push_back(i);
  const auto p = image_prompt();
  for (int32_t axis = 0; axis < 3; ++axis)
    for (size_t j = 0; j < p.size(); ++j) im->mrope.push_back(static_cast<int32_t>(j));
  im->embeds.assign(6, 0.0f);  // "already encoded": the scheduler never looks inside
  return im;
}

StreamChunk run(Scheduler& s, const std::string& rid, std::shared_ptr<RequestImages> images,
                int max_new = 3) {
  Request r;
  r.rid = rid;
  r.input_ids = image_prompt();
  r.params.temperature = 0.0;
  r.params.max_new_tokens = max_new;
  r.images = std::move(images);
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  StreamChunk last;
  while (auto c = stream->next()) last = *c;
  return last;
}

SchedulerOptions options() {
  SchedulerOptions o;
  o.num_pages = 64;
  o.page_size = 1;
  o.vocab_size = kVocab;
  o.context_length = 256;
  return o;
}

}  // namespace

TEST(RequestImages, CacheKeyReplacesPlaceholdersByContent) {
  const auto a = images_with_hash(1), b = images_with_hash(2);
  auto tokens = image_prompt();
  tokens.push_back(11);  // an output token after the prompt stays as it is
  const auto ka = a->cache_key(tokens), ka2 = a->cache_key(tokens), kb = b->cache_key(tokens);
  EXPECT_EQ(ka, ka2);
  ASSERT_EQ(ka.size(), tokens.size());
  for (size_t j = 0; j < tokens.size(); ++j) {
    const bool pad = j >= 4 && j < 10;
    if (!pad) {
      EXPECT_EQ(ka[j], tokens[j]);
      continue;
    }
    EXPECT_LT(ka[j], 0) << j;  // never a real token id
    EXPECT_NE(ka[j], kb[j]) << j;
  }
  EXPECT_NE(ka[4], ka[5]);  // positions inside one image differ too
}

TEST(RequestImages, PositionsPastThePromptContinueAtTheDelta) {
  auto im = images_with_hash(1);
  im->mrope[4] = 40;  // time row, token 4
  im->mrope_delta = -3;
  EXPECT_EQ(im->position(4, 0), 40);
  EXPECT_EQ(im->position(4, 1), 4);
  EXPECT_EQ(im->position(13, 2), 10);  // first output row: index + delta on every axis
}

TEST(SchedulerImages, SameImageReusesThePrefixAndAnotherImageNever) {
  RecordingModel model;
  Scheduler s(options(), model);
  const auto len = static_cast<int64_t>(image_prompt().size());
  EXPECT_EQ(run(s, "first", images_with_hash(1)).cached_tokens, 0);
  EXPECT_EQ(run(s, "same", images_with_hash(1)).cached_tokens, len - 1);
  // Same token ids, another image: only the text before the image is reused.
  EXPECT_EQ(run(s, "other", images_with_hash(2)).cached_tokens, 4);
  // A text-only request with the same ids matches none of the image keys either.
  Request r;
  r.rid = "text";
  r.input_ids = image_prompt();
  r.params.max_new_tokens = 1;
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  StreamChunk last;
  while (auto c = stream->next()) last = *c;
  EXPECT_EQ(last.cached_tokens, 4);
}

TEST(SchedulerImages, EveryForwardOfTheRequestCarriesItsImages) {
  RecordingModel model;
  SchedulerOptions o = options();
  o.chunked_prefill_size = 5;  // the image is cut across chunks
  Scheduler s(o, model);
  auto im = images_with_hash(9);
  RequestImages* raw = im.get();
  const StreamChunk last = run(s, "r", std::move(im), 4);
  EXPECT_EQ(last.completion_tokens, 4);
  std::lock_guard<std::mutex> lock(model.mutex);
  std::vector<int64_t> sizes;
  for (const auto& [images, n] : model.seen) {
    EXPECT_EQ(images, raw);
    sizes.push_back(n);
  }
  // Prefill chunks of 5, 5 and 3 tokens, then 3 decode steps (the first token came from prefill).
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 3, 1, 1, 1}));
}
