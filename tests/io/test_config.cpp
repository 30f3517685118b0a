// q3vl/config.h: both config.json layouts, HF's defaults, round trips, and one
// error per validation rule naming the file and the dotted field.
//
// kHub2B is the Qwen3-VL-2B-Instruct config.json in the Hub's (transformers 4.57)
// layout, values from docs/reference/qwen3vl.md §1. transformers5() is what transformers
// 5.23 save_pretrained wrote after loading kHub2B (Qwen3VLConfig.from_pretrained +
// save_pretrained, run once with the reference venv), written as its differences from
// kHub2B; the result was checked equal, key order included, to the file 5.23 wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "io/json_file.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "support/error_message.h"
#include "support/test_paths.h"

namespace q3vl {
namespace {

using io::Json;

constexpr const char* kHub2B = R"({
  "architectures": ["Qwen3VLForConditionalGeneration"],
  "image_token_id": 151655,
  "model_type": "qwen3_vl",
  "text_config": {
    "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
    "dtype": "bfloat16", "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
    "max_position_embeddings": 262144, "model_type": "qwen3_vl_text",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": {"mrope_interleaved": true, "mrope_section": [24, 20, 20], "rope_type": "default"},
    "rope_theta": 5000000, "tie_word_embeddings": true, "use_cache": true, "vocab_size": 151936
  },
  "tie_word_embeddings": true,
  "transformers_version": "4.57.0",
  "video_token_id": 151656,
  "vision_config": {
    "deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 1024, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4096,
    "model_type": "qwen3_vl", "num_heads": 16, "num_position_embeddings": 2304,
    "out_hidden_size": 2048, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2
  },
  "vision_end_token_id": 151653,
  "vision_start_token_id": 151652
})";

Json hub() { return Json::parse(kHub2B); }

// What 5.23 changes: rope_scaling + rope_theta become rope_parameters (theta inside),
// pad_token_id is written as null, the vision config gets its own model_type and rope
// parameters.
Json transformers5() {
  Json j = hub();
  j["transformers_version"] = "5.23.0";
  Json& text = j["text_config"];
  text["pad_token_id"] = nullptr;
  text["rope_parameters"] = text["rope_scaling"];
  text["rope_parameters"]["rope_theta"] = text["rope_theta"];
  text.erase("rope_scaling");
  text.erase("rope_theta");
  Json& vision = j["vision_config"];
  vision["model_type"] = "qwen3_vl_vision";
  vision["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "axial"}};
  return Json::parse(nlohmann::json::parse(j.dump()).dump());  // keys sorted, as HF writes them
}

ModelConfig parse(const Json& json) { return parse_model_config(json.dump(), "config.json"); }

using q3vl::testing::error_message;

TEST(Config, HubLayoutParsesToQwen3Vl2B) {
  const ModelConfig c = parse_model_config(kHub2B, "config.json");
  EXPECT_EQ(c.layout, ConfigLayout::rope_scaling);
  EXPECT_EQ(c.model_type, "qwen3_vl");
  EXPECT_EQ(c.text.vocab_size, 151936);
  EXPECT_EQ(c.text.hidden_size, 2048);
  EXPECT_EQ(c.text.intermediate_size, 6144);
  EXPECT_EQ(c.text.num_hidden_layers, 28);
  EXPECT_EQ(c.text.num_attention_heads, 16);
  EXPECT_EQ(c.text.num_key_value_heads, 8);
  EXPECT_EQ(c.text.head_dim, 128);
  EXPECT_EQ(c.text.max_position_embeddings, 262144);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 5000000.0);
  EXPECT_EQ(c.text.rope_type, "default");
  EXPECT_EQ(c.text.mrope_section, (std::array<std::int64_t, 3>{24, 20, 20}));
  EXPECT_TRUE(c.text.mrope_interleaved);
  EXPECT_EQ(c.text.hidden_act, "silu");
  EXPECT_FALSE(c.text.attention_bias);
  EXPECT_EQ(c.vision.depth, 24);
  EXPECT_EQ(c.vision.hidden_size, 1024);
  EXPECT_EQ(c.vision.intermediate_size, 4096);
  EXPECT_EQ(c.vision.num_heads, 16);
  EXPECT_EQ(c.vision.head_dim(), 64);
  EXPECT_EQ(c.vision.in_channels, 3);
  EXPECT_EQ(c.vision.patch_size, 16);
  EXPECT_EQ(c.vision.temporal_patch_size, 2);
  EXPECT_EQ(c.vision.spatial_merge_size, 2);
  EXPECT_EQ(c.vision.out_hidden_size, 2048);
  EXPECT_EQ(c.vision.num_position_embeddings, 2304);
  EXPECT_EQ(c.vision.patch_input_size(), 1536);
  EXPECT_EQ(c.vision.hidden_act, "gelu_pytorch_tanh");
  EXPECT_DOUBLE_EQ(c.vision.rope_theta, 10000.0);
  EXPECT_EQ(c.vision.deepstack_visual_indexes, (std::vector<std::int64_t>{5, 11, 17}));
  EXPECT_EQ(c.image_token_id, 151655);
  EXPECT_EQ(c.video_token_id, 151656);
  EXPECT_EQ(c.vision_start_token_id, 151652);
  EXPECT_EQ(c.vision_end_token_id, 151653);
  EXPECT_TRUE(c.tie_word_embeddings);
}

TEST(Config, BothLayoutsParseToEqualConfigs) {
  const ModelConfig hub_config = parse_model_config(kHub2B, "config.json");
  ModelConfig v5_config = parse(transformers5());
  EXPECT_EQ(v5_config.layout, ConfigLayout::rope_parameters);
  v5_config.layout = hub_config.layout;
  EXPECT_EQ(v5_config, hub_config);
}

// to_config_json writes the same JSON as the two reference files (apart from the
// version string, and the null pad_token_id 5.23 adds).
TEST(Config, WritesTheHubAndTransformers5Layouts) {
  const ModelConfig c = parse_model_config(kHub2B, "config.json");
  Json hub_written = Json::parse(to_config_json(c, ConfigLayout::rope_scaling));
  Json hub_expected = hub();
  hub_written.erase("transformers_version");
  hub_expected.erase("transformers_version");
  EXPECT_EQ(hub_written, hub_expected) << hub_written.dump(2);

  Json v5_written = Json::parse(to_config_json(c, ConfigLayout::rope_parameters));
  Json v5_expected = transformers5();
  v5_written.erase("transformers_version");
  v5_expected.erase("transformers_version");
  v5_expected["text_config"].erase("pad_token_id");
  EXPECT_EQ(v5_written, v5_expected) << v5_written.dump(2);
}

TEST(Config, RoundTripsThroughBothLayouts) {
  ModelConfig c = parse_model_config(kHub2B, "config.json");
  // Non-default values everywhere a writer could drop one.
  c.text.mrope_section = {8, 4, 4};
  c.text.head_dim = 32;
  c.text.rope_theta = 12345.5;
  c.text.rms_norm_eps = 1e-5;
  c.text.mrope_interleaved = false;
  c.vision.rope_theta = 20000.0;
  c.vision.deepstack_visual_indexes = {0, 23};
  c.tie_word_embeddings = false;
  c.image_token_id = 7;
  for (const auto layout : {ConfigLayout::rope_scaling, ConfigLayout::rope_parameters}) {
    const std::string text = to_config_json(c, layout);
    ModelConfig back = parse_model_config(text, "config.json");
    EXPECT_EQ(back.layout, layout);
    ModelConfig expected = c;
    expected.layout = layout;
    // The Hub layout has no place for the vision rope theta (4.57 hard-codes 10000).
    if (layout == ConfigLayout::rope_scaling) expected.vision.rope_theta = 10000.0;
    EXPECT_EQ(back, expected) << text;
    EXPECT_EQ(to_config_json(back, layout), text);
  }
}

TEST(Config, MissingFieldsDefaultLikeHf) {
  Json j = hub();
  auto& text = j["text_config"];
  text.erase("rope_scaling");
  text.erase("num_key_value_heads");
  text.erase("rms_norm_eps");
  text.erase("hidden_act");
  text.erase("tie_word_embeddings");
  j.erase("tie_word_embeddings");
  j.erase("image_token_id");
  auto& vision = j["vision_config"];
  for (const char* key : {"in_channels", "patch_size", "temporal_patch_size", "spatial_merge_size",
                          "num_position_embeddings", "hidden_act"}) {
    vision.erase(key);
  }
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.text.mrope_section, (std::array<std::int64_t, 3>{24, 20, 20}));
  EXPECT_EQ(c.text.rope_type, "default");
  EXPECT_EQ(c.text.num_key_value_heads, 16);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.text.hidden_act, "silu");
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.image_token_id, 151655);
  EXPECT_EQ(c.vision.patch_input_size(), 1536);
  EXPECT_EQ(c.vision.spatial_merge_size, 2);
  EXPECT_EQ(c.vision.num_position_embeddings, 2304);
}

TEST(Config, RopeDetailsFollowHf) {
  // The legacy "type" key names the rope type when "rope_type" is absent.
  Json j = hub();
  j["text_config"]["rope_scaling"].erase("rope_type");
  j["text_config"]["rope_scaling"]["type"] = "default";
  EXPECT_EQ(parse(j).text.rope_type, "default");
  // rope_theta inside rope_scaling wins over text_config.rope_theta.
  j = hub();
  j["text_config"]["rope_scaling"]["rope_theta"] = 1000000;
  EXPECT_DOUBLE_EQ(parse(j).text.rope_theta, 1000000.0);
  // A null / empty rope_scaling falls through to rope_parameters.
  j = transformers5();
  j["text_config"]["rope_scaling"] = nullptr;
  EXPECT_EQ(parse(j).layout, ConfigLayout::rope_parameters);
  j["text_config"]["rope_scaling"] = Json::object();
  EXPECT_EQ(parse(j).layout, ConfigLayout::rope_parameters);
  // Only the top-level tie_word_embeddings counts (HF reads config.tie_word_embeddings).
  j = hub();
  j["text_config"]["tie_word_embeddings"] = false;
  EXPECT_TRUE(parse(j).tie_word_embeddings);
}

struct BadCase {
  const char* what;
  std::function<void(Json&)> edit;
  ErrorKind kind;
  const char* message_prefix;  // the message must start with this
};

TEST(Config, EveryValidationFailureNamesFileAndField) {
  const BadCase cases[] = {
      {"other model", [](Json& j) { j["model_type"] = "llama"; }, ErrorKind::config,
       "config.json: model_type: expected \"qwen3_vl\" or \"qwen3_vl_moe\", got \"llama\""},
      {"no model_type", [](Json& j) { j.erase("model_type"); }, ErrorKind::config,
       "config.json: model_type: expected string, got missing"},
      {"no text_config", [](Json& j) { j.erase("text_config"); }, ErrorKind::config,
       "config.json: text_config: expected object, got missing"},
      {"no vision_config", [](Json& j) { j["vision_config"] = 3; }, ErrorKind::config,
       "config.json: vision_config: expected object, got 3"},
      {"zero hidden", [](Json& j) { j["text_config"]["hidden_size"] = 0; }, ErrorKind::config,
       "config.json: text_config.hidden_size: expected positive integer, got 0"},
      {"string size", [](Json& j) { j["text_config"]["intermediate_size"] = "6144"; },
       ErrorKind::config, "config.json: text_config.intermediate_size: expected integer, got \"6144\""},
      {"float layers", [](Json& j) { j["text_config"]["num_hidden_layers"] = 28.0; },
       ErrorKind::config, "config.json: text_config.num_hidden_layers: expected integer, got 28.0"},
      {"negative vocab", [](Json& j) { j["text_config"]["vocab_size"] = -1; }, ErrorKind::config,
       "config.json: text_config.vocab_size: expected positive integer, got -1"},
      {"kv heads", [](Json& j) { j["text_config"]["num_key_value_heads"] = 5; }, ErrorKind::config,
       "config.json: text_config.num_key_value_heads: expected a divisor of num_attention_heads (16), got 5"},
      {"no head_dim", [](Json& j) { j["text_config"].erase("head_dim"); }, ErrorKind::config,
       "config.json: text_config.head_dim: expected integer, got missing"},
      {"odd head_dim", [](Json& j) { j["text_config"]["head_dim"] = 127; }, ErrorKind::config,
       "config.json: text_config.head_dim: expected even integer, got 127"},
      {"no rope_theta", [](Json& j) { j["text_config"].erase("rope_theta"); }, ErrorKind::config,
       "config.json: text_config.rope_theta: expected number, got missing"},
      {"bad rope_theta", [](Json& j) { j["text_config"]["rope_theta"] = -5; }, ErrorKind::config,
       "config.json: text_config.rope_theta: expected positive finite number, got -5"},
      {"eps", [](Json& j) { j["text_config"]["rms_norm_eps"] = 0; }, ErrorKind::config,
       "config.json: text_config.rms_norm_eps: expected positive finite number, got 0"},
      {"rope type", [](Json& j) { j["text_config"]["rope_scaling"]["rope_type"] = "yarn"; },
       ErrorKind::unsupported,
       "config.json: text_config.rope_scaling.rope_type: expected \"default\", got \"yarn\""},
      {"section sum", [](Json& j) { j["text_config"]["rope_scaling"]["mrope_section"] = {24, 20, 19}; },
       ErrorKind::config,
       "config.json: text_config.rope_scaling.mrope_section: expected sections summing to head_dim / 2 = 64, got [24, 20, 19]"},
      {"section sign", [](Json& j) { j["text_config"]["rope_scaling"]["mrope_section"] = {30, -2, 36}; },
       ErrorKind::config,
       "config.json: text_config.rope_scaling.mrope_section: expected non-negative sections, got [30, -2, 36]"},
      {"section count", [](Json& j) { j["text_config"]["rope_scaling"]["mrope_section"] = {24, 40}; },
       ErrorKind::config,
       "config.json: text_config.rope_scaling.mrope_section: expected 3 integers (T, H, W), got 2 integers"},
      {"section type", [](Json& j) { j["text_config"]["rope_scaling"]["mrope_section"] = {24, "20", 20}; },
       ErrorKind::config,
       "config.json: text_config.rope_scaling.mrope_section[1]: expected integer, got string \"20\""},
      {"section interleave", [](Json& j) { j["text_config"]["rope_scaling"]["mrope_section"] = {4, 30, 30}; },
       ErrorKind::config,
       "config.json: text_config.rope_scaling.mrope_section: expected H and W sections small enough"},
      {"text act", [](Json& j) { j["text_config"]["hidden_act"] = "gelu"; }, ErrorKind::unsupported,
       "config.json: text_config.hidden_act: expected \"silu\", got \"gelu\""},
      {"attention bias", [](Json& j) { j["text_config"]["attention_bias"] = true; },
       ErrorKind::unsupported, "config.json: text_config.attention_bias: expected false"},
      {"vision heads", [](Json& j) { j["vision_config"]["num_heads"] = 3; }, ErrorKind::config,
       "config.json: vision_config.num_heads: expected a divisor of hidden_size (1024), got 3"},
      {"vision head_dim", [](Json& j) { j["vision_config"]["num_heads"] = 512; }, ErrorKind::config,
       "config.json: vision_config.num_heads: expected a head count giving head_dim = hidden_size / num_heads divisible by 4, got 512 (head_dim 2)"},
      {"vision depth", [](Json& j) { j["vision_config"].erase("depth"); }, ErrorKind::config,
       "config.json: vision_config.depth: expected integer, got missing"},
      {"merge size", [](Json& j) { j["vision_config"]["spatial_merge_size"] = 0; }, ErrorKind::config,
       "config.json: vision_config.spatial_merge_size: expected positive integer, got 0"},
      {"pos grid", [](Json& j) { j["vision_config"]["num_position_embeddings"] = 2300; },
       ErrorKind::config,
       "config.json: vision_config.num_position_embeddings: expected a perfect square (side x side grid), got 2300"},
      {"out hidden", [](Json& j) { j["vision_config"]["out_hidden_size"] = 4096; }, ErrorKind::config,
       "config.json: vision_config.out_hidden_size: expected text_config.hidden_size (2048), got 4096"},
      {"vision act", [](Json& j) { j["vision_config"]["hidden_act"] = "quick_gelu"; },
       ErrorKind::unsupported,
       "config.json: vision_config.hidden_act: expected \"gelu_pytorch_tanh\", got \"quick_gelu\""},
      {"vision rope", [](Json& j) { j["vision_config"]["rope_parameters"] = {{"rope_type", "yarn"}}; },
       ErrorKind::unsupported, "config.json: vision_config.rope_parameters.rope_type: expected \"axial\""},
      {"tap range", [](Json& j) { j["vision_config"]["deepstack_visual_indexes"] = {5, 30, 17}; },
       ErrorKind::config,
       "config.json: vision_config.deepstack_visual_indexes[1]: expected a block index in [0, depth = 24), got 30"},
      {"tap negative", [](Json& j) { j["vision_config"]["deepstack_visual_indexes"] = {-1, 11}; },
       ErrorKind::config,
       "config.json: vision_config.deepstack_visual_indexes[0]: expected a block index in [0, depth = 24), got -1"},
      {"tap order", [](Json& j) { j["vision_config"]["deepstack_visual_indexes"] = {5, 5, 17}; },
       ErrorKind::config,
       "config.json: vision_config.deepstack_visual_indexes[1]: expected increasing indexes (greater than 5), got 5"},
      {"tap count", [](Json& j) { j["text_config"]["num_hidden_layers"] = 2; }, ErrorKind::config,
       "config.json: vision_config.deepstack_visual_indexes: expected at most text_config.num_hidden_layers (2) entries, got 3 entries"},
      {"no taps", [](Json& j) { j["vision_config"].erase("deepstack_visual_indexes"); },
       ErrorKind::config,
       "config.json: vision_config.deepstack_visual_indexes: expected array of integers, got missing"},
      {"token id", [](Json& j) { j["image_token_id"] = 200000; }, ErrorKind::config,
       "config.json: image_token_id: expected a token id in [0, text_config.vocab_size = 151936), got 200000"},
      {"tie type", [](Json& j) { j["tie_word_embeddings"] = "yes"; }, ErrorKind::config,
       "config.json: tie_word_embeddings: expected boolean, got \"yes\""},
  };
  for (const auto& bad : cases) {
    Json j = hub();
    bad.edit(j);
    const auto message = error_message(bad.kind, [&] { parse(j); });
    EXPECT_EQ(message.rfind(bad.message_prefix, 0), 0u)
        << bad.what << "\n  got:      " << message << "\n  expected: " << bad.message_prefix;
  }
}

TEST(Config, Transformers5LayoutErrorsNameRopeParameters) {
  Json j = transformers5();
  j["text_config"]["rope_parameters"]["mrope_section"] = {24, 20, 21};
  EXPECT_EQ(error_message(ErrorKind::config, [&] { parse(j); })
                .rfind("config.json: text_config.rope_parameters.mrope_section: expected", 0),
            0u);
  j = transformers5();
  j["text_config"]["rope_parameters"].erase("rope_theta");
  EXPECT_EQ(error_message(ErrorKind::config, [&] { parse(j); }),
            "config.json: text_config.rope_parameters.rope_theta: expected number, got missing");
}

TEST(Config, SyntaxErrorsNameLineAndColumn) {
  const auto message =
      error_message(ErrorKind::format, [] { parse_model_config("{\n \"model_type\": qwen\n}", "c.json"); });
  EXPECT_EQ(message.rfind("c.json: line 2, column 16: ", 0), 0u) << message;
}

TEST(Config, LoadsFromFileOrDirectory) {
  const auto dir = testing::work_dir() / "config_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "config.json");
    out << kHub2B;
  }
  const ModelConfig expected = parse_model_config(kHub2B, "config.json");
  EXPECT_EQ(load_model_config(dir), expected);
  EXPECT_EQ(load_model_config(dir / "config.json"), expected);
  const auto missing = dir / "nope" / "config.json";
  const auto message = error_message(ErrorKind::io, [&] { load_model_config(missing); });
  EXPECT_NE(message.find(missing.string()), std::string::npos) << message;
  // Errors from a file name the file's path.
  {
    std::ofstream out(dir / "bad.json");
    out << R"({"model_type": "bert"})";
  }
  EXPECT_EQ(error_message(ErrorKind::config, [&] { load_model_config(dir / "bad.json"); }),
            (dir / "bad.json").string() +
                ": model_type: expected \"qwen3_vl\" or \"qwen3_vl_moe\", got \"bert\"");
}

}  // namespace
}  // namespace q3vl
