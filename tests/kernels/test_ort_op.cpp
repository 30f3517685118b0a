// q3vl.QuantLinear through ONNX Runtime (the custom-op domain, ParallelFor on the
// session's threads) against com.microsoft.MatMulNBits on the same quantized weights in
// the same graph. MatMulNBits (accuracy_level 0) computes x·Ŵ^T exactly in float, so the
// two differ by the int8 activation quantization only: per output at most
// Σ_k |ŵ_k|·d_k/2 (|a·d − x| <= d/2 for each input), plus float rounding. That bound is
// quant_reference.h's activation_bound.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "builder/graph.h"
#include "kernels/dispatch.h"
#include "kernels/pack.h"
#include "kernels/quant_linear.h"
#include "quant_reference.h"
#include "runtime/ort_session.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

std::filesystem::path fresh(const std::string& name) {
  auto dir = work_dir() / "kernels" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The operands of a q3vl.QuantLinear / QuantSwiGLU node on c's codes: x, then the packed
// weight, scales and (asymmetric codes only) zero points as initializers of g named
// prefix + "weight" etc.
std::vector<builder::Value> packed_operands(builder::Graph& g, const builder::Value& x, const LinearCase& c,
                                            const std::string& prefix) {
  const auto& s = c.q.shape;
  const kernels::PackedMatrix p = kernels::pack(c.q);
  std::vector<builder::Value> operands{
      x, g.initializer_u8(prefix + "weight", {s.n_tiles(), s.k_blocks(), s.tile_block_bytes()}, p.weight),
      g.initializer_f16(prefix + "scales", {s.n_tiles(), s.k_blocks(), kernels::kTileRows}, p.scales)};
  if (!p.zero_points.empty()) {
    operands.push_back(
        g.initializer_u8(prefix + "zero_points", {s.n_tiles(), s.k_blocks(), kernels::kTileRows}, p.zero_points));
  }
  return operands;
}

// A graph with one node y = `op`(x) of the given attributes on c's packed weights, y of
// width `out_width`.
std::filesystem::path write_op_graph(const std::string& name, const LinearCase& c, const std::string& op,
                                     const std::vector<builder::Attr>& attributes, std::int64_t out_width) {
  const auto dir = fresh(name);
  builder::Graph g("op", dir / "op.onnx.data");
  const builder::Value x = g.input("x", builder::DType::f32, {"batch", "rows", c.q.shape.k});
  g.output(g.op(op, packed_operands(g, x, c, ""), attributes), "y", builder::DType::f32, {"batch", "rows", out_width});
  g.save(dir / "op.onnx");
  return dir / "op.onnx";
}

// Writes a graph y_q3vl = QuantLinear(x), y_ort = MatMulNBits(x) (+ bias) and returns its path.
std::filesystem::path write_pair_graph(const std::string& name, const LinearCase& c) {
  const auto dir = fresh(name);
  const auto& s = c.q.shape;
  builder::Graph g("pair", dir / "pair.onnx.data");
  const builder::Value x = g.input("x", builder::DType::f32, {"batch", "rows", s.k});
  std::vector<builder::Value> q3vl_inputs = packed_operands(g, x, c, "q.");
  q3vl_inputs.resize(4);  // the zero points' slot stays empty for symmetric codes
  q3vl_inputs.push_back(c.bias.empty() ? builder::Value{} : g.initializer_f32("q.bias", {s.n}, c.bias));
  std::vector<builder::Value> ort_inputs{
      x, g.initializer_u8("o.weight", {s.n, s.k_blocks(), s.block_size * s.bits / 8}, c.q.packed),
      g.initializer_f32("o.scales", {s.n, s.k_blocks()}, c.q.scales)};
  if (!c.q.zero_points.empty()) {
    ort_inputs.push_back(g.initializer_u8("o.zero_points", {s.n, (s.k_blocks() * s.bits + 7) / 8}, c.q.zero_points));
  }
  const builder::Value yq = g.op("q3vl.QuantLinear", q3vl_inputs,
                                 {{"K", s.k}, {"N", s.n}, {"bits", s.bits}, {"block_size", s.block_size}});
  builder::Value yo = g.op("com.microsoft.MatMulNBits", ort_inputs,
                           {{"K", s.k}, {"N", s.n}, {"bits", s.bits}, {"block_size", s.block_size},
                            {"accuracy_level", 0}});
  if (!c.bias.empty()) yo = g.op("Add", {yo, g.initializer_f32("o.bias", {s.n}, c.bias)});
  g.output(yq, "y_q3vl", builder::DType::f32, {"batch", "rows", s.n});
  g.output(yo, "y_ort", builder::DType::f32, {"batch", "rows", s.n});
  g.save(dir / "pair.onnx");
  return dir / "pair.onnx";
}

// Runs `session` on x as [batch 1, rows m, k] and returns `outputs`.
std::vector<Ort::Value> run_x(runtime::OrtSession& session, std::vector<float>& x, std::int64_t m, std::int64_t k,
                              const std::vector<const char*>& outputs = {"y"}) {
  std::vector<std::int64_t> shape{1, m, k};
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> inputs;
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, x.data(), x.size(), shape.data(), shape.size()));
  return session.run({"x"}, inputs, outputs);
}

TEST(QuantLinearOrt, AgreesWithMatMulNBitsOnTheSameWeights) {
  runtime::SessionConfig config;
  config.intra_op_threads = 2;  // the op's work items run on ORT's pool
  unsigned seed = 500;
  for (int bits : {4, 8}) {
    for (bool symmetric : {true, false}) {
      for (std::int64_t block : {32, 128}) {
        const std::int64_t n = 83, k = 300;
        // M = 1, 7 and 600 rows, as [batch 1, rows M].
        for (std::int64_t m : {1, 7, 600}) {
          const std::string label = "bits=" + std::to_string(bits) + (symmetric ? " symmetric" : " asymmetric") +
                                    " block=" + std::to_string(block) + " M=" + std::to_string(m) +
                                    " N=" + std::to_string(n) + " K=" + std::to_string(k);
          const LinearCase c = make_case(m, n, k, bits, block, symmetric, m != 7, seed++);
          const Reference ref = reference(c);
          runtime::OrtSession session("pair", write_pair_graph("pair", c), config);
          std::vector<float> x = c.x;
          const auto out = run_x(session, x, m, k, {"y_q3vl", "y_ort"});
          ASSERT_EQ(out[0].GetTensorTypeAndShapeInfo().GetShape(), (std::vector<std::int64_t>{1, m, n})) << label;
          const float* yq = out[0].GetTensorData<float>();
          const float* yo = out[1].GetTensorData<float>();
          int bad = 0;
          double worst_ratio = 0;
          for (std::int64_t i = 0; i < m * n; ++i) {
            // MatMulNBits' own float error (it sums in float): 1e-5 of the magnitude, in the bound.
            const double diff = std::fabs(static_cast<double>(yq[i]) - yo[i]);
            worst_ratio = std::max(worst_ratio, diff / ref.activation_bound[i]);
            if (diff > ref.activation_bound[i] && bad++ < 3) {
              ADD_FAILURE() << label << " output " << i << ": q3vl " << yq[i] << " vs MatMulNBits " << yo[i]
                            << " (|diff| " << diff << " > bound " << ref.activation_bound[i] << ")";
            }
            EXPECT_LE(std::fabs(yq[i] - ref.y[i]), ref.rounding[i]) << label << " output " << i;
          }
          // The bound is not vacuous: the activation error uses a real share of it.
          EXPECT_GT(worst_ratio, 0.01) << label;
        }
      }
    }
  }
}

TEST(QuantLinearOrt, SessionWithoutTheDomainNamesIt) {
  const LinearCase c = make_case(1, 16, 32, 4, 32, true, false, 3);
  const auto path = write_pair_graph("no_domain", c);
  Ort::SessionOptions plain;  // not runtime::make_session_options: no q3vl domain
  try {
    Ort::Session session(runtime::ort_env(), path.c_str(), plain);
    FAIL() << "a session without the q3vl domain loaded a q3vl.QuantLinear graph";
  } catch (const Ort::Exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("q3vl"), std::string::npos) << what;
    EXPECT_NE(what.find("QuantLinear"), std::string::npos) << what;
  }
}

// q3vl.QuantSwiGLU through ONNX Runtime (session threads, 4, 6, 8 bits and nl4, zero points or
// not, M = 1 and 600) against the double reference of test_quant_swiglu.cpp's math:
// y = silu(g) · u with g, u the quantized products of the stacked rows.
std::filesystem::path write_swiglu_graph(const std::string& name, const LinearCase& c, std::int64_t intermediate) {
  const auto& s = c.q.shape;
  std::vector<builder::Attr> attributes{{"K", s.k}, {"N", intermediate}, {"bits", s.bits}, {"block_size", s.block_size}};
  if (s.grid == kernels::WeightGrid::nl) attributes.emplace_back("grid", "nl");
  return write_op_graph(name, c, "q3vl.QuantSwiGLU", attributes, intermediate);
}

TEST(QuantSwiGLUOrt, MatchesTheDoubleReferenceOnSessionThreads) {
  runtime::SessionConfig config;
  config.intra_op_threads = 2;
  unsigned seed = 900;
  const std::int64_t intermediate = 43, k = 160, rows = kernels::swiglu_stacked_rows(intermediate);
  for (auto [bits, grid] : {std::pair{4, kernels::WeightGrid::uniform}, {6, kernels::WeightGrid::uniform},
                            {8, kernels::WeightGrid::uniform}, {4, kernels::WeightGrid::nl}}) {
    for (bool symmetric : {true, false}) {
      if (grid == kernels::WeightGrid::nl && !symmetric) continue;
      for (std::int64_t m : {1, 600}) {
        const std::string label = "bits=" + std::to_string(bits) + " grid=" + kernels::to_string(grid) +
                                  (symmetric ? " symmetric" : " asymmetric") + " M=" + std::to_string(m);
        const LinearCase c = make_case(m, rows, k, bits, 32, symmetric, false, seed++, grid);
        const Reference ref = reference(c);
        runtime::OrtSession session("swiglu", write_swiglu_graph("swiglu", c, intermediate), config);
        std::vector<float> x = c.x;
        const auto out = run_x(session, x, m, k);
        ASSERT_EQ(out[0].GetTensorTypeAndShapeInfo().GetShape(), (std::vector<std::int64_t>{1, m, intermediate}))
            << label;
        const float* y = out[0].GetTensorData<float>();
        int bad = 0;
        for (std::int64_t r = 0; r < m; ++r) {
          for (std::int64_t i = 0; i < intermediate; ++i) {
            const auto gi = static_cast<std::size_t>(r * rows + kernels::swiglu_gate_row(i));
            const auto ui = static_cast<std::size_t>(r * rows + kernels::swiglu_up_row(i));
            const double g = ref.y[gi], u = ref.y[ui], silu = g / (1.0 + std::exp(-g));
            const double bound = 1.1 * ref.rounding[gi] * (std::fabs(u) + ref.rounding[ui]) +
                                 std::fabs(silu) * ref.rounding[ui] + 1e-6 * std::fabs(silu * u) + 1e-7;
            const double got = y[r * intermediate + i];
            if (std::fabs(got - silu * u) > bound && bad++ < 3) {
              ADD_FAILURE() << label << " row " << r << " i " << i << ": " << got << " vs " << silu * u;
            }
          }
        }
      }
    }
  }
}

TEST(QuantSwiGLUOrt, WeightOfAnotherSizeIsAnErrorNamingTheOpAndInput) {
  const LinearCase c = make_case(2, kernels::swiglu_stacked_rows(16), 64, 4, 32, true, false, 4);
  // N = 24 needs 48 stacked rows; the weight has 32.
  runtime::OrtSession session("swiglu", write_swiglu_graph("swiglu_bad", c, 24), runtime::SessionConfig{});
  std::vector<float> x = c.x;
  try {
    run_x(session, x, 2, 64);
    FAIL() << "a QuantSwiGLU with a weight for I = 16 ran with N = 24";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("q3vl.QuantSwiGLU: input weight: expected"), std::string::npos) << what;
  }
}

// A graph with one q3vl.QuantLinear node of the given attributes on c's packed weights.
std::filesystem::path write_linear_graph(const std::string& name, const LinearCase& c,
                                         const std::vector<builder::Attr>& attributes) {
  return write_op_graph(name, c, "q3vl.QuantLinear", attributes, c.q.shape.n);
}

// The formats MatMulNBits has no counterpart for (5-, 6-bit, nl4) through ONNX Runtime,
// the format read from the node's bits and grid attributes, against the double reference.
TEST(QuantLinearOrt, NewFormatsFromNodeAttributesMatchTheDoubleReference) {
  runtime::SessionConfig config;
  config.intra_op_threads = 2;
  unsigned seed = 1500;
  struct Format {
    int bits;
    kernels::WeightGrid grid;
    bool symmetric;
  };
  for (const Format f : {Format{5, kernels::WeightGrid::uniform, true}, Format{6, kernels::WeightGrid::uniform, false},
                         Format{4, kernels::WeightGrid::nl, true}}) {
    for (std::int64_t m : {1, 600}) {
      const std::string label = "bits=" + std::to_string(f.bits) + " grid=" + kernels::to_string(f.grid) +
                                (f.symmetric ? " symmetric" : " asymmetric") + " M=" + std::to_string(m);
      const LinearCase c = make_case(m, 83, 300, f.bits, 64, f.symmetric, false, seed++, f.grid);
      const Reference ref = reference(c);
      std::vector<builder::Attr> attributes{{"K", std::int64_t{300}}, {"N", std::int64_t{83}}, {"bits", f.bits},
                                            {"block_size", std::int64_t{64}}};
      if (f.grid == kernels::WeightGrid::nl) attributes.emplace_back("grid", "nl");
      runtime::OrtSession session("linear", write_linear_graph("linear", c, attributes), config);
      std::vector<float> x = c.x;
      const auto out = run_x(session, x, m, 300);
      ASSERT_EQ(out[0].GetTensorTypeAndShapeInfo().GetShape(), (std::vector<std::int64_t>{1, m, 83})) << label;
      const float* y = out[0].GetTensorData<float>();
      int bad = 0;
      for (std::int64_t i = 0; i < m * 83; ++i) {
        if (std::fabs(y[i] - ref.y[i]) > ref.rounding[i] && bad++ < 3) {
          ADD_FAILURE() << label << " output " << i << ": " << y[i] << " vs double reference " << ref.y[i];
        }
      }
    }
  }
}

TEST(QuantLinearOrt, BadFormatAttributesAreErrorsNamingTheNodeAndAttribute) {
  const LinearCase c = make_case(1, 16, 64, 4, 32, true, false, 6);
  struct Bad {
    std::int64_t bits;
    const char* grid;  // null: no grid attribute
    const char* message;
  };
  for (const Bad& bad : {Bad{7, nullptr, "bits: expected 4, 5, 6 or 8, got 7"},
                         Bad{6, "nl", "grid: expected \"uniform\" with bits 6 (\"nl\" needs bits 4), got \"nl\""},
                         Bad{4, "lloyd", "grid: expected \"uniform\" or \"nl\", got \"lloyd\""}}) {
    std::vector<builder::Attr> attributes{{"K", std::int64_t{64}}, {"N", std::int64_t{16}}, {"bits", bad.bits},
                                          {"block_size", std::int64_t{32}}};
    if (bad.grid != nullptr) attributes.emplace_back("grid", bad.grid);
    try {
      runtime::OrtSession session("linear", write_linear_graph("linear_bad", c, attributes), runtime::SessionConfig{});
      std::vector<float> x = c.x;
      run_x(session, x, 1, 64);
      FAIL() << "accepted bits " << bad.bits << " grid " << (bad.grid ? bad.grid : "(none)");
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("q3vl.QuantLinear node "), std::string::npos) << what;
      EXPECT_NE(what.find(bad.message), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace q3vl::testing
