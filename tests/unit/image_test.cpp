// core/image: image references (data: URL, base64, paths, unreachable URLs), PNG/JPEG/WebP decoding
// against the pixels Pillow decodes (tests/golden/vl, made by scripts/make_vl_golden.py), the
// typed errors for bad images, and Qwen2-VL preprocessing against the processor's pixel_values.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/image/base64.h"
#include "core/image/image_decode.h"
#include "core/image/image_source.h"
#include "core/image/qwen_vl_processor.h"
#include "core/weights/safetensors.h"

namespace sable::image {
namespace {

std::string vl_dir() { return std::string(SABLE_TEST_DATA_DIR) + "/vl"; }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string base64_encode(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += a[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += std::string{a[(v >> 18) & 63], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += std::string{a[(v >> 18) & 63], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

struct Golden {
  std::unique_ptr<weights::SafetensorsFile> file;
  nlohmann::json meta;
  std::span<const std::byte> bytes(const std::string& name) const {
    for (const auto& t : file->tensors())
      if (t.name == name) return file->bytes(t);
    ADD_FAILURE() << "golden tensor missing: " << name;
    return {};
  }
};

const Golden& golden() {
  static const Golden g = [] {
    Golden g;
    g.file = weights::SafetensorsFile::open(vl_dir() + "/golden.safetensors");
    std::ifstream in(vl_dir() + "/golden.json");
    g.meta = nlohmann::json::parse(in);
    return g;
  }();
  return g;
}

ImageErrorKind error_kind(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const ImageError& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no ImageError thrown";
  return ImageErrorKind::kInvalid;
}

TEST(ImageBase64, DecodesPaddedUnpaddedAndUrlSafe) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode("aGVs\nbG8="), "hello");
  EXPECT_EQ(base64_decode("-_-_"), base64_decode("+/+/"));
  EXPECT_FALSE(base64_decode("aGVsbG8=x"));
  EXPECT_FALSE(base64_decode("a*b"));
  EXPECT_FALSE(base64_decode("aGVsb"));  // one leftover character
}

TEST(ImageSource, DataUrlRawBase64PathAndFileUrlGiveTheSameBytes) {
  const std::string path = vl_dir() + "/image_a.png";
  const std::string bytes = read_all(path);
  ImageLimits limits;
  EXPECT_EQ(read_image_bytes(path, limits), bytes);
  EXPECT_EQ(read_image_bytes("file://" + path, limits), bytes);
  EXPECT_EQ(read_image_bytes("data:image/png;base64," + base64_encode(bytes), limits), bytes);
  EXPECT_EQ(read_image_bytes(base64_encode(bytes), limits), bytes);
}

TEST(ImageSource, BadReferencesAreTypedErrors) {
  ImageLimits limits;
  std::string msg;
  EXPECT_EQ(error_kind([&] { read_image_bytes("/no/such/picture.png", limits); }, &msg),
            ImageErrorKind::kInvalid);
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  EXPECT_EQ(error_kind([&] { read_image_bytes("data:image/png,rawtext", limits); }),
            ImageErrorKind::kUnsupported);
  EXPECT_EQ(error_kind([&] { read_image_bytes("data:image/png;base64,@@@", limits); }),
            ImageErrorKind::kInvalid);
  EXPECT_EQ(error_kind([&] { read_image_bytes("not an image at all!", limits); }, &msg),
            ImageErrorKind::kInvalid);
  EXPECT_NE(msg.find("base64"), std::string::npos) << msg;
  // Port 1 on loopback refuses the connection at once.
  EXPECT_EQ(error_kind([&] { read_image_bytes("http://127.0.0.1:1/x.png", limits); }, &msg),
            ImageErrorKind::kUnreachable);
  EXPECT_NE(msg.find("127.0.0.1:1"), std::string::npos) << msg;
  ImageLimits no_files;
  no_files.allow_local_files = false;
  EXPECT_EQ(error_kind([&] { read_image_bytes(vl_dir() + "/image_a.png", no_files); }),
            ImageErrorKind::kInvalid);
}

TEST(ImageSource, ByteLimitApplies) {
  ImageLimits limits;
  limits.max_bytes = 100;
  const std::string path = vl_dir() + "/image_b.jpg";
  EXPECT_EQ(error_kind([&] { read_image_bytes(path, limits); }), ImageErrorKind::kTooLarge);
  EXPECT_EQ(error_kind([&] { read_image_bytes(base64_encode(read_all(path)), limits); }),
            ImageErrorKind::kTooLarge);
}

// The limit is exact for base64 too: max_bytes bytes pass, one more does not (the size estimate
// from the text's length let up to 5 bytes over the limit through; found while writing
// image_fuzz's invariants).
TEST(ImageSource, Base64ByteLimitIsExact) {
  ImageLimits limits;
  limits.max_bytes = 3;
  for (size_t n = 1; n <= 8; ++n) {
    const std::string bytes(n, 'x');
    const std::string b64 = base64_encode(bytes);
    for (const std::string& ref : {b64, "data:image/png;base64," + b64}) {
      if (n <= 3) {
        EXPECT_EQ(read_image_bytes(ref, limits), bytes) << ref;
      } else {
        std::string msg;
        EXPECT_EQ(error_kind([&] { read_image_bytes(ref, limits); }, &msg),
                  ImageErrorKind::kTooLarge)
            << ref;
        EXPECT_NE(msg.find("the limit is 3 bytes"), std::string::npos) << msg;
      }
    }
  }
}

// Decoding matches Pillow (+ convert_to_rgb) pixel for pixel: PNG, JPEG (4:2:0) and RGBA WebP
// composited over white.
TEST(ImageDecode, MatchesPillowPixels) {
  for (const std::string name : {"a", "b", "c"}) {
    const auto& info = golden().meta["images"][name];
    const RgbImage img = decode_image(read_all(vl_dir() + "/" + info["file"].get<std::string>()), {});
    EXPECT_EQ(img.width, info["width"].get<int>()) << name;
    EXPECT_EQ(img.height, info["height"].get<int>()) << name;
    const auto ref = golden().bytes("rgb_" + name);
    ASSERT_EQ(ref.size(), img.rgb.size()) << name;
    size_t differ = 0;
    for (size_t i = 0; i < ref.size(); ++i) differ += static_cast<uint8_t>(ref[i]) != img.rgb[i];
    EXPECT_EQ(differ, 0u) << "image " << name << ": pixels differ from Pillow's";
  }
}

TEST(ImageDecode, BadImagesAreTypedErrors) {
  const std::string png = read_all(vl_dir() + "/image_a.png");
  const std::string jpg = read_all(vl_dir() + "/image_b.jpg");
  const std::string webp = read_all(vl_dir() + "/image_c.webp");
  ImageLimits limits;
  std::string msg;
  EXPECT_EQ(error_kind([&] { decode_image(png.substr(0, png.size() / 2), limits); }, &msg),
            ImageErrorKind::kCorrupt);
  EXPECT_NE(msg.find("PNG"), std::string::npos) << msg;
  EXPECT_EQ(error_kind([&] { decode_image(jpg.substr(0, jpg.size() / 2), limits); }, &msg),
            ImageErrorKind::kCorrupt);
  EXPECT_NE(msg.find("JPEG"), std::string::npos) << msg;
  EXPECT_EQ(error_kind([&] { decode_image(webp.substr(0, 20), limits); }),
            ImageErrorKind::kCorrupt);
  EXPECT_EQ(error_kind([&] { decode_image("GIF89a\x01\x00\x01\x00", limits); }, &msg),
            ImageErrorKind::kUnsupported);
  EXPECT_NE(msg.find("GIF"), std::string::npos) << msg;
  EXPECT_EQ(error_kind([&] { decode_image("hello world", limits); }), ImageErrorKind::kUnsupported);
  limits.max_pixels = 100 * 100;  // image_b is 200x150
  EXPECT_EQ(error_kind([&] { decode_image(jpg, limits); }, &msg), ImageErrorKind::kTooLarge);
  EXPECT_NE(msg.find("200x150"), std::string::npos) << msg;
  limits.max_pixels = 60 * 60;  // image_a (PNG) is 120x90, image_c (WebP) 40x30
  EXPECT_EQ(error_kind([&] { decode_image(png, limits); }), ImageErrorKind::kTooLarge);
  limits.max_pixels = 20 * 20;
  EXPECT_EQ(error_kind([&] { decode_image(webp, limits); }), ImageErrorKind::kTooLarge);
}

TEST(QwenVlProcessor, SmartResizeAsTransformers) {
  // (h, w) -> expected, from transformers' smart_resize; 42 and 70 check round-half-to-even.
  const int cases[][4] = {{90, 120, 84, 112},   {150, 200, 140, 196}, {30, 40, 56, 84},
                          {1024, 1024, 980, 980}, {4000, 3000, 1148, 840}, {70, 14000, 56, 14000},
                          {42, 42, 56, 56},       {1, 150, 28, 700}};
  for (const auto& c : cases) {
    const auto [h, w] = smart_resize(c[0], c[1], 28, 56 * 56, 28 * 28 * 1280);
    EXPECT_EQ(h, c[2]) << c[0] << "x" << c[1];
    EXPECT_EQ(w, c[3]) << c[0] << "x" << c[1];
  }
  EXPECT_EQ(error_kind([] { smart_resize(1, 300, 28, 56 * 56, 28 * 28 * 1280); }),
            ImageErrorKind::kUnsupported);
}

// pixel_values and grid as the processor makes them (Pillow bicubic resize, CLIP normalisation,
// 14x14 patches repeated twice in time, 2x2 merge order).
TEST(QwenVlProcessor, PixelValuesMatchTheProcessor) {
  for (const std::string name : {"a", "b", "c"}) {
    const auto& info = golden().meta["images"][name];
    const RgbImage img = decode_image(read_all(vl_dir() + "/" + info["file"].get<std::string>()), {});
    const VisionPatches p = qwen_vl_preprocess(img, {});
    const auto grid = info["grid_thw"].get<std::vector<int>>();
    EXPECT_EQ(p.grid_t, grid[0]) << name;
    EXPECT_EQ(p.grid_h, grid[1]) << name;
    EXPECT_EQ(p.grid_w, grid[2]) << name;
    EXPECT_EQ(p.patch_dim, 1176);
    const auto ref = golden().bytes("pixel_values_" + name);
    ASSERT_EQ(ref.size(), p.pixel_values.size() * sizeof(float)) << name;
    double max_diff = 0;
    for (size_t i = 0; i < p.pixel_values.size(); ++i) {
      float r;
      std::memcpy(&r, ref.data() + i * sizeof(float), sizeof(float));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(r) - p.pixel_values[i]));
    }
    EXPECT_LT(max_diff, 1e-5) << "image " << name;
  }
}

}  // namespace
}  // namespace sable::image
