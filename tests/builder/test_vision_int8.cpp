// The quantized vision graphs (int8: ONNX Runtime's DynamicQuantizeMatMul; q8: q3vl.QuantLinear
// with 8-bit weights and int8 activations per 32-value block) against the fp32 graph built
// from the same checkpoint.
// Metric: cosine similarity of the merged tokens and of each DeepStack feature separately,
// per image, >= 0.999 (the project's vision target, bench/peers/targets.md).
// Cases: a synthetic non-preset config shaped like the 4B tower at a CI-friendly size (hidden
// 256, 4 heads of 64, MLP 1024, 4 blocks, DeepStack after blocks 1 and 2) on a 16 x 16 and a
// 12 x 20 patch grid; an odd-sized one (hidden 60 = 3 heads of 20, MLP 200, merger width 240,
// output 72: no width a multiple of the 32-value blocks or the kernel's 16-row tiles; 3 blocks,
// DeepStack after blocks 0 and 2), both with the test generator's random weights (matrices
// N(0, (2/sqrt(fan_in))^2)); and the tiny presets (the make-checkpoint weights of
// weight_layout.h) on every golden image.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "builder/vision_reference_support.h"
#include "io/safetensors.h"
#include "q3vl/config.h"
#include "runtime/ort_session.h"
#include "support/golden.h"
#include "support/similarity.h"
#include "support/test_paths.h"

namespace q3vl::builder {
namespace {

using testing::cosine;

constexpr double kMinCosine = 0.999;

// The precisions under test (each against fp32).
class VisionQuantized : public ::testing::TestWithParam<VisionPrecision> {};

std::unique_ptr<runtime::OrtSession> build_session(const io::Checkpoint& checkpoint, const ModelConfig& config,
                                                   VisionPrecision precision, const std::string& name) {
  const auto dir = q3vl::testing::work_dir() / "builder" / ("vision-quantized-" + name + "-" + to_string(precision));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Graph graph("vision", dir / "vision.onnx.data");
  write_vision_graph(graph, checkpoint, config, {precision});
  graph.save(dir / "vision.onnx");
  return std::make_unique<runtime::OrtSession>("vision", dir / "vision.onnx");
}

struct Pair {
  std::unique_ptr<runtime::OrtSession> fp32;
  std::unique_ptr<runtime::OrtSession> quantized;
};

// One h x w image through both graphs; every output's cosine >= kMinCosine.
void expect_close(Pair& pair, const VisionConfig& v, std::span<const float> pixels, std::int64_t h,
                  std::int64_t w, const std::string& what) {
  const auto ref = testing::run_vision_graph(*pair.fp32, v, pixels, 1, h, w);
  const auto got = testing::run_vision_graph(*pair.quantized, v, pixels, 1, h, w);
  ASSERT_EQ(ref.merged.size(), got.merged.size()) << what;
  ASSERT_EQ(ref.deepstack.size(), got.deepstack.size()) << what;
  const double merged = cosine(ref.merged, got.merged);
  std::printf("[vision] %s, grid %lldx%lld: merged cosine %.6f", what.c_str(), static_cast<long long>(h),
              static_cast<long long>(w), merged);
  EXPECT_GE(merged, kMinCosine) << what << " merged, grid " << h << "x" << w;
  const std::size_t k = v.deepstack_visual_indexes.size();
  for (std::size_t j = 0; j < k; ++j) {
    const std::size_t n = ref.deepstack.size() / k;
    const double feature =
        cosine(std::span(ref.deepstack).subspan(j * n, n), std::span(got.deepstack).subspan(j * n, n));
    std::printf(", deepstack %zu %.6f", j, feature);
    EXPECT_GE(feature, kMinCosine) << what << " deepstack " << j << ", grid " << h << "x" << w;
  }
  std::printf("\n");
}

// A random checkpoint for `v` (written once per test) and its fp32 and `precision` graphs.
Pair random_tower(const ModelConfig& config, const std::string& name, std::uint64_t seed, VisionPrecision precision) {
  // Per precision: the int8 and q8 instances may run at once (ctest -j), each with its own files.
  const std::string run = name + "-for-" + to_string(precision);
  const auto dir = q3vl::testing::work_dir() / "builder" / ("vision-checkpoint-" + run);
  std::filesystem::remove_all(dir);
  testing::write_random_vision_checkpoint(dir / "ckpt", config.vision, seed);
  const io::Checkpoint checkpoint = io::Checkpoint::open(dir / "ckpt");
  return {build_session(checkpoint, config, VisionPrecision::fp32, run),
          build_session(checkpoint, config, precision, run)};
}

TEST_P(VisionQuantized, FourBLikeConfigStaysCloseToFp32) {
  ModelConfig config;
  VisionConfig& v = config.vision;
  v.depth = 4;
  v.hidden_size = 256;
  v.intermediate_size = 1024;
  v.num_heads = 4;
  v.in_channels = 3;
  v.patch_size = 16;
  v.temporal_patch_size = 2;
  v.spatial_merge_size = 2;
  v.out_hidden_size = 320;
  v.num_position_embeddings = 256;
  v.hidden_act = "gelu_pytorch_tanh";
  v.rope_theta = 10000.0;
  v.deepstack_visual_indexes = {1, 2};
  Pair pair = random_tower(config, "4b-like", 21, GetParam());
  const std::int64_t p = v.patch_input_size();
  const std::string what = std::string("4b-like ") + to_string(GetParam());
  expect_close(pair, v, testing::random_uniform(static_cast<std::size_t>(16 * 16 * p), 31), 16, 16, what);
  expect_close(pair, v, testing::random_uniform(static_cast<std::size_t>(12 * 20 * p), 32), 12, 20, what);
}

TEST_P(VisionQuantized, OddSizedConfigStaysCloseToFp32) {
  ModelConfig config;
  VisionConfig& v = config.vision;
  v.depth = 3;
  v.hidden_size = 60;
  v.intermediate_size = 200;
  v.num_heads = 3;
  v.in_channels = 3;
  v.patch_size = 16;
  v.temporal_patch_size = 2;
  v.spatial_merge_size = 2;
  v.out_hidden_size = 72;
  v.num_position_embeddings = 64;
  v.hidden_act = "gelu_pytorch_tanh";
  v.rope_theta = 10000.0;
  v.deepstack_visual_indexes = {2, 0};
  Pair pair = random_tower(config, "odd", 23, GetParam());
  const std::int64_t p = v.patch_input_size();
  const std::string what = std::string("odd ") + to_string(GetParam());
  expect_close(pair, v, testing::random_uniform(static_cast<std::size_t>(10 * 14 * p), 33), 10, 14, what);
}

// Every distinct golden image through the preset's fp32 and int8 towers, each alone.
TEST_P(VisionQuantized, PresetsStayCloseToFp32OnGoldenImages) {
  const testing::GoldenSet set = testing::GoldenSet::open();
  for (const char* preset : {"tiny", "tiny-untied"}) {
    const ModelConfig config = load_model_config(q3vl::testing::checkpoint_dir(preset));
    const io::Checkpoint checkpoint = io::Checkpoint::open(q3vl::testing::checkpoint_dir(preset));
    const std::string run = std::string(preset) + "-for-" + to_string(GetParam());
    Pair pair{build_session(checkpoint, config, VisionPrecision::fp32, run),
              build_session(checkpoint, config, GetParam(), run)};
    std::set<std::string> seen;
    for (const auto& name : set.case_names()) {
      const testing::GoldenCase c = set.load_case(name);
      for (const auto& file : c.image_files()) {
        if (!seen.insert(file).second) continue;
        const auto grid = c.media_grid_thw(file);
        const auto codes = c.pixel_codes(file);
        std::vector<float> pixels(codes.size());
        for (std::size_t i = 0; i < codes.size(); ++i) pixels[i] = (static_cast<float>(codes[i]) - 127.5f) / 127.5f;
        expect_close(pair, config.vision, pixels, grid.values[1], grid.values[2],
                     std::string(preset) + " " + to_string(GetParam()) + " " + file);
      }
    }
    EXPECT_GE(seen.size(), 6u) << preset;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, VisionQuantized, ::testing::Values(VisionPrecision::int8, VisionPrecision::q8),
                         [](const ::testing::TestParamInfo<VisionPrecision>& param) { return to_string(param.param); });

}  // namespace
}  // namespace q3vl::builder
