// ReasoningParser: <think> separation for qwen3 and deepseek-r1, and that a stream cut anywhere (at
// every byte boundary, and byte by byte) gives exactly the non-stream split.
#include "server/reasoning_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sable::server {
namespace {

using F = ReasoningFormat;

// Feeds `chunks` in order, then finish(), and joins what came out.
ReasoningSplit stream(F format, const std::vector<std::string>& chunks) {
  ReasoningParser p(format);
  ReasoningSplit s;
  for (const auto& c : chunks) {
    ReasoningPieces out = p.feed(c);
    s.reasoning += out.reasoning;
    s.content += out.content;
  }
  ReasoningPieces out = p.finish();
  s.reasoning += out.reasoning;
  s.content += out.content;
  s.has_reasoning = p.saw_reasoning();
  return s;
}

void expect_same(const ReasoningSplit& a, const ReasoningSplit& b, const std::string& what) {
  EXPECT_EQ(a.reasoning, b.reasoning) << what;
  EXPECT_EQ(a.content, b.content) << what;
  EXPECT_EQ(a.has_reasoning, b.has_reasoning) << what;
}

// Every two-piece split and the byte-by-byte stream equal the whole-text split.
void expect_split_invariant(F format, const std::string& text) {
  const ReasoningSplit whole = split_reasoning(format, text);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    expect_same(stream(format, {text.substr(0, cut), text.substr(cut)}), whole,
                text + " cut at " + std::to_string(cut));
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  expect_same(stream(format, bytes), whole, text + " byte by byte");
}

const std::vector<std::string> kSamples = {
    "<think>\nLet me think.\n</think>\n\nThe answer is 4.",
    "<think>a</think>b",
    "  <think>  x y  </think>  z ",
    "No thinking here.",
    "",
    "   ",
    "<thi",
    "<think>cut off while thinking  ",
    "reasoning without an opening tag</think>answer",
    "<think>a</think>b<think>c</think>",
    "<think></think>",
    "x</think",
    "<think>a</thinking> still</think>done",
    "<<think>a</think>",
};

TEST(ReasoningParser, FormatNames) {
  EXPECT_EQ(reasoning_format_from_name("qwen3"), F::kQwen3);
  EXPECT_EQ(reasoning_format_from_name("deepseek-r1"), F::kDeepSeekR1);
  EXPECT_FALSE(reasoning_format_from_name(""));
  EXPECT_FALSE(reasoning_format_from_name("glm45"));
}

TEST(ReasoningParser, Qwen3SplitsTheThinkBlock) {
  ReasoningSplit s =
      split_reasoning(F::kQwen3, "<think>\nLet me think.\n</think>\n\nThe answer is 4.");
  EXPECT_TRUE(s.has_reasoning);
  EXPECT_EQ(s.reasoning, "Let me think.");
  EXPECT_EQ(s.content, "The answer is 4.");
  s = split_reasoning(F::kQwen3, "  <think>  x y  </think>  z ");
  EXPECT_EQ(s.reasoning, "x y");
  EXPECT_EQ(s.content, "z ");
  s = split_reasoning(F::kQwen3, "<think></think>");
  EXPECT_TRUE(s.has_reasoning);
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "");
}

TEST(ReasoningParser, Qwen3WithoutThinkIsAllContent) {
  ReasoningSplit s = split_reasoning(F::kQwen3, "No thinking here.");
  EXPECT_FALSE(s.has_reasoning);
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "No thinking here.");
  // A later <think> is not a reasoning block; nor is a partial tag at the end.
  s = split_reasoning(F::kQwen3, "Hi <think>x</think>");
  EXPECT_FALSE(s.has_reasoning);
  EXPECT_EQ(s.content, "Hi <think>x</think>");
  EXPECT_EQ(split_reasoning(F::kQwen3, "<thi").content, "<thi");
  EXPECT_EQ(split_reasoning(F::kQwen3, "   ").content, "   ");
}

TEST(ReasoningParser, OnlyOneBlock) {
  ReasoningSplit s = split_reasoning(F::kQwen3, "<think>a</think>b<think>c</think>");
  EXPECT_EQ(s.reasoning, "a");
  EXPECT_EQ(s.content, "b<think>c</think>");
}

TEST(ReasoningParser, CutOffWhileThinkingIsAllReasoning) {
  ReasoningSplit s = split_reasoning(F::kQwen3, "<think>cut off while thinking  ");
  EXPECT_EQ(s.reasoning, "cut off while thinking");
  EXPECT_EQ(s.content, "");
  s = split_reasoning(F::kQwen3, "<think>almost done</thi");
  EXPECT_EQ(s.reasoning, "almost done</thi");
}

TEST(ReasoningParser, DeepSeekR1OpeningTagIsOptional) {
  ReasoningSplit s =
      split_reasoning(F::kDeepSeekR1, "reasoning without an opening tag</think>answer");
  EXPECT_TRUE(s.has_reasoning);
  EXPECT_EQ(s.reasoning, "reasoning without an opening tag");
  EXPECT_EQ(s.content, "answer");
  s = split_reasoning(F::kDeepSeekR1, "<think>\nwith tag\n</think>\n\nanswer");
  EXPECT_EQ(s.reasoning, "with tag");
  EXPECT_EQ(s.content, "answer");
  // No </think>: everything is reasoning.
  s = split_reasoning(F::kDeepSeekR1, "No thinking here.");
  EXPECT_EQ(s.reasoning, "No thinking here.");
  EXPECT_EQ(s.content, "");
}

TEST(ReasoningParser, StreamHoldsBackPartialTags) {
  ReasoningParser p(F::kQwen3);
  EXPECT_EQ(p.feed("<thi").reasoning, "");
  ReasoningPieces out = p.feed("nk>abc</th");
  EXPECT_EQ(out.reasoning, "abc");
  EXPECT_EQ(out.content, "");
  out = p.feed("ink>\n");
  EXPECT_EQ(out.reasoning, "");
  EXPECT_EQ(out.content, "");
  out = p.feed("ok");
  EXPECT_EQ(out.content, "ok");
  // Content is sent as soon as it comes (no tag to wait for any more).
  EXPECT_EQ(p.feed(" <think>").content, " <think>");
}

TEST(ReasoningParser, StreamSplitAnywhereEqualsNonStream) {
  for (F format : {F::kQwen3, F::kDeepSeekR1}) {
    for (const auto& text : kSamples) expect_split_invariant(format, text);
  }
}

}  // namespace
}  // namespace sable::server
