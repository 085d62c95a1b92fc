// SafetensorsFile: writer round trips, and every kind of corrupt file rejected with a message that
// names the file and the tensor (truncation, header length, bad JSON, dtype, sizes, overlaps).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <algorithm>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors.h"
#include "core/weights/safetensors_writer.h"
#include "sable/tensor.h"

namespace sable::weights {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sable_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes <u64 header_len><header><data>; header_len defaults to header.size().
  fs::path raw(const std::string& name, const std::string& header, size_t data_bytes,
               std::optional<uint64_t> header_len = std::nullopt) {
    const fs::path p = dir_ / name;
    std::ofstream out(p, std::ios::binary);
    const uint64_t len = header_len.value_or(header.size());
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << header << std::string(data_bytes, '\x11');
    return p;
  }

  // Expects open() to throw a WeightsError whose message contains every fragment.
  void expect_error(const fs::path& p, std::initializer_list<std::string> fragments) {
    try {
      SafetensorsFile::open(p);
      FAIL() << "no error for " << p;
    } catch (const WeightsError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsAllDtypesAndMetadata) {
  SafetensorsWriter w;
  std::vector<float> values = {1.5f, -2.25f, 3.0e-3f, 65504.f, -0.f, 1e-6f};
  w.add_f32("a.f32", SABLE_DTYPE_F32, {2, 3}, values);
  w.add_f32("b.f16", SABLE_DTYPE_F16, {6}, values);
  w.add_f32("c.bf16", SABLE_DTYPE_BF16, {3, 2}, values);
  std::vector<std::byte> ids(3 * sizeof(int64_t));
  const int64_t id_values[3] = {-1, 7, 1ll << 40};
  std::memcpy(ids.data(), id_values, ids.size());
  w.add("d.i64", SABLE_DTYPE_I64, {3}, ids);
  w.add("e.empty", SABLE_DTYPE_F32, {0, 4}, {});
  w.set_metadata("format", "pt");
  w.write(dir_ / "m.safetensors");

  auto f = SafetensorsFile::open(dir_ / "m.safetensors");
  ASSERT_EQ(f->tensors().size(), 5u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  for (const TensorInfo& t : f->tensors()) {
    const auto bytes = f->bytes(t);
    ASSERT_EQ(bytes.size(), t.nbytes);
    if (t.name == "d.i64") {
      EXPECT_EQ(std::memcmp(bytes.data(), id_values, 24), 0);
      continue;
    }
    if (t.name == "e.empty") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{0, 4}));
      EXPECT_EQ(t.nbytes, 0u);
      continue;
    }
    std::vector<float> back(6);
    ASSERT_TRUE(convert(t.dtype, bytes.data(), SABLE_DTYPE_F32, back.data(), 6));
    for (size_t i = 0; i < 6; ++i) {
      float want = values[i];
      if (t.dtype == SABLE_DTYPE_F16) want = f16_to_f32(f32_to_f16(want));
      if (t.dtype == SABLE_DTYPE_BF16) want = bf16_to_f32(f32_to_bf16(want));
      EXPECT_EQ(back[i], want) << t.name << " " << i;
    }
    if (t.name == "a.f32") EXPECT_EQ(back, values);  // f32 is stored exactly
  }
  // The data area is 8-byte aligned by the writer's header padding.
  EXPECT_EQ(f->tensors()[0].offset % 8, 0u);
}

TEST_F(SafetensorsTest, AcceptsAHandWrittenFile) {
  const auto p = raw("ok.safetensors",
                     R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("y":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}})",
                     10);
  auto f = SafetensorsFile::open(p);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[1].name, "y");
  EXPECT_TRUE(f->tensors()[1].shape.empty());
  EXPECT_EQ(f->tensors()[1].numel(), 1);
}

TEST_F(SafetensorsTest, RejectsTruncatedFile) {
  const fs::path p = dir_ / "short.safetensors";
  std::ofstream(p, std::ios::binary) << "abc";
  expect_error(p, {"truncated"});
  // A valid file cut short inside its data area.
  SafetensorsWriter w;
  w.add_f32("layer.weight", SABLE_DTYPE_F32, {4, 4}, std::vector<float>(16, 1.f));
  w.write(dir_ / "full.safetensors");
  const auto size = fs::file_size(dir_ / "full.safetensors");
  fs::copy_file(dir_ / "full.safetensors", dir_ / "cut.safetensors");
  fs::resize_file(dir_ / "cut.safetensors", size - 5);
  expect_error(dir_ / "cut.safetensors", {"layer.weight", "past the data area"});
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastEnd) {
  const auto p = raw("len.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                     4, 1'000'000);
  expect_error(p, {"header length 1000000"});
  expect_error(raw("huge.safetensors", "{}", 0, ~uint64_t{1}), {"past the end"});
}

TEST_F(SafetensorsTest, RejectsBadJson) {
  expect_error(raw("bad.safetensors", R"({"x":{"dtype":"F32",)", 4), {"malformed"});
  expect_error(raw("arr.safetensors", "[1,2]", 0), {"not a JSON object"});
  expect_error(raw("entry.safetensors", R"({"w":7})", 0), {"'w'", "not a JSON object"});
  expect_error(raw("meta.safetensors", R"({"__metadata__":{"k":1}})", 0), {"__metadata__", "'k'"});
  expect_error(raw("noshape.safetensors", R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4),
               {"'w'", "shape"});
  expect_error(raw("nooff.safetensors", R"({"w":{"dtype":"F32","shape":[1]}})", 4),
               {"'w'", "data_offsets"});
}

TEST_F(SafetensorsTest, RejectsUnknownAndUnsupportedDtype) {
  expect_error(raw("unk.safetensors", R"({"w.q":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", 4),
               {"'w.q'", "unknown dtype 'F17'"});
  expect_error(raw("f64.safetensors", R"({"w.d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
               {"'w.d'", "unsupported dtype 'F64'"});
}

TEST_F(SafetensorsTest, RejectsWrongDtypeSize) {
  // 3 x F32 = 12 bytes, but the range spans 8.
  expect_error(raw("size.safetensors", R"({"w.k":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 12),
               {"'w.k'", "12 bytes", "span 8"});
  // BF16 labelled data that really is F32-sized.
  expect_error(raw("bf.safetensors", R"({"w.v":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}})", 16),
               {"'w.v'", "BF16"});
}

TEST_F(SafetensorsTest, RejectsBadShapesAndOffsets) {
  expect_error(raw("neg.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
               {"'w'", "negative"});
  expect_error(raw("flt.safetensors", R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
               {"'w'", "non-integer"});
  expect_error(raw("rev.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4),
               {"'w'", "reversed"});
  expect_error(raw("noff.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
               {"'w'", "non-negative"});
  expect_error(raw("ovf.safetensors",
                   R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
               {"'w'", "overflow"});
}

TEST_F(SafetensorsTest, RejectsOverlappingRanges) {
  expect_error(raw("ov.safetensors",
                   R"({"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                   12),
               {"'a.weight'", "'b.weight'", "overlapping"});
  // Out of order in the header but overlapping in the file, with an empty tensor in between.
  expect_error(raw("ov2.safetensors",
                   R"({"z":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
                   R"("e":{"dtype":"F16","shape":[0],"data_offsets":[2,2]},)"
                   R"("a":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}})",
                   8),
               {"'z'", "'a'", "overlapping"});
}

TEST_F(SafetensorsTest, MissingFileIsAnError) {
  expect_error(dir_ / "nope.safetensors", {"cannot open"});
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  SafetensorsWriter w;
  w.add_f32("x", SABLE_DTYPE_F32, {1}, {1.f});
  EXPECT_THROW(w.add_f32("x", SABLE_DTYPE_F32, {1}, {1.f}), WeightsError);
  EXPECT_THROW(w.add("y", SABLE_DTYPE_F32, {2}, std::vector<std::byte>(4)), WeightsError);
  EXPECT_THROW(w.add("z", 99, {1}, std::vector<std::byte>(4)), WeightsError);
}


TEST_F(SafetensorsTest, RandomCorruptionNeverCrashes) {
  SafetensorsWriter w;
  w.add_f32("a", SABLE_DTYPE_BF16, {4, 8}, std::vector<float>(32, 0.5f));
  w.add_f32("b", SABLE_DTYPE_F32, {3}, {1.f, 2.f, 3.f});
  w.write(dir_ / "base.safetensors");
  std::ifstream in(dir_ / "base.safetensors", std::ios::binary);
  const std::string base((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937 rng(5);
  int rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string bytes = base;
    if (iter % 3 == 0) {
      bytes.resize(rng() % bytes.size());  // truncation
    } else {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        // Mostly the length and header, where a flip changes the meaning.
        const size_t limit = std::min<size_t>(bytes.size(), 8 + 160);
        bytes[rng() % limit] = static_cast<char>(rng());
      }
    }
    const fs::path p = dir_ / "fuzz.safetensors";
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
    try {
      auto f = SafetensorsFile::open(p);
      for (const TensorInfo& t : f->tensors()) {
        const auto span = f->bytes(t);
        ASSERT_EQ(span.size(), t.nbytes);
        ASSERT_LE(t.offset + t.nbytes, bytes.size());
      }
    } catch (const WeightsError& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(rejected, 200);
}

}  // namespace
}  // namespace sable::weights
