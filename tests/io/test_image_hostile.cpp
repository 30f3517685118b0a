// Hostile inputs: every one must end in a q3vl::Error whose message names the input,
// never a crash, exit or hang. Suite names start with "Sanitize" so the sanitizer job
// selects them by name: `ctest -R '\.Sanitize'` in a -DQ3VL_SANITIZE=ON build (ASan +
// UBSan); they also run in the normal suite.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "q3vl/error.h"
#include "q3vl/image.h"
#include "q3vl/video.h"
#include "support/test_paths.h"

namespace q3vl {
namespace {

std::filesystem::path media(const std::string& name) { return testing::golden_dir() / "processor" / "media" / name; }

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Decodes and expects a q3vl::Error of `kind` whose message contains the input's name.
void expect_error(const std::vector<std::uint8_t>& bytes, ErrorKind kind, const std::string& what) {
  try {
    decode_image(bytes, "hostile-input.bin");
    ADD_FAILURE() << what << ": decoded without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << what << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("hostile-input.bin"), std::string::npos) << what << ": " << e.what();
  }
}

void put_be32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
void put_le16(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v), b[at + 1] = static_cast<std::uint8_t>(v >> 8);
}
void put_le32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put_le16(b, at, v & 0xFFFF), put_le16(b, at + 2, v >> 16);
}

// PNG IHDR values live at bytes 16..23; its CRC at 29..32 (libpng checks it).
std::vector<std::uint8_t> png_with_size(std::uint32_t w, std::uint32_t h) {
  auto b = read_bytes(media("tiny_20x13.png"));
  put_be32(b, 16, w);
  put_be32(b, 20, h);
  // Recompute the IHDR CRC so the size, not the checksum, is what gets refused.
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 12; i < 29; ++i) {
    crc ^= b[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  put_be32(b, 29, ~crc);
  return b;
}

TEST(SanitizeImage, EmptyAndUnknown) {
  expect_error({}, ErrorKind::format, "zero-size");
  expect_error({'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'}, ErrorKind::format, "text");
  expect_error({0xFF, 0xD8, 0xFF}, ErrorKind::format, "JPEG magic only");
  expect_error({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, ErrorKind::format, "PNG magic only");
  expect_error({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'}, ErrorKind::format, "WebP magic only");
  expect_error({'G', 'I', 'F', '8', '9', 'a'}, ErrorKind::format, "GIF magic only");
  expect_error({'B', 'M', 0, 0}, ErrorKind::format, "BMP magic only");
  try {
    decode_image_file(media("no_such_file.png"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_NE(std::string(e.what()).find("no_such_file.png"), std::string::npos);
  }
}

TEST(SanitizeImage, Truncated) {
  for (const char* name : {"odd_337x251.jpg", "tie_400x208.png", "lossy_211x149.webp", "lossless_211x149.webp",
                           "anim_143x97.gif", "bgr_123x77.bmp", "rgb16_297x83.png", "palette_150x120.png"}) {
    auto b = read_bytes(media(name));
    b.resize(b.size() / 2);
    expect_error(b, ErrorKind::format, std::string("half of ") + name);
  }
}

TEST(SanitizeImage, GiganticDimensionsRefusedBeforeDecoding) {
  expect_error(png_with_size(100000, 100000), ErrorKind::limit, "PNG 100000x100000");
  expect_error(png_with_size(60000, 60000), ErrorKind::limit, "PNG 60000x60000 (3.6 Gpx)");
  expect_error(png_with_size(0, 13), ErrorKind::format, "PNG zero width");

  auto gif = read_bytes(media("anim_143x97.gif"));
  put_le16(gif, 6, 65535), put_le16(gif, 8, 65535);
  expect_error(gif, ErrorKind::limit, "GIF 65535x65535 screen");

  auto bmp = read_bytes(media("bgr_123x77.bmp"));
  put_le32(bmp, 18, 1u << 20), put_le32(bmp, 22, 1u << 20);
  expect_error(bmp, ErrorKind::limit, "BMP 2^20 x 2^20");
  put_le32(bmp, 18, 0);
  expect_error(bmp, ErrorKind::format, "BMP zero width");

  // JPEG SOF0 marker: height and width are the 16-bit fields after FFC0 len precision.
  auto jpeg = read_bytes(media("odd_337x251.jpg"));
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = 0xEA, jpeg[i + 6] = 0x60;  // height 60000 (libjpeg allows up to 65500)
      jpeg[i + 7] = 0xEA, jpeg[i + 8] = 0x60;  // width 60000
      break;
    }
  }
  expect_error(jpeg, ErrorKind::limit, "JPEG 60000x60000");
}

TEST(SanitizeImage, CorruptBytesNeverCrash) {
  // Random byte flips and truncations of every golden format: decoding may succeed
  // (many flips land in pixel data) but must otherwise throw q3vl::Error.
  std::mt19937 rng(1234);
  for (const char* name : {"odd_337x251.jpg", "tiny_20x13.png", "palette_150x120.png", "lossy_211x149.webp",
                           "lossless_211x149.webp", "anim_143x97.gif", "bgr_123x77.bmp", "exif6_160x120.jpg"}) {
    const auto original = read_bytes(media(name));
    for (int trial = 0; trial < 24; ++trial) {
      auto b = original;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) b[8 + rng() % (b.size() - 8)] = static_cast<std::uint8_t>(rng());
      if (trial % 3 == 0) b.resize(8 + rng() % (b.size() - 8));
      try {
        const Image image = decode_image(b, name);
        EXPECT_EQ(image.rgb.size(), static_cast<std::size_t>(image.width) * image.height * 3);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
  }
}

TEST(SanitizeVideo, NotAVideoAndTruncated) {
  const auto dir = testing::work_dir() / "hostile_video";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "empty.mp4").close();
  EXPECT_THROW(probe_video(dir / "empty.mp4"), Error);
  std::ofstream(dir / "text.mp4") << "this is not a video";
  EXPECT_THROW(probe_video(dir / "text.mp4"), Error);
  EXPECT_THROW(probe_video(dir / "missing.mp4"), Error);
  auto bytes = read_bytes(media("h264_160x90_25fps.mp4"));
  bytes.resize(bytes.size() / 3);
  {
    std::ofstream out(dir / "cut.mp4", std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  // Either the header is unreadable or frames run out: an Error, not a crash.
  EXPECT_THROW(
      {
        const VideoMetadata m = probe_video(dir / "cut.mp4");
        decode_video_frames(dir / "cut.mp4", {0, m.total_num_frames - 1});
      },
      Error);
}

}  // namespace
}  // namespace q3vl
