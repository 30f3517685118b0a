// Vision FP32 parity with Hugging Face: the vision graph built from the `tiny` and
// `tiny-untied` checkpoints and the `custom` config checkpoint (not a preset: vision
// width 80 with 5 heads, 4 blocks, one DeepStack tap at block 2, a 16x16 position-
// embedding grid) (CTest fixtures) against the committed HF goldens (tests/goldens/model,
// made by tests/reference/make_goldens.py from the same checkpoints; for `custom` only
// the cases listed in manifest configs.custom.vision_cases carry vision outputs).
// Metric, per medium and per output (merged tokens, each DeepStack feature):
//   max |graph - HF| <= 1e-4 * max(1, max |HF|)
// on every golden image and video, run three ways: each medium alone, all media of a case
// in one request, and every golden medium in one request (mixed sizes, video groups),
// the last two through the runtime's path (layout_segments + group_segments_by_size:
// one graph call per group of equal-size segments).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "builder/vision_reference_support.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "q3vl/config.h"
#include "runtime/ort_session.h"
#include "support/golden.h"
#include "support/test_paths.h"
#include "vision/grid_tables.h"

namespace q3vl::builder {
namespace {

using testing::GoldenCase;
using testing::GoldenF32;
using testing::GoldenSet;

struct PresetVision {
  ModelConfig config;
  std::unique_ptr<io::Checkpoint> checkpoint;
  std::unique_ptr<runtime::OrtSession> session;
};

// The FP32 vision graph of a preset's fixture checkpoint, built once per test program.
PresetVision& preset_vision(const std::string& preset) {
  static std::map<std::string, PresetVision> built;
  auto it = built.find(preset);
  if (it != built.end()) return it->second;
  const auto ckpt_dir = q3vl::testing::checkpoint_dir(preset.c_str());
  PresetVision v;
  v.config = load_model_config(ckpt_dir);
  v.checkpoint = std::make_unique<io::Checkpoint>(io::Checkpoint::open(ckpt_dir));
  const auto dir = q3vl::testing::work_dir() / "builder" / ("vision-golden-" + preset);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Graph graph("vision", dir / "vision.onnx.data");
  write_vision_graph(graph, *v.checkpoint, v.config);
  graph.save(dir / "vision.onnx");
  v.session = std::make_unique<runtime::OrtSession>("vision", dir / "vision.onnx");
  return built.emplace(preset, std::move(v)).first->second;
}

// One image or video of a golden case with HF's outputs for it.
struct Medium {
  std::string name;                 // "two_images/image 1"
  vision::GridTHW grid;
  std::vector<float> pixels;        // [t*h*w, P], merge-block order
  std::vector<float> merged;        // [t*h*w/m^2, D] (HF)
  std::vector<std::vector<float>> deepstack;  // K x [t*h*w/m^2, D] (HF)
};

// Splits a case's stacked pixel_values / embeds / deepstack into its media.
void add_media(const GoldenCase& c, const std::string& preset, const std::string& kind,
               std::int64_t merge, std::vector<Medium>& out) {
  const std::string grid_name = kind + "_grid_thw";
  if (!c.has_input(grid_name)) return;
  const auto grids = c.input_i64(grid_name);
  const GoldenF32 pixels = kind == "image" ? c.pixel_values() : c.video_pixel_values();
  const GoldenF32 embeds = c.model_f32(preset, kind + "_embeds");
  const GoldenF32 deepstack = c.model_f32(preset, kind + "_deepstack");
  const std::int64_t p = pixels.dim(1);
  const std::int64_t d = embeds.dim(1);
  const std::int64_t k = deepstack.dim(0);
  const std::int64_t total_tokens = embeds.dim(0);
  std::int64_t patch = 0;
  for (std::int64_t i = 0; i < grids.dim(0); ++i) {
    Medium m;
    m.name = c.name() + "/" + kind + " " + std::to_string(i);
    m.grid = {grids.values[static_cast<std::size_t>(i * 3)], grids.values[static_cast<std::size_t>(i * 3 + 1)],
              grids.values[static_cast<std::size_t>(i * 3 + 2)]};
    const std::int64_t patches = m.grid.t * m.grid.h * m.grid.w;
    const std::int64_t tokens = patches / (merge * merge);
    const std::int64_t token = patch / (merge * merge);
    m.pixels.assign(pixels.values.begin() + patch * p, pixels.values.begin() + (patch + patches) * p);
    m.merged.assign(embeds.values.begin() + token * d, embeds.values.begin() + (token + tokens) * d);
    for (std::int64_t j = 0; j < k; ++j) {
      const auto begin = deepstack.values.begin() + (j * total_tokens + token) * d;
      m.deepstack.emplace_back(begin, begin + tokens * d);
    }
    out.push_back(std::move(m));
    patch += patches;
  }
}

std::vector<Medium> case_media(const GoldenCase& c, const std::string& preset, std::int64_t merge) {
  std::vector<Medium> media;
  add_media(c, preset, "image", merge, media);
  add_media(c, preset, "video", merge, media);
  return media;
}

struct Encoded {
  std::vector<float> merged;                  // [total tokens, D]
  std::vector<std::vector<float>> deepstack;  // K x [total tokens, D]
};

// The runtime's path: segments of all media in request order, one graph call per
// group of equal-size segments, outputs scattered back by each segment's token offset.
Encoded encode_request(PresetVision& pv, const std::vector<const Medium*>& media) {
  const VisionConfig& v = pv.config.vision;
  const std::int64_t p = v.patch_input_size();
  const std::int64_t d = v.out_hidden_size;
  const auto k = v.deepstack_visual_indexes.size();
  const std::int64_t unit = v.spatial_merge_size * v.spatial_merge_size;
  std::vector<vision::GridTHW> grids;
  std::vector<float> pixels;
  for (const Medium* m : media) {
    grids.push_back(m->grid);
    pixels.insert(pixels.end(), m->pixels.begin(), m->pixels.end());
  }
  const auto segments = vision::layout_segments(grids, v.spatial_merge_size);
  const std::int64_t total_tokens = static_cast<std::int64_t>(pixels.size()) / p / unit;
  Encoded out;
  out.merged.assign(static_cast<std::size_t>(total_tokens * d), NAN);
  out.deepstack.assign(k, std::vector<float>(static_cast<std::size_t>(total_tokens * d), NAN));
  for (const vision::SegmentGroup& group : vision::group_segments_by_size(segments)) {
    const std::int64_t l = group.h * group.w;
    const std::int64_t s = static_cast<std::int64_t>(group.segments.size());
    std::vector<float> batch;
    for (std::size_t index : group.segments) {
      const auto begin = pixels.begin() + segments[index].patch_offset * p;
      batch.insert(batch.end(), begin, begin + l * p);
    }
    const auto run = q3vl::testing::run_vision_graph(*pv.session, v, batch, s, group.h, group.w);
    const std::int64_t tokens = l / unit;
    for (std::int64_t i = 0; i < s; ++i) {
      const std::int64_t dst = segments[group.segments[static_cast<std::size_t>(i)]].token_offset * d;
      std::copy_n(run.merged.begin() + i * tokens * d, tokens * d, out.merged.begin() + dst);
      for (std::size_t j = 0; j < k; ++j) {
        const auto src = run.deepstack.begin() + (static_cast<std::int64_t>(j) * s + i) * tokens * d;
        std::copy_n(src, tokens * d, out.deepstack[j].begin() + dst);
      }
    }
  }
  return out;
}

void expect_close(std::span<const float> got, std::span<const float> ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double worst = 0, top = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double diff = std::fabs(double(got[i]) - double(ref[i]));
    worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
    top = std::max(top, std::fabs(double(ref[i])));
  }
  const double bound = 1e-4 * std::max(1.0, top);
  EXPECT_LE(worst, bound) << what << ": max|d| " << worst << " bound " << bound << " (" << ref.size() << " values)";
}

// Checks each medium's slice of a request's outputs against its HF goldens.
void expect_request_matches(PresetVision& pv, const std::vector<const Medium*>& media, const std::string& label) {
  const Encoded enc = encode_request(pv, media);
  const std::int64_t d = pv.config.vision.out_hidden_size;
  std::size_t offset = 0;
  for (const Medium* m : media) {
    const std::size_t n = m->merged.size();
    ASSERT_EQ(n % static_cast<std::size_t>(d), 0u);
    expect_close(std::span(enc.merged).subspan(offset, n), m->merged, label + " " + m->name + " merged");
    ASSERT_EQ(enc.deepstack.size(), m->deepstack.size()) << m->name;
    for (std::size_t j = 0; j < m->deepstack.size(); ++j) {
      expect_close(std::span(enc.deepstack[j]).subspan(offset, n), m->deepstack[j],
                   label + " " + m->name + " deepstack " + std::to_string(j));
    }
    offset += n;
  }
}

class VisionGoldens : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string preset = GetParam();
    const GoldenSet set = GoldenSet::open();
    // The goldens are only meaningful for the exact checkpoint they were made from.
    const std::string expected =
        set.manifest().at("checkpoints").at(preset).at("files_sha256").at("model.safetensors");
    const auto weights = q3vl::testing::checkpoint_dir(preset.c_str()) / "model.safetensors";
    ASSERT_EQ(core::sha256_file_hex(weights), expected)
        << weights << " is not the checkpoint the goldens were made from; regenerate one of them";
    pv_ = &preset_vision(preset);
    const std::int64_t merge = pv_->config.vision.spatial_merge_size;
    std::vector<std::string> names = set.case_names();
    if (set.manifest().at("configs").contains(preset)) {
      names = set.manifest().at("configs").at(preset).at("vision_cases").get<std::vector<std::string>>();
    }
    for (const std::string& name : names) {
      std::vector<Medium> media = case_media(set.load_case(name), preset, merge);
      if (!media.empty()) cases_.push_back(std::move(media));
    }
    ASSERT_FALSE(cases_.empty());
  }

  PresetVision* pv_ = nullptr;
  std::vector<std::vector<Medium>> cases_;  // media per golden case
};

TEST_P(VisionGoldens, EachMediumAlone) {
  int videos = 0;
  for (const auto& media : cases_) {
    for (const Medium& m : media) {
      videos += m.grid.t > 1;
      expect_request_matches(*pv_, {&m}, "alone");
    }
  }
  EXPECT_GE(videos, 1) << "no video in the goldens";
}

TEST_P(VisionGoldens, AllMediaOfACaseInOneRequest) {
  for (const auto& media : cases_) {
    std::vector<const Medium*> request;
    for (const Medium& m : media) request.push_back(&m);
    expect_request_matches(*pv_, request, "case");
  }
}

TEST_P(VisionGoldens, EveryGoldenMediumInOneRequest) {
  std::vector<const Medium*> request;
  std::set<std::pair<std::int64_t, std::int64_t>> sizes;
  for (const auto& media : cases_) {
    for (const Medium& m : media) {
      request.push_back(&m);
      sizes.insert({m.grid.h, m.grid.w});
    }
  }
  EXPECT_GE(sizes.size(), 3u) << "the request should mix several sizes";
  expect_request_matches(*pv_, request, "all");
}

std::string preset_test_name(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}
INSTANTIATE_TEST_SUITE_P(Presets, VisionGoldens, ::testing::Values("tiny", "tiny-untied", "custom"),
                         preset_test_name);

}  // namespace
}  // namespace q3vl::builder
