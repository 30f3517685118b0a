// builder/text_moe.h: one sparse MoE block, written from the tiny-moe checkpoints (the
// Hub's expert layout and transformers 5.x's), run in ONNX Runtime (com.microsoft.MoE
// at fp32 / fp16, QMoE at int8 / int4) and checked against a plain double-precision
// loop of HF's Qwen3VLMoeTextSparseMoeBlock math read straight from the Hub-layout
// checkpoint: router logits, softmax over all experts, top-k, renormalise, sum of
// down(silu(gate x) * up x). Quantized builds are checked against the same loop over
// the dequantized weights (quantize.h's rows, quantized independently here), which
// pins the packing, the interleaving and the scale layout QMoE reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "builder/calibration_stats.h"
#include "builder/gptq.h"
#include "builder/graph.h"
#include "builder/moe_calibration.h"
#include "builder/quantize.h"
#include "builder/text_moe.h"
#include "builder/weight_reader.h"
#include "io/safetensors.h"
#include "ort_test_util.h"
#include "q3vl/config.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

using testing::fresh_dir;
using testing::HostF32;

constexpr const char* kLayer = "model.language_model.layers.1";

// Layer 1's expert weights in HF's math, as float (optionally quantize-dequantized).
struct Experts {
  std::int64_t E = 0, H = 0, I = 0, k = 0;
  std::vector<float> router;  // [E, H]
  std::vector<float> gate;    // [E, I, H]
  std::vector<float> up;      // [E, I, H]
  std::vector<float> down;    // [E, H, I]
};

std::vector<float> roundtrip(std::vector<float> w, std::int64_t rows, std::int64_t cols, const LinearFormat& f) {
  if (f.precision != WeightPrecision::int8 && f.precision != WeightPrecision::int4) return w;
  QuantOptions q = f.quant;
  q.bits = f.precision == WeightPrecision::int4 ? 4 : 8;
  return dequantize(quantize_blockwise(w, rows, cols, q));
}

// Read from the Hub layout: gate_up_proj [E, H, 2I] (gate = first I columns), down_proj [E, I, H].
Experts hub_experts(const ModelConfig& config, const LinearFormat& format) {
  const auto checkpoint = io::Checkpoint::open(testing::checkpoint_dir("tiny-moe"));
  Experts x;
  x.E = config.text.num_experts;
  x.H = config.text.hidden_size;
  x.I = config.text.moe_intermediate_size;
  x.k = config.text.num_experts_per_tok;
  const std::string p = std::string(kLayer) + ".mlp.";
  x.router = checkpoint.tensor(p + "gate.weight").to_f32();
  const auto gate_up = checkpoint.tensor(p + "experts.gate_up_proj").to_f32();
  const auto down = checkpoint.tensor(p + "experts.down_proj").to_f32();
  const auto [E, H, I] = std::tuple{x.E, x.H, x.I};
  for (std::int64_t e = 0; e < E; ++e) {
    std::vector<float> g(I * H), u(I * H), d(H * I);
    for (std::int64_t j = 0; j < I; ++j) {
      for (std::int64_t h = 0; h < H; ++h) {
        g[j * H + h] = gate_up[(e * H + h) * 2 * I + j];
        u[j * H + h] = gate_up[(e * H + h) * 2 * I + I + j];
        d[h * I + j] = down[(e * I + j) * H + h];
      }
    }
    g = roundtrip(g, I, H, format);
    u = roundtrip(u, I, H, format);
    d = roundtrip(d, H, I, format);
    x.gate.insert(x.gate.end(), g.begin(), g.end());
    x.up.insert(x.up.end(), u.begin(), u.end());
    x.down.insert(x.down.end(), d.begin(), d.end());
  }
  return x;
}

struct Reference {
  std::vector<double> y;       // [N, H]
  std::vector<double> logits;  // [N, E]
  double min_topk_gap = 1e9;   // smallest k-th minus (k+1)-th logit over the tokens
};

Reference reference(const Experts& x, const std::vector<float>& input, std::int64_t n) {
  Reference r;
  r.y.assign(n * x.H, 0.0);
  r.logits.assign(n * x.E, 0.0);
  for (std::int64_t t = 0; t < n; ++t) {
    const float* in = input.data() + t * x.H;
    std::vector<double> p(x.E);
    for (std::int64_t e = 0; e < x.E; ++e) {
      double s = 0;
      for (std::int64_t h = 0; h < x.H; ++h) s += double(x.router[e * x.H + h]) * in[h];
      r.logits[t * x.E + e] = p[e] = s;
    }
    const double top = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (auto& v : p) sum += (v = std::exp(v - top));
    for (auto& v : p) v /= sum;
    std::vector<std::int64_t> order(x.E);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] > p[b]; });
    r.min_topk_gap = std::min(r.min_topk_gap, std::log(p[order[x.k - 1]]) - std::log(p[order[x.k]]));
    double chosen = 0;
    for (std::int64_t i = 0; i < x.k; ++i) chosen += p[order[i]];
    for (std::int64_t i = 0; i < x.k; ++i) {
      const std::int64_t e = order[i];
      const double weight = p[e] / chosen;
      std::vector<double> act(x.I);
      for (std::int64_t j = 0; j < x.I; ++j) {
        double g = 0, u = 0;
        for (std::int64_t h = 0; h < x.H; ++h) {
          g += double(x.gate[(e * x.I + j) * x.H + h]) * in[h];
          u += double(x.up[(e * x.I + j) * x.H + h]) * in[h];
        }
        act[j] = g / (1 + std::exp(-g)) * u;
      }
      for (std::int64_t h = 0; h < x.H; ++h) {
        double s = 0;
        for (std::int64_t j = 0; j < x.I; ++j) s += double(x.down[(e * x.H + h) * x.I + j]) * act[j];
        r.y[t * x.H + h] += weight * s;
      }
    }
  }
  return r;
}

struct Run {
  HostF32 y, logits;
};

// Writes layer 1's MoE block of `checkpoint` as a graph x [1, T, H] -> y, router logits; runs it.
Run run_block(const char* checkpoint_name, const ModelConfig& config, const LinearFormat& format,
              const std::string& dir_name, std::vector<float> input, std::int64_t tokens) {
  const auto dir = fresh_dir(dir_name);
  const auto checkpoint = io::Checkpoint::open(testing::checkpoint_dir(checkpoint_name));
  WeightReader reader(checkpoint, Progress::silent());
  {
    Graph g("moe", dir / "moe.onnx.data");
    const auto H = config.text.hidden_size;
    Value x = g.input("x", DType::f32, {1, "tokens", H});
    auto scope = g.scope(kLayer);
    Value y = write_moe_block(g, reader, x, config.text, format, true);
    g.output(y, "y", DType::f32, {1, "tokens", H});
    g.save(dir / "moe.onnx");
  }
  runtime::OrtSession session("moe", dir / "moe.onnx");
  HostF32 x{std::move(input), {1, tokens, config.text.hidden_size}};
  std::vector<Ort::Value> in;
  in.push_back(testing::to_ort(x));
  const std::string logits_name = router_logits_name(std::string(kLayer) + ".mlp");
  auto out = session.run({"x"}, in, {"y", logits_name.c_str()});
  return {testing::to_host(out[0]), testing::to_host(out[1])};
}

std::vector<float> inputs(std::int64_t n, std::int64_t h) {
  std::vector<float> v(n * h);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 1.3f * std::sin(0.71f * float(i) + 0.3f) + 0.2f * std::cos(2.9f * float(i));
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
  return d;
}
double max_abs(const std::vector<double>& b) {
  double m = 0;
  for (double v : b) m = std::max(m, std::abs(v));
  return m;
}

void check(WeightPrecision precision, double tolerance, LinearKernels kernels = LinearKernels::ort,
           std::int64_t block_size = 32) {
  const ModelConfig config = load_model_config(testing::checkpoint_dir("tiny-moe"));
  LinearFormat format;
  format.precision = precision;
  format.kernels = kernels;
  format.quant.block_size = block_size;
  format.quant.method = QuantMethod::rtn;
  const Experts experts = hub_experts(config, format);
  constexpr std::int64_t kTokens = 9;
  const auto x = inputs(kTokens, config.text.hidden_size);
  const Reference ref = reference(experts, x, kTokens);
  ASSERT_GT(ref.min_topk_gap, 1e-3) << "test inputs too close to a top-k tie";
  for (const char* checkpoint : {"tiny-moe", "tiny-moe-hf5"}) {
    SCOPED_TRACE(checkpoint);
    const Run run = run_block(checkpoint, config, format,
                              std::string("moe_") + to_string(precision) + to_string(kernels) + std::to_string(block_size) + checkpoint, x, kTokens);
    ASSERT_EQ(run.logits.shape, (std::vector<std::int64_t>{kTokens, config.text.num_experts}));
    EXPECT_LE(max_abs_diff(run.logits.data, ref.logits), 1e-5 * max_abs(ref.logits));
    const double diff = max_abs_diff(run.y.data, ref.y);
    std::printf("[moe block %s kernels %s %s] max|y|=%.4f max|diff|=%.3g min top-k logit gap %.4f\n",
                to_string(precision), to_string(kernels), checkpoint, max_abs(ref.y), diff, ref.min_topk_gap);
    EXPECT_LE(diff, tolerance * max_abs(ref.y));
  }
}

TEST(MoeBlock, Fp32MatchesHfMathInBothLayouts) { check(WeightPrecision::fp32, 1e-5); }
// bf16 checkpoint values (8-bit mantissa, small exponents) are exact in float16.
TEST(MoeBlock, Fp16MatchesHfMath) { check(WeightPrecision::fp16, 1e-5); }
// 8-bit QMoE on ONNX Runtime 1.31.1 CPU runs the MatMulNBits kernel with int8-quantized
// activations by default (measured: 1.8 % of max |y| on these inputs); its
// ORT_QMOE_CPU_QNBIT_GEMM=fp32 switch keeps float activations, which pins the weight
// layout exactly. Both are checked: the default within 3 %, the float path to 1e-5.
TEST(MoeBlock, Int8QMoeMatchesDequantizedWeights) {
  check(WeightPrecision::int8, 3e-2);
  setenv("ORT_QMOE_CPU_QNBIT_GEMM", "fp32", 1);
  check(WeightPrecision::int8, 1e-5);
  unsetenv("ORT_QMOE_CPU_QNBIT_GEMM");
}
TEST(MoeBlock, Int4QMoeMatchesDequantizedWeights) { check(WeightPrecision::int4, 1e-5); }
// q3vl.MoE (--kernels q3vl, the int4 default) holds the same codes as QMoE, packed into
// q3vl's tiles; the loop over the dequantized weights is what QMoE's float path matches
// to 1e-5 above, so this is the parity of the two packages. The op quantizes x and the
// SwiGLU output to int8 per 32 values (its exact math is pinned by
// tests/kernels/test_moe.cpp, which bounds that error per output); measured 2026-12-06:
// int4 1.24 %, int8 1.79 %, int4 block 64 1.09 % of max |y| (QMoE's own int8-activation
// path: 1.8 %), so the bound is QMoE int8's 3 %; a layout or interleaving error is ~100 %.
TEST(MoeBlock, Int4Q3vlMoeMatchesDequantizedWeights) { check(WeightPrecision::int4, 3e-2, LinearKernels::q3vl); }
TEST(MoeBlock, Int8Q3vlMoeMatchesDequantizedWeights) { check(WeightPrecision::int8, 3e-2, LinearKernels::q3vl); }
// Block 64 does not divide moe_intermediate_size 32: QMoE refuses it (below); q3vl.MoE
// pads fc2's input to one block.
TEST(MoeBlock, Q3vlMoeTakesABlockLargerThanTheIntermediateSize) {
  check(WeightPrecision::int4, 3e-2, LinearKernels::q3vl, 64);
}

// --quant-method gptq through the graph: two calibration rows recorded for the block, so
// only the experts the router sends them to have statistics. Those must hold exactly the
// codes quantize_gptq gives with each expert's H1 (its routed rows) and H2 (their swiglu
// activations through its full-precision fc1) (the statistics themselves are checked in
// double precision in test_moe_calibration.cpp); every other expert falls back to mse.
// The block's output is compared with HF's math over those dequantized weights.
TEST(MoeBlock, GptqExpertsUseTheirRoutedRowsAndUnroutedOnesFallBackToMse) {
  const ModelConfig config = load_model_config(testing::checkpoint_dir("tiny-moe"));
  const std::int64_t H = config.text.hidden_size, I = config.text.moe_intermediate_size;
  const std::int64_t E = config.text.num_experts, k = config.text.num_experts_per_tok;
  std::vector<float> calibration = inputs(3, H);
  calibration.erase(calibration.begin(), calibration.begin() + H);  // rows unlike the test inputs' first
  const auto dir = fresh_dir("moe_gptq_stats");
  CalibrationStats stats(dir);
  stats.append(std::string(kLayer) + ".mlp.experts", calibration, H);
  LinearFormat format;
  format.precision = WeightPrecision::int4;
  format.quant.method = QuantMethod::gptq;
  format.quant.block_size = 32;
  format.calibration = &stats;

  Experts x = hub_experts(config, LinearFormat{});  // fp32, then quantized per expert below
  QuantOptions quant = format.quant;
  quant.bits = 4;
  QuantOptions mse = quant;
  mse.method = QuantMethod::mse;
  const auto routed = route_rows(calibration, H, x.router, E, k);
  std::int64_t unrouted = 0;
  for (std::int64_t e = 0; e < E; ++e) {
    float* gate = x.gate.data() + e * I * H;
    float* up = x.up.data() + e * I * H;
    float* down = x.down.data() + e * H * I;
    const auto& rows = routed[static_cast<std::size_t>(e)];
    if (rows.empty()) {
      ++unrouted;
      for (float* m : {gate, up}) {
        const auto q = dequantize(quantize_blockwise(std::vector<float>(m, m + I * H), I, H, mse));
        std::copy(q.begin(), q.end(), m);
      }
      const auto q = dequantize(quantize_blockwise(std::vector<float>(down, down + H * I), H, I, mse));
      std::copy(q.begin(), q.end(), down);
      continue;
    }
    std::vector<float> fc1(static_cast<std::size_t>(2 * I * H));  // gate/up rows interleaved
    for (std::int64_t j = 0; j < I; ++j) {
      std::copy(gate + j * H, gate + (j + 1) * H, fc1.begin() + (2 * j) * H);
      std::copy(up + j * H, up + (j + 1) * H, fc1.begin() + (2 * j + 1) * H);
    }
    const auto xe = gather_rows(calibration, H, rows);
    const auto q1 = dequantize(quantize_gptq(fc1, 2 * I, H, gram(xe, H), quant));
    const auto h2 = gram(swiglu_activations(xe, H, fc1, I), I);
    for (std::int64_t j = 0; j < I; ++j) {
      std::copy(q1.begin() + (2 * j) * H, q1.begin() + (2 * j + 1) * H, gate + j * H);
      std::copy(q1.begin() + (2 * j + 1) * H, q1.begin() + (2 * j + 2) * H, up + j * H);
    }
    const auto q2 = dequantize(quantize_gptq(std::vector<float>(down, down + H * I), H, I, h2, quant));
    std::copy(q2.begin(), q2.end(), down);
  }
  ASSERT_GT(unrouted, 0);      // the fallback is exercised
  ASSERT_LT(unrouted, E - 1);  // and so are several experts with statistics
  constexpr std::int64_t kTokens = 9;
  const auto input = inputs(kTokens, H);
  const Reference ref = reference(x, input, kTokens);
  const auto run = run_block("tiny-moe", config, format, "moe_gptq_block", input, kTokens);
  const double diff = max_abs_diff(run.y.data, ref.y);
  std::printf("[moe block int4 gptq] experts without calibration rows %lld/%lld; max|y|=%.4f max|diff|=%.3g\n",
              static_cast<long long>(unrouted), static_cast<long long>(E), max_abs(ref.y), diff);
  EXPECT_LE(diff, 1e-5 * max_abs(ref.y));
}

TEST(MoeBlock, RefusesBlockSizesQMoeCannotUseAndGptqWithoutStatistics) {
  const ModelConfig config = load_model_config(testing::checkpoint_dir("tiny-moe"));
  LinearFormat format;
  format.precision = WeightPrecision::int4;
  format.quant.block_size = 64;  // does not divide moe_intermediate_size 32
  try {
    run_block("tiny-moe", config, format, "moe_bad_block", inputs(1, 96), 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("--block-size: expected a power of two >= 16 dividing hidden_size (96) "
                                         "and moe_intermediate_size (32)"),
              std::string::npos)
        << e.what();
  }
  format.quant.block_size = 32;
  format.quant.method = QuantMethod::gptq;  // no format.calibration: nothing to weigh errors by
  try {
    run_block("tiny-moe", config, format, "moe_gptq", inputs(1, 96), 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("--quant-method gptq: expected calibration statistics for the experts"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace q3vl::builder
