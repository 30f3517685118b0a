// Fake quantization (q3vl build --fake-quant): an fp32 decoder whose linears hold the
// dequantized codes must compute what a real quantized decoder computes. MatMulNBits at
// accuracy_level 0 multiplies float activations by exactly dequant(W) (float32 scales), so
// a fake recipe with the ort kernels' scales equals the real ort package to float rounding,
// on a recipe that mixes formats inside the stacked q/k/v and gate/up/down projections.
// Also the package side: the manifest records the recipe, and bad combinations are refused
// before any weight is read.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "builder/quant_recipe.h"
#include "decoder_runner.h"
#include "q3vl/builder.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "support/shell.h"

namespace q3vl::testing {
namespace {

constexpr const char* kRecipe = "lm_head=int8;v_proj,down_proj@more_bits=int8;*=int4";

std::vector<float> logits_of(const char* label, const ModelConfig& config, const builder::DecoderGraphOptions& o) {
  const std::int64_t T = 11, D = config.text.hidden_size;
  std::vector<std::int64_t> positions;
  for (int r = 0; r < 3; ++r) {
    for (std::int64_t s = 0; s < T; ++s) positions.push_back(s);
  }
  DecoderRunner runner(checkpoint_dir("tiny"), fresh_dir(std::string("fake_quant_") + label), config, o);
  return runner.run(1, T, random_floats(static_cast<std::size_t>(T * D), 77, 1.0f), positions, {}, {}).logits.data;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

// The logits of one decoder built as `recipe` on `kernels` for real, of its fake-quantized
// fp32 twin, and of the plain fp32 decoder, with the figures the tests compare.
struct TwinLogits {
  double scale = 0;           // max |real logit|
  double fake_vs_real = 0;    // max |fake - real|
  double quant_vs_fp32 = 0;   // max |fake - fp32|: what quantization moved
  double cosine = 0;          // real vs fake
};

TwinLogits twin_logits(const char* label, builder::LinearKernels kernels, const char* recipe) {
  const ModelConfig config = load_model_config(checkpoint_dir("tiny"));
  builder::DecoderGraphOptions real;
  real.layers.precision = builder::WeightPrecision::int4;
  real.layers.quant.method = builder::QuantMethod::mse;
  real.layers.quant.block_size = 32;
  real.layers.kernels = kernels;
  real.layers.accuracy_level = 0;
  real.recipe = builder::parse_quant_recipe(recipe);
  builder::DecoderGraphOptions fake = real;
  fake.layers.precision = builder::WeightPrecision::fp32;
  fake.layers.fake_quant = true;
  const std::string name = label;
  const auto fp32 = logits_of((name + "_fp32").c_str(), config, builder::DecoderGraphOptions{});
  const auto r = logits_of((name + "_real").c_str(), config, real);
  const auto f = logits_of((name + "_fake").c_str(), config, fake);
  EXPECT_EQ(r.size(), f.size());
  TwinLogits t;
  double dot = 0, rr = 0, ff = 0;
  for (std::size_t i = 0; i < r.size() && i < f.size(); ++i) {
    t.scale = std::max(t.scale, double(std::abs(r[i])));
    dot += double(r[i]) * f[i];
    rr += double(r[i]) * r[i];
    ff += double(f[i]) * f[i];
  }
  t.cosine = dot / std::sqrt(rr * ff);
  t.fake_vs_real = max_abs_diff(f, r);
  t.quant_vs_fp32 = max_abs_diff(f, fp32);
  std::printf("[%s] max |logit| %.4f, fake vs real %.3g (cosine %.7f), fake vs fp32 %.3g\n", label, t.scale,
              t.fake_vs_real, t.cosine, t.quant_vs_fp32);
  return t;
}

TEST(FakeQuant, EqualsMatMulNBitsWithFloatActivations) {
  const TwinLogits t = twin_logits("ort_int4_int8", builder::LinearKernels::ort, kRecipe);
  EXPECT_LE(t.fake_vs_real, 2e-5 * t.scale);
  // The comparison means something: quantization moved the logits far more than that.
  EXPECT_GE(t.quant_vs_fp32, 1e-2 * t.scale);
}

// The other direction: the q3vl kernels running int5, int6 and nl4 (with fused QKV split
// by format, fused SwiGLU) compute what the fake-quantized fp32 decoder with the same
// codes and fp16 scales computes, up to their int8 activations (per 32 values).
TEST(FakeQuant, Q3vlKernelFormatsMatchTheirFakeQuantTwin) {
  const TwinLogits t = twin_logits("q3vl_formats", builder::LinearKernels::q3vl,
                                   "lm_head=int6;v_proj,down_proj@more_bits=int6;o_proj=int5;*=nl4");
  // int8 activations move the logits far less than the weight formats do.
  EXPECT_LE(t.fake_vs_real, 0.1 * t.quant_vs_fp32);
  EXPECT_GE(t.cosine, 0.9999);
}

TEST(FakeQuant, PackageRecordsTheRecipe) {
  BuildOptions o;
  o.model_dir = checkpoint_dir("tiny");
  o.out_dir = fresh_dir("fake_quant_package") / "pkg";
  o.precision = "fp32";
  o.fake_quant = "lm_head=int6;v_proj,down_proj@more_bits=int5;*=nl4";
  o.include_vision = false;
  o.progress = ProgressMode::quiet;
  const BuildResult result = build_package(o);
  const QuantizationInfo& q = result.manifest.quantization;
  EXPECT_TRUE(q.fake_quant);
  EXPECT_EQ(q.recipe, o.fake_quant);
  EXPECT_EQ(q.lm_head_precision, "int6");
  EXPECT_EQ(result.manifest.decoder_precision, "fp32");
  // Bytes per weight of the recipe on tiny's config, counted by hand from its dimensions.
  const TextConfig& t = load_model_config(o.model_dir).text;
  const double qd = double(t.num_attention_heads * t.head_dim), kv = double(t.num_key_value_heads * t.head_dim);
  const double H = double(t.hidden_size), I = double(t.intermediate_size), V = double(t.vocab_size);
  const double layer = H * (2 * qd + 2 * kv) + 3 * H * I;
  // tiny has 3 layers: n/8 = 0 and 7n/8 = 2, so more_bits is layer 2 alone.
  const double more_bits = 1;
  const double total = double(t.num_hidden_layers) * layer + V * H;
  const double bytes = 0.5625 * total + (0.8125 - 0.5625) * V * H + (0.6875 - 0.5625) * more_bits * (kv * H + H * I);
  ASSERT_EQ(t.num_hidden_layers, 3);
  EXPECT_NEAR(result.linear_bytes_per_weight, bytes / total, 1e-12);
}

void expect_refused(BuildOptions o, ErrorKind kind, const std::string& field, const std::string& got) {
  o.model_dir = checkpoint_dir("tiny");
  o.out_dir = fresh_dir("fake_quant_refused") / "pkg";
  o.include_vision = false;
  o.progress = ProgressMode::quiet;
  try {
    build_package(o);
    ADD_FAILURE() << "built " << field << " " << got;
  } catch (const Error& e) {
    EXPECT_EQ(e.info().kind, kind) << e.what();
    EXPECT_EQ(e.info().field, field) << e.what();
    EXPECT_EQ(e.info().got, got) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(o.out_dir));
}

TEST(FakeQuant, BadCombinationsRefused) {
  BuildOptions fake_int4;
  fake_int4.precision = "int4";
  fake_int4.fake_quant = "*=nl4";
  expect_refused(fake_int4, ErrorKind::usage, "--fake-quant", "--precision int4");
  BuildOptions both;
  both.fake_quant = "*=nl4";
  both.quant_recipe = "*=int4";
  expect_refused(both, ErrorKind::usage, "--fake-quant", "--quant-recipe *=int4");
  BuildOptions float_recipe;
  float_recipe.quant_recipe = "*=int4";
  expect_refused(float_recipe, ErrorKind::usage, "--quant-recipe", "--precision fp32");
  // Real nl4 / int5 / int6 run on the q3vl kernels only (MatMulNBits has no such format):
  // with --kernels ort they are refused before any weight is read.
  for (const char* format : {"nl4", "int5", "int6"}) {
    BuildOptions real;
    real.precision = "int4";
    real.kernels = "ort";
    real.quant_recipe = std::string("lm_head=") + format;
    expect_refused(real, ErrorKind::unsupported, "--quant-recipe", format);
  }
}

TEST(FakeQuant, CommandLineFlagsAreRulesOfTheRecipe) {
  // --lm-head-int8 and --int8-edge-layers become the recipe's first rules, --quant-recipe's
  // follow; the build prints the recipe and its bytes per weight and the manifest records it.
  const auto out = fresh_dir("fake_quant_cli") / "pkg";
  const std::string build = quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir("tiny")) + " --out " +
                            quote(out) + " --no-vision --force --precision int4 ";
  const ShellOutput ok = run_shell(build + "--lm-head-int8 --int8-edge-layers 1 --quant-recipe 'o_proj@2=int8:64' 2>&1");
  ASSERT_EQ(ok.status, 0) << ok.out;
  const std::string recipe = "lm_head=int8;*@first:1+last:1=int8;o_proj@2=int8:64";
  EXPECT_NE(ok.out.find("recipe " + recipe + ": "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find(" byte/weight in the decoder's linear layers"), std::string::npos) << ok.out;
  const ShellOutput manifest = run_shell("cat " + quote(out / "q3vl.json"));
  EXPECT_NE(manifest.out.find("\"recipe\": \"" + recipe + "\""), std::string::npos) << manifest.out;
  EXPECT_NE(manifest.out.find("\"lm_head_precision\": \"int8\""), std::string::npos) << manifest.out;
  const ShellOutput shown = run_shell(quote(q3vl_exe()) + " inspect " + quote(out) + " 2>&1");
  EXPECT_NE(shown.out.find("  recipe " + recipe + "\n"), std::string::npos) << shown.out;
  // A bad rule: one line naming the flag and the rule, non-zero exit, the old package kept.
  const ShellOutput bad = run_shell(build + "--quant-recipe 'v_proj=int3' 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--quant-recipe"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("v_proj=int3"), std::string::npos) << bad.out;
  EXPECT_TRUE(std::filesystem::exists(out / "q3vl.json"));
}

}  // namespace
}  // namespace q3vl::testing
