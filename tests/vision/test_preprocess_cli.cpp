// `q3vl preprocess` end to end: --json fields and the --npy file against the HF goldens
// (the npy's float32 values must equal (u - 127.5) / 127.5 of the golden codes exactly),
// plus the usage error for two inputs. Runs the q3vl executable of the full build.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "support/test_paths.h"
#include "vision/golden_png.h"

namespace q3vl {
namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun run(const std::string& args) {
  const std::string cmd = "'" + testing::q3vl_exe().string() + "' preprocess " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  return {pclose(pipe), out};
}

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

TEST(PreprocessCli, JsonAndNpyMatchHf) {
  const auto dir = testing::processor_golden_dir();
  const auto npy = testing::work_dir() / "preprocess_cli_odd.npy";
  const CliRun r = run("--model " + quoted(dir / "config") + " --image " + quoted(dir / "media" / "odd_337x251.jpg") +
                    " --json --npy " + quoted(npy));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["grid_thw"], nlohmann::json::parse("[[1, 16, 22]]"));
  EXPECT_EQ(doc["num_tokens"], 88);
  EXPECT_TRUE(doc["ms"].is_number());

  std::ifstream in(npy, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 10u);
  ASSERT_EQ(bytes.compare(0, 6, "\x93NUMPY"), 0);
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, header_len);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (352, 1536)"), std::string::npos) << header;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const auto codes = testing::read_golden_png(dir / "pixels" / "odd_jpeg.png", 1);
  ASSERT_EQ(bytes.size(), 10 + header_len + codes.pixels.size() * 4);
  std::size_t differing = 0;
  for (std::size_t i = 0; i < codes.pixels.size(); ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 10 + header_len + 4 * i, 4);
    differing += v != (static_cast<float>(codes.pixels[i]) - 127.5f) / 127.5f;
  }
  EXPECT_EQ(differing, 0u);
}

TEST(PreprocessCli, VideoJsonHasTimestamps) {
  const auto dir = testing::processor_golden_dir();
  const CliRun r = run("--model " + quoted(dir / "config") + " --video " +
                    quoted(dir / "media" / "h264_160x90_25fps.mp4") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  const auto c = testing::processor_golden_case("video_h264");
  EXPECT_EQ(doc["grid_thw"], c["grid_thw"]);
  EXPECT_EQ(doc["num_tokens"], c["num_tokens"]);
  EXPECT_EQ(doc["frame_indices"], c["frame_indices"]);
  EXPECT_EQ(doc["timestamps"], c["timestamps"]);
}

TEST(PreprocessCli, TwoInputsIsAUsageError) {
  const auto dir = testing::processor_golden_dir();
  const CliRun r = run("--model " + quoted(dir / "config") + " --image " + quoted(dir / "media" / "tiny_20x13.png") +
                    " --video " + quoted(dir / "media" / "h264_160x90_25fps.mp4"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("exactly one of --image, --video, --frames"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace q3vl
