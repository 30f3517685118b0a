// q3vl build: HF checkpoint directory -> q3vl package (include/q3vl/builder.h).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>

#include "q3vl/builder.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

RunFunction setup_build(CLI::App& command) {
  auto options = std::make_shared<BuildOptions>();
  auto quiet = std::make_shared<bool>(false);
  auto asymmetric = std::make_shared<bool>(false);
  auto no_vision = std::make_shared<bool>(false);

  command.add_option("--model", options->model_dir, "Hugging Face checkpoint directory")->required();
  command.add_option("--out", options->out_dir, "Package directory to create")->required();
  command.add_option("--precision", options->precision, "Decoder weights: fp32, fp16, int8, int4")
      ->check(CLI::IsMember({"fp32", "fp16", "int8", "int4"}));
  command.add_option("--vision-precision", options->vision_precision,
                     "Vision + embedding graphs: fp32, fp16, int8 (ONNX Runtime's int8 ops; default with an "
                     "int4 decoder on q3vl's kernels, fp32 otherwise) or q8 (q3vl's kernels: 8-bit weights and "
                     "int8 activations per 32-value block)")
      ->check(CLI::IsMember({"fp32", "fp16", "int8", "q8"}));
  command.add_option("--block-size", options->block_size, "int8/int4 block size (power of two >= 16; default 32)");
  command.add_flag("--asymmetric", *asymmetric, "int8/int4 with per-block zero points");
  command.add_option("--kernels", options->kernels,
                     "int8/int4 kernels: q3vl (q3vl's own op in the kernel's layout; default for int4) or ort "
                     "(com.microsoft.MatMulNBits, for other ONNX Runtime consumers; default for int8)")
      ->check(CLI::IsMember({"q3vl", "ort"}));
  command.add_option("--accuracy-level", options->accuracy_level,
                     "With --kernels ort: MatMulNBits accuracy_level: 0 exact float math (default), 4 int8 "
                     "activations (faster)");
  command.add_option("--kv-cache", options->kv_cache,
                     "Decoder KV cache: float16 (half the KV memory and bytes per token; default with q3vl "
                     "kernels), int8 (0.53 of float16's: int8 codes with a float16 scale per 32 values) or "
                     "float32 (default otherwise)")
      ->check(CLI::IsMember({"float16", "int8", "float32"}));
  command.add_option("--quant-method", options->quant_method,
                     "rtn (round to nearest), mse (per-block scale search; default) or gptq (mse plus "
                     "error compensation from calibration prompts; slower, most accurate)")
      ->check(CLI::IsMember({"rtn", "mse", "gptq"}));
  command.add_option("--calibration", options->calibration_file,
                     "gptq: JSON Lines file, one conversation per line as --messages takes it "
                     "(default: a built-in synthetic set)");
  command.add_flag("--lm-head-int8", options->lm_head_int8, "With int4: keep lm_head at int8");
  command.add_option("--int8-edge-layers", options->int8_edge_layers,
                     "With int4: keep the first and last N decoder layers at int8");
  command.add_option("--quant-recipe", options->quant_recipe,
                     "Per-tensor formats: rules TENSORS[@LAYERS]=FORMAT separated by ';' (e.g. "
                     "\"lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4\"; formats int4, nl4, int5, int6, int8[:BLOCK]; "
                     "layers all, first:N, last:N, more_bits, N), a preset (q4km: the default for int4 on q3vl's "
                     "kernels) or none (--precision everywhere); with --precision int4 or int8");
  command.add_option("--fake-quant", options->fake_quant,
                     "Quality-study tool, with --precision fp32: store each linear a rule of this recipe matches "
                     "as the fp32 dequantized codes of its format (as large and slow as fp32)");
  command.add_flag("--all-logits", options->all_logits,
                   "Decoder returns logits for every position (default: last position only)");
  command.add_flag("--no-vision", *no_vision, "Skip the vision graph (text-only package)");
  command.add_option("--target", options->target,
                     "Package format: q3vl (default; q3vl's runtime) or ort-genai (ONNX Runtime GenAI, "
                     "genai_config.json, DeepStack kept)")
      ->check(CLI::IsMember({"q3vl", "ort-genai"}));
  auto no_deepstack = std::make_shared<bool>(false);
  command.add_flag("--no-deepstack", *no_deepstack,
                   "With --target ort-genai: the plain layout without DeepStack (differs from HF on images)");
  command.add_flag("--force", options->force, "Replace an existing output directory");
  command.add_flag("--quiet", *quiet, "No progress output");

  return [options, quiet, asymmetric, no_vision, no_deepstack]() {
    options->deepstack = !*no_deepstack;
    options->symmetric = !*asymmetric;
    options->include_vision = !*no_vision;
    if (*quiet) options->progress = ProgressMode::quiet;
    const auto start = std::chrono::steady_clock::now();
    const auto result = build_package(*options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!*quiet) {
      std::fprintf(stderr, "wrote %s: %zu graphs, %.3f GB, decoder %s, vision %s, in %.1f s\n",
                   options->out_dir.string().c_str(), result.manifest.graphs.size(),
                   static_cast<double>(result.package_bytes) / 1e9, result.manifest.decoder_precision.c_str(),
                   options->include_vision ? result.manifest.vision_precision.c_str() : "absent", seconds);
      const QuantizationInfo& q = result.manifest.quantization;
      if (!q.recipe.empty()) {
        std::fprintf(stderr, "%s %s: %.4f byte/weight in the decoder's linear layers\n",
                     q.fake_quant ? "fake-quant recipe" : "recipe", q.recipe.c_str(), result.linear_bytes_per_weight);
      }
    }
    return 0;
  };
}

}  // namespace
}  // namespace q3vl::tools

Q3VL_REGISTER_SUBCOMMAND("build", "Build a q3vl package (ONNX graphs + manifest) from a Hugging Face checkpoint",
                         q3vl::tools::setup_build);
