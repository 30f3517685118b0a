// Mixture-of-Experts decoder parity with Hugging Face (committed goldens,
// tests/goldens/model/cases/*/tiny-moe.safetensors, made by make_goldens.py with HF's
// eager experts): the FP32 decoder built from the tiny-moe checkpoint in the Hub's expert
// layout and in transformers 5.x's, on every golden case (images, video, multi-turn):
//   - each sparse layer's router logits (prefill and every greedy step compared) within
//     1e-4 of HF's, and the top-k expert sets identical;
//   - prefill logits within 2e-4 (relative to max |logit|, as the dense test) where stored;
//   - greedy tokens equal HF's up to the first step whose HF margin is within our error.
// Then INT8 / INT4 (QMoE experts and MatMulNBits, or q3vl.MoE and q3vl.QuantLinear) against
// FP32: logit cosine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "decoder_runner.h"
#include "golden_inputs.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "q3vl/builder.h"
#include "q3vl/config.h"
#include "support/similarity.h"

namespace q3vl::testing {
namespace {

constexpr const char* kPreset = "tiny-moe";  // the goldens' name for both layouts

std::int64_t argmax(const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

// The smallest gap, over the sparse layers, between the k-th and (k+1)-th router logit of
// a prompt's last token in HF's FP32 run (router_logits [sparse layers, T, E]): how far the
// token whose logits the quantized tests compare sits from swapping an expert.
double last_token_router_margin(const GoldenF32& router_logits, const TextConfig& text) {
  const std::int64_t layers = router_logits.dim(0), T = router_logits.dim(1), E = router_logits.dim(2);
  const auto k = static_cast<std::size_t>(text.num_experts_per_tok);
  double margin = std::numeric_limits<double>::infinity();
  for (std::int64_t l = 0; l < layers; ++l) {
    const auto row = router_logits.values.begin() + (l * T + T - 1) * E;
    std::vector<float> sorted(row, row + E);
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    margin = std::min(margin, double(sorted[k - 1]) - double(sorted[k]));
  }
  return margin;
}

// Router logits this close to a top-k tie at the last token flip under 4-6-bit weight noise:
// one more or one fewer expert there moves the compared logits by far more than the
// rounding does (2026-12-06: text_only, 0.047 from a tie in the first sparse layer, drops
// to cosine 0.83-0.86 when only o_proj changes format under gptq, 0.997 otherwise).
constexpr double kClearMargin = 0.1;

std::set<std::int64_t> top_k(const float* logits, std::int64_t experts, std::int64_t k) {
  std::vector<std::int64_t> order(experts);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](auto a, auto b) { return logits[a] > logits[b]; });
  return {order.begin(), order.begin() + k};
}

struct RouterCheck {
  double max_diff = 0;
  std::int64_t tokens = 0;
};

// Ours [rows, E] per sparse layer vs HF's rows [first, first + rows) of `hf` [L, R, E].
void compare_router(const std::vector<HostF32>& ours, const GoldenF32& hf, std::int64_t first, const TextConfig& t,
                    RouterCheck& check, const std::string& where) {
  const std::int64_t E = t.num_experts, R = hf.shape.at(1);
  ASSERT_EQ(static_cast<std::int64_t>(ours.size()), hf.shape.at(0)) << where;
  for (std::size_t l = 0; l < ours.size(); ++l) {
    const std::int64_t rows = ours[l].shape.at(0);
    ASSERT_EQ(ours[l].shape.at(1), E);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* a = ours[l].data.data() + r * E;
      const float* b = hf.values.data() + (static_cast<std::int64_t>(l) * R + first + r) * E;
      for (std::int64_t e = 0; e < E; ++e) check.max_diff = std::max(check.max_diff, double(std::abs(a[e] - b[e])));
      EXPECT_EQ(top_k(a, E, t.num_experts_per_tok), top_k(b, E, t.num_experts_per_tok))
          << where << " sparse layer " << l << " row " << first + r;
      ++check.tokens;
    }
  }
}

void check_layout(const char* checkpoint) {
  const GoldenSet set = GoldenSet::open();
  const ModelConfig config = load_model_config(checkpoint_dir(checkpoint));
  ASSERT_TRUE(config.is_moe());
  const auto dir = fresh_dir(std::string("golden_") + checkpoint);
  builder::DecoderGraphOptions options;
  options.expose_router_logits = true;
  DecoderRunner decoder(checkpoint_dir(checkpoint), dir, config, options);
  const std::int64_t V = config.text.vocab_size;
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  const auto table = io::Checkpoint::open(checkpoint_dir(checkpoint));
  const io::TensorView embed_table = table.tensor("model.language_model.embed_tokens.weight");
  const std::int64_t D = config.text.hidden_size;
  auto embed = [&](std::int64_t id) {  // HF's embed_tokens row, bf16 widened exactly
    std::vector<float> row(D);
    for (std::int64_t d = 0; d < D; ++d) {
      std::uint16_t bits;
      std::memcpy(&bits, embed_table.data.data() + (id * D + d) * 2, 2);
      row[d] = io::bf16_to_f32(bits);
    }
    return row;
  };

  std::int64_t cases = 0, logit_cases = 0;
  for (const auto& name : set.case_names()) {
    const GoldenCase c = set.load_case(name);
    SCOPED_TRACE(std::string(checkpoint) + " / " + name);
    ASSERT_TRUE(c.has_model(kPreset, "router_logits"));
    ++cases;
    const auto in = load_golden_decoder_inputs(c, kPreset, taps, config.image_token_id, config.video_token_id);
    auto step = decoder.run(1, in.tokens, in.embeds, in.positions, in.deepstack, {});
    RouterCheck router;
    compare_router(step.router_logits, c.model_f32(kPreset, "router_logits"), 0, config.text, router, "prefill");

    const GoldenF32 max_logit = c.model_f32(kPreset, "greedy_max_abs_logit");
    double bound = 2e-4 * std::max(1.0, double(max_logit.values[0]));
    double max_diff = -1;
    if (c.has_model(kPreset, "prefill_logits")) {
      ++logit_cases;
      const GoldenF32 ref = c.model_f32(kPreset, "prefill_logits");
      ASSERT_EQ(static_cast<std::int64_t>(step.logits.data.size()), V);
      double max_ref = 0;
      max_diff = 0;
      for (std::int64_t v = 0; v < V; ++v) {
        max_ref = std::max(max_ref, double(std::abs(ref.values[v])));
        max_diff = std::max(max_diff, double(std::abs(ref.values[v] - step.logits.data[v])));
      }
      bound = 2e-4 * std::max(1.0, max_ref);
      EXPECT_LE(max_diff, bound) << "prefill logits, T=" << in.tokens;
    }

    const GoldenI64 greedy = c.model_i64(kPreset, "greedy_ids");
    const GoldenF32 margin = c.model_f32(kPreset, "greedy_margin");
    const GoldenF32 decode_router = c.model_f32(kPreset, "router_logits_decode");
    std::vector<HostF32> cache = step.present;
    std::int64_t token = argmax(step.logits.data);
    std::int64_t compared = 0;
    for (std::int64_t s = 0; s < greedy.numel(); ++s) {
      if (margin.values[s] <= 2 * bound) break;
      ASSERT_EQ(token, greedy.values[s]) << "greedy step " << s;
      ++compared;
      if (s + 1 == greedy.numel()) break;
      const std::int64_t position = in.tokens + s + in.rope_delta;
      auto next = decoder.run(1, 1, embed(token), {position, position, position}, {}, cache);
      compare_router(next.router_logits, decode_router, s, config.text, router, "greedy step " + std::to_string(s + 1));
      cache = next.present;
      token = argmax(next.logits.data);
    }
    std::printf("[moe parity %s/%s] T=%lld prefill max|diff|=%.3g router max|diff|=%.3g over %lld token-layers, "
                "greedy steps matched=%lld\n",
                checkpoint, name.c_str(), static_cast<long long>(in.tokens), max_diff, router.max_diff,
                static_cast<long long>(router.tokens), static_cast<long long>(compared));
    EXPECT_LE(router.max_diff, 1e-4);
    EXPECT_GE(compared, 1);
  }
  EXPECT_EQ(cases, 10);
  EXPECT_EQ(logit_cases, 5);
}

TEST(DecoderMoe, Fp32MatchesHfHubLayout) { check_layout("tiny-moe"); }
TEST(DecoderMoe, Fp32MatchesHfTransformers5Layout) { check_layout("tiny-moe-hf5"); }

// INT8 / INT4 decoders (QMoE experts, router at FP32, block 32) against the FP32 one on
// every golden case: prefill logit cosine, printed. Measured 2026-12-05 (worst / mean):
//   int8 mse 0.99983 / 0.99987 (QMoE 8-bit runs int8 activations, test_moe_block.cpp)
//   int4 mse 0.98715 / 0.98892, int4 mse + INT8 lm_head (--lm-head-int8) 0.99008 / 0.99186
//   int4 gptq (`q3vl build --quant-method gptq`: per-expert statistics from the tokens
//   routed to each expert, builder/moe_calibration.h)
//   0.99478 / 0.99616 (top-1 agreement 9/10, mse's 5/10; 2026-12-06 with the experts on
//   q3vl.MoE: 0.99506 / 0.99615; 2026-12-06 with recipe none: 0.99510 / 0.99616); with GPTQ on the dense
//   matmuls only and the experts at mse (an ablation) 0.99004 / 0.99155, under this bound
//   q3vl kernels (q3vl.MoE experts, QuantLinear elsewhere, int8 activations), 2026-12-06:
//   int8 mse 0.99979 / 0.99984, int4 mse 0.98742 / 0.98893
// `q3vl build --precision int4`'s default recipe q4km (nl4 experts and attention, 6-bit v_proj
// in the more_bits layers and lm_head), 2026-12-06, worst of all cases / of the cases clear
// of a routing tie at the last token (kClearMargin) / mean:
//   mse 0.98698 / 0.99005 / 0.99064; gptq 0.87007 / 0.99695 / 0.98461. gptq's outlier is
//   text_only (0.870, every other case >= 0.996): its last token sits 0.047 from a top-4
//   tie in the first sparse layer, and q4km's weight noise moves it across (int4 gptq stays
//   on the same side).
// rtn/mse miss 0.99 with every matmul at 4 bits for the reason the dense builds do
// (test_precision.cpp: tiny-untied mse 0.9820): each INT4 matmul keeps ~8 % relative error
// on Gaussian weights; QMoE itself reproduces the dequantized weights to 1e-7
// (test_moe_block.cpp). GPTQ cancels much of that error along the directions the
// calibration prompts use (chat prompts with images, like the golden cases, but none of
// their media or text). Each bound sits just under its figure, so a regression in the
// packing, the kernels or the per-expert statistics shows.
TEST(DecoderMoe, QuantizedTracksFp32) {
  const GoldenSet set = GoldenSet::open();
  const ModelConfig config = load_model_config(checkpoint_dir(kPreset));
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  std::vector<GoldenDecoderInputs> cases;
  std::vector<std::string> names;
  std::vector<double> last_token_margins;
  for (const auto& name : set.case_names()) {
    const GoldenCase c = set.load_case(name);
    cases.push_back(load_golden_decoder_inputs(c, kPreset, taps, config.image_token_id, config.video_token_id));
    names.push_back(name);
    last_token_margins.push_back(last_token_router_margin(c.model_f32(kPreset, "router_logits"), config.text));
  }
  auto run_all = [&](DecoderRunner& runner) {
    std::vector<std::vector<float>> logits;
    for (const auto& in : cases) logits.push_back(runner.run(1, in.tokens, in.embeds, in.positions, in.deepstack, {}).logits.data);
    return logits;
  };
  auto run = [&](const builder::DecoderGraphOptions& options, const std::string& label) {
    DecoderRunner runner(checkpoint_dir(kPreset), fresh_dir("moe_precision_" + label), config, options);
    return run_all(runner);
  };
  const auto reference = run({}, "fp32");
  struct Variant {
    const char* label;
    builder::WeightPrecision precision;
    builder::QuantMethod method;  // gptq: built by build_package, calibrated on the built-in set
    bool lm_head_int8;
    double min_cosine;
    builder::LinearKernels kernels = builder::LinearKernels::ort;  // DecoderGraphOptions variants
    const char* recipe = "none";  // a per-tensor recipe (builder/quant_recipe.h) or none
    // The bound on the cases whose last token is clear of a routing tie (kClearMargin);
    // 0 = min_cosine on every case.
    double min_cosine_clear = 0;
  };
  for (const Variant& v :
       {Variant{"int8", builder::WeightPrecision::int8, builder::QuantMethod::mse, false, 0.9998},
        Variant{"int4", builder::WeightPrecision::int4, builder::QuantMethod::mse, false, 0.985},
        Variant{"int4-lm8", builder::WeightPrecision::int4, builder::QuantMethod::mse, true, 0.99},
        Variant{"int4-gptq", builder::WeightPrecision::int4, builder::QuantMethod::gptq, false, 0.993},
        Variant{"int8-q3vl", builder::WeightPrecision::int8, builder::QuantMethod::mse, false, 0.9997,
                builder::LinearKernels::q3vl},
        Variant{"int4-q3vl", builder::WeightPrecision::int4, builder::QuantMethod::mse, false, 0.987,
                builder::LinearKernels::q3vl},
        Variant{"q4km-q3vl", builder::WeightPrecision::int4, builder::QuantMethod::mse, false, 0.986,
                builder::LinearKernels::q3vl, "q4km", 0.99},
        Variant{"q4km-gptq", builder::WeightPrecision::int4, builder::QuantMethod::gptq, false, 0.85,
                builder::LinearKernels::q3vl, "q4km", 0.996}}) {
    std::vector<std::vector<float>> logits;
    if (v.method == builder::QuantMethod::gptq) {
      BuildOptions build;
      build.model_dir = checkpoint_dir(kPreset);
      build.out_dir = fresh_dir("moe_precision_" + std::string(v.label));
      build.precision = builder::to_string(v.precision);
      build.block_size = 32;
      build.quant_method = "gptq";
      build.lm_head_int8 = v.lm_head_int8;
      build.quant_recipe = v.recipe;
      // gptq calibrates through the package's own vision graph; fp32 keeps these figures
      // about the decoder's quantization alone, whatever the int4 vision default is.
      build.vision_precision = "fp32";
      build.force = true;
      build.progress = ProgressMode::quiet;
      build_package(build);
      DecoderRunner runner(build.out_dir, config);
      logits = run_all(runner);
    } else {
      builder::DecoderGraphOptions options;
      options.layers.precision = v.precision;
      options.layers.quant.method = v.method;
      options.layers.quant.block_size = 32;
      options.layers.kernels = v.kernels;
      if (v.lm_head_int8) options.recipe = builder::parse_quant_recipe("lm_head=int8");
      if (std::string_view(v.recipe) != builder::kNoRecipe) options.recipe = builder::parse_quant_recipe(v.recipe);
      logits = run(options, v.label);
    }
    double worst = 1, worst_clear = 1, sum = 0;
    int agree = 0;
    std::string per_case;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const double cs = cosine(logits[i], reference[i]);
      worst = std::min(worst, cs);
      if (last_token_margins[i] >= kClearMargin) worst_clear = std::min(worst_clear, cs);
      sum += cs;
      agree += argmax(logits[i]) == argmax(reference[i]);
      char text[96];
      std::snprintf(text, sizeof text, " %s %.4f", names[i].c_str(), cs);
      per_case += text;
    }
    std::printf("[moe precision %s] golden cases %zu: cosine mean %.6f min %.6f (clear of a routing tie: %.6f), "
                "top-1 agreement %d/%zu;%s\n",
                v.label, cases.size(), sum / double(cases.size()), worst, worst_clear, agree, cases.size(),
                per_case.c_str());
    EXPECT_GE(worst, v.min_cosine) << v.label;
    EXPECT_GE(worst_clear, v.min_cosine_clear > 0 ? v.min_cosine_clear : v.min_cosine) << v.label;
  }
}

}  // namespace
}  // namespace q3vl::testing
