// Image decoding: EXIF orientations (expected values from PIL's ImageOps.exif_transpose),
// alpha policies (PIL's alpha_composite onto white, values from Pillow 13), limits and
// the format sniffer. Decoded pixels of every golden format are compared with the
// reference decoders in tests/vision/test_processor_images.cpp (DecodeGolden).
#include <gtest/gtest.h>

#include <fstream>

#include "io/image_codecs.h"
#include "q3vl/error.h"
#include "q3vl/image.h"
#include "support/test_paths.h"

namespace q3vl {
namespace {

std::filesystem::path media(const std::string& name) { return testing::golden_dir() / "processor" / "media" / name; }

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ImageExif, AllEightOrientationsMatchPil) {
  // A 3x2 gray image 0..50 (stored as RGB with R = G = B), as PIL transposes it.
  const std::vector<std::vector<int>> want = {
      {0, 10, 20, 30, 40, 50}, {20, 10, 0, 50, 40, 30}, {50, 40, 30, 20, 10, 0}, {30, 40, 50, 0, 10, 20},
      {0, 30, 10, 40, 20, 50}, {30, 0, 40, 10, 50, 20}, {50, 20, 40, 10, 30, 0}, {20, 50, 10, 40, 0, 30}};
  for (int orientation = 1; orientation <= 8; ++orientation) {
    io::RawImage image;
    image.width = 3;
    image.height = 2;
    image.channels = 3;
    for (int v = 0; v < 6; ++v) image.pixels.insert(image.pixels.end(), 3, static_cast<std::uint8_t>(v * 10));
    io::apply_orientation(image, orientation);
    EXPECT_EQ(image.width, orientation >= 5 ? 2 : 3) << orientation;
    std::vector<int> got;
    for (std::size_t i = 0; i < image.pixels.size(); i += 3) got.push_back(image.pixels[i]);
    EXPECT_EQ(got, want[orientation - 1]) << "orientation " << orientation;
  }
}

TEST(ImageExif, ParsesTiffOrientationBothByteOrders) {
  const std::vector<std::uint8_t> le = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0};
  const std::vector<std::uint8_t> be = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0};
  EXPECT_EQ(io::exif_orientation(le), 6);
  EXPECT_EQ(io::exif_orientation(be), 8);
  EXPECT_EQ(io::exif_orientation(std::vector<std::uint8_t>(le.begin(), le.begin() + 12)), 1);  // truncated IFD
}

TEST(ImageExif, JpegGoldenIsUprightAndOptionKeepsStored) {
  const Image upright = decode_image_file(media("exif6_160x120.jpg"));
  EXPECT_EQ(upright.width, 120);
  EXPECT_EQ(upright.height, 160);
  DecodeOptions stored;
  stored.apply_exif_orientation = false;
  const Image raw = decode_image_file(media("exif6_160x120.jpg"), stored);
  EXPECT_EQ(raw.width, 160);
  EXPECT_EQ(raw.height, 120);
  // Orientation 6: upright (x, y) = stored (y, H - 1 - x).
  for (int y : {0, 57, 159}) {
    for (int x : {0, 33, 119}) {
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(upright.rgb[(y * 120 + x) * 3 + c], raw.rgb[((119 - x) * 160 + y) * 3 + c]);
      }
    }
  }
}

TEST(ImageAlpha, DropKeepsStoredRgbCompositeMatchesPil) {
  // 1x9 RGBA PNG pixels (value, alpha) -> PIL alpha_composite onto white, R channel.
  const int value[] = {0, 0, 10, 200, 255, 37, 100, 0, 3};
  const int alpha[] = {0, 1, 128, 127, 254, 200, 255, 255, 64};
  const int pil[] = {255, 254, 132, 228, 255, 84, 100, 0, 192};
  DecodeOptions white;
  white.alpha = AlphaMode::composite_white;
  const Image dropped = decode_image_file(media("rgba_173x131.png"));
  const Image composited = decode_image_file(media("rgba_173x131.png"), white);
  ASSERT_EQ(dropped.rgb.size(), composited.rgb.size());
  // Row 0 is fully transparent in the golden (alpha 0 every 7th row): white.
  for (int x = 0; x < 173 * 3; ++x) ASSERT_EQ(composited.rgb[x], 255);
  EXPECT_NE(dropped.rgb, composited.rgb);
  // The composite rounding value by value: a hand-made 9x1 BMP with an alpha mask
  // (BITMAPV4HEADER, BI_BITFIELDS, BGRA) carrying the (value, alpha) pairs.
  std::vector<std::uint8_t> bmp = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 122, 0, 0, 0,  // file header
                                   108, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 32, 0, 3, 0, 0, 0,
                                   36, 0, 0, 0, 0x13, 0x0B, 0, 0, 0x13, 0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                   0, 0, 0xFF, 0, 0, 0xFF, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF,  // R, G, B, A masks
                                   'B', 'G', 'R', 's'};
  bmp.resize(122, 0);
  for (int i = 0; i < 9; ++i) {
    bmp.push_back(static_cast<std::uint8_t>(value[i]));  // B
    bmp.push_back(static_cast<std::uint8_t>(value[i]));  // G
    bmp.push_back(static_cast<std::uint8_t>(value[i]));  // R
    bmp.push_back(static_cast<std::uint8_t>(alpha[i]));  // A
  }
  bmp[2] = static_cast<std::uint8_t>(bmp.size());
  const Image keep = decode_image(bmp, "rgba.bmp");
  const Image blend = decode_image(bmp, "rgba.bmp", white);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(keep.rgb[i * 3], value[i]) << i;
    EXPECT_EQ(blend.rgb[i * 3], pil[i]) << "value " << value[i] << " alpha " << alpha[i];
  }
}

TEST(ImageFormat, Sniff) {
  EXPECT_EQ(sniff_image_format(read_bytes(media("odd_337x251.jpg"))), ImageFormat::jpeg);
  EXPECT_EQ(sniff_image_format(read_bytes(media("tiny_20x13.png"))), ImageFormat::png);
  EXPECT_EQ(sniff_image_format(read_bytes(media("lossy_211x149.webp"))), ImageFormat::webp);
  EXPECT_EQ(sniff_image_format(read_bytes(media("anim_143x97.gif"))), ImageFormat::gif);
  EXPECT_EQ(sniff_image_format(read_bytes(media("bgr_123x77.bmp"))), ImageFormat::bmp);
  EXPECT_EQ(sniff_image_format(std::vector<std::uint8_t>{'h', 'i'}), ImageFormat::unknown);
}

TEST(ImageLimitsTest, RefusedFromTheHeader) {
  DecodeOptions small;
  small.limits.max_pixels = 337 * 251 - 1;
  try {
    decode_image_file(media("odd_337x251.jpg"), small);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::limit);
    EXPECT_NE(std::string(e.what()).find("337x251"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("odd_337x251.jpg"), std::string::npos) << e.what();
  }
  small.limits.max_pixels = 337 * 251;
  EXPECT_NO_THROW(decode_image_file(media("odd_337x251.jpg"), small));
}

}  // namespace
}  // namespace q3vl
