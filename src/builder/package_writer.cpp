// build_package: orchestrates one `q3vl build` (include/q3vl/builder.h).

#include <functional>

#include "builder/calibration.h"
#include "builder/calibration_stats.h"
#include "builder/embed_graph.h"
#include "builder/genai_package.h"
#include "builder/graph.h"
#include "builder/package_files.h"
#include "core/staging_dir.h"
#include "builder/text_decoder.h"
#include "builder/vision_graph.h"
#include "builder/weight_reader.h"
#include "io/json_file.h"
#include "io/manifest.h"
#include "io/safetensors.h"
#include "q3vl/builder.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "q3vl/version.h"

namespace q3vl {
namespace {

using builder::WeightPrecision;

const char* dtype_text(io::DType dtype) {
  switch (dtype) {
    case io::DType::f32: return "float32";
    case io::DType::f16: return "float16";
    case io::DType::i64: return "int64";
    case io::DType::i32: return "int32";
    case io::DType::u8: return "uint8";
    case io::DType::i8: return "int8";
    default: return io::dtype_name(dtype);
  }
}

std::vector<PackageTensor> describe(const std::vector<builder::GraphTensor>& tensors) {
  std::vector<PackageTensor> out;
  for (const auto& t : tensors) {
    PackageTensor p{t.name, dtype_text(t.dtype), {}};
    for (const auto& d : t.shape) p.shape.push_back(d.symbolic() ? d.param : std::to_string(d.value));
    out.push_back(std::move(p));
  }
  return out;
}

// The per-tensor recipe of a build: --lm-head-int8 and --int8-edge-layers as rules, then
// --quant-recipe's, or --fake-quant's (int8 layers inside an int4 model follow the model's
// kernels: --kernels applies to all). Checks every format against the kernels before any
// weight is read.
builder::QuantRecipe recipe_of(const BuildOptions& o, builder::LinearFormat& base) {
  if (!o.fake_quant.empty()) {
    if (!o.quant_recipe.empty()) {
      throw_error(ErrorKind::usage, "", "--fake-quant", "no --quant-recipe (the fake recipe is the recipe)",
                  "--quant-recipe " + o.quant_recipe);
    }
    if (base.precision != WeightPrecision::fp32) {
      throw_error(ErrorKind::usage, "", "--fake-quant", "--precision fp32", "--precision " + o.precision);
    }
    if (base.quant.method == builder::QuantMethod::gptq) {
      throw_error(ErrorKind::usage, "", "--fake-quant", "--quant-method rtn or mse", "gptq");
    }
    base.fake_quant = true;
    // Scales as the product's kernels store them (fp16) unless --kernels ort asks for MatMulNBits'.
    base.kernels = o.kernels.empty() ? builder::LinearKernels::q3vl : builder::parse_linear_kernels(o.kernels);
    return builder::parse_quant_recipe(o.fake_quant, "--fake-quant");
  }
  std::string rules;
  if (o.lm_head_int8) rules += "lm_head=int8;";
  if (o.int8_edge_layers > 0) {
    const std::string n = std::to_string(o.int8_edge_layers);
    rules += "*@first:" + n + "+last:" + n + "=int8;";
  }
  builder::QuantRecipe recipe = rules.empty() ? builder::QuantRecipe{} : builder::parse_quant_recipe(rules);
  if (!o.quant_recipe.empty() && o.quant_recipe != builder::kNoRecipe) {
    if (!builder::is_quantized(base.precision)) {
      throw_error(ErrorKind::usage, "", "--quant-recipe", "--precision int4 or int8", "--precision " + o.precision);
    }
    const builder::QuantRecipe extra = builder::parse_quant_recipe(o.quant_recipe);
    recipe.rules.insert(recipe.rules.end(), extra.rules.begin(), extra.rules.end());
  }
  for (const builder::RecipeRule& r : recipe.rules) {
    const std::int64_t b = r.block_size;
    if (b > 0 && base.kernels == builder::LinearKernels::q3vl && b != 32 && b != 64 && b != 128) {
      throw_error(ErrorKind::usage, "", "--quant-recipe", "block size 32, 64 or 128 with --kernels q3vl",
                  std::to_string(b));
    }
    if (base.kernels == builder::LinearKernels::ort && r.precision != WeightPrecision::int4 &&
        r.precision != WeightPrecision::int8) {
      throw_error(ErrorKind::unsupported, "", "--quant-recipe", "int4 or int8 with --kernels ort (MatMulNBits)",
                  builder::to_string(r.precision));
    }
  }
  return recipe;
}

// `o` with the defaults that depend on other options filled in (BuildOptions says which):
// a plain int4 build on q3vl's kernels gets the chosen 4-bit recipe and an int8 vision
// tower (the fastest vision form measured, bench/kernels/results/2026-12-06-vision.md).
BuildOptions with_defaults(BuildOptions o) {
  const bool q3vl_int4 = o.precision == "int4" && o.target == "q3vl" && (o.kernels.empty() || o.kernels == "q3vl") &&
                         o.fake_quant.empty();
  if (o.quant_recipe.empty() && q3vl_int4) o.quant_recipe = builder::kDefaultInt4Recipe;
  if (o.vision_precision.empty()) o.vision_precision = q3vl_int4 ? "int8" : "fp32";
  return o;
}

builder::DecoderGraphOptions decoder_options(const BuildOptions& o) {
  builder::LinearFormat base;
  base.precision = builder::parse_weight_precision(o.precision, "--precision");
  base.quant.block_size = o.block_size;
  base.quant.symmetric = o.symmetric;
  base.quant.method = builder::parse_quant_method(o.quant_method);
  base.accuracy_level = o.accuracy_level;
  // GenAI packages are run by another runtime, which has no q3vl op domain: standard
  // MatMulNBits only.
  const bool genai = o.target == "ort-genai";
  base.kernels = o.kernels.empty() ? (genai ? builder::LinearKernels::ort : builder::default_kernels(base.precision))
                                   : builder::parse_linear_kernels(o.kernels);
  if (genai && base.kernels == builder::LinearKernels::q3vl) {
    throw_error(ErrorKind::usage, "", "--kernels", "ort with --target ort-genai (ONNX Runtime GenAI has no q3vl op domain)",
                "q3vl");
  }
  if (base.kernels == builder::LinearKernels::q3vl && o.accuracy_level != 0 &&
      (base.precision == WeightPrecision::int8 || base.precision == WeightPrecision::int4)) {
    throw_error(ErrorKind::usage, "", "--accuracy-level",
                "--kernels ort (the q3vl kernels always quantize activations to int8)",
                "--kernels q3vl with --accuracy-level " + std::to_string(o.accuracy_level));
  }
  const bool quantized = base.precision == WeightPrecision::int8 || base.precision == WeightPrecision::int4;
  if (o.accuracy_level != 0 && o.accuracy_level != 1 && o.accuracy_level != 2 && o.accuracy_level != 3 &&
      o.accuracy_level != 4) {
    throw_error(ErrorKind::usage, "", "--accuracy-level", "0..4", std::to_string(o.accuracy_level));
  }
  if ((o.lm_head_int8 || o.int8_edge_layers > 0) && base.precision != WeightPrecision::int4) {
    throw_error(ErrorKind::usage, "", o.lm_head_int8 ? "--lm-head-int8" : "--int8-edge-layers",
                "--precision int4", "--precision " + o.precision);
  }
  if (quantized && base.kernels == builder::LinearKernels::q3vl && o.block_size != 32 && o.block_size != 64 &&
      o.block_size != 128) {
    throw_error(ErrorKind::usage, "", "--block-size", "32, 64 or 128 with --kernels q3vl (other powers of two >= 16 "
                "with --kernels ort)", std::to_string(o.block_size));
  }
  if (quantized) {  // validates block size early (before any weight is read)
    builder::QuantOptions probe = base.quant;
    probe.method = builder::QuantMethod::rtn;
    builder::quantize_blockwise(std::vector<float>(static_cast<std::size_t>(o.block_size), 0.0f), 1,
                                o.block_size, probe);
  }
  if (o.int8_edge_layers < 0) {
    throw_error(ErrorKind::usage, "", "--int8-edge-layers", "a non-negative count",
                std::to_string(o.int8_edge_layers));
  }
  builder::DecoderGraphOptions d;
  d.recipe = recipe_of(o, base);  // may set base's fake_quant and kernels
  d.layers = base;
  d.logits = o.all_logits ? builder::LogitsMode::all : builder::LogitsMode::last;
  // float16 KV by default where the package already needs q3vl's runtime (q3vl kernels);
  // GenAI packages keep the float32 cache its runtime allocates.
  const bool q3vl_kernels = quantized && base.kernels == builder::LinearKernels::q3vl;
  if (o.kv_cache.empty()) {
    d.kv_cache = q3vl_kernels ? io::DType::f16 : io::DType::f32;
  } else if (o.kv_cache == "float16" || o.kv_cache == "float32" || o.kv_cache == "int8") {
    d.kv_cache = o.kv_cache == "float16" ? io::DType::f16 : o.kv_cache == "int8" ? io::DType::i8 : io::DType::f32;
  } else {
    throw_error(ErrorKind::usage, "", "--kv-cache", "float16, int8 or float32", o.kv_cache);
  }
  if (genai && d.kv_cache != io::DType::f32) {
    throw_error(ErrorKind::usage, "", "--kv-cache", "float32 with --target ort-genai", o.kv_cache);
  }
  return d;
}

// Preprocessing parameters: the processor files as HF wrote them (Hub layout or
// transformers 5.x processor_config.json), plus the geometry from config.json.
io::Json preprocessing_json(const std::filesystem::path& model_dir, const ModelConfig& config) {
  io::Json j;
  j["patch_size"] = config.vision.patch_size;
  j["temporal_patch_size"] = config.vision.temporal_patch_size;
  j["merge_size"] = config.vision.spatial_merge_size;
  j["image"] = io::Json::object();
  j["video"] = io::Json::object();
  if (std::filesystem::exists(model_dir / "preprocessor_config.json")) {
    j["image"] = io::read_json_file(model_dir / "preprocessor_config.json");
  }
  if (std::filesystem::exists(model_dir / "video_preprocessor_config.json")) {
    j["video"] = io::read_json_file(model_dir / "video_preprocessor_config.json");
  }
  if (std::filesystem::exists(model_dir / "processor_config.json")) {
    const auto p = io::read_json_file(model_dir / "processor_config.json");
    if (p.contains("image_processor")) j["image"] = p["image_processor"];
    if (p.contains("video_processor")) j["video"] = p["video_processor"];
  }
  return j;
}

TokenIds token_ids(const std::filesystem::path& model_dir, const ModelConfig& config, const io::Json& source) {
  TokenIds t;
  t.image_token_id = config.image_token_id;
  t.video_token_id = config.video_token_id;
  t.vision_start_token_id = config.vision_start_token_id;
  t.vision_end_token_id = config.vision_end_token_id;
  auto read_ids = [&t](const io::Json& j) {
    if (j.contains("eos_token_id")) {
      const auto& eos = j["eos_token_id"];
      t.eos_token_ids.clear();
      if (eos.is_number_integer()) t.eos_token_ids.push_back(eos.get<std::int64_t>());
      if (eos.is_array()) {
        for (const auto& e : eos) {
          if (e.is_number_integer()) t.eos_token_ids.push_back(e.get<std::int64_t>());
        }
      }
    }
    if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) {
      t.pad_token_id = j["pad_token_id"].get<std::int64_t>();
    }
  };
  if (source.contains("text_config")) read_ids(source["text_config"]);
  read_ids(source);
  if (std::filesystem::exists(model_dir / "generation_config.json")) {
    read_ids(io::read_json_file(model_dir / "generation_config.json"));
  }
  return t;
}

std::uint64_t tensor_bytes(const io::Checkpoint& c, const std::string& prefix) {
  std::uint64_t total = 0;
  for (const auto& name : c.names()) {
    if (name.rfind(prefix, 0) == 0) total += c.tensor(name).data.size();
  }
  return total;
}

std::uint64_t fp32_bytes(const io::Checkpoint& c, const std::string& prefix) {
  std::uint64_t total = 0;
  for (const auto& name : c.names()) {
    if (name.rfind(prefix, 0) == 0) total += static_cast<std::uint64_t>(c.tensor(name).numel()) * 4;
  }
  return total;
}

void write_graph(const std::string& name, const std::filesystem::path& dir, const std::string& precision,
                 PackageManifest& manifest, const std::function<void(builder::Graph&)>& body) {
  builder::Graph g(name, dir / (name + ".onnx.data"));
  body(g);
  g.add_metadata("q3vl.graph", name);
  g.add_metadata("q3vl.precision", precision);
  g.save(dir / (name + ".onnx"));
  manifest.graphs.push_back(PackageGraph{name, name + ".onnx", name + ".onnx.data", precision,
                                         describe(g.inputs()), describe(g.outputs())});
}

// --vision-precision sets the vision and the embedding graph: the table is looked up,
// never multiplied, so it follows the input side rather than the decoder's precision.
WeightPrecision embed_table_precision(builder::VisionPrecision vision) {
  switch (vision) {
    case builder::VisionPrecision::fp16:
      return WeightPrecision::fp16;
    case builder::VisionPrecision::int8:
    case builder::VisionPrecision::q8:
      return WeightPrecision::int8;
    default:
      return WeightPrecision::fp32;
  }
}

// Decoders at most this large (float32 text weights) record calibration inputs in fp32;
// larger ones (the 4B preset's 16 GB) in int8, whose inputs differ from fp32's by ~1e-4
// in cosine, far below what GPTQ's statistics resolve.
constexpr std::uint64_t kFp32CalibrationLimit = 4ull << 30;

// A runnable package in `calibration_dir` whose decoder also outputs every matmul's input:
// links to the vision and embed graphs already in `package_dir`, the side files, and a
// manifest. The caller runs the calibration prompts through it and removes it.
void write_calibration_package(const std::filesystem::path& package_dir, const std::filesystem::path& calibration_dir,
                               const std::filesystem::path& model_dir, const PackageManifest& base,
                               builder::WeightReader& weights, const ModelConfig& config,
                               WeightPrecision precision) {
  std::filesystem::create_directories(calibration_dir);
  PackageManifest m = base;
  m.graphs.clear();
  for (const PackageGraph& g : base.graphs) {
    for (const std::string& f : {g.file, g.weights_file}) {
      std::filesystem::create_symlink(std::filesystem::absolute(package_dir / f), calibration_dir / f);
    }
    m.graphs.push_back(g);
  }
  builder::DecoderGraphOptions options;
  options.layers.precision = precision;
  options.layers.quant.method = builder::QuantMethod::rtn;
  options.layers.expose_input = true;
  options.logits = builder::LogitsMode::all;
  m.decoder_precision = builder::to_string(precision);
  m.logits_mode = "all";
  m.kv_cache_dtype = "float32";  // options.kv_cache: the recorded matmul inputs are float32 math
  write_graph("decoder", calibration_dir, m.decoder_precision, m, [&](builder::Graph& g) {
    builder::write_decoder_graph(g, weights, config, options);
  });
  builder::copy_side_files(model_dir, calibration_dir);
  io::write_json_file(calibration_dir / kManifestFileName, io::manifest_to_json(m));
}

}  // namespace

BuildResult build_package(const BuildOptions& requested) {
  const BuildOptions o = with_defaults(requested);
  if (o.model_dir.empty()) throw_error(ErrorKind::usage, "", "--model", "an HF checkpoint directory", "nothing");
  if (o.out_dir.empty()) throw_error(ErrorKind::usage, "", "--out", "a package directory", "nothing");
  if (std::filesystem::exists(o.out_dir) && !o.force) {
    throw_error(ErrorKind::usage, o.out_dir.string(), "", "a path that does not exist (pass --force to replace it)",
                "an existing file or directory");
  }
  if (o.target != "q3vl" && o.target != "ort-genai") {
    throw_error(ErrorKind::usage, "", "--target", "q3vl or ort-genai", o.target);
  }
  const bool genai = o.target == "ort-genai";
  if (!o.deepstack && !genai) {
    throw_error(ErrorKind::usage, "", "--no-deepstack", "--target ort-genai (q3vl packages always keep DeepStack)",
                "--target " + o.target);
  }
  if (genai && !o.include_vision) {
    throw_error(ErrorKind::usage, "", "--no-vision", "a build with the vision graph (GenAI's qwen3_vl model loads one)",
                "--target ort-genai --no-vision");
  }
  if (genai && o.quant_method == "gptq") {
    throw_error(ErrorKind::usage, "", "--quant-method gptq",
                "rtn or mse with --target ort-genai (gptq calibrates through q3vl's runtime)", "gptq");
  }
  builder::DecoderGraphOptions decoder = decoder_options(o);
  const bool gptq = decoder.layers.quant.method == builder::QuantMethod::gptq;
  if (gptq && decoder.layers.precision != WeightPrecision::int4 && decoder.layers.precision != WeightPrecision::int8) {
    throw_error(ErrorKind::usage, "", "--quant-method gptq", "--precision int4 or int8", "--precision " + o.precision);
  }
  if (!o.calibration_file.empty() && !gptq) {
    throw_error(ErrorKind::usage, "", "--calibration", "--quant-method gptq", "--quant-method " + o.quant_method);
  }
  if (gptq && !o.include_vision) {
    throw_error(ErrorKind::usage, "", "--quant-method gptq", "a build with the vision graph (calibration prompts "
                "hold images)", "--no-vision");
  }
  const builder::CalibrationSet calibration_set =
      !gptq ? builder::CalibrationSet{} : o.calibration_file.empty() ? builder::builtin_calibration_set()
                                                                     : builder::load_calibration_set(o.calibration_file);
  const auto vision_precision = builder::parse_vision_precision(o.vision_precision);
  if (genai && vision_precision == builder::VisionPrecision::q8) {
    throw_error(ErrorKind::usage, "", "--vision-precision",
                "fp32, fp16 or int8 with --target ort-genai (ONNX Runtime GenAI has no q3vl op domain)", "q8");
  }
  const WeightPrecision embed_precision = embed_table_precision(vision_precision);

  const ModelConfig config = load_model_config(o.model_dir);
  builder::validate_decoder_config(config);
  // MoE (builder/text_moe.h): no GenAI packages (their parity with HF is untested).
  if (config.is_moe() && genai) {
    throw_error(ErrorKind::unsupported, o.model_dir.string(), "--target", "q3vl for a qwen3_vl_moe model",
                "ort-genai");
  }
  const io::Json source_config = io::read_json_file(o.model_dir / "config.json");
  const io::Checkpoint checkpoint = io::Checkpoint::open(o.model_dir);

  const std::string embed_name = "model.language_model.embed_tokens.weight";
  const std::uint64_t embed_bytes = checkpoint.contains(embed_name) ? checkpoint.tensor(embed_name).data.size() : 0;
  const std::uint64_t vision_bytes = o.include_vision ? tensor_bytes(checkpoint, "model.visual.") +
                                                            tensor_bytes(checkpoint, "visual.")
                                                      : 0;
  const std::uint64_t text_bytes = tensor_bytes(checkpoint, "model.language_model.") + tensor_bytes(checkpoint, "lm_head.") +
                                   embed_bytes * (config.tie_word_embeddings ? 1 : 0);
  // gptq reads the text weights twice: for the calibration decoder, then to quantize.
  const std::uint64_t total = text_bytes * (gptq ? 2 : 1) + vision_bytes;
  Progress progress("q3vl build", total, ProgressUnit::bytes, o.progress);
  builder::WeightReader weights(checkpoint, progress);

  core::StagingDir staging(o.out_dir);
  const auto& dir = staging.path();
  PackageManifest m;
  m.builder_version = kVersion;
  m.model_type = config.model_type;
  m.decoder_precision = o.precision;
  m.vision_precision = o.vision_precision;
  m.logits_mode = o.all_logits ? "all" : "last";
  const std::string lm_head_precision = builder::to_string(
      builder::resolve_format(decoder.layers, decoder.recipe, "lm_head", builder::kNoLayer, config.text.num_hidden_layers)
          .precision);
  if (o.precision == "int8" || o.precision == "int4" || !o.fake_quant.empty()) {
    m.quantization = QuantizationInfo{o.quant_method, o.block_size, o.symmetric, o.accuracy_level,
                                      builder::to_string(decoder.layers.kernels), lm_head_precision,
                                      o.int8_edge_layers};
    m.quantization.recipe = builder::to_string(decoder.recipe);
    m.quantization.fake_quant = decoder.layers.fake_quant;
  } else {
    m.quantization.lm_head_precision = o.precision;
  }
  m.tokens = token_ids(o.model_dir, config, source_config);
  m.num_hidden_layers = config.text.num_hidden_layers;
  m.num_key_value_heads = config.text.num_key_value_heads;
  m.head_dim = config.text.head_dim;
  m.hidden_size = config.text.hidden_size;
  m.vocab_size = config.text.vocab_size;
  m.deepstack_layers = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  m.kv_cache_dtype = decoder.kv_cache == io::DType::f16  ? "float16"
                     : decoder.kv_cache == io::DType::i8 ? "int8"
                                                         : "float32";
  m.source_config_json = source_config.dump();
  m.preprocessing_json = preprocessing_json(o.model_dir, config).dump();

  if (genai) {
    builder::GenaiGraphOptions options;
    options.decoder = decoder;
    options.vision.precision = vision_precision;
    options.embed_precision = embed_precision;
    options.deepstack = o.deepstack;
    builder::write_genai_graphs(checkpoint, weights, config, options,
                                [&](const std::string& name, const std::string& precision,
                                    const std::function<void(builder::Graph&)>& body) {
                                  write_graph(name, dir, precision, m, body);
                                  if (name == "vision") progress.advance(vision_bytes, "model.visual");
                                });
    progress.finish();
    builder::write_genai_side_files(o.model_dir, dir, config, m.tokens, source_config, o.deepstack);
    m.files = builder::list_package_files(dir);
    BuildResult result;
    for (const auto& f : m.files) result.package_bytes += f.size;
    result.linear_bytes_per_weight = builder::recipe_bytes_per_weight(decoder.layers, decoder.recipe, config.text);
    result.manifest = std::move(m);
    staging.commit(o.force);
    return result;
  }
  if (o.include_vision) {
    write_graph("vision", dir, o.vision_precision, m, [&](builder::Graph& g) {
      builder::VisionGraphOptions options;
      options.precision = vision_precision;
      builder::write_vision_graph(g, checkpoint, config, options);
      progress.advance(vision_bytes, "model.visual");
    });
  }
  write_graph("embed", dir, builder::to_string(embed_precision), m, [&](builder::Graph& g) {
    builder::write_embed_graph(g, weights, config, embed_precision);
  });
  core::fault_point("writing");
  std::optional<builder::CalibrationStats> calibration;
  if (gptq) {
    // Record what every decoder matmul sees on the calibration prompts, through a
    // temporary package inside the staging directory (gone with it).
    const auto calibration_dir = dir / "calibration";
    const std::uint64_t decoder_fp32 = fp32_bytes(checkpoint, "model.language_model.") + fp32_bytes(checkpoint, "lm_head.");
    const WeightPrecision recorder =
        decoder_fp32 <= kFp32CalibrationLimit ? WeightPrecision::fp32 : WeightPrecision::int8;
    write_calibration_package(dir, calibration_dir, o.model_dir, m, weights, config, recorder);
    calibration.emplace(calibration_dir / "inputs");
    progress.note("gptq calibration: " + std::to_string(calibration_set.conversations.size()) + " conversations (" +
                  calibration_set.source + ") through a " + builder::to_string(recorder) + " decoder");
    const builder::CalibrationRun run = builder::record_linear_inputs(
        calibration_dir, calibration_set, *calibration, [&progress](std::int64_t done, std::int64_t total_runs) {
          progress.note("gptq calibration: conversation " + std::to_string(done) + "/" + std::to_string(total_runs));
        });
    progress.note("gptq calibration: " + std::to_string(run.tokens) + " tokens recorded; quantizing the decoder");
    m.quantization.calibration =
        CalibrationInfo{o.calibration_file.empty() ? calibration_set.source : o.calibration_file.filename().string(),
                        run.conversations, run.tokens, builder::to_string(recorder)};
    decoder.layers.calibration = &*calibration;  // every recipe format is a copy of layers
  }
  write_graph("decoder", dir, o.precision, m, [&](builder::Graph& g) {
    builder::write_decoder_graph(g, weights, config, decoder);
  });
  progress.finish();
  if (calibration) {
    calibration.reset();
    std::filesystem::remove_all(dir / "calibration");
  }

  builder::copy_side_files(o.model_dir, dir);
  m.files = builder::list_package_files(dir);
  io::write_json_file(dir / kManifestFileName, io::manifest_to_json(m));

  BuildResult result;
  for (const auto& f : m.files) result.package_bytes += f.size;
  result.linear_bytes_per_weight = builder::recipe_bytes_per_weight(decoder.layers, decoder.recipe, config.text);
  result.manifest = std::move(m);
  staging.commit(o.force);
  return result;
}

}  // namespace q3vl
