// The vision graph against the plain C++ reference (tests/builder/vision_reference.h)
// on configs that are not presets, several same-size segments per call and one alone.
// Metric: max |graph - reference| <= 1e-4 * max(1, max |reference|) per output (the
// FP32 parity bound of the HF goldens); FP16 weights: cosine vs FP32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "builder/vision_reference.h"
#include "builder/vision_reference_support.h"
#include "io/safetensors.h"
#include "q3vl/error.h"
#include "runtime/ort_session.h"
#include "support/similarity.h"
#include "support/test_paths.h"

namespace q3vl::builder {
namespace {

using testing::cosine;
using testing::VisionReference;

std::filesystem::path scratch(const std::string& name) {
  const auto dir = q3vl::testing::work_dir() / "builder" / ("vision-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// hidden 48, 3 heads (head_dim 16), 4 blocks, DeepStack after blocks 0 and 2,
// a 8 x 8 position table, 4 x 4 patches (P = 3 * 2 * 16 = 96).
ModelConfig config_a() {
  ModelConfig c;
  VisionConfig& v = c.vision;
  v.depth = 4;
  v.hidden_size = 48;
  v.intermediate_size = 80;
  v.num_heads = 3;
  v.in_channels = 3;
  v.patch_size = 4;
  v.temporal_patch_size = 2;
  v.spatial_merge_size = 2;
  v.out_hidden_size = 40;
  v.num_position_embeddings = 64;
  v.hidden_act = "gelu_pytorch_tanh";
  v.rope_theta = 10000.0;
  v.deepstack_visual_indexes = {0, 2};
  return c;
}

// Other widths: 2 heads of 32, one DeepStack tap on the last block, exact-GELU MLP,
// a 12 x 12 table, one input channel and 2 x 2 patches (P = 8).
ModelConfig config_b() {
  ModelConfig c;
  VisionConfig& v = c.vision;
  v.depth = 2;
  v.hidden_size = 64;
  v.intermediate_size = 96;
  v.num_heads = 2;
  v.in_channels = 1;
  v.patch_size = 2;
  v.temporal_patch_size = 2;
  v.spatial_merge_size = 2;
  v.out_hidden_size = 24;
  v.num_position_embeddings = 144;
  v.hidden_act = "gelu";
  v.rope_theta = 10000.0;
  v.deepstack_visual_indexes = {1};
  return c;
}

struct Built {
  std::filesystem::path dir;
  std::unique_ptr<io::Checkpoint> checkpoint;
};

Built build(const std::string& name, const ModelConfig& config, VisionPrecision precision,
            std::uint64_t seed) {
  Built b{scratch(name), nullptr};
  testing::write_random_vision_checkpoint(b.dir / "ckpt", config.vision, seed);
  b.checkpoint = std::make_unique<io::Checkpoint>(io::Checkpoint::open(b.dir / "ckpt"));
  Graph graph("vision", b.dir / "vision.onnx.data");
  write_vision_graph(graph, *b.checkpoint, config, {precision});
  graph.save(b.dir / "vision.onnx");
  return b;
}

double max_abs(std::span<const float> v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::fabs(double(x)));
  return m;
}

// Compares `got` (a slice of graph output) with the reference; reports the case on failure.
void expect_close(std::span<const float> got, std::span<const float> ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - ref[i]));
  const double bound = 1e-4 * std::max(1.0, max_abs(ref));
  EXPECT_LE(worst, bound) << what << ": max|d| " << worst << " bound " << bound << " max|ref| " << max_abs(ref);
}

// Runs S segments of h x w in one call and checks every segment against the reference
// run on that segment alone.
void check_call(runtime::OrtSession& session, const VisionReference& reference, const VisionConfig& v,
                std::int64_t segments, std::int64_t h, std::int64_t w, std::uint64_t seed) {
  const std::int64_t l = h * w;
  const std::int64_t p = v.patch_input_size();
  const std::vector<float> pixels = testing::random_uniform(static_cast<std::size_t>(segments * l * p), seed);
  const testing::VisionRun run = testing::run_vision_graph(session, v, pixels, segments, h, w);
  const std::int64_t tokens = l / (v.spatial_merge_size * v.spatial_merge_size);
  const std::int64_t d = v.out_hidden_size;
  const auto k = static_cast<std::int64_t>(v.deepstack_visual_indexes.size());
  ASSERT_EQ(run.merged_shape, (std::vector<std::int64_t>{segments, tokens, d}));
  ASSERT_EQ(run.deepstack_shape, (std::vector<std::int64_t>{k, segments, tokens, d}));
  for (std::int64_t s = 0; s < segments; ++s) {
    const auto ref = reference.run(std::span(pixels).subspan(static_cast<std::size_t>(s * l * p), static_cast<std::size_t>(l * p)), h, w);
    const std::string what = "S=" + std::to_string(segments) + " " + std::to_string(h) + "x" +
                             std::to_string(w) + " segment " + std::to_string(s);
    const auto n = static_cast<std::size_t>(tokens * d);
    expect_close(std::span(run.merged).subspan(static_cast<std::size_t>(s) * n, n), ref.merged, what + " merged");
    for (std::int64_t j = 0; j < k; ++j) {
      const auto offset = static_cast<std::size_t>((j * segments + s)) * n;
      expect_close(std::span(run.deepstack).subspan(offset, n), ref.deepstack[static_cast<std::size_t>(j)],
                   what + " deepstack " + std::to_string(j));
    }
  }
}

TEST(VisionGraph, ConfigAMatchesReferenceForSegmentsTogetherAndAlone) {
  const ModelConfig config = config_a();
  const Built b = build("a", config, VisionPrecision::fp32, 11);
  const VisionReference reference(*b.checkpoint, config.vision);
  runtime::OrtSession session("vision", b.dir / "vision.onnx");
  check_call(session, reference, config.vision, 3, 4, 6, 101);  // three 4x6 segments in one call
  check_call(session, reference, config.vision, 1, 8, 4, 102);  // another size, alone
  check_call(session, reference, config.vision, 2, 2, 2, 103);  // the smallest grid
}

TEST(VisionGraph, ConfigBMatchesReference) {
  const ModelConfig config = config_b();
  const Built b = build("b", config, VisionPrecision::fp32, 12);
  const VisionReference reference(*b.checkpoint, config.vision);
  runtime::OrtSession session("vision", b.dir / "vision.onnx");
  check_call(session, reference, config.vision, 2, 6, 4, 201);
  check_call(session, reference, config.vision, 1, 10, 12, 202);
}

TEST(VisionGraph, NoDeepstackTapsGivesEmptyFeatures) {
  ModelConfig config = config_b();
  config.vision.deepstack_visual_indexes.clear();
  const Built b = build("no-deepstack", config, VisionPrecision::fp32, 13);
  const VisionReference reference(*b.checkpoint, config.vision);
  runtime::OrtSession session("vision", b.dir / "vision.onnx");
  check_call(session, reference, config.vision, 2, 4, 4, 301);
}

// Cosine of each output (merged, and every DeepStack feature separately) against fp32.
void expect_cosine_at_least(const testing::VisionRun& ref, const testing::VisionRun& got,
                            std::int64_t k, double bound, const std::string& what) {
  EXPECT_GE(cosine(ref.merged, got.merged), bound) << what << " merged";
  const std::size_t n = ref.deepstack.size() / static_cast<std::size_t>(k);
  for (std::int64_t j = 0; j < k; ++j) {
    const auto offset = static_cast<std::size_t>(j) * n;
    EXPECT_GE(cosine(std::span(ref.deepstack).subspan(offset, n), std::span(got.deepstack).subspan(offset, n)), bound)
        << what << " deepstack " << j;
  }
}

TEST(VisionGraph, Fp16AndInt8StayCloseToFp32) {
  const ModelConfig config = config_a();
  const Built b32 = build("a-fp32", config, VisionPrecision::fp32, 11);
  const Built b16 = build("a-fp16", config, VisionPrecision::fp16, 11);
  const Built b8 = build("a-int8", config, VisionPrecision::int8, 11);
  runtime::OrtSession s32("vision", b32.dir / "vision.onnx");
  runtime::OrtSession s16("vision", b16.dir / "vision.onnx");
  runtime::OrtSession s8("vision", b8.dir / "vision.onnx");
  const auto pixels = testing::random_uniform(2 * 24 * 96, 401);
  const auto r32 = testing::run_vision_graph(s32, config.vision, pixels, 2, 4, 6);
  const auto r16 = testing::run_vision_graph(s16, config.vision, pixels, 2, 4, 6);
  const auto r8 = testing::run_vision_graph(s8, config.vision, pixels, 2, 4, 6);
  // fp16 weights carry 11 significant bits (relative error <= 2^-12 per weight).
  expect_cosine_at_least(r32, r16, 2, 0.9999, "fp16");
  // int8: the project's vision target (bench/peers/targets.md: merged-token cosine >= 0.999 vs FP32).
  expect_cosine_at_least(r32, r8, 2, 0.999, "int8");
  // fp16 halves every matrix; int8 quarters all but qkv and the patch embedding.
  const double fp32_bytes = double(std::filesystem::file_size(b32.dir / "vision.onnx.data"));
  const double fp16_bytes = double(std::filesystem::file_size(b16.dir / "vision.onnx.data"));
  EXPECT_LT(fp16_bytes, 0.6 * fp32_bytes);
  EXPECT_LT(double(std::filesystem::file_size(b8.dir / "vision.onnx.data")), fp16_bytes);
}

TEST(VisionGraph, SameInputsGiveByteIdenticalFiles) {
  const ModelConfig config = config_b();
  const Built one = build("same-1", config, VisionPrecision::fp32, 5);
  const Built two = build("same-2", config, VisionPrecision::fp32, 5);
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  EXPECT_EQ(bytes(one.dir / "vision.onnx"), bytes(two.dir / "vision.onnx"));
  EXPECT_EQ(bytes(one.dir / "vision.onnx.data"), bytes(two.dir / "vision.onnx.data"));
}

TEST(VisionGraph, ErrorsNameTheTensorOrField) {
  const ModelConfig config = config_b();
  const auto dir = scratch("errors");
  testing::write_random_vision_checkpoint(dir / "ckpt", config.vision, 7);
  const io::Checkpoint checkpoint = io::Checkpoint::open(dir / "ckpt");

  ModelConfig wider = config;
  wider.vision.intermediate_size = 100;  // the checkpoint's fc1 is [96, 64]
  try {
    Graph graph("vision", dir / "v1.onnx.data");
    write_vision_graph(graph, checkpoint, wider);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::shape);
    EXPECT_NE(std::string(e.what()).find("model.visual.blocks.0.mlp.linear_fc1.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[100, 64]"), std::string::npos) << e.what();
  }

  ModelConfig deeper = config;
  deeper.vision.depth = 3;  // blocks.2 does not exist
  try {
    Graph graph("vision", dir / "v2.onnx.data");
    write_vision_graph(graph, checkpoint, deeper);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.visual.blocks.2.norm1.weight"), std::string::npos) << e.what();
  }

  ModelConfig bad_tap = config;
  bad_tap.vision.deepstack_visual_indexes = {2};
  try {
    Graph graph("vision", dir / "v3.onnx.data");
    write_vision_graph(graph, checkpoint, bad_tap);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("vision_config.deepstack_visual_indexes"), std::string::npos) << e.what();
  }

  EXPECT_THROW(parse_vision_precision("int3"), Error);
  EXPECT_EQ(parse_vision_precision("int8"), VisionPrecision::int8);
  EXPECT_EQ(parse_vision_precision("fp16"), VisionPrecision::fp16);
  EXPECT_EQ(parse_vision_precision("q8"), VisionPrecision::q8);
  EXPECT_STREQ(to_string(VisionPrecision::q8), "q8");
}

}  // namespace
}  // namespace q3vl::builder
