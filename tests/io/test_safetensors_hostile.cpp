// Corrupt, truncated and hostile safetensors files and checkpoint indexes. Each
// case asserts the error kind and that the message names the file and, where
// there is one, the tensor. Valid edge cases the reference reader (Python
// safetensors 0.8) accepts are checked to be accepted too.
#include <gtest/gtest.h>

#include <fstream>

#include "io/safetensors.h"
#include "io/safetensors_header.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::io {
namespace {

std::filesystem::path case_dir(const std::string& name) {
  const auto dir = q3vl::testing::work_dir() / "io-hostile" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_raw(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  return bytes;
}

// A file with header `json` (length-prefixed, unpadded) followed by `data_bytes` zero bytes.
std::filesystem::path make_file(const std::string& name, const std::string& json,
                                std::size_t data_bytes) {
  const auto path = case_dir(name) / "model.safetensors";
  write_raw(path, le64(json.size()) + json + std::string(data_bytes, '\0'));
  return path;
}

// Runs `open`, which must throw q3vl::Error of `kind` whose info().file is `file`
// and whose message contains `file` and every one of `mentions`.
template <typename Open>
void expect_error(Open open, ErrorKind kind, const std::filesystem::path& file,
                  const std::vector<std::string>& mentions) {
  try {
    open();
    ADD_FAILURE() << "no error for " << file;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), kind) << message;
    EXPECT_EQ(e.info().file, file.string()) << message;
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    for (const std::string& mention : mentions) {
      EXPECT_NE(message.find(mention), std::string::npos) << "'" << mention << "' not in: " << message;
    }
  }
}

void expect_file_error(const std::filesystem::path& path, ErrorKind kind,
                       const std::vector<std::string>& mentions,
                       SafetensorsLimits limits = {}) {
  expect_error([&] { SafetensorsFile::open(path, limits); }, kind, path, mentions);
}

// An F32 tensor entry with the given shape and offsets, as JSON text.
std::string entry(const std::string& name, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end, const std::string& dtype = "F32") {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// ---- valid edge cases (accepted by Python safetensors 0.8 as well) ----

TEST(SafetensorsHostile, AcceptsWhitespaceUnknownKeysZeroByteTensorsAndEmptyHeader) {
  const auto a = make_file("ok-space", "  {" + entry("a", "[1]", 0, 4) + "}   ", 4);
  EXPECT_EQ(SafetensorsFile::open(a).names(), std::vector<std::string>{"a"});
  const auto b = make_file(
      "ok-unknown-key", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4);
  EXPECT_TRUE(SafetensorsFile::open(b).contains("a"));
  const auto c = make_file("ok-zero", "{" + entry("b", "[0]", 0, 0) + "," +
                                          entry("a", "[2,0]", 0, 0) + "}", 0);
  EXPECT_EQ(SafetensorsFile::open(c).names(), (std::vector<std::string>{"a", "b"}));
  const auto d = make_file("ok-empty", "{}", 0);
  EXPECT_TRUE(SafetensorsFile::open(d).names().empty());
  const auto e = make_file("ok-null-metadata", "{\"__metadata__\":null}", 0);
  EXPECT_TRUE(SafetensorsFile::open(e).metadata().empty());
}

// ---- the file and its header length ----

TEST(SafetensorsHostile, MissingFileAndDirectoryAreIoErrors) {
  const auto dir = case_dir("missing");
  expect_file_error(dir / "absent.safetensors", ErrorKind::io, {"cannot open"});
  expect_file_error(dir, ErrorKind::io, {"not a regular file"});
}

TEST(SafetensorsHostile, TruncatedAtSeveralPoints) {
  // A valid file: header of N bytes, then a[4 bytes] b[8 bytes] c[4 bytes].
  const auto dir = case_dir("truncated");
  const auto whole = dir / "whole.safetensors";
  {
    SafetensorsWriter writer(whole, {{"a", DType::f32, {1}}, {"b", DType::f32, {2}},
                                     {"c", DType::i32, {1}}});
    const std::vector<std::byte> zeros(8);
    writer.write("a", std::span(zeros).first(4));
    writer.write("b", zeros);
    writer.write("c", std::span(zeros).first(4));
    writer.finish();
  }
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_NO_THROW(SafetensorsFile::open(whole));
  const std::size_t header_end = 8 + bytes.size() - 16 - 8;
  ASSERT_EQ(bytes.size(), header_end + 16);

  struct Cut {
    std::size_t size;
    std::vector<std::string> mentions;
  };
  const std::vector<Cut> cuts = {
      {0, {"header length", "a file of 0 bytes"}},
      {5, {"header length", "a file of 5 bytes"}},
      {8, {"header length", "file truncated"}},
      {header_end / 2, {"header length", "file truncated"}},
      {header_end - 1, {"header length", "file truncated"}},
      {header_end, {"a.data_offsets", "[0, 4)", "data section [0, 0)"}},
      {header_end + 6, {"b.data_offsets", "[4, 12)"}},
      {header_end + 15, {"c.data_offsets", "[12, 16)"}},
  };
  for (const Cut& cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut.size));
    const auto path = dir / ("cut-" + std::to_string(cut.size) + ".safetensors");
    write_raw(path, bytes.substr(0, cut.size));
    expect_file_error(path, ErrorKind::format, cut.mentions);
  }
}

TEST(SafetensorsHostile, HugeHeaderLengthIsALimitError) {
  const auto dir = case_dir("huge-header");
  const auto path = dir / "model.safetensors";
  write_raw(path, le64(~std::uint64_t{0}) + "{}");
  expect_file_error(path, ErrorKind::limit, {"header length", "18446744073709551615"});
  // Just above a configured limit, even though the file holds it.
  const auto small = make_file("small-limit", "{" + entry("a", "[1]", 0, 4) + "}", 4);
  expect_file_error(small, ErrorKind::limit, {"at most 16 bytes"}, SafetensorsLimits{16});
  EXPECT_NO_THROW(SafetensorsFile::open(small, SafetensorsLimits{1000}));
}

TEST(SafetensorsHostile, TensorCountAboveTheLimitIsALimitError) {
  const std::string three = entry("a", "[1]", 0, 4) + "," + entry("b", "[1]", 4, 8) + "," + entry("c", "[1]", 8, 12);
  const auto path = make_file("tensor-count", "{\"__metadata__\":{\"k\":\"v\"}," + three + "}", 12);
  expect_file_error(path, ErrorKind::limit, {"tensor count", "at most 2 tensors", "max_tensors"},
                    SafetensorsLimits{1000, 2});
  // "__metadata__" is not a tensor: three tensors fit a limit of three.
  EXPECT_EQ(SafetensorsFile::open(path, SafetensorsLimits{1000, 3}).names().size(), 3u);
  // Counted while parsing: the one tensor too many stops the parse, so the malformed
  // rest of this header is never read (a format error would mean it was).
  const auto early = make_file("tensor-count-early", "{" + three + ",\"d\": not json", 12);
  expect_file_error(early, ErrorKind::limit, {"tensor count", "at most 2 tensors"}, SafetensorsLimits{1000, 2});
  expect_file_error(early, ErrorKind::format, {"invalid JSON"}, SafetensorsLimits{1000, 4});
}

// ---- JSON ----

TEST(SafetensorsHostile, GarbageJson) {
  expect_file_error(make_file("garbage", "{not json at all", 0), ErrorKind::format,
                    {"invalid JSON"});
  expect_file_error(make_file("nul-pad", std::string("{}\0\0", 4), 0), ErrorKind::format,
                    {"invalid JSON"});
  expect_file_error(make_file("bad-utf8", "{\"a\xff\":{}}", 0), ErrorKind::format,
                    {"invalid JSON"});
  expect_file_error(make_file("not-object", "[1,2]", 0), ErrorKind::format,
                    {"header", "a JSON object", "array"});
  expect_file_error(make_file("entry-not-object", "{\"w\":5}", 0), ErrorKind::format,
                    {"w: expected an object"});
  expect_file_error(make_file("deep", std::string(200, '[') + std::string(200, ']'), 0),
                    ErrorKind::format, {"nesting"});
}

TEST(SafetensorsHostile, DuplicateTensorNames) {
  // The JSON parser alone would keep one of the two; we must see both.
  const auto path = make_file("duplicate", "{" + entry("w", "[1]", 0, 4) + "," +
                                               entry("w", "[1]", 4, 8) + "}", 8);
  expect_file_error(path, ErrorKind::format, {"w: expected unique keys, got duplicate key"});
  const auto field = make_file(
      "duplicate-field", R"({"w":{"dtype":"F32","dtype":"I8","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_file_error(field, ErrorKind::format, {"w.dtype", "duplicate key"});
}

TEST(SafetensorsHostile, MissingOrMistypedFields) {
  expect_file_error(make_file("no-dtype", R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4),
                    ErrorKind::format, {"w.dtype", "got nothing"});
  expect_file_error(make_file("no-shape", R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4),
                    ErrorKind::format, {"w.shape"});
  expect_file_error(make_file("no-offsets", R"({"w":{"dtype":"F32","shape":[1]}})", 4),
                    ErrorKind::format, {"w.data_offsets"});
  expect_file_error(make_file("dtype-number", R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4),
                    ErrorKind::format, {"w.dtype", "got 7"});
}

TEST(SafetensorsHostile, BadDType) {
  expect_file_error(make_file("bad-dtype", "{" + entry("w", "[1]", 0, 4, "F17") + "}", 4),
                    ErrorKind::format, {"w.dtype", "\"F17\""});
  // A real safetensors dtype that q3vl does not read is "unsupported", not corrupt.
  expect_file_error(make_file("fp8-dtype", "{" + entry("w", "[4]", 0, 4, "F8_E4M3") + "}", 4),
                    ErrorKind::unsupported, {"w.dtype", "\"F8_E4M3\""});
}

TEST(SafetensorsHostile, NegativeFractionalAndOverflowingShapes) {
  expect_file_error(make_file("negative-dim", "{" + entry("w", "[-1]", 0, 4) + "}", 4),
                    ErrorKind::format, {"w.shape", "non-negative integers", "[-1]"});
  expect_file_error(make_file("float-dim", "{" + entry("w", "[1.5]", 0, 4) + "}", 4),
                    ErrorKind::format, {"w.shape"});
  expect_file_error(make_file("shape-not-list", "{" + entry("w", "4", 0, 4) + "}", 4),
                    ErrorKind::format, {"w.shape", "a list"});
  // Above 2^64: the JSON parser turns it into a float.
  expect_file_error(make_file("dim-2^64", "{" + entry("w", "[18446744073709551616]", 0, 4) + "}", 4),
                    ErrorKind::format, {"w.shape"});
  // Above int64's range but a valid uint64.
  expect_file_error(make_file("dim-2^63", "{" + entry("w", "[9223372036854775808]", 0, 4) + "}", 4),
                    ErrorKind::format, {"w.shape"});
  // Each dim fits, the product overflows: 2^62 * 2^62 * 4 bytes. Must not wrap to a match.
  expect_file_error(make_file("overflow", "{" + entry("w", "[4611686018427387904,4611686018427387904]", 0, 0) + "}", 0),
                    ErrorKind::format, {"w.shape", "below 2^64"});
  // 2^62 * 4 wraps to exactly 0 in 64-bit arithmetic: the byte length 0 must not match.
  expect_file_error(make_file("wrap-to-zero", "{" + entry("w", "[4611686018427387904]", 0, 0) + "}", 0),
                    ErrorKind::format, {"w.shape", "below 2^64"});
}

TEST(SafetensorsHostile, SizeMismatch) {
  expect_file_error(make_file("size-mismatch", "{" + entry("w", "[3]", 0, 8) + "}", 8),
                    ErrorKind::format, {"w: expected 12 bytes", "got 8 bytes"});
  expect_file_error(make_file("size-mismatch-bf16", "{" + entry("w", "[2,2]", 0, 16, "BF16") + "}", 16),
                    ErrorKind::format, {"w: expected 8 bytes", "BF16"});
}

// ---- layout of the data section ----

TEST(SafetensorsHostile, OffsetsOutOfRangeOrReversed) {
  expect_file_error(make_file("past-end", "{" + entry("w", "[250]", 0, 1000) + "}", 8),
                    ErrorKind::format, {"w.data_offsets", "[0, 1000)", "[0, 8)"});
  expect_file_error(make_file("reversed", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                    ErrorKind::format, {"w.data_offsets", "begin <= end"});
  expect_file_error(make_file("three-offsets", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8),
                    ErrorKind::format, {"w.data_offsets"});
  expect_file_error(make_file("negative-offset", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8),
                    ErrorKind::format, {"w.data_offsets"});
  // Huge offsets whose difference is right: must not wrap around the data section.
  expect_file_error(make_file("wrap-offsets", "{" + entry("w", "[3]", 18446744073709551612ull, 18446744073709551615ull, "U8") + "}", 4),
                    ErrorKind::format, {"w.data_offsets", "[18446744073709551612, 18446744073709551615)"});
}

TEST(SafetensorsHostile, OverlappingTensors) {
  const auto path = make_file("overlap", "{" + entry("a", "[2]", 0, 8) + "," +
                                             entry("b", "[2]", 4, 12) + "}", 12);
  expect_file_error(path, ErrorKind::format, {"b", "[4, 12)", "overlap tensor 'a'", "[0, 8)"});
  // Two tensors on exactly the same bytes (aliasing) are an overlap too.
  const auto alias = make_file("alias", "{" + entry("a", "[2]", 0, 8) + "," +
                                            entry("b", "[2]", 0, 8) + "}", 8);
  expect_file_error(alias, ErrorKind::format, {"b", "overlap tensor 'a'"});
}

TEST(SafetensorsHostile, GapsAndUncoveredBytes) {
  const auto gap = make_file("gap", "{" + entry("a", "[1]", 0, 4) + "," +
                                        entry("b", "[1]", 8, 12) + "}", 12);
  expect_file_error(gap, ErrorKind::format, {"b", "[4, 8) before this tensor belong to no tensor"});
  const auto leading = make_file("leading-gap", "{" + entry("a", "[1]", 4, 8) + "}", 8);
  expect_file_error(leading, ErrorKind::format, {"a", "[0, 4)"});
  const auto trailing = make_file("trailing", "{" + entry("a", "[1]", 0, 4) + "}", 8);
  expect_file_error(trailing, ErrorKind::format, {"[4, 8) at the end of the file belong to no tensor"});
}

TEST(SafetensorsHostile, MetadataMustBeStringToString) {
  expect_file_error(make_file("metadata-int", R"({"__metadata__":{"k":1}})", 0), ErrorKind::format,
                    {"__metadata__.k", "a string", "got 1"});
  expect_file_error(make_file("metadata-list", R"({"__metadata__":["x"]})", 0), ErrorKind::format,
                    {"__metadata__", "an object of strings"});
}

// ---- sharded checkpoints ----

// A valid two-shard checkpoint: a, b in shard 1 and c in shard 2 (4 bytes each).
std::filesystem::path make_sharded(const std::string& name) {
  const auto dir = case_dir(name);
  write_checkpoint(dir, {{"a", DType::f32, {1}}, {"b", DType::f32, {1}}, {"c", DType::f32, {1}}},
                   8, [](const TensorSpec& spec, const TensorSink& sink) {
                     const std::vector<std::byte> bytes(spec.byte_size());
                     sink(bytes);
                   });
  return dir;
}

TEST(SafetensorsHostile, ShardedFixtureIsValid) {
  const auto dir = make_sharded("sharded-valid");
  ASSERT_TRUE(std::filesystem::exists(dir / "model-00002-of-00002.safetensors"));
  EXPECT_EQ(Checkpoint::open(dir).names(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SafetensorsHostile, IndexPointingAtMissingShard) {
  const auto dir = make_sharded("missing-shard");
  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  expect_error([&] { Checkpoint::open(dir); }, ErrorKind::io, dir / "model.safetensors.index.json",
               {"weight_map.c", "model-00002-of-00002.safetensors", "does not exist"});
}

TEST(SafetensorsHostile, TensorMissingFromItsShard) {
  const auto dir = make_sharded("tensor-not-in-shard");
  write_raw(dir / "model.safetensors.index.json",
            R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
            R"("c":"model-00001-of-00002.safetensors"}})");
  expect_error([&] { Checkpoint::open(dir); }, ErrorKind::format,
               dir / "model-00001-of-00002.safetensors", {"c", "absent"});
}

TEST(SafetensorsHostile, CorruptShardNamesTheShard) {
  const auto dir = make_sharded("corrupt-shard");
  const auto shard = dir / "model-00002-of-00002.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 1);
  expect_error([&] { Checkpoint::open(dir); }, ErrorKind::format, shard, {"c.data_offsets"});
}

TEST(SafetensorsHostile, MalformedIndex) {
  const auto dir = make_sharded("bad-index");
  const auto index = dir / "model.safetensors.index.json";
  const auto open = [&] { Checkpoint::open(dir); };
  write_raw(index, "{\"weight_map\": {");
  expect_error(open, ErrorKind::format, index, {"invalid JSON"});
  write_raw(index, "[]");
  expect_error(open, ErrorKind::format, index, {"a JSON object"});
  write_raw(index, R"({"metadata":{}})");
  expect_error(open, ErrorKind::format, index, {"weight_map", "got nothing"});
  write_raw(index, R"({"weight_map":{"a":3}})");
  expect_error(open, ErrorKind::format, index, {"weight_map.a", "got 3"});
  write_raw(index, R"({"weight_map":{"a":"../x.safetensors"}})");
  expect_error(open, ErrorKind::format, index, {"weight_map.a", "shard file name"});
  write_raw(index, R"({"weight_map":{"a":"model-00001-of-00002.safetensors",)"
                   R"("a":"model-00002-of-00002.safetensors"}})");
  expect_error(open, ErrorKind::format, index, {"weight_map.a", "duplicate key"});
}

TEST(SafetensorsHostile, IndexListingMoreTensorsThanTheLimit) {
  const auto dir = make_sharded("index-tensor-count");
  const auto index = dir / "model.safetensors.index.json";
  expect_error([&] { Checkpoint::open(dir, SafetensorsLimits{1000, 2}); }, ErrorKind::limit, index,
               {"weight_map", "at most 2 tensors", "max_tensors", "got 3"});
  EXPECT_EQ(Checkpoint::open(dir, SafetensorsLimits{1000, 3}).names().size(), 3u);
}

TEST(SafetensorsHostile, DirectoryWithoutCheckpoint) {
  const auto dir = case_dir("no-checkpoint");
  expect_error([&] { Checkpoint::open(dir); }, ErrorKind::io, dir,
               {"model.safetensors or model.safetensors.index.json"});
}

TEST(SafetensorsHostile, AbsentTensorIsAShapeError) {
  const auto path = make_file("absent-tensor", "{" + entry("a", "[1]", 0, 4) + "}", 4);
  const auto file = SafetensorsFile::open(path);
  expect_error([&] { file.tensor("b"); }, ErrorKind::shape, path, {"b"});
}

// Every single-byte corruption of a small valid file (length prefix, header and
// data) must either parse or throw q3vl::Error naming the file, never anything
// else, and what parses must lie inside the buffer. Parsed in memory (no file
// per case); under -DQ3VL_SANITIZE=ON this also shows no out-of-bounds read.
TEST(SafetensorsHostile, EveryByteMutationParsesOrThrowsError) {
  const auto valid = case_dir("mutations") / "valid.safetensors";
  {
    SafetensorsWriter writer(valid, {{"a", DType::bf16, {2}}, {"b", DType::i8, {3}}},
                             {{"k", "v"}});
    const std::vector<std::byte> bytes(4, std::byte{0x3F});
    writer.write("a", bytes);
    writer.write("b", std::span(bytes).first(3));
    writer.finish();
  }
  std::ifstream in(valid, std::ios::binary);
  const std::string original{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::size_t parsed = 0, rejected = 0;
  for (std::size_t at = 0; at < original.size(); ++at) {
    for (const char replacement : {'\0', '\xff', '"', '{', ']', '9', '-', ' ', ','}) {
      if (original[at] == replacement) continue;
      std::string mutated = original;
      mutated[at] = replacement;
      const auto bytes = std::as_bytes(std::span(mutated.data(), mutated.size()));
      try {
        const SafetensorsHeader header = parse_safetensors_header(bytes, "mutated", SafetensorsLimits{1 << 20});
        for (const TensorEntry& entry : header.tensors) {
          EXPECT_LE(header.data_start + entry.end, mutated.size()) << "byte " << at;
        }
        ++parsed;
      } catch (const Error& e) {
        EXPECT_EQ(e.info().file, "mutated") << e.what();
        ++rejected;
      }
    }
  }
  // Data-byte mutations still parse; most header mutations do not.
  EXPECT_GT(parsed, 0u);
  EXPECT_GT(rejected, parsed);
}

}  // namespace
}  // namespace q3vl::io
