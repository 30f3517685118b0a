// The committed HF goldens (tests/goldens/model/) load and agree with themselves:
// every relation checked here is one HF's own code guarantees (token counts from
// grids, the visual scatter, greedy = argmax), so a truncated, stale or mixed-up
// golden file fails here before it can mislead a numerical test elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "q3vl/error.h"
#include "support/golden.h"

namespace q3vl::testing {
namespace {

// Ids of the real Qwen3 tokenizer (docs/reference/hf-reference-facts.md).
constexpr std::int64_t kImagePad = 151655;
constexpr std::int64_t kVideoPad = 151656;
constexpr std::int64_t kSpatialMerge = 2;
// sha256 of the official Qwen3-VL Instruct chat template (published by Qwen; not committed).
constexpr const char* kTemplateSha256 =
    "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4";

// The case list is fixed here (not read from the manifest) so that test discovery
// never touches the files; ManifestRecordsTheReference checks the manifest agrees.
const std::vector<std::string> kCases = {
    "image_small", "image_half_even", "image_wide", "image_odd", "two_images",
    "video",       "text_only",       "two_turn",   "image_rgba", "image_palette"};

const GoldenSet& goldens() {
  static const GoldenSet set = GoldenSet::open();
  return set;
}

std::int64_t sum_thw(const GoldenI64& grids) {
  std::int64_t total = 0;
  for (std::int64_t i = 0; i < grids.dim(0); ++i) {
    total += grids.values[3 * i] * grids.values[3 * i + 1] * grids.values[3 * i + 2];
  }
  return total;
}

GoldenI64 grids_or_empty(const GoldenCase& c, const std::string& name) {
  if (c.has_input(name)) return c.input_i64(name);
  return GoldenI64{{0, 3}, {}};
}

std::int64_t count_id(const GoldenI64& ids, std::int64_t id) {
  return std::count(ids.values.begin(), ids.values.end(), id);
}

std::int64_t count_substr(const std::string& text, const std::string& needle) {
  std::int64_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::int64_t vocab_size(const std::string& preset) {
  return goldens().manifest().at("checkpoints").at(preset).at("config").at("vocab_size").get<std::int64_t>();
}

std::int64_t deepstack_count(const std::string& preset) {
  return static_cast<std::int64_t>(goldens()
                                       .manifest()
                                       .at("checkpoints")
                                       .at(preset)
                                       .at("config")
                                       .at("deepstack_visual_indexes")
                                       .size());
}

TEST(Goldens, ManifestRecordsTheReference) {
  const auto& m = goldens().manifest();
  EXPECT_EQ(m.at("template").at("sha256").get<std::string>(), kTemplateSha256);
  EXPECT_EQ(goldens().presets(), (std::vector<std::string>{"tiny", "tiny-untied"}));
  EXPECT_EQ(m.at("libraries").at("transformers").get<std::string>(), "5.23.0");
  for (const char* lib : {"python", "torch", "torchvision", "tokenizers", "numpy", "av"}) {
    EXPECT_FALSE(m.at("libraries").at(lib).get<std::string>().empty()) << lib;
  }
  EXPECT_EQ(m.at("dtype").get<std::string>(), "float32");
  EXPECT_EQ(m.at("attn_implementation").get<std::string>(), "eager");
  EXPECT_EQ(m.at("greedy_steps").get<int>(), 32);
  for (const auto& preset : goldens().presets()) {
    const auto& files = m.at("checkpoints").at(preset).at("files_sha256");
    EXPECT_TRUE(files.contains("config.json")) << preset;
    for (const auto& [file, sha] : files.items()) {
      EXPECT_EQ(sha.get<std::string>().size(), 64u) << preset << " " << file;
    }
  }
  EXPECT_EQ(goldens().case_names(), kCases);
}

TEST(Goldens, PixelCodesDecodeLikeHf) {
  // (u8 - 127.5) / 127.5 in float32: the extremes are exactly -1 and 1.
  const GoldenCase c = goldens().load_case("image_small");
  const std::vector<std::uint8_t> codes = c.pixel_codes(c.image_files().at(0));
  const GoldenF32 pixels = c.pixel_values();
  ASSERT_EQ(static_cast<std::int64_t>(codes.size()), pixels.numel());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] == 0) {
      ASSERT_EQ(pixels.values[i], -1.0f) << i;
    }
    if (codes[i] == 255) {
      ASSERT_EQ(pixels.values[i], 1.0f) << i;
    }
    ASSERT_GE(pixels.values[i], -1.0f);
    ASSERT_LE(pixels.values[i], 1.0f);
  }
  // Structured pictures use most of the code range, not a constant.
  const auto [lo, hi] = std::minmax_element(codes.begin(), codes.end());
  EXPECT_LT(*lo, 40);
  EXPECT_GT(*hi, 200);
}

class GoldenCaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  GoldenCase c = goldens().load_case(GetParam());
};

TEST_P(GoldenCaseTest, ProcessorOutputsAgreeWithGrids) {
  const GoldenI64 ids = c.input_i64("input_ids");
  ASSERT_EQ(ids.shape.size(), 2u);
  ASSERT_EQ(ids.dim(0), 1);
  const std::int64_t seq = ids.dim(1);
  const GoldenI64 mask = c.input_i64("attention_mask");
  EXPECT_EQ(mask.shape, ids.shape);
  EXPECT_EQ(count_id(mask, 1), seq);  // one unpadded request

  const GoldenI64 images = grids_or_empty(c, "image_grid_thw");
  const GoldenI64 videos = grids_or_empty(c, "video_grid_thw");
  EXPECT_EQ(images.dim(0), static_cast<std::int64_t>(c.image_files().size()));
  EXPECT_EQ(videos.dim(0), static_cast<std::int64_t>(c.video_files().size()));

  const GoldenF32 pixels = c.pixel_values();
  const GoldenF32 video_pixels = c.video_pixel_values();
  EXPECT_EQ(pixels.dim(0), sum_thw(images));
  EXPECT_EQ(video_pixels.dim(0), sum_thw(videos));
  EXPECT_EQ(pixels.numel(), pixels.dim(0) * kGoldenPatchValues);

  const std::int64_t merge = kSpatialMerge * kSpatialMerge;
  EXPECT_EQ(count_id(ids, kImagePad), sum_thw(images) / merge);
  EXPECT_EQ(count_id(ids, kVideoPad), sum_thw(videos) / merge);

  // mm_token_type_ids: 1 exactly at image pads, 2 at video pads (what get_rope_index groups by).
  const GoldenI64 types = c.input_i64("mm_token_type_ids");
  ASSERT_EQ(types.shape, ids.shape);
  for (std::int64_t i = 0; i < seq; ++i) {
    const std::int64_t want = ids.values[i] == kImagePad ? 1 : ids.values[i] == kVideoPad ? 2 : 0;
    ASSERT_EQ(types.values[i], want) << "position " << i;
  }

  // Each medium's stored grid is its row of the request's grid table.
  for (std::size_t i = 0; i < c.image_files().size(); ++i) {
    const GoldenI64 grid = c.media_grid_thw(c.image_files()[i]);
    EXPECT_EQ(grid.shape, (std::vector<std::int64_t>{1, 3}));
    EXPECT_EQ(grid.values, std::vector<std::int64_t>(images.values.begin() + 3 * i,
                                                     images.values.begin() + 3 * i + 3));
  }

  // The template emits one placeholder per medium; the processor expands it.
  EXPECT_EQ(count_substr(c.prompt(), "<|image_pad|>"), images.dim(0));
  EXPECT_EQ(count_substr(c.prompt(), "<|video_pad|>"), videos.dim(0));
  EXPECT_TRUE(c.prompt().ends_with("<|im_start|>assistant\n"));
  // The expanded text has one pad per merged token and one "<t seconds>" marker per
  // temporal patch of each video.
  const std::string expanded = c.json().at("prompt_expanded").get<std::string>();
  EXPECT_EQ(count_substr(expanded, "<|image_pad|>"), sum_thw(images) / merge);
  EXPECT_EQ(count_substr(expanded, "<|video_pad|>"), sum_thw(videos) / merge);
  std::int64_t frames = 0;
  for (std::int64_t i = 0; i < videos.dim(0); ++i) frames += videos.values[3 * i];
  EXPECT_EQ(count_substr(expanded, " seconds><|vision_start|>"), frames);
}

TEST_P(GoldenCaseTest, MessagesNameTheCommittedMedia) {
  // The OpenAI-shape messages (what the runtime replays) and the HF-shape messages
  // (what was rendered) name the same files, in the order pixel_values stacks them,
  // and each file is the one whose hash the manifest recorded.
  std::vector<std::string> images, videos, hf_images, hf_videos;
  for (const auto& message : c.json().at("messages")) {
    if (message.at("content").is_string()) continue;
    for (const auto& part : message.at("content")) {
      const std::string type = part.at("type").get<std::string>();
      if (type == "image_url") images.push_back(part.at("image_url").at("url").get<std::string>());
      if (type == "video_url") videos.push_back(part.at("video_url").at("url").get<std::string>());
    }
  }
  for (const auto& message : c.json().at("hf_messages")) {
    if (message.at("content").is_string()) continue;
    for (const auto& part : message.at("content")) {
      const std::string type = part.at("type").get<std::string>();
      if (type == "image") hf_images.push_back(part.at("path").get<std::string>());
      if (type == "video") hf_videos.push_back(part.at("path").get<std::string>());
    }
  }
  EXPECT_EQ(images, c.image_files());
  EXPECT_EQ(videos, c.video_files());
  EXPECT_EQ(hf_images, images);
  EXPECT_EQ(hf_videos, videos);
  const auto& hashes = goldens().manifest().at("media");
  for (const auto& files : {images, videos}) {
    for (const std::string& file : files) {
      EXPECT_EQ(core::sha256_file_hex(goldens().dir() / file), hashes.at(file).get<std::string>())
          << file;
    }
  }
  // HF samples an even number of frames per temporal patch (padding an odd count
  // with the last frame): t = ceil(sampled / 2).
  const auto& sampling = c.json().at("video_sampling");
  ASSERT_EQ(sampling.size(), videos.size());
  const GoldenI64 video_grids = grids_or_empty(c, "video_grid_thw");
  for (std::size_t i = 0; i < sampling.size(); ++i) {
    const auto sampled = static_cast<std::int64_t>(sampling[i].at("frames_indices").size());
    EXPECT_EQ(video_grids.values[3 * i], (sampled + 1) / 2) << videos[i];
  }
}

TEST_P(GoldenCaseTest, PositionIdsHaveHfShapeAndDelta) {
  const std::int64_t seq = c.input_i64("input_ids").dim(1);
  for (const auto& preset : goldens().presets()) {
    const GoldenI64 pos = c.model_i64(preset, "position_ids");
    ASSERT_EQ(pos.shape, (std::vector<std::int64_t>{3, 1, seq})) << preset;
    const GoldenI64 delta = c.model_i64(preset, "rope_deltas");
    ASSERT_EQ(delta.shape, (std::vector<std::int64_t>{1, 1})) << preset;
    // HF: rope delta = max position + 1 - sequence length.
    const std::int64_t max_pos = *std::max_element(pos.values.begin(), pos.values.end());
    EXPECT_EQ(delta.values[0], max_pos + 1 - seq) << preset;
    // Positions start at 0, and the last token (text) has all three rows equal.
    EXPECT_EQ(pos.values[0], 0);
    EXPECT_EQ(pos.values[seq - 1], pos.values[2 * seq - 1]);
    EXPECT_EQ(pos.values[seq - 1], pos.values[3 * seq - 1]);
    if (c.image_files().empty() && c.video_files().empty()) {
      EXPECT_EQ(delta.values[0], 0) << "text-only positions are 0..T-1";
    } else {
      EXPECT_LT(delta.values[0], 0) << "merged vision tokens compress positions";
    }
  }
}

// Rows of inputs_embeds at the pad positions of `pad_id`, in order.
std::vector<float> rows_at(const GoldenF32& embeds, const GoldenI64& ids, std::int64_t pad_id) {
  const std::int64_t d = embeds.dim(-1);
  std::vector<float> out;
  for (std::int64_t i = 0; i < ids.numel(); ++i) {
    if (ids.values[i] != pad_id) continue;
    out.insert(out.end(), embeds.values.begin() + i * d, embeds.values.begin() + (i + 1) * d);
  }
  return out;
}

TEST_P(GoldenCaseTest, VisionTokensAreScatteredIntoInputsEmbeds) {
  const GoldenI64 ids = c.input_i64("input_ids");
  for (const auto& preset : goldens().presets()) {
    const GoldenF32 embeds = c.model_f32(preset, "inputs_embeds");
    ASSERT_EQ(embeds.shape.size(), 3u);
    EXPECT_EQ(embeds.dim(0), 1);
    EXPECT_EQ(embeds.dim(1), ids.dim(1));
    const std::int64_t d = embeds.dim(2);
    struct Kind { const char* prefix; std::int64_t pad; bool present; };
    for (const Kind& kind : {Kind{"image", kImagePad, !c.image_files().empty()},
                             Kind{"video", kVideoPad, !c.video_files().empty()}}) {
      const std::string merged_name = std::string(kind.prefix) + "_embeds";
      const std::string deep_name = std::string(kind.prefix) + "_deepstack";
      ASSERT_EQ(c.has_model(preset, merged_name), kind.present) << preset << " " << merged_name;
      ASSERT_EQ(c.has_model(preset, deep_name), kind.present) << preset << " " << deep_name;
      if (!kind.present) continue;
      const GoldenF32 merged = c.model_f32(preset, merged_name);
      const std::int64_t tokens = count_id(ids, kind.pad);
      ASSERT_EQ(merged.shape, (std::vector<std::int64_t>{tokens, d})) << preset;
      const GoldenF32 deep = c.model_f32(preset, deep_name);
      EXPECT_EQ(deep.shape, (std::vector<std::int64_t>{deepstack_count(preset), tokens, d}))
          << preset;
      // HF's masked_scatter copies the merged tokens, bit for bit, to the pad positions.
      EXPECT_EQ(rows_at(embeds, ids, kind.pad), merged.values) << preset << " " << kind.prefix;
    }
  }
}

TEST_P(GoldenCaseTest, GreedyContinuationFollowsTheLogits) {
  for (const auto& preset : goldens().presets()) {
    const GoldenF32 logits = c.model_f32(preset, "prefill_logits");
    ASSERT_EQ(logits.shape, (std::vector<std::int64_t>{vocab_size(preset)})) << preset;
    const GoldenI64 greedy = c.model_i64(preset, "greedy_ids");
    const GoldenF32 margin = c.model_f32(preset, "greedy_margin");
    const GoldenF32 max_abs = c.model_f32(preset, "greedy_max_abs_logit");
    ASSERT_EQ(greedy.shape, (std::vector<std::int64_t>{32})) << preset;
    ASSERT_EQ(margin.shape, greedy.shape);
    ASSERT_EQ(max_abs.shape, greedy.shape);

    // Step 0 is decided by the prefill logits: argmax, top-1 - top-2, max |logit|.
    std::vector<float> sorted = logits.values;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    const auto top = std::max_element(logits.values.begin(), logits.values.end());
    EXPECT_EQ(top - logits.values.begin(), greedy.values[0]) << preset;
    EXPECT_EQ(sorted[0] - sorted[1], margin.values[0]) << preset;
    float largest = 0.0f;
    for (float v : logits.values) largest = std::max(largest, std::fabs(v));
    EXPECT_EQ(largest, max_abs.values[0]) << preset;

    for (std::int64_t step = 0; step < 32; ++step) {
      EXPECT_GE(margin.values[step], 0.0f) << preset << " step " << step;
      EXPECT_GE(max_abs.values[step], margin.values[step]) << preset << " step " << step;
      EXPECT_GE(greedy.values[step], 0);
      EXPECT_LT(greedy.values[step], vocab_size(preset));
    }
    // Random weights that behave give sane logits (hf-reference-facts: top logits ~14-18).
    EXPECT_GT(max_abs.values[0], 1.0f) << preset;
    EXPECT_LT(max_abs.values[0], 100.0f) << preset;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, GoldenCaseTest, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return param_info.param; });

TEST(Goldens, TwoImagesAloneMatchTheBatchedRequest) {
  // Vision attention never crosses images (HF's cu_seqlens), so each image run alone
  // gives its slice of the request's merged tokens and DeepStack features, up to
  // float32 summation order.
  const GoldenCase c = goldens().load_case("two_images");
  const GoldenI64 grids = c.input_i64("image_grid_thw");
  ASSERT_EQ(grids.dim(0), 2);
  for (const auto& preset : goldens().presets()) {
    const GoldenF32 merged = c.model_f32(preset, "image_embeds");
    const GoldenF32 deep = c.model_f32(preset, "image_deepstack");
    const std::int64_t d = merged.dim(1), total = merged.dim(0), k = deep.dim(0);
    std::int64_t start = 0;
    for (int i = 0; i < 2; ++i) {
      const std::int64_t rows = grids.values[3 * i] * grids.values[3 * i + 1] *
                                grids.values[3 * i + 2] / (kSpatialMerge * kSpatialMerge);
      const std::string prefix = "image." + std::to_string(i);
      const GoldenF32 alone = c.model_f32(preset, prefix + ".embeds");
      const GoldenF32 alone_deep = c.model_f32(preset, prefix + ".deepstack");
      ASSERT_EQ(alone.shape, (std::vector<std::int64_t>{rows, d})) << preset << " " << prefix;
      ASSERT_EQ(alone_deep.shape, (std::vector<std::int64_t>{k, rows, d})) << preset;
      float worst = 0.0f;
      for (std::int64_t r = 0; r < rows * d; ++r) {
        worst = std::max(worst, std::fabs(alone.values[r] - merged.values[start * d + r]));
      }
      for (std::int64_t j = 0; j < k; ++j) {
        for (std::int64_t r = 0; r < rows * d; ++r) {
          worst = std::max(worst, std::fabs(alone_deep.values[j * rows * d + r] -
                                            deep.values[(j * total + start) * d + r]));
        }
      }
      EXPECT_LE(worst, 1e-4f) << preset << " " << prefix;
      start += rows;
    }
    EXPECT_EQ(start, total);
  }
}

TEST(Goldens, ComparableGreedyStepsStopAtTheFirstNearTie) {
  const GoldenF32 margins{{5}, {0.5f, 0.3f, 0.01f, 0.9f, 0.0f}};
  EXPECT_EQ(comparable_greedy_steps(margins, 0.001f), 4);  // 0.0 is a tie at any error
  EXPECT_EQ(comparable_greedy_steps(margins, 0.005f), 2);  // 0.01 <= 2 * 0.005
  EXPECT_EQ(comparable_greedy_steps(margins, 0.2f), 1);
  EXPECT_EQ(comparable_greedy_steps(margins, 1.0f), 0);
  const GoldenF32 clear{{3}, {1.0f, 1.0f, 1.0f}};
  EXPECT_EQ(comparable_greedy_steps(clear, 0.1f), 3);
}

TEST(Goldens, MissingTensorIsAnErrorNamingIt) {
  const GoldenCase c = goldens().load_case("text_only");
  EXPECT_FALSE(c.has_input("image_grid_thw"));
  try {
    c.input_i64("image_grid_thw");
    FAIL() << "expected q3vl::Error";
  } catch (const q3vl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("image_grid_thw"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace q3vl::testing
