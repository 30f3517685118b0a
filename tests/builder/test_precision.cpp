// FP16 / INT8 / INT4 decoders against the FP32 decoder on the tiny fixture checkpoints:
// cosine similarity of the prefill logits and top-1 agreement, with fixed bounds per
// precision, on every HF golden case and on prompts made of embedding-table rows of
// seeded token ids (text-only MRoPE positions) with a DeepStack block. Also RTN vs the mse
// scale search vs GPTQ (through `q3vl build`'s calibration), printed for the issue note.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "decoder_runner.h"
#include "golden_inputs.h"
#include "io/safetensors.h"
#include <random>
#include "q3vl/builder.h"
#include "q3vl/config.h"
#include "support/similarity.h"

namespace q3vl::testing {
namespace {

// tokens, embeds [T, D], positions [3, T], deepstack [K, T, D]
using Prompt = GoldenDecoderInputs;

struct Variant {
  const char* label;
  builder::WeightPrecision precision;
  builder::QuantMethod method;  // gptq: built by build_package, calibrated on the built-in set
  bool symmetric;
  bool lm_head_int8;             // llama.cpp's Q4 files keep the output matrix at 6 bits
  double min_cosine_golden;      // worst case over the HF golden cases
  double min_cosine_synthetic;   // worst case over the synthetic prompts
  double min_top1_share;         // share of all cases whose top-1 token equals FP32's
  // The int8/int4 kernels: `q3vl build`'s default for the precision (builder::default_kernels:
  // q3vl.QuantLinear for int4, MatMulNBits for int8) unless this forces q3vl's.
  bool force_q3vl_kernels = false;
  // A per-tensor recipe (builder/quant_recipe.h) over the precision; "" = none.
  const char* recipe = "";
};

// Bounds. fp16 must track FP32 to 1e-5 in cosine with the same top-1 token everywhere;
// int8 to 2e-4 (measured worst 0.99993) with the same top-1 on >= 80 % of prompts (the
// random models have top-1/top-2 gaps down to 5e-4, hf-reference-facts.md).
// INT4 at block 32, measured 2026-12-05, worst golden / worst synthetic:
//   tiny:        rtn 0.9817, mse 0.9851, mse asymmetric 0.9830, mse + INT8 lm_head 0.9880
//                (all cases), gptq 0.9957 / 0.9806, gptq + INT8 lm_head 0.9971 / 0.9848
//   tiny-untied: rtn 0.9817, mse 0.9820, mse asymmetric 0.9860, mse + INT8 lm_head 0.9849,
//                gptq 0.9941 / 0.9759, gptq + INT8 lm_head 0.9954 / 0.9789
// rtn and mse cannot reach the 0.99: each INT4 matmul keeps ~8 % relative error
// on Gaussian weights whatever the per-block scale. GPTQ cancels much of it along the
// directions the calibration inputs use, so the golden cases (chat prompts with images,
// like the built-in calibration set, but none of its media or text) clear 0.99. The
// synthetic prompts (random token ids, random DeepStack features) are unlike any
// calibration prompt, and there GPTQ is no better than mse. Each bound sits just under
// its figure, so a regression in the quantizer or the packing shows.
const Variant kVariants[] = {
    {"fp16", builder::WeightPrecision::fp16, builder::QuantMethod::mse, true, false, 0.99999, 0.99999, 1.0},
    {"int8-mse", builder::WeightPrecision::int8, builder::QuantMethod::mse, true, false, 0.9998, 0.9998, 0.8},
    // int8 weights with q3vl's int8 activations (not the int8 default, see default_kernels):
    // measured 2026-12-05 worst golden 0.99983 / 0.99984, synthetic 0.99984 / 0.99979.
    {"int8-mse-q3vl", builder::WeightPrecision::int8, builder::QuantMethod::mse, true, false, 0.9997, 0.9997, 0.8,
     true},
    {"int4-rtn", builder::WeightPrecision::int4, builder::QuantMethod::rtn, true, false, 0.978, 0.978, 0.3},
    {"int4-mse", builder::WeightPrecision::int4, builder::QuantMethod::mse, true, false, 0.978, 0.978, 0.3},
    {"int4-mse-asym", builder::WeightPrecision::int4, builder::QuantMethod::mse, false, false, 0.978, 0.978, 0.3},
    {"int4-mse-lm8", builder::WeightPrecision::int4, builder::QuantMethod::mse, true, true, 0.982, 0.982, 0.3},
    {"int4-gptq", builder::WeightPrecision::int4, builder::QuantMethod::gptq, true, false, 0.99, 0.975, 0.5},
    {"int4-gptq-lm8", builder::WeightPrecision::int4, builder::QuantMethod::gptq, true, true, 0.99, 0.978, 0.5},
    // `q3vl build --precision int4`'s default recipe (nl4, 6-bit v/down in llama.cpp's
    // more_bits layers, 6-bit lm_head), measured 2026-12-06 worst golden / synthetic:
    //   mse  tiny 0.98995 / 0.99051, tiny-untied 0.98836 / 0.98455
    //   gptq tiny 0.99762 / 0.97973, tiny-untied 0.99697 / 0.97442 (top-1 13/15, 11/15)
    // gptq splits q/k/v there (q/k nl4, v_proj 6-bit) and reads the stacked statistics.
    {"q4km-mse", builder::WeightPrecision::int4, builder::QuantMethod::mse, true, false, 0.988, 0.984, 0.7, false,
     "q4km"},
    {"q4km-gptq", builder::WeightPrecision::int4, builder::QuantMethod::gptq, true, false, 0.996, 0.973, 0.7, false,
     "q4km"},
};

std::int64_t argmax(const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

// Prompts of `lengths` tokens: rows of the embedding table for seeded random ids,
// positions 0..T-1 on all three MRoPE rows, and a DeepStack block on tokens [2, 10).
std::vector<Prompt> synthetic_cases(const std::filesystem::path& checkpoint_path,
                                                 const ModelConfig& config) {
  const auto checkpoint = io::Checkpoint::open(checkpoint_path);
  const auto table = checkpoint.tensor("model.language_model.embed_tokens.weight").to_f32();
  const std::int64_t D = config.text.hidden_size;
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  std::vector<Prompt> cases;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::int64_t> token(0, 151642);
  for (std::int64_t T : {12, 17, 33, 64, 100}) {
    Prompt in;
    in.tokens = T;
    for (std::int64_t s = 0; s < T; ++s) {
      const std::int64_t id = token(rng);
      in.embeds.insert(in.embeds.end(), table.begin() + id * D, table.begin() + (id + 1) * D);
    }
    for (int r = 0; r < 3; ++r) {
      for (std::int64_t s = 0; s < T; ++s) in.positions.push_back(s);
    }
    in.deepstack.assign(static_cast<std::size_t>(taps * T * D), 0.0f);
    const auto features = random_floats(static_cast<std::size_t>(taps * 8 * D), static_cast<unsigned>(T), 0.4f);
    for (std::int64_t k = 0; k < taps; ++k) {
      for (std::int64_t s = 2; s < 10; ++s) {
        for (std::int64_t d = 0; d < D; ++d) in.deepstack[(k * T + s) * D + d] = features[(k * 8 + s - 2) * D + d];
      }
    }
    cases.push_back(std::move(in));
  }
  return cases;
}

void check_preset(const std::string& preset) {
  const ModelConfig config = load_model_config(checkpoint_dir(preset.c_str()));
  const auto root = fresh_dir("precision_" + preset);
  std::vector<Prompt> cases = synthetic_cases(checkpoint_dir(preset.c_str()), config);
  // Every committed HF golden case too (HF's inputs_embeds, positions, DeepStack).
  const GoldenSet set = GoldenSet::open();
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  for (const auto& name : set.case_names()) {
    const GoldenCase c = set.load_case(name);
    if (c.has_model(preset, "inputs_embeds")) {
      cases.push_back(load_golden_decoder_inputs(c, preset, taps, config.image_token_id, config.video_token_id));
    }
  }
  ASSERT_FALSE(cases.empty());
  const std::size_t synthetic = 5;  // cases [0, 5) are synthetic_cases(), the rest HF golden cases
  ASSERT_GT(cases.size(), synthetic);

  auto run_all = [&](DecoderRunner& runner) {
    std::vector<std::vector<float>> logits;
    for (const auto& in : cases) logits.push_back(runner.run(1, in.tokens, in.embeds, in.positions, in.deepstack, {}).logits.data);
    return logits;
  };
  auto run_options = [&](const builder::DecoderGraphOptions& options, const std::string& label) {
    std::filesystem::create_directories(root / label);
    DecoderRunner runner(checkpoint_dir(preset.c_str()), root / label, config, options);
    return run_all(runner);
  };
  const auto reference = run_options(builder::DecoderGraphOptions{}, "fp32");

  for (const Variant& v : kVariants) {
    std::vector<std::vector<float>> logits;
    if (v.method == builder::QuantMethod::gptq) {
      BuildOptions build;
      build.model_dir = checkpoint_dir(preset.c_str());
      build.out_dir = root / v.label;
      build.precision = builder::to_string(v.precision);
      build.block_size = 32;
      build.quant_method = "gptq";
      build.lm_head_int8 = v.lm_head_int8;
      build.quant_recipe = *v.recipe ? v.recipe : std::string(builder::kNoRecipe);
      // gptq calibrates through the package's own vision graph; fp32 keeps these figures
      // about the decoder's quantization alone, whatever the int4 vision default is.
      build.vision_precision = "fp32";
      build.progress = ProgressMode::quiet;
      build_package(build);
      DecoderRunner runner(root / v.label, config);
      logits = run_all(runner);
    } else {
      builder::DecoderGraphOptions options;
      options.layers.precision = v.precision;
      options.layers.quant.method = v.method;
      options.layers.quant.symmetric = v.symmetric;
      options.layers.quant.block_size = 32;
      options.layers.kernels =
          v.force_q3vl_kernels ? builder::LinearKernels::q3vl : builder::default_kernels(v.precision);
      if (v.lm_head_int8) options.recipe = builder::parse_quant_recipe("lm_head=int8");
      if (*v.recipe) options.recipe = builder::parse_quant_recipe(v.recipe);
      logits = run_options(options, v.label);
    }
    double worst_golden = 1.0, worst_synthetic = 1.0, sum_golden = 0;
    int agree = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const double cs = cosine(logits[i], reference[i]);
      if (i < synthetic) {
        worst_synthetic = std::min(worst_synthetic, cs);
      } else {
        worst_golden = std::min(worst_golden, cs);
        sum_golden += cs;
      }
      agree += argmax(logits[i]) == argmax(reference[i]);
    }
    const double share = double(agree) / double(cases.size());
    std::printf("[precision %s %s] golden cases %zu: cosine mean %.6f min %.6f; synthetic %zu: min %.6f; "
                "top-1 agreement %d/%zu\n",
                preset.c_str(), v.label, cases.size() - synthetic, sum_golden / double(cases.size() - synthetic),
                worst_golden, synthetic, worst_synthetic, agree, cases.size());
    EXPECT_GE(worst_golden, v.min_cosine_golden) << v.label;
    EXPECT_GE(worst_synthetic, v.min_cosine_synthetic) << v.label;
    EXPECT_GE(share, v.min_top1_share) << v.label;
  }
}

TEST(Precision, QuantizedDecodersTrackFp32Tied) { check_preset("tiny"); }
TEST(Precision, QuantizedDecodersTrackFp32Untied) { check_preset("tiny-untied"); }

}  // namespace
}  // namespace q3vl::testing
