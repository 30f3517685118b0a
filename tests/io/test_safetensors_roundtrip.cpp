// Write-then-read round trips through SafetensorsWriter / write_checkpoint and
// SafetensorsFile / Checkpoint: every dtype, single file and sharded, metadata,
// and the exact bytes of a small file worked out by hand from the format.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <csignal>
#include <cstdio>
#include <cstdlib>
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

// produce() for write_checkpoint: each tensor's pattern, delivered in 3-byte pieces.
void produce_pattern(const TensorSpec& spec, const TensorSink& sink) {
  const auto bytes = pattern(spec.byte_size(), static_cast<unsigned>(spec.name.size() * 13 +
                                                                      spec.name.back()));
  for (std::size_t at = 0; at < bytes.size(); at += 3) {
    sink(std::span(bytes).subspan(at, std::min<std::size_t>(3, bytes.size() - at)));
  }
}

void expect_checkpoint_holds(const Checkpoint& checkpoint, const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& spec : specs) names.push_back(spec.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(checkpoint.names(), names);
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.name);
    const TensorView view = checkpoint.tensor(spec.name);
    EXPECT_EQ(view.dtype, spec.dtype);
    EXPECT_EQ(view.shape, spec.shape);
    std::vector<std::byte> got(view.data.begin(), view.data.end());
    std::vector<std::byte> expected;
    produce_pattern(spec, [&](std::span<const std::byte> piece) {
      expected.insert(expected.end(), piece.begin(), piece.end());
    });
    EXPECT_EQ(got, expected);
  }
}

TEST(SafetensorsRoundTrip, CheckpointSingleFileWhenUnderTheShardSize) {
  const auto dir = fresh_dir("checkpoint-single");
  const auto specs = every_dtype_specs();
  write_checkpoint(dir, specs, 1 << 20, produce_pattern);
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  const auto checkpoint = Checkpoint::open(dir);
  expect_checkpoint_holds(checkpoint, specs);
  const auto file = SafetensorsFile::open(dir / "model.safetensors");
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(SafetensorsRoundTrip, CheckpointShardedEveryDType) {
  const auto dir = fresh_dir("checkpoint-sharded");
  const auto specs = every_dtype_specs();
  write_checkpoint(dir, specs, 24, produce_pattern);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  const auto checkpoint = Checkpoint::open(dir);
  expect_checkpoint_holds(checkpoint, specs);
  // Same bytes on a second run (deterministic), file by file.
  const auto again = fresh_dir("checkpoint-sharded-again");
  write_checkpoint(again, specs, 24, produce_pattern);
  std::size_t files = 0;
  for (const auto& item : std::filesystem::directory_iterator(dir)) {
    SCOPED_TRACE(item.path().filename().string());
    EXPECT_EQ(read_bytes(item.path()), read_bytes(again / item.path().filename()));
    ++files;
  }
  EXPECT_GT(files, 3u);
}

TEST(SafetensorsRoundTrip, IndexIsWhatTransformersWrites) {
  // Expected text: json.dumps(index, indent=2, sort_keys=True) + "\n" as transformers
  // 5.23 save_pretrained writes it, for these tensors and max_shard_size=8
  // (huggingface_hub put a, b in shard 1 and c in shard 2).
  const auto dir = fresh_dir("index");
  write_checkpoint(dir, {{"a", DType::f32, {1}}, {"b", DType::f32, {1}}, {"c", DType::f32, {1}}},
                   8, produce_pattern);
  EXPECT_EQ(read_bytes(dir / "model.safetensors.index.json"),
            "{\n"
            "  \"metadata\": {\n"
            "    \"total_parameters\": 3,\n"
            "    \"total_size\": 12\n"
            "  },\n"
            "  \"weight_map\": {\n"
            "    \"a\": \"model-00001-of-00002.safetensors\",\n"
            "    \"b\": \"model-00001-of-00002.safetensors\",\n"
            "    \"c\": \"model-00002-of-00002.safetensors\"\n"
            "  }\n"
            "}\n");
  EXPECT_EQ(SafetensorsFile::open(dir / "model-00001-of-00002.safetensors").names(),
            (std::vector<std::string>{"a", "b"}));
}

TEST(SafetensorsRoundTrip, ShardPlanPutsAnOversizedTensorFirstAsHuggingFaceDoes) {
  // huggingface_hub.split_torch_state_dict_into_shards({a: 4 B, big: 16 B, b: 4 B,
  // c: 4 B}, max_shard_size=8) gives [big], [a, b], [c].
  const auto dir = fresh_dir("plan");
  const std::vector<TensorSpec> specs{{"a", DType::f32, {1}}, {"big", DType::f32, {4}},
                                      {"b", DType::f32, {1}}, {"c", DType::f32, {1}}};
  std::vector<std::string> produced;
  write_checkpoint(dir, specs, 8, [&](const TensorSpec& spec, const TensorSink& sink) {
    produced.push_back(spec.name);
    produce_pattern(spec, sink);
  });
  EXPECT_EQ(produced, (std::vector<std::string>{"a", "big", "b", "c"}));  // spec order
  EXPECT_EQ(SafetensorsFile::open(dir / "model-00001-of-00003.safetensors").names(),
            std::vector<std::string>{"big"});
  EXPECT_EQ(SafetensorsFile::open(dir / "model-00002-of-00003.safetensors").names(),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SafetensorsFile::open(dir / "model-00003-of-00003.safetensors").names(),
            std::vector<std::string>{"c"});
  expect_checkpoint_holds(Checkpoint::open(dir), specs);
}

TEST(SafetensorsRoundTrip, ToF32FromEveryFloatDType) {
  // Values exactly representable in every float dtype, so each must read back exactly.
  const std::vector<float> values{0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 65280.0f, -1.0f / 1024};
  const auto dir = fresh_dir("to-f32");
  const std::vector<TensorSpec> specs{{"bf16", DType::bf16, {7}}, {"f16", DType::f16, {7}},
                                      {"f32", DType::f32, {7}}, {"f64", DType::f64, {7}},
                                      {"i32", DType::i32, {1}}};
  write_checkpoint(dir, specs, 1 << 20, [&](const TensorSpec& spec, const TensorSink& sink) {
    std::vector<std::byte> bytes;
    const auto append = [&](const auto& value) {
      const auto* first = reinterpret_cast<const std::byte*>(&value);
      bytes.insert(bytes.end(), first, first + sizeof value);
    };
    for (const float value : values) {
      switch (spec.dtype) {
        case DType::bf16: append(f32_to_bf16(value)); break;
        case DType::f16: append(f32_to_f16(value)); break;
        case DType::f32: append(value); break;
        case DType::f64: append(static_cast<double>(value)); break;
        default: break;
      }
    }
    if (spec.dtype == DType::i32) append(std::int32_t{7});
    sink(bytes);
  });
  const auto checkpoint = Checkpoint::open(dir);
  for (const char* name : {"bf16", "f16", "f32", "f64"}) {
    SCOPED_TRACE(name);
    const auto got = checkpoint.tensor(name).to_f32();
    ASSERT_EQ(got.size(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(values[i]))
          << "value " << values[i];
    }
  }
  try {
    checkpoint.tensor("i32").to_f32();
    ADD_FAILURE() << "to_f32 of I32 did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::shape);
    EXPECT_NE(std::string(e.what()).find("i32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

// ---- writer contract ----

template <typename Call>
void expect_usage_error(Call call, const std::string& mention) {
  try {
    call();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage) << e.what();
    EXPECT_NE(std::string(e.what()).find(mention), std::string::npos) << e.what();
  }
}

TEST(SafetensorsWriter, TemporaryFileRemovedWhenNotFinished) {
  const auto dir = fresh_dir("unfinished");
  const auto path = dir / "x.safetensors";
  {
    SafetensorsWriter writer(path, {{"a", DType::f32, {2}}});
    EXPECT_TRUE(std::filesystem::exists(dir / "x.safetensors.tmp"));
    const std::vector<std::byte> bytes(4);
    writer.write("a", bytes);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriter, RejectsOutOfOrderOversizedAndMissingData) {
  const auto dir = fresh_dir("misuse");
  const std::vector<TensorSpec> specs{{"a", DType::f32, {1}}, {"z", DType::f32, {0}},
                                      {"b", DType::i8, {2}}};
  const std::vector<std::byte> bytes(8);
  {
    SafetensorsWriter writer(dir / "order.safetensors", specs);
    expect_usage_error([&] { writer.write("b", std::span(bytes).first(2)); },
                       "bytes of tensor 'a' next");
    expect_usage_error([&] { writer.write("a", std::span(bytes).first(4)); }, "failed");
  }
  {
    SafetensorsWriter writer(dir / "oversized.safetensors", specs);
    expect_usage_error([&] { writer.write("a", std::span(bytes).first(5)); }, "4 bytes in total");
  }
  {
    SafetensorsWriter writer(dir / "missing.safetensors", specs);
    writer.write("a", std::span(bytes).first(4));
    writer.write("b", std::span(bytes).first(1));  // skipping zero-byte "z" is fine
    expect_usage_error([&] { writer.finish(); }, "b: expected 2 bytes");
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "missing.safetensors"));
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  expect_usage_error([&] { SafetensorsWriter(dir / "d.safetensors", {specs[0], specs[0]}); },
                     "unique");
  expect_usage_error(
      [&] { SafetensorsWriter(dir / "m.safetensors", {{"__metadata__", DType::f32, {1}}}); },
      "__metadata__");
  expect_usage_error([&] { SafetensorsWriter(dir / "n.safetensors", {{"a", DType::f32, {-1}}}); },
                     "non-negative");
  expect_usage_error(
      [&] { write_checkpoint(dir / "short", {specs[0]}, 64, [](const TensorSpec&, const TensorSink&) {}); },
      "4 bytes from produce()");
  EXPECT_FALSE(std::filesystem::exists(dir / "short" / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "short" / "model.safetensors.tmp"));
}

TEST(SafetensorsWriter, UnwritableDirectoryIsAnIoErrorNamingTheFile) {
  const auto path = fresh_dir("unwritable") / "no-such-dir" / "x.safetensors";
  try {
    SafetensorsWriter writer(path, {{"a", DType::f32, {1}}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_EQ(e.info().file, path.string());
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
}

// A full disk cannot be staged without root, so the child process of this death
// test caps its file size (RLIMIT_FSIZE, SIGXFSZ ignored): write() then fails
// with EFBIG exactly as it would with ENOSPC, through the same code path.
// Runs in the child: returns 0 if the write failed with the right error.
int write_past_file_size_limit(const std::filesystem::path& path) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{1 << 16, 1 << 16};
  setrlimit(RLIMIT_FSIZE, &limit);
  const std::vector<std::byte> bytes(1 << 22);
  try {
    SafetensorsWriter writer(path, {{"a", DType::u8, {1 << 22}}});
    writer.write("a", bytes);
    writer.finish();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (e.kind() == ErrorKind::io && e.info().file == path.string() &&
        message.find("File too large") != std::string::npos) {
      return 0;
    }
    std::fprintf(stderr, "wrong error: %s\n", message.c_str());
    return 1;
  }
  std::fprintf(stderr, "no error\n");
  return 2;
}

TEST(SafetensorsWriterDeathTest, WriteFailureIsAnIoErrorAndLeavesNoFile) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto dir = fresh_dir("write-failure");
  const auto path = dir / "big.safetensors";
  EXPECT_EXIT(std::_Exit(write_past_file_size_limit(path)), ::testing::ExitedWithCode(0), "");
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace q3vl::io
