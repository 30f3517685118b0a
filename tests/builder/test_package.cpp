// q3vl build / inspect end to end on the tiny fixture checkpoints: every graph of every
// precision loads in ONNX Runtime with the IO the manifest promises, builds are
// byte-identical, and every error case names its cause and leaves nothing half-written.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "builder/package_files.h"
#include "builder/quant_recipe.h"
#include "builder/graph.h"
#include "io/json_file.h"
#include "q3vl/builder.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "q3vl/package.h"
#include "runtime/ort_session.h"
#include "support/crash_safety.h"
#include "support/shell.h"
#include "text_reference.h"
#include "ort_test_util.h"

namespace q3vl::testing {
namespace {

BuildOptions options_for(const std::filesystem::path& model, const std::filesystem::path& out,
                         const std::string& precision) {
  BuildOptions o;
  o.model_dir = model;
  o.out_dir = out;
  o.precision = precision;
  o.progress = ProgressMode::quiet;
  return o;
}

// Every graph opens in ORT and its IO equals the manifest's (what `q3vl inspect` checks).
void expect_package_loads(const std::filesystem::path& dir) {
  const PackageManifest m = load_package_manifest(dir);
  verify_package_files(dir, m);
  ASSERT_EQ(m.graphs.size(), 3u);
  for (const auto& g : m.graphs) {
    runtime::OrtSession session(g.name, dir / g.file);
    ASSERT_EQ(session.inputs().size(), g.inputs.size()) << g.name;
    for (std::size_t i = 0; i < g.inputs.size(); ++i) {
      EXPECT_EQ(session.inputs()[i].name, g.inputs[i].name);
      EXPECT_EQ(runtime::element_type_name(session.inputs()[i].element_type), g.inputs[i].dtype);
    }
    ASSERT_EQ(session.outputs().size(), g.outputs.size()) << g.name;
  }
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Package, EveryPrecisionBuildsAndLoads) {
  for (const char* preset : {"tiny", "tiny-untied"}) {
    for (const char* precision : {"fp32", "fp16", "int8", "int4"}) {
      const auto out = fresh_dir("pkg") / (std::string(preset) + "-" + precision);
      auto o = options_for(checkpoint_dir(preset), out, precision);
      o.vision_precision = std::string(precision) == "fp16" ? "fp16" : "fp32";
      const auto result = build_package(o);
      EXPECT_GT(result.package_bytes, 0u);
      SCOPED_TRACE(out.string());
      expect_package_loads(out);
      const auto m = load_package_manifest(out);
      EXPECT_EQ(m.decoder_precision, precision);
      // float16 KV by default exactly where the linears use the q3vl kernels (int4).
      EXPECT_EQ(m.kv_cache_dtype, std::string(precision) == "int4" ? "float16" : "float32");
      EXPECT_EQ(m.logits_mode, "last");
      EXPECT_EQ(m.tokens.image_token_id, 151655);
      EXPECT_FALSE(m.tokens.eos_token_ids.empty());
      EXPECT_TRUE(std::filesystem::exists(out / "tokenizer.json"));
      EXPECT_TRUE(std::filesystem::exists(out / "chat_template.jinja"));
      EXPECT_TRUE(testing::temporaries_of(out).empty());
    }
  }
}

TEST(Package, SameOptionsTwiceGiveIdenticalFiles) {
  const auto root = fresh_dir("pkg_det");
  auto a = options_for(checkpoint_dir("tiny"), root / "a", "int4");
  auto b = options_for(checkpoint_dir("tiny"), root / "b", "int4");
  build_package(a);
  build_package(b);
  const auto files_a = builder::list_package_files(root / "a");
  const auto files_b = builder::list_package_files(root / "b");
  ASSERT_EQ(files_a.size(), files_b.size());
  for (std::size_t i = 0; i < files_a.size(); ++i) {
    EXPECT_EQ(files_a[i].path, files_b[i].path);
    EXPECT_EQ(files_a[i].sha256, files_b[i].sha256) << files_a[i].path;
  }
  EXPECT_EQ(read_bytes(root / "a" / "q3vl.json"), read_bytes(root / "b" / "q3vl.json"));
}

// `--precision int4` alone: the q4km recipe (bench/quality/ chose it) with an int8 vision
// tower; `--quant-recipe none` and `--kernels ort` give plain 4-bit codes, the latter with
// fp32 vision; an fp32 build takes `none` as a no-op.
TEST(Package, Int4DefaultIsTheQ4kmRecipeWithInt8Vision) {
  const auto root = fresh_dir("pkg_default");
  const std::string q4km = builder::to_string(builder::parse_quant_recipe("q4km"));
  ASSERT_EQ(q4km, "lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4");
  struct Case {
    const char* label;
    const char* precision;
    const char* kernels;
    const char* recipe;
    std::string expected_recipe;
    const char* expected_vision;
    double bytes_per_weight;  // of the decoder's linears: 4-bit codes + an fp16 scale per 32 = 0.5625
  };
  // tiny (4 layers, 2 of them more_bits; lm_head is most of its weights) at q4km: more than
  // plain int4, less than int6's 0.8125 everywhere.
  for (const Case& c : {Case{"default", "int4", "", "", q4km, "int8", 0.0},
                        Case{"explicit-q3vl", "int4", "q3vl", "", q4km, "int8", 0.0},
                        Case{"none", "int4", "", "none", "", "int8", 0.5625},
                        Case{"ort", "int4", "ort", "", "", "fp32", 0.5625},
                        Case{"fp32-none", "fp32", "", "none", "", "fp32", 4.0}}) {
    SCOPED_TRACE(c.label);
    auto o = options_for(checkpoint_dir("tiny"), root / c.label, c.precision);
    o.kernels = c.kernels;
    o.quant_recipe = c.recipe;
    o.include_vision = false;
    const BuildResult result = build_package(o);
    const PackageManifest m = load_package_manifest(root / c.label);
    EXPECT_EQ(m.quantization.recipe, c.expected_recipe);
    EXPECT_EQ(m.vision_precision, c.expected_vision);
    EXPECT_EQ(result.manifest.quantization.recipe, c.expected_recipe);
    if (c.bytes_per_weight > 0) {
      EXPECT_DOUBLE_EQ(result.linear_bytes_per_weight, c.bytes_per_weight);
    } else {
      EXPECT_GT(result.linear_bytes_per_weight, 0.5625);
      EXPECT_LT(result.linear_bytes_per_weight, 0.8125);
    }
  }
  // The recipe reaches the graph: nl4 and 6-bit nodes in the default decoder, none in `none`'s.
  const std::string with_recipe = read_bytes(root / "default" / "decoder.onnx");
  const std::string plain = read_bytes(root / "none" / "decoder.onnx");
  EXPECT_NE(with_recipe.find("grid"), std::string::npos);
  EXPECT_EQ(plain.find("grid"), std::string::npos);
}

TEST(Package, GptqBuildsLoadsAndIsByteIdentical) {
  // Calibration runs the package through ONNX Runtime; the result must still be a pure
  // function of the checkpoint and the options.
  const auto root = fresh_dir("pkg_gptq");
  for (const char* name : {"a", "b"}) {
    auto o = options_for(checkpoint_dir("tiny-untied"), root / name, "int4");
    o.quant_method = "gptq";
    build_package(o);
  }
  expect_package_loads(root / "a");
  const auto m = load_package_manifest(root / "a");
  EXPECT_EQ(m.quantization.method, "gptq");
  ASSERT_TRUE(m.quantization.calibration.has_value());
  EXPECT_EQ(m.quantization.calibration->source, "built-in");
  EXPECT_EQ(m.quantization.calibration->conversations, 12);
  EXPECT_GT(m.quantization.calibration->tokens, 500);
  EXPECT_EQ(m.quantization.calibration->decoder_precision, "fp32");
  EXPECT_FALSE(std::filesystem::exists(root / "a" / "calibration"));
  for (const auto& g : m.graphs) {
    for (const auto& out : g.outputs) EXPECT_EQ(out.name.find("linear_input."), std::string::npos) << out.name;
  }
  const auto files_a = builder::list_package_files(root / "a");
  const auto files_b = builder::list_package_files(root / "b");
  ASSERT_EQ(files_a.size(), files_b.size());
  for (std::size_t i = 0; i < files_a.size(); ++i) EXPECT_EQ(files_a[i].sha256, files_b[i].sha256) << files_a[i].path;
  EXPECT_EQ(read_bytes(root / "a" / "q3vl.json"), read_bytes(root / "b" / "q3vl.json"));
}

TEST(Package, InspectCommandExitsZeroAndNonZeroOnBrokenGraph) {
  const auto root = fresh_dir("pkg_inspect");
  build_package(options_for(checkpoint_dir("tiny"), root / "p", "int4"));
  const std::string exe = q3vl_exe().string();
  EXPECT_EQ(std::system((exe + " inspect '" + (root / "p").string() + "' > /dev/null").c_str()), 0);
  EXPECT_EQ(std::system((exe + " inspect --json --verify '" + (root / "p").string() + "' > /dev/null").c_str()), 0);
  // A truncated graph must fail session creation -> non-zero exit.
  std::filesystem::resize_file(root / "p" / "embed.onnx", 10);
  EXPECT_NE(std::system((exe + " inspect '" + (root / "p").string() + "' > /dev/null 2>&1").c_str()), 0);
}

// --vision-precision q8: the vision graph holds q3vl.QuantLinear nodes, the package opens,
// inspect names the vision kernels; a GenAI package refuses q8 naming the flag.
TEST(Package, VisionQ8UsesQ3vlKernelsAndInspectSaysSo) {
  const auto root = fresh_dir("pkg_vision_q8");
  BuildOptions o = options_for(checkpoint_dir("tiny"), root / "p", "int4");
  o.vision_precision = "q8";
  build_package(o);
  EXPECT_NE(read_bytes(root / "p" / "vision.onnx").find("QuantLinear"), std::string::npos);
  const ShellOutput shown = run_shell(q3vl_exe().string() + " inspect " + quote(root / "p"));
  EXPECT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("vision q8"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("vision kernels q3vl (q3vl.QuantLinear"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("qkv and attention bf16 (q3vl.Bf16Linear, q3vl.Bf16Attention)"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("graph vision (vision.onnx, q8): session ok"), std::string::npos) << shown.out;
  // Each graph's non-standard ops with their node counts: one KvAttention and one QuantSwiGLU
  // per decoder layer.
  const std::string layers = std::to_string(load_package_manifest(root / "p").num_hidden_layers);
  EXPECT_NE(shown.out.find("q3vl.KvAttention x" + layers + ","), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("q3vl.QuantSwiGLU x" + layers), std::string::npos) << shown.out;
  const ShellOutput json = run_shell(q3vl_exe().string() + " inspect --json " + quote(root / "p"));
  ASSERT_EQ(json.status, 0) << json.out;
  const auto report = nlohmann::json::parse(json.out);
  std::int64_t vision_linears = 0, vision_bf16 = 0;
  for (const auto& graph : report["sessions"]) {
    if (graph["name"] != "vision") continue;
    vision_linears = graph["ops"].value("q3vl.QuantLinear", 0);
    vision_bf16 = graph["ops"].value("q3vl.Bf16Linear", 0);
  }
  EXPECT_GT(vision_linears, 0) << json.out;
  EXPECT_EQ(vision_bf16, load_model_config(checkpoint_dir("tiny")).vision.depth) << json.out;

  o.out_dir = root / "g";
  o.target = "ort-genai";
  try {
    build_package(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("--vision-precision"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(root / "g"));
}

TEST(Package, ExistingOutputWithoutForceIsRefusedAndUntouched) {
  const auto root = fresh_dir("pkg_exists");
  std::filesystem::create_directories(root / "p");
  std::ofstream(root / "p" / "keep.txt") << "mine";
  try {
    build_package(options_for(checkpoint_dir("tiny"), root / "p", "fp32"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_bytes(root / "p" / "keep.txt"), "mine");
  auto o = options_for(checkpoint_dir("tiny"), root / "p", "fp32");
  o.force = true;
  build_package(o);
  EXPECT_FALSE(std::filesystem::exists(root / "p" / "keep.txt"));
  expect_package_loads(root / "p");
}

// A text checkpoint for a non-preset config, written in the test, with config.json.
std::filesystem::path write_custom(const std::string& name, const ModelConfig& weights_config,
                                   const ModelConfig& file_config) {
  const auto dir = fresh_dir(name) / "ckpt";
  write_text_checkpoint(dir, weights_config, 3);
  std::ofstream(dir / "config.json") << to_config_json(file_config);
  return dir;
}

ModelConfig custom_full_config(bool tied) {
  ModelConfig c = custom_text_config(tied);
  // A vision config is required by config.json validation even for a text-only build.
  c.vision.depth = 2;
  c.vision.hidden_size = 32;
  c.vision.intermediate_size = 64;
  c.vision.num_heads = 2;
  c.vision.patch_size = 16;
  c.vision.temporal_patch_size = 2;
  c.vision.spatial_merge_size = 2;
  c.vision.out_hidden_size = c.text.hidden_size;
  c.vision.num_position_embeddings = 16;
  c.vision.deepstack_visual_indexes = {0, 1};
  c.image_token_id = 90;  // ids must lie inside the small vocabulary
  c.video_token_id = 91;
  c.vision_start_token_id = 92;
  c.vision_end_token_id = 93;
  return c;
}

TEST(Package, NonPresetTextOnlyCheckpointBuildsAtEveryPrecision) {
  for (bool tied : {false, true}) {
    const ModelConfig c = custom_full_config(tied);
    const auto ckpt = write_custom(tied ? "pkg_custom_tied" : "pkg_custom", c, c);
    // hidden 48 is not a multiple of 32: exercises padded blocks too (block 16 is for
    // MatMulNBits only; the q3vl kernels take 32, 64 or 128).
    for (const char* kernels : {"ort", "q3vl"}) {
      for (const char* precision : {"fp32", "fp16", "int8", "int4"}) {
        auto o = options_for(ckpt, ckpt.parent_path() / (std::string(precision) + "-" + kernels), precision);
        o.include_vision = false;
        o.kernels = kernels;
        o.block_size = std::string(kernels) == "ort" ? 16 : 32;
        build_package(o);
        const auto m = load_package_manifest(o.out_dir);
        ASSERT_EQ(m.graphs.size(), 2u);
        const bool quantized = precision[0] == 'i';
        EXPECT_EQ(m.quantization.kernels, quantized ? kernels : "") << precision;
        for (const auto& g : m.graphs) runtime::OrtSession session(g.name, o.out_dir / g.file);
      }
    }
  }
}

void expect_build_error(const BuildOptions& o, ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    build_package(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(o.out_dir));
  EXPECT_TRUE(testing::temporaries_of(o.out_dir).empty());
}

TEST(Package, GptqReadsACalibrationFile) {
  // One text conversation and one with an image given relative to the file's directory.
  const auto root = fresh_dir("pkg_gptq_file");
  const auto image = golden_dir() / "model" / "media" / "small_120x64.png";
  std::filesystem::create_directories(root / "cal");
  std::filesystem::copy_file(image, root / "cal" / "picture.png");
  {
    std::ofstream f(root / "cal" / "set.jsonl");
    f << R"([{"role": "user", "content": "Name three rivers in Europe."}])" << "\n\n";
    f << R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "picture.png"}},)"
      << R"( {"type": "text", "text": "What is this?"}]}]})" << "\n";
  }
  auto o = options_for(checkpoint_dir("tiny"), root / "p", "int4");
  o.quant_method = "gptq";
  o.calibration_file = root / "cal" / "set.jsonl";
  const auto m = build_package(o).manifest;
  ASSERT_TRUE(m.quantization.calibration.has_value());
  EXPECT_EQ(m.quantization.calibration->source, "set.jsonl");
  EXPECT_EQ(m.quantization.calibration->conversations, 2);
  // The image adds its 120x64 -> 128x64 grid's 8 merged tokens to the two prompts' text.
  EXPECT_GT(m.quantization.calibration->tokens, 20);

  {
    std::ofstream f(root / "cal" / "bad.jsonl");
    f << R"([{"role": "user", "content": "fine"}])" << "\n" << R"([{"role": "user", "content": 5}])" << "\n";
  }
  o.out_dir = root / "bad";
  o.calibration_file = root / "cal" / "bad.jsonl";
  expect_build_error(o, ErrorKind::format, {"bad.jsonl:2", "content"});
  EXPECT_FALSE(std::filesystem::exists(root / "bad"));
  {
    std::ofstream f(root / "cal" / "missing_image.jsonl");
    f << R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "nowhere.png"}}]}])" << "\n";
  }
  o.calibration_file = root / "cal" / "missing_image.jsonl";
  expect_build_error(o, ErrorKind::io, {"nowhere.png"});
  EXPECT_FALSE(std::filesystem::exists(root / "bad"));
}

TEST(Package, MisshapedTensorNamesTensorAndShapes) {
  ModelConfig file = custom_full_config(false);
  file.text.intermediate_size = 96;  // the weights have 80
  const auto ckpt = write_custom("pkg_misshaped", custom_full_config(false), file);
  auto o = options_for(ckpt, ckpt.parent_path() / "out", "int4");
  o.include_vision = false;
  expect_build_error(o, ErrorKind::shape,
                     {"model.language_model.layers.0.mlp.gate_proj.weight", "[96, 48]", "[80, 48]"});
}

TEST(Package, MissingTensorIsNamed) {
  const ModelConfig c = custom_full_config(false);
  ModelConfig weights = c;
  weights.tie_word_embeddings = true;  // no lm_head.weight written, but config says untied
  const auto ckpt = write_custom("pkg_missing", weights, c);
  auto o = options_for(ckpt, ckpt.parent_path() / "out", "fp32");
  o.include_vision = false;
  expect_build_error(o, ErrorKind::shape, {"lm_head.weight", "no such tensor"});
}

TEST(Package, UnsupportedActivationIsNamed) {
  ModelConfig c = custom_full_config(false);
  c.text.hidden_act = "gelu";
  const auto ckpt = write_custom("pkg_act", custom_full_config(false), c);
  auto o = options_for(ckpt, ckpt.parent_path() / "out", "fp32");
  o.include_vision = false;
  expect_build_error(o, ErrorKind::unsupported, {"text_config.hidden_act", "silu", "gelu"});
}

TEST(Package, BadOptionsAreUsageErrors) {
  const auto root = fresh_dir("pkg_opts");
  auto o = options_for(checkpoint_dir("tiny"), root / "out", "int3");
  expect_build_error(o, ErrorKind::usage, {"--precision", "int3"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "int4");
  o.block_size = 48;
  expect_build_error(o, ErrorKind::usage, {"--block-size"});
  o.block_size = 16;  // fine for MatMulNBits, not for the default q3vl kernels
  expect_build_error(o, ErrorKind::usage, {"--block-size", "32, 64 or 128 with --kernels q3vl", "16"});
  o.block_size = 32;
  o.accuracy_level = 4;  // a MatMulNBits option
  expect_build_error(o, ErrorKind::usage, {"--accuracy-level", "--kernels ort"});
  o.accuracy_level = 0;
  o = options_for(checkpoint_dir("tiny"), root / "out", "fp16");
  o.lm_head_int8 = true;
  expect_build_error(o, ErrorKind::usage, {"--lm-head-int8"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "fp16");
  o.quant_method = "gptq";
  expect_build_error(o, ErrorKind::usage, {"--quant-method gptq", "int4 or int8"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "int4");
  o.calibration_file = "set.jsonl";
  expect_build_error(o, ErrorKind::usage, {"--calibration", "gptq"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "int4");
  o.quant_method = "gptq";
  o.calibration_file = root / "absent.jsonl";
  expect_build_error(o, ErrorKind::io, {"absent.jsonl"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "int4");
  o.kv_cache = "bfloat16";
  expect_build_error(o, ErrorKind::usage, {"--kv-cache", "float16, int8 or float32", "bfloat16"});
  o = options_for(checkpoint_dir("tiny"), root / "out", "int4");
  o.target = "ort-genai";
  o.kv_cache = "float16";
  expect_build_error(o, ErrorKind::usage, {"--kv-cache", "float32 with --target ort-genai"});
  o.kv_cache = "int8";
  expect_build_error(o, ErrorKind::usage, {"--kv-cache", "float32 with --target ort-genai", "int8"});
  EXPECT_FALSE(std::filesystem::exists(root / "out"));
}

// The past_key_values.* inputs of a package's decoder as ONNX Runtime opens them (types and
// shapes from the graph itself, not from the manifest).
std::vector<runtime::TensorInfo> decoder_past_inputs(const std::filesystem::path& package, const PackageManifest& m) {
  const runtime::OrtSession session("decoder", package / m.graph("decoder").file);
  std::vector<runtime::TensorInfo> past;
  for (const auto& t : session.inputs()) {
    if (t.name.rfind("past_key_values.", 0) == 0) past.push_back(t);
  }
  return past;
}

// --kv-cache float16 on an FP32 package: the decoder's past/present are float16 (the
// manifest and the graph agree), and q3vl.json's field is optional (older packages read
// as float32) and checked (anything else is a config error naming it).
TEST(Package, KvCacheDtypeIsRecordedOptionalAndChecked) {
  const auto out = fresh_dir("pkg_kv") / "fp32-kv16";
  auto o = options_for(checkpoint_dir("tiny"), out, "fp32");
  o.kv_cache = "float16";
  o.include_vision = false;
  build_package(o);
  const PackageManifest m = load_package_manifest(out);
  EXPECT_EQ(m.kv_cache_dtype, "float16");
  const PackageGraph& decoder = m.graph("decoder");
  int half = 0;
  for (const auto& t : decoder.inputs) half += t.name.rfind("past_key_values.", 0) == 0 && t.dtype == "float16";
  for (const auto& t : decoder.outputs) half += t.name.rfind("present.", 0) == 0 && t.dtype == "float16";
  EXPECT_EQ(half, 4 * m.num_hidden_layers);
  const std::vector<runtime::TensorInfo> past = decoder_past_inputs(out, m);
  EXPECT_EQ(past.size(), 2u * m.num_hidden_layers);
  for (const auto& t : past) EXPECT_EQ(runtime::element_type_name(t.element_type), std::string("float16")) << t.name;

  io::Json json = io::read_json_file(out / "q3vl.json");
  json["decoder"].erase("kv_cache_dtype");
  io::write_json_file(out / "q3vl.json", json);
  EXPECT_EQ(load_package_manifest(out).kv_cache_dtype, "float32");
  json["decoder"]["kv_cache_dtype"] = "bfloat16";
  io::write_json_file(out / "q3vl.json", json);
  try {
    load_package_manifest(out);
    ADD_FAILURE() << "a bfloat16 kv_cache_dtype loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("kv_cache_dtype"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("float32, float16 or int8"), std::string::npos) << e.what();
  }
}

// --kv-cache int8: the decoder's past/present are int8 rows of head_dim codes plus a
// float16 scale per 32 values, through q3vl.KvAttentionInt8; inspect names the dtype (and,
// for this --no-vision package, no vision precision).
TEST(Package, KvCacheInt8WritesInt8RowsAndInspectSaysSo) {
  const auto out = fresh_dir("pkg_kv8") / "fp32-kv8";
  auto o = options_for(checkpoint_dir("tiny"), out, "fp32");
  o.kv_cache = "int8";
  o.include_vision = false;
  build_package(o);
  const PackageManifest m = load_package_manifest(out);
  EXPECT_EQ(m.kv_cache_dtype, "int8");
  const std::int64_t width = m.head_dim + 2 * ((m.head_dim + 31) / 32);
  const std::vector<runtime::TensorInfo> past = decoder_past_inputs(out, m);
  EXPECT_EQ(past.size(), 2u * m.num_hidden_layers);
  for (const auto& t : past) {
    EXPECT_EQ(runtime::element_type_name(t.element_type), std::string("int8")) << t.name;
    ASSERT_EQ(t.shape.size(), 4u) << t.name;
    EXPECT_EQ(t.shape[3], width) << t.name;
  }
  EXPECT_NE(read_bytes(out / m.graph("decoder").file).find("KvAttentionInt8"), std::string::npos);
  const ShellOutput shown = run_shell(q3vl_exe().string() + " inspect " + quote(out));
  EXPECT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("kv cache int8"), std::string::npos) << shown.out;
  // Built without a vision tower: the header says so rather than the unused vision precision.
  EXPECT_NE(shown.out.find("decoder fp32, vision absent,"), std::string::npos) << shown.out;
}

TEST(Package, FullDiskIsAnIoErrorNamingTheFile) {
  // /dev/full fails every write with ENOSPC; reach it through a symlink so that the
  // writer's clean-up removes only the link.
  const auto root = fresh_dir("pkg_full");
  std::filesystem::create_symlink("/dev/full", root / "w.onnx.data");
  try {
    builder::Graph g("g", root / "w.onnx.data");
    const std::vector<float> big(1 << 20, 1.0f);
    g.initializer_f32("big", {1 << 20}, big);
    g.save(root / "w.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_NE(std::string(e.what()).find("w.onnx.data"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("disk full"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::exists("/dev/full"));
}

}  // namespace
}  // namespace q3vl::testing
