// Tool calls streamed as they are generated (ToolCallParser deltas, every format): several model
// outputs are fed token by token (here: byte by byte and in uneven chunks) and cut at every
// position, as max_tokens would. At each cut: every call whose object closed before the cut is a
// complete call with the right arguments; the deltas of each call start with its name and their
// arguments concatenate to a prefix of the call's arguments text (the whole of it, as JSON, when
// the call is complete); the raw JSON of a started call never shows up in the content.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "server/call_object_scan.h"
#include "server/tool_call_parser.h"

namespace sable::server {
namespace {

using nlohmann::json;

const std::vector<std::string> kTools = {"get_weather", "add"};

// A model output built from pieces: text, and call objects (name + raw arguments text).
struct Piece {
  std::string text;
  std::string name;  // non-empty: `text` is a call object with these arguments
  std::string args;
};
struct Sample {
  ToolCallFormat format;
  std::vector<Piece> pieces;
  std::string content;  // the content of the whole output
};

Piece text(std::string t) {
  return {std::move(t), "", ""};
}
Piece call(const std::string& name, const std::string& args, const char* key = "arguments") {
  return {"{\"name\": \"" + name + "\", \"" + key + "\": " + args + "}", name, args};
}

std::vector<Sample> samples() {
  using F = ToolCallFormat;
  return {
      {F::kQwen25,
       {text("Let me see.<tool_call>\n"),
        call("get_weather", R"({"city": "Paris", "days": [1, 2], "note": "a \"q\" }"})"),
        text("\n</tool_call>\n<tool_call>\n"), call("add", R"({"a": 1.5e3, "b": null})"),
        text("\n</tool_call>")},
       "Let me see."},
      {F::kLlama3,
       {call("add", R"({"a": 1})", "parameters"), text("; "),
        call("get_weather", R"({"city": "Oslo"})", "parameters")},
       ""},
      {F::kMistral,
       {text("Sure. [TOOL_CALLS] ["), call("add", R"({"a": [true, null, -0.5]})"), text(", "),
        call("get_weather", R"({"city": "Lima"})"), text("]")},
       "Sure."},
      {F::kJson,
       {text("["), call("get_weather", R"({"city":"Paris"})", "parameters"), text(","),
        call("add", R"({"a": -1})", "parameters"), text(", "), call("add", "{}", "parameters"),
        text("]")},
       ""},
      {F::kJson, {call("add", R"({"a": 1, "b": {"c": "d"}})", "parameters")}, ""},
  };
}

struct Result {
  std::string content;
  std::vector<ToolCall> calls;
  std::map<int, std::string> names;  // per call index, from its first delta
  std::map<int, std::string> args;   // per call index, concatenated
};

Result run(const Sample& s, const std::vector<std::string>& chunks) {
  ToolCallParser parser(s.format, kTools);
  Result r;
  auto take = [&](const ToolCallOutput& out) {
    for (const ToolCallPiece& p : out.pieces) {
      if (p.call)
        r.calls.push_back(*p.call);
      else
        r.content += p.content;
    }
    for (const ToolCallDelta& d : out.deltas) {
      if (!d.name.empty()) {
        EXPECT_FALSE(r.names.count(d.index)) << "a second first delta for call " << d.index;
        EXPECT_EQ(d.index, static_cast<int>(r.names.size())) << "calls are numbered in order";
        r.names[d.index] = d.name;
      } else {
        EXPECT_TRUE(r.names.count(d.index)) << "arguments before the name of call " << d.index;
      }
      r.args[d.index] += d.arguments;
    }
  };
  for (const std::string& c : chunks) take(parser.feed(c));
  take(parser.finish());
  return r;
}

void check_cut(const Sample& s, const std::string& full, size_t cut, const Result& r) {
  SCOPED_TRACE(full.substr(0, cut) + "  <- cut at " + std::to_string(cut));
  // The calls whose object closed before the cut, in order.
  std::vector<const Piece*> complete, all;
  size_t at = 0;
  for (const Piece& p : s.pieces) {
    at += p.text.size();
    if (p.name.empty()) continue;
    all.push_back(&p);
    if (at <= cut) complete.push_back(&p);
  }
  ASSERT_EQ(r.calls.size(), complete.size());
  for (size_t i = 0; i < complete.size(); ++i) {
    EXPECT_EQ(r.calls[i].name, complete[i]->name);
    EXPECT_EQ(json::parse(r.calls[i].arguments), json::parse(complete[i]->args));
    ASSERT_TRUE(r.names.count(static_cast<int>(i)));
    EXPECT_EQ(json::parse(r.args.at(static_cast<int>(i))), json::parse(complete[i]->args));
  }
  ASSERT_LE(r.names.size(), all.size());
  for (const auto& [index, name] : r.names) {
    EXPECT_EQ(name, all[index]->name);
    EXPECT_TRUE(all[index]->args.starts_with(r.args.at(index))) << r.args.at(index);
  }
  // A block is content only while its call has not started (arguments not begun).
  for (const char* started : {"\"arguments\": {", "\"parameters\": {"})
    EXPECT_EQ(r.content.find(started), std::string::npos) << r.content;
  EXPECT_TRUE(s.content.starts_with(r.content) || r.content.starts_with(s.content)) << r.content;
  if (s.format == ToolCallFormat::kJson) EXPECT_EQ(r.content, "");  // forced: never content
  if (cut == full.size()) {
    EXPECT_EQ(r.content, s.content);
    EXPECT_EQ(r.names.size(), all.size());
  }
}

TEST(ToolCallStream, EveryCutByteByByteAndInChunks) {
  std::mt19937 rng(3);
  for (const Sample& s : samples()) {
    std::string full;
    for (const Piece& p : s.pieces) full += p.text;
    for (size_t cut = 0; cut <= full.size(); ++cut) {
      const std::string prefix = full.substr(0, cut);
      std::vector<std::string> bytes;
      for (char c : prefix) bytes.emplace_back(1, c);
      check_cut(s, full, cut, run(s, bytes));
      std::vector<std::string> chunks;
      for (size_t i = 0; i < prefix.size();) {
        const size_t n = 1 + rng() % 7;
        chunks.push_back(prefix.substr(i, n));
        i += n;
      }
      check_cut(s, full, cut, run(s, chunks));
      check_cut(s, full, cut, run(s, {prefix}));
    }
  }
}

// The arguments really stream: before the call object closes, some of its arguments are out.
TEST(ToolCallStream, ArgumentsGrowBeforeTheCallCloses) {
  ToolCallParser parser(ToolCallFormat::kJson, kTools);
  ToolCallOutput out = parser.feed(R"([{"name": "get_weather", "parameters": {"ci)");
  ASSERT_EQ(out.deltas.size(), 2u);
  EXPECT_EQ(out.deltas[0].name, "get_weather");
  EXPECT_EQ(out.deltas[1].arguments, R"({"ci)");
  out = parser.feed(R"(ty": "Paris"}}, {"name": "rm", "parameters": {}}])");
  EXPECT_TRUE(out.deltas.size() == 1 && out.deltas[0].arguments == R"(ty": "Paris"})");
  ASSERT_EQ(out.pieces.size(), 1u);
  EXPECT_EQ(out.unknown, std::vector<std::string>{"rm"});  // unknown names never stream
  // Bytes that cannot continue JSON are never sent.
  ToolCallParser bad(ToolCallFormat::kQwen25, kTools);
  out = bad.feed("<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": tru!e}}</tool_call>");
  std::string args;
  for (const auto& d : out.deltas) args += d.arguments;
  EXPECT_EQ(args, R"({"a": tru)");
  EXPECT_TRUE(out.pieces.empty());  // malformed after it started: dropped, not content
}

TEST(CallObjectScan, PrefixesAndMembers) {
  using S = CallObjectScan::State;
  CallObjectScan s = scan_call_object(R"({"name": "f", "arguments": {"x": [1, "}"]}})");
  EXPECT_EQ(s.state, S::kComplete);
  EXPECT_EQ(s.name, "f");
  EXPECT_EQ(s.args_begin, 27u);
  EXPECT_EQ(s.args_end, 42u);
  s = scan_call_object(R"({"name": "f\u0041", "parameters": {"x": -1.)");
  EXPECT_EQ(s.state, S::kPrefix);
  EXPECT_EQ(s.name, "fA");
  EXPECT_EQ(s.args_end, std::string_view::npos);
  for (const char* bad : {R"({"name" "f")", R"({"a": tx)", R"({"a": 01)", R"({"a": [1,]})",
                          R"({"a": "\q"})", "{\"a\": \"\n\"}", R"({"a": 1} )"}) {
    s = scan_call_object(bad);
    EXPECT_TRUE(s.state == S::kInvalid || (s.state == S::kComplete && s.end < strlen(bad))) << bad;
  }
  EXPECT_EQ(scan_call_object(std::string(300, '[')).state, S::kInvalid);
  EXPECT_EQ(scan_call_object("{\"a\": " + std::string(300, '[')).state, S::kInvalid);
}

}  // namespace
}  // namespace sable::server
