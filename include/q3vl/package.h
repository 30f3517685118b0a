// A q3vl package: the directory `q3vl build` writes (graphs + q3vl.json + the tokenizer,
// chat template and processor configs copied from the HF checkpoint), and its manifest.
//
// q3vl.json (format_version 1) records everything the runtime needs without reading the
// HF directory again: the source config.json, the precisions and quantization options,
// each graph's file, weights file and IO (names, dtypes, shapes with symbolic dims by
// name), the special token ids, preprocessing parameters, the builder version and the
// size + sha256 of every file in the package.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace q3vl {

inline constexpr int kPackageFormatVersion = 1;
inline constexpr const char* kManifestFileName = "q3vl.json";

struct PackageTensor {
  std::string name;
  std::string dtype;               // "float32", "float16", "int64", "int32", "uint8"
  std::vector<std::string> shape;  // "2048" for a fixed size, "batch_size" for a symbolic dim
};

struct PackageGraph {
  std::string name;          // "vision", "embed", "decoder"
  std::string file;          // "decoder.onnx" (relative to the package)
  std::string weights_file;  // "decoder.onnx.data"
  std::string precision;     // "fp32", "fp16", "int8", "int4"
  std::vector<PackageTensor> inputs;
  std::vector<PackageTensor> outputs;
};

struct PackageFile {
  std::string path;  // relative to the package, '/'-separated
  std::uint64_t size = 0;
  std::string sha256;
};

// What a gptq build calibrated on (q3vl.json "quantization": {"calibration": {...}},
// present only for method "gptq").
struct CalibrationInfo {
  std::string source;           // "built-in" or the --calibration file's name
  std::int64_t conversations = 0;
  std::int64_t tokens = 0;      // prompt tokens whose matmul inputs were recorded
  std::string decoder_precision;  // the decoder that recorded them: "fp32", or "int8" for large models
};

struct QuantizationInfo {
  std::string method;  // "rtn" / "mse" / "gptq" ("" when no graph is quantized)
  std::int64_t block_size = 0;
  bool symmetric = true;
  int accuracy_level = 0;
  // Which kernels the int8/int4 linears use: "q3vl" (q3vl.QuantLinear, the "q3vl" op domain
  // q3vl's runtime registers) or "ort" (com.microsoft.MatMulNBits, any ONNX Runtime).
  // "" when no graph is quantized; packages written before this field read as "ort".
  std::string kernels;
  std::string lm_head_precision;
  std::int64_t int8_edge_layers = 0;  // first/last layers kept at int8
  std::optional<CalibrationInfo> calibration;
  // The per-tensor recipe (src/builder/quant_recipe.h grammar, --lm-head-int8 and
  // --int8-edge-layers included as rules); "" = every linear in the decoder precision.
  std::string recipe;
  // true: a --fake-quant package: fp32 weights holding `recipe`'s dequantized codes (a
  // quality-study tool, as slow and large as fp32).
  bool fake_quant = false;
};

struct TokenIds {
  std::int64_t image_token_id = 0;
  std::int64_t video_token_id = 0;
  std::int64_t vision_start_token_id = 0;
  std::int64_t vision_end_token_id = 0;
  std::vector<std::int64_t> eos_token_ids;  // generation_config.json (or text_config) eos
  std::int64_t pad_token_id = -1;           // -1 = none given
};

struct PackageManifest {
  int format_version = kPackageFormatVersion;
  std::string builder_version;
  std::string model_type;
  std::string decoder_precision;
  std::string vision_precision;
  std::string logits_mode;  // "last": logits hold the last position only
  QuantizationInfo quantization;
  TokenIds tokens;
  // Decoder facts the runtime sizes its KV cache and DeepStack input with.
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t hidden_size = 0;
  std::int64_t vocab_size = 0;
  std::int64_t deepstack_layers = 0;
  // Element type of the decoder's past/present KV tensors: "float32", "float16" (half the
  // KV bytes per decode step and of KV memory) or "int8" (rows of int8 codes with a float16
  // scale per 32 values: 0.53 of float16's bytes for head_dim 128). Packages written
  // before this field read as "float32".
  std::string kv_cache_dtype = "float32";
  std::vector<PackageGraph> graphs;
  std::vector<PackageFile> files;  // empty in packages built before q3vl recorded sizes + sha256
  std::string source_config_json;   // config.json of the checkpoint, as JSON text
  std::string preprocessing_json;   // {"patch_size", ..., "image": {...}, "video": {...}} as JSON text

  // The graph named `name`; throws q3vl::Error(format) naming q3vl.json if absent.
  const PackageGraph& graph(const std::string& name) const;
  bool has_graph(const std::string& name) const;
};

// Reads DIR/q3vl.json. Throws q3vl::Error: io (missing/unreadable), format (bad JSON),
// config (missing field or wrong type, naming the dotted field), unsupported (a newer
// format_version).
PackageManifest load_package_manifest(const std::filesystem::path& package_dir);

// The cheap check every load makes (Model::load, `q3vl inspect`): each file the
// manifest lists exists with the recorded size, so a truncated or swapped weights
// file is a q3vl::Error(format) naming it ("decoder.onnx.data: size: expected N
// bytes, got M bytes") and never reaches ONNX Runtime. A manifest without a file
// list (packages built before q3vl recorded one) passes: there is nothing to check.
// A listed file that is missing is q3vl::Error(io).
void check_package_file_sizes(const std::filesystem::path& package_dir, const PackageManifest& manifest);

// check_package_file_sizes plus every listed file's sha256 (`q3vl inspect --verify`):
// throws q3vl::Error naming the first file that is missing (io) or differs (format).
// Reads every byte of the package. An empty manifest.files means no checksums are
// recorded (an older package): nothing is verified, the caller should say so.
void verify_package_files(const std::filesystem::path& package_dir, const PackageManifest& manifest);

}  // namespace q3vl
