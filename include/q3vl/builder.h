// q3vl build: a Hugging Face Qwen3-VL checkpoint directory -> a q3vl package
// (vision.onnx, embed.onnx, decoder.onnx + external weights, q3vl.json, and the
// tokenizer / chat template / processor / generation configs copied as they are).
//
// The package is written into a temporary directory next to `out_dir` and renamed
// into place at the end, so `out_dir` never holds a half-written package: after any
// failure (bad checkpoint, full disk, an exception) the temporary directory is removed
// and an existing `out_dir` is left untouched. Weights are streamed one tensor at a
// time (peak memory ~ the largest tensor in float32, a few times over, not the model).
// Same checkpoint + same options -> byte-identical package files.
//
// Thread-safety: build_package may run concurrently for different out_dirs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "q3vl/package.h"
#include "q3vl/progress.h"

namespace q3vl {

struct BuildOptions {
  std::filesystem::path model_dir;  // HF checkpoint: config.json + *.safetensors (+ tokenizer, ...)
  std::filesystem::path out_dir;    // the package directory to create
  std::string precision = "fp32";         // decoder: fp32 | fp16 | int8 | int4
  // vision + embedding graphs: fp32 | fp16 | int8 (ONNX Runtime's int8 ops) | q8 (q3vl.QuantLinear;
  // q3vl target only). src/builder/vision_graph.h describes each. "" = the default: int8 when
  // the decoder runs on q3vl's kernels (int4 by default), fp32 otherwise.
  std::string vision_precision;
  // MatMulNBits options (int8 / int4).
  std::int64_t block_size = 32;  // power of two >= 16
  bool symmetric = true;         // false: per-block zero points (--asymmetric)
  // int8/int4 kernels: "q3vl" (q3vl.QuantLinear in the kernel's own layout, int8
  // activations; needs q3vl's runtime) or "ort" (com.microsoft.MatMulNBits, for other
  // ONNX Runtime consumers). See src/kernels/quant_linear.h. "" = the default: q3vl for
  // int4, ort for int8 (src/builder/linear.h, default_kernels, says why).
  std::string kernels;
  int accuracy_level = 0;        // kernels "ort" only: 0 = float math (exact); 4 = int8 activations (faster)
  // Decoder KV cache element type: "float16" (half the KV bytes per decode step and of
  // KV memory), "int8" (int8 codes with a float16 scale per 32 values, 0.53 of float16's
  // bytes; not for --target ort-genai) or "float32". "" = the default: float16 when the linears use the q3vl
  // kernels, float32 otherwise (standard packages for other ONNX Runtime consumers).
  std::string kv_cache;
  // rtn | mse (per-block scale search, lower error) | gptq (mse's scales plus error
  // compensation weighted by the decoder's inputs on calibration prompts; see
  // src/builder/gptq.h and calibration.h. Slower to build; lowest error.)
  std::string quant_method = "mse";
  // gptq: JSON Lines, one conversation per line (what `q3vl run --messages` reads);
  // empty = the built-in synthetic set.
  std::filesystem::path calibration_file;
  bool lm_head_int8 = false;         // with int4: keep lm_head at int8 (the rule "lm_head=int8")
  std::int64_t int8_edge_layers = 0;  // with int4: first and last N layers at int8 ("*@first:N+last:N=int8")
  // Per-tensor formats (int4 | nl4 | int5 | int6 | int8 [:BLOCK]) by rules such as
  // "lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4", or a preset name ("q4km"); the
  // grammar is in src/builder/quant_recipe.h. With --precision int4 or int8 (tensors no
  // rule matches keep it). The two flags above come first, as rules. The build prints the
  // recipe's bytes per weight. nl4, int5 and int6 need kernels this build may not have
  // (the build says so before reading any weight). "" = the default: "q4km" (the format
  // bench/quality/ chose: at most llama.cpp Q4_K_M's KL divergence at no more bytes) for
  // int4 on q3vl's kernels, no rules otherwise; "none" = no rules (--precision everywhere).
  std::string quant_recipe;
  // Quality-study tool: with precision fp32, every linear a rule of this recipe matches
  // holds the dequantized codes of its format (same quantizer, scales rounded to fp16 as
  // the kernels store them) as fp32, so a format's accuracy is measured before its
  // kernels exist. As large and slow as fp32. Not with quant_recipe.
  std::string fake_quant;
  bool all_logits = false;  // decoder returns logits for every position (tests; default: last only)
  bool include_vision = true;
  // "q3vl" (q3vl.json + graphs for q3vl's runtime) or "ort-genai" (genai_config.json +
  // graphs with ONNX Runtime GenAI's IO contract; src/builder/genai_package.h).
  std::string target = "q3vl";
  bool deepstack = true;  // ort-genai only: false = the plain layout without DeepStack (--no-deepstack)
  bool force = false;  // replace an existing out_dir
  ProgressMode progress = ProgressMode::automatic;
};

struct BuildResult {
  PackageManifest manifest;
  std::uint64_t package_bytes = 0;
  // Bytes per weight of the decoder's linear layers in the formats the recipe names
  // (for fake_quant: what a real package of that recipe would store).
  double linear_bytes_per_weight = 0.0;
};

// Builds the package. Throws q3vl::Error: usage (bad option, out_dir exists without
// force), io (unreadable input, unwritable output, full disk: names the file), config /
// unsupported (config.json the builder cannot handle: names the field), shape (a missing or
// misshaped tensor: names it and both shapes). Nothing is left under out_dir on failure.
BuildResult build_package(const BuildOptions& options);

}  // namespace q3vl
