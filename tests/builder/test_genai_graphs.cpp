// The graphs and config of `q3vl build --target ort-genai` (builder/genai_*.h) against
// q3vl's own graphs, which the golden suites check against HF:
//   vision:    GenAI's graph (grid tables computed in the graph from image_grid_thw) vs
//              vision.onnx fed the host tables (vision/grid_tables.h): merged tokens and
//              every DeepStack column block, relative max error <= 1e-5 (the only
//              difference is ORT's float cos/sin vs the host's double-rounded ones);
//   embedding: the scatter vs a hand-built expectation (table rows, zeros, features in order), exact;
//   decoder:   DeepstackInput::packed vs separate on the same inputs, logits and cache
//              within 1e-6 (the same math, the taps sliced instead of gathered);
//   config:    genai_config.json / processor_config.json values vs config.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "builder/embed_graph.h"
#include "builder/genai_config.h"
#include "builder/genai_embed_graph.h"
#include "builder/genai_vision_graph.h"
#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "builder/weight_reader.h"
#include "decoder_runner.h"
#include "io/safetensors.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "support/test_paths.h"
#include "vision/grid_tables.h"

namespace q3vl::testing {
namespace {

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

// Runs one GenAI vision graph call and the q3vl vision graph on the same pixels.
void check_vision(const char* preset, std::int64_t h, std::int64_t w) {
  SCOPED_TRACE(std::string(preset) + " grid 1x" + std::to_string(h) + "x" + std::to_string(w));
  const auto path = checkpoint_dir(preset);
  const ModelConfig config = load_model_config(path);
  const VisionConfig& v = config.vision;
  const auto dir = fresh_dir(std::string("genai-vision-") + preset);
  const auto checkpoint = io::Checkpoint::open(path);
  {
    builder::Graph g("vision", dir / "vision.onnx.data");
    builder::write_vision_graph(g, checkpoint, config);
    g.save(dir / "vision.onnx");
    builder::Graph genai("genai_vision", dir / "genai_vision.onnx.data");
    builder::write_genai_vision_graph(genai, checkpoint, config, {}, true);
    genai.save(dir / "genai_vision.onnx");
  }
  const std::int64_t L = h * w, P = v.patch_input_size(), D = v.out_hidden_size;
  const auto K = static_cast<std::int64_t>(v.deepstack_visual_indexes.size());
  const std::vector<float> pixels = random_floats(static_cast<std::size_t>(L * P), 11, 1.0f);

  const auto params = vision::GridTableParams::from_config(v);
  const auto taps = vision::compute_pos_embed_taps(h, w, params);
  const auto rotary = vision::compute_vision_rotary(h, w, params);
  HostF32 px{pixels, {1, L, P}};
  HostI64 idx{taps.indices, {L, 4}};
  HostF32 wts{taps.weights, {L, 4}};
  HostF32 cos{rotary.cos, {L, rotary.head_dim}};
  HostF32 sin{rotary.sin, {L, rotary.head_dim}};
  std::vector<Ort::Value> in;
  in.push_back(to_ort(px));
  in.push_back(to_ort(idx));
  in.push_back(to_ort(wts));
  in.push_back(to_ort(cos));
  in.push_back(to_ort(sin));
  runtime::OrtSession q3vl_session("vision", dir / "vision.onnx");
  auto ref = q3vl_session.run({builder::kVisionPixelValues, builder::kVisionPosEmbedIndices,
                               builder::kVisionPosEmbedWeights, builder::kVisionRotaryCos, builder::kVisionRotarySin},
                              in, {builder::kVisionMergedTokens, builder::kVisionDeepstackFeatures});
  const HostF32 merged = to_host(ref[0]), deepstack = to_host(ref[1]);

  HostF32 flat{pixels, {L, P}};
  HostI64 grid{{1, h, w}, {1, 3}};
  std::vector<Ort::Value> genai_in;
  genai_in.push_back(to_ort(flat));
  genai_in.push_back(to_ort(grid));
  runtime::OrtSession genai_session("genai_vision", dir / "genai_vision.onnx");
  const HostF32 features = to_host(genai_session.run({builder::kGenaiPixelValues, builder::kGenaiImageGridThw},
                                                     genai_in, {builder::kGenaiImageFeatures})[0]);
  const std::int64_t tokens = L / (v.spatial_merge_size * v.spatial_merge_size);
  ASSERT_EQ(features.shape, (std::vector<std::int64_t>{tokens, D * (1 + K)}));
  for (std::int64_t block = 0; block <= K; ++block) {
    const std::vector<float>& want = block == 0 ? merged.data : deepstack.data;
    const std::int64_t offset = block == 0 ? 0 : (block - 1) * tokens * D;
    const double scale = max_abs(want);
    double worst = 0;
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (std::int64_t d = 0; d < D; ++d) {
        const double got = features.data[static_cast<std::size_t>(t * D * (1 + K) + block * D + d)];
        worst = std::max(worst, std::abs(got - want[static_cast<std::size_t>(offset + t * D + d)]));
      }
    }
    EXPECT_LE(worst, 1e-5 * scale) << "column block " << block << " (0 = merger)";
  }
}

TEST(GenaiVisionGraph, InGraphGridTablesGiveTheQ3vlVisionOutputs) {
  check_vision("tiny", 4, 6);
  check_vision("tiny", 8, 2);
  check_vision("custom", 6, 4);
}

// At int8, q3vl's vision graph multiplies qkv with q3vl.Bf16Linear (one per block); the
// GenAI one must not use the "q3vl" domain (ONNX Runtime GenAI does not register it).
TEST(GenaiVisionGraph, Int8KeepsQkvOffQ3vlOps) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  const auto dir = fresh_dir("genai-vision-int8");
  const auto checkpoint = io::Checkpoint::open(path);
  const builder::VisionGraphOptions int8{builder::VisionPrecision::int8};
  builder::Graph g("vision", dir / "vision.onnx.data");
  builder::write_vision_graph(g, checkpoint, config, int8);
  g.save(dir / "vision.onnx");
  builder::Graph genai("genai_vision", dir / "genai_vision.onnx.data");
  builder::write_genai_vision_graph(genai, checkpoint, config, int8, true);
  genai.save(dir / "genai_vision.onnx");
  auto count = [](const std::filesystem::path& file, const std::string& what) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t n = 0;
    for (auto at = bytes.find(what); at != std::string::npos; at = bytes.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_GE(count(dir / "vision.onnx", "Bf16Linear"), static_cast<std::size_t>(config.vision.depth));
  EXPECT_EQ(count(dir / "genai_vision.onnx", "Bf16Linear"), 0u);
  EXPECT_EQ(count(dir / "genai_vision.onnx", "QuantLinear"), 0u);
}

TEST(GenaiEmbedGraph, ScattersImageFeaturesInOrderAndZeroPadsTextRows) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  const std::int64_t H = config.text.hidden_size, W = 3 * H;
  const auto dir = fresh_dir("genai-embed");
  {
    const auto checkpoint = io::Checkpoint::open(path);
    builder::WeightReader reader(checkpoint, Progress::silent());
    builder::Graph g("embed", dir / "embed.onnx.data");
    builder::write_genai_embed_graph(g, reader, config, builder::WeightPrecision::fp32, W);
    g.save(dir / "embed.onnx");
  }
  const auto table = io::Checkpoint::open(path).tensor("model.language_model.embed_tokens.weight").to_f32();
  runtime::OrtSession session("embed", dir / "embed.onnx");
  const std::int64_t image = config.image_token_id;
  for (std::int64_t images : {3, 0}) {
    SCOPED_TRACE(std::to_string(images) + " image tokens");
    const std::vector<std::int64_t> ids = images > 0 ? std::vector<std::int64_t>{151644, 872, image, image, 198, image, 11}
                                                     : std::vector<std::int64_t>{151644, 872, 198, 11};
    HostI64 in_ids{ids, {1, static_cast<std::int64_t>(ids.size())}};
    HostF32 features{random_floats(static_cast<std::size_t>(images * W), 5, 1.0f), {images, W}};
    std::vector<Ort::Value> in;
    in.push_back(to_ort(in_ids));
    in.push_back(to_ort(features));
    const HostF32 out = to_host(
        session.run({builder::kEmbedInputIds, builder::kGenaiImageFeaturesInput}, in, {builder::kEmbedInputsEmbeds})[0]);
    ASSERT_EQ(out.shape, (std::vector<std::int64_t>{1, static_cast<std::int64_t>(ids.size()), W}));
    std::int64_t next_feature = 0;
    for (std::size_t r = 0; r < ids.size(); ++r) {
      for (std::int64_t d = 0; d < W; ++d) {
        const float got = out.data[r * static_cast<std::size_t>(W) + static_cast<std::size_t>(d)];
        const float want = ids[r] == image ? features.data[static_cast<std::size_t>(next_feature * W + d)]
                           : d < H        ? table[static_cast<std::size_t>(ids[r] * H + d)]
                                          : 0.0f;
        ASSERT_EQ(got, want) << "position " << r << " column " << d;
      }
      if (ids[r] == image) ++next_feature;
    }
  }
}

TEST(GenaiDecoderGraph, PackedDeepstackColumnsEqualTheSeparateInput) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  const std::int64_t D = config.text.hidden_size, T = 5;
  const auto K = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  ASSERT_GT(K, 0);
  builder::DecoderGraphOptions separate;
  separate.logits = builder::LogitsMode::all;
  builder::DecoderGraphOptions packed = separate;
  packed.deepstack = builder::DeepstackInput::packed;
  DecoderRunner a(path, fresh_dir("genai-decoder-separate"), config, separate);
  DecoderRunner b(path, fresh_dir("genai-decoder-packed"), config, packed);
  const auto embeds = random_floats(static_cast<std::size_t>(T * D), 3, 0.05f);
  auto deepstack = random_floats(static_cast<std::size_t>(K * T * D), 4, 0.05f);
  for (std::int64_t k = 0; k < K; ++k) {  // text positions 0 and 4 carry no DeepStack
    std::fill_n(deepstack.begin() + (k * T) * D, D, 0.0f);
    std::fill_n(deepstack.begin() + (k * T + 4) * D, D, 0.0f);
  }
  std::vector<std::int64_t> positions;
  for (std::int64_t axis = 0; axis < 3; ++axis) {
    for (std::int64_t t = 0; t < T; ++t) positions.push_back(t + axis * (t % 2));
  }
  const DecoderStep want = a.run(1, T, embeds, positions, deepstack, {});
  const DecoderStep got = b.run(1, T, embeds, positions, deepstack, {});
  ASSERT_EQ(got.logits.shape, want.logits.shape);
  const double scale = max_abs(want.logits.data);
  for (std::size_t i = 0; i < want.logits.data.size(); ++i) {
    ASSERT_NEAR(got.logits.data[i], want.logits.data[i], 1e-6 * scale) << "logit " << i;
  }
  ASSERT_EQ(got.present.size(), want.present.size());
  for (std::size_t i = 0; i < want.present.size(); ++i) {
    for (std::size_t j = 0; j < want.present[i].data.size(); ++j) {
      ASSERT_NEAR(got.present[i].data[j], want.present[i].data[j], 1e-6) << "present " << i;
    }
  }
}

TEST(GenaiConfig, DecoderHiddenSizeIsThePackedWidthAndTheRestFollowsConfigJson) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  TokenIds tokens;
  tokens.eos_token_ids = {151645, 151643};
  tokens.pad_token_id = 151643;
  const auto K = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  const std::int64_t H = config.text.hidden_size;

  builder::GenaiConfigOptions options;
  const io::Json with = builder::genai_config_json(config, tokens, options);
  const io::Json& model = with["model"];
  EXPECT_EQ(model["type"], "qwen3_vl");
  EXPECT_EQ(model["decoder"]["hidden_size"], H * (1 + K));
  EXPECT_EQ(model["decoder"]["head_size"], config.text.head_dim);
  EXPECT_EQ(model["decoder"]["num_hidden_layers"], config.text.num_hidden_layers);
  EXPECT_EQ(model["decoder"]["num_key_value_heads"], config.text.num_key_value_heads);
  EXPECT_EQ(model["decoder"]["num_attention_heads"], config.text.num_attention_heads);
  EXPECT_EQ(model["decoder"]["inputs"]["past_key_names"], "past_key_values.%d.key");
  EXPECT_EQ(model["decoder"]["outputs"]["present_value_names"], "present.%d.value");
  EXPECT_EQ(model["vision"]["inputs"]["image_grid_thw"], "image_grid_thw");
  EXPECT_EQ(model["vision"]["patch_size"], config.vision.patch_size);
  EXPECT_EQ(model["vision"]["spatial_merge_size"], config.vision.spatial_merge_size);
  EXPECT_EQ(model["vision"]["config_filename"], "processor_config.json");
  EXPECT_EQ(model["embedding"]["inputs"]["image_features"], "image_features");
  EXPECT_EQ(model["image_token_id"], config.image_token_id);
  EXPECT_EQ(model["vision_start_token_id"], config.vision_start_token_id);
  EXPECT_EQ(model["eos_token_id"], io::Json({151645, 151643}));
  EXPECT_EQ(model["pad_token_id"], 151643);
  EXPECT_EQ(model["vocab_size"], config.text.vocab_size);
  EXPECT_EQ(model["context_length"], config.text.max_position_embeddings);
  EXPECT_EQ(with["search"]["max_length"],
            std::min(builder::kGenaiDefaultMaxLength, config.text.max_position_embeddings));
  EXPECT_EQ(with["search"]["past_present_share_buffer"], true);
  EXPECT_FALSE(model.contains("bos_token_id"));

  options.deepstack = false;
  options.max_length = config.text.max_position_embeddings + 1;
  options.bos_token_id = 151643;
  const io::Json without = builder::genai_config_json(config, tokens, options);
  EXPECT_EQ(without["model"]["decoder"]["hidden_size"], H);
  EXPECT_EQ(without["search"]["max_length"], config.text.max_position_embeddings);  // capped
  EXPECT_EQ(without["model"]["bos_token_id"], 151643);
}

TEST(GenaiConfig, RejectsWhatGenaiCannotExpress) {
  ModelConfig config = load_model_config(checkpoint_dir("tiny"));
  TokenIds none;
  try {
    builder::genai_config_json(config, none, {});
    FAIL() << "no eos accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("eos_token_id"), std::string::npos) << e.what();
  }
  TokenIds tokens;
  tokens.eos_token_ids = {151645};
  config.vision.out_hidden_size += 1;
  try {
    builder::genai_config_json(config, tokens, {});
    FAIL() << "out_hidden_size != hidden_size accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vision_config.out_hidden_size"), std::string::npos) << e.what();
  }
}

TEST(GenaiConfig, ProcessorConfigCarriesTheCheckpointsPixelBoundsAndNormalisation) {
  const auto path = checkpoint_dir("tiny");
  const ModelConfig config = load_model_config(path);
  const ImageProcessorConfig image = load_processor_config(path).image;
  const io::Json j = builder::genai_processor_json(config, image);
  const io::Json& transforms = j["processor"]["transforms"];
  ASSERT_EQ(transforms.size(), 6u);
  const io::Json& resize = transforms[2]["operation"];
  EXPECT_EQ(resize["type"], "Resize");
  EXPECT_EQ(resize["attrs"]["min_pixels"], image.min_pixels);
  EXPECT_EQ(resize["attrs"]["max_pixels"], image.max_pixels);
  EXPECT_EQ(resize["attrs"]["patch_size"], config.vision.patch_size);
  EXPECT_EQ(resize["attrs"]["interpolation"], "CUBIC");
  const io::Json& normalize = transforms[4]["operation"]["attrs"];
  EXPECT_EQ(normalize["mean"], io::Json(image.image_mean));
  EXPECT_EQ(normalize["std"], io::Json(image.image_std));
  const io::Json& patch = transforms[5]["operation"]["attrs"];
  EXPECT_EQ(patch["temporal_patch_size"], config.vision.temporal_patch_size);
  EXPECT_EQ(patch["merge_size"], config.vision.spatial_merge_size);
}

}  // namespace
}  // namespace q3vl::testing
