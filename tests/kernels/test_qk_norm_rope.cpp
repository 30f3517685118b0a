// q3vl.QkNormRope through ONNX Runtime against (1) a double-precision reference of the math
// in kernels/qk_norm_rope.h and (2) the standard subgraph it replaces in the decoder
// (Split, Reshape, SimplifiedLayerNormalization, com.microsoft.RotaryEmbedding fed
// per-token tables), in one graph on the same inputs; plus its errors for bad input.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "builder/graph.h"
#include "kernels/qk_norm_rope.h"
#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

struct Case {
  std::int64_t heads, kv_heads, head_dim, batch, tokens;
  float epsilon;

  std::int64_t rows() const { return batch * tokens; }
  std::int64_t width() const { return (heads + 2 * kv_heads) * head_dim; }
  std::string label() const {
    return "heads " + std::to_string(heads) + "/" + std::to_string(kv_heads) + " head_dim " +
           std::to_string(head_dim) + " B=" + std::to_string(batch) + " T=" + std::to_string(tokens);
  }
};

struct Inputs {
  std::vector<float> qkv, q_norm, k_norm, cos, sin;
};

Inputs random_inputs(const Case& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> x(-3.0f, 3.0f), w(0.5f, 1.5f), angle(-20.0f, 20.0f);
  Inputs in;
  for (std::int64_t i = 0; i < c.rows() * c.width(); ++i) in.qkv.push_back(x(rng));
  for (std::int64_t i = 0; i < c.head_dim; ++i) {
    in.q_norm.push_back(w(rng));
    in.k_norm.push_back(w(rng));
  }
  for (std::int64_t i = 0; i < c.rows() * c.head_dim / 2; ++i) {
    const float a = angle(rng);
    in.cos.push_back(std::cos(a));
    in.sin.push_back(std::sin(a));
  }
  return in;
}

// Outputs [q | k | v] per row, in double.
std::vector<double> reference(const Case& c, const Inputs& in) {
  const std::int64_t d = c.head_dim, half = d / 2;
  std::vector<double> out;
  for (std::int64_t r = 0; r < c.rows(); ++r) {
    for (std::int64_t h = 0; h < c.heads + 2 * c.kv_heads; ++h) {
      const float* x = in.qkv.data() + r * c.width() + h * d;
      if (h >= c.heads + c.kv_heads) {  // v: unchanged
        for (std::int64_t j = 0; j < d; ++j) out.push_back(x[j]);
        continue;
      }
      const std::vector<float>& weight = h < c.heads ? in.q_norm : in.k_norm;
      double ss = 0.0;
      for (std::int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * x[j];
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + c.epsilon);
      std::vector<double> n(static_cast<std::size_t>(d)), rotated(static_cast<std::size_t>(d));
      for (std::int64_t j = 0; j < d; ++j) n[j] = x[j] * inv * weight[j];
      for (std::int64_t j = 0; j < half; ++j) {
        const double cs = in.cos[r * half + j], sn = in.sin[r * half + j];
        rotated[j] = n[j] * cs - n[j + half] * sn;
        rotated[j + half] = n[j + half] * cs + n[j] * sn;
      }
      out.insert(out.end(), rotated.begin(), rotated.end());
    }
  }
  return out;
}

std::filesystem::path fresh(const std::string& name) {
  auto dir = work_dir() / "kernels" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// q_fused, k_fused, v_fused = q3vl.QkNormRope(...); q_std, k_std, v_std = the standard
// subgraph (left out with `fused_only`). qkv's width is symbolic, so the op checks it.
std::filesystem::path write_graph(const Case& c, const Inputs& in, std::int64_t declared_head_dim,
                                  bool fused_only = false) {
  using builder::DType;
  using builder::Value;
  const auto dir = fresh("qk_norm_rope");
  builder::Graph g("qk_norm_rope", dir / "g.onnx.data");
  const std::int64_t d = c.head_dim, half = d / 2;
  const Value qkv = g.input("qkv", DType::f32, {"batch", "tokens", "width"});
  const Value cos = g.input("cos", DType::f32, {"rows", half});
  const Value sin = g.input("sin", DType::f32, {"rows", half});
  const Value positions = g.input("positions", DType::i64, {"batch", "tokens"});
  const Value q_norm = g.initializer_f32("q_norm", {d}, in.q_norm);
  const Value k_norm = g.initializer_f32("k_norm", {d}, in.k_norm);
  const auto fused = g.ops<3>("q3vl.QkNormRope", {qkv, q_norm, k_norm, cos, sin},
                              {{"num_heads", c.heads},
                               {"kv_num_heads", c.kv_heads},
                               {"head_dim", declared_head_dim},
                               {"epsilon", static_cast<double>(c.epsilon)}});
  const builder::Shape q_shape{"batch", "tokens", c.heads * d}, kv_shape{"batch", "tokens", c.kv_heads * d};
  g.output(fused[0], "q_fused", DType::f32, q_shape);
  g.output(fused[1], "k_fused", DType::f32, kv_shape);
  g.output(fused[2], "v_fused", DType::f32, kv_shape);
  if (fused_only) {
    g.save(dir / "g.onnx");
    return dir / "g.onnx";
  }
  const auto split = g.ops("Split", {qkv, g.constant_i64({c.heads * d, c.kv_heads * d, c.kv_heads * d})}, 3,
                           {{"axis", -1}});
  auto norm_rope = [&](const Value& x, std::int64_t heads, const Value& weight) {
    Value per_head = g.op("Reshape", {x, g.constant_i64({0, 0, heads, d})});
    Value normed = g.op("SimplifiedLayerNormalization", {per_head, weight},
                        {{"axis", -1}, {"epsilon", static_cast<double>(c.epsilon)}});
    Value flat = g.op("Reshape", {normed, g.constant_i64({0, 0, heads * d})});
    return g.op("com.microsoft.RotaryEmbedding", {flat, positions, cos, sin}, {{"interleaved", 0}});
  };
  g.output(norm_rope(split[0], c.heads, q_norm), "q_std", DType::f32, q_shape);
  g.output(norm_rope(split[1], c.kv_heads, k_norm), "k_std", DType::f32, kv_shape);
  g.output(g.op("Identity", {split[2]}), "v_std", DType::f32, kv_shape);
  g.save(dir / "g.onnx");
  return dir / "g.onnx";
}

std::vector<Ort::Value> run(runtime::OrtSession& session, const Case& c, Inputs& in, std::int64_t qkv_width) {
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<std::int64_t> qkv_shape{c.batch, c.tokens, qkv_width};
  std::vector<std::int64_t> table_shape{c.rows(), c.head_dim / 2}, pos_shape{c.batch, c.tokens};
  std::vector<std::int64_t> positions;
  for (std::int64_t r = 0; r < c.rows(); ++r) positions.push_back(r);
  std::vector<Ort::Value> inputs;
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, in.qkv.data(), static_cast<std::size_t>(c.rows() * qkv_width),
                                                   qkv_shape.data(), 3));
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, in.cos.data(), in.cos.size(), table_shape.data(), 2));
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, in.sin.data(), in.sin.size(), table_shape.data(), 2));
  inputs.push_back(
      Ort::Value::CreateTensor<std::int64_t>(memory, positions.data(), positions.size(), pos_shape.data(), 2));
  std::vector<const char*> names{"q_fused", "k_fused", "v_fused", "q_std", "k_std", "v_std"};
  if (session.outputs().size() == 3) names.resize(3);
  std::vector<const char*> input_names{"qkv", "cos", "sin", "positions"};
  if (session.inputs().size() == 3) {  // fused_only: no positions
    input_names.resize(3);
    inputs.pop_back();
  }
  return session.run(input_names, inputs, names);
}

runtime::SessionConfig two_threads() {
  runtime::SessionConfig config;
  config.intra_op_threads = 2;  // prefill rows spread over ORT's pool
  return config;
}

TEST(QkNormRope, MatchesDoubleReferenceAndTheStandardSubgraph) {
  const Case cases[] = {
      {4, 2, 32, 1, 1, 1e-6f},    // tiny config, decode
      {32, 8, 128, 1, 1, 1e-6f},  // 4B shapes, decode
      {8, 1, 24, 2, 19, 1e-5f},   // non-preset config, two rows, several work items
      {3, 3, 6, 1, 40, 1e-3f},    // small head_dim, large epsilon
  };
  unsigned seed = 77;
  for (const Case& c : cases) {
    Inputs in = random_inputs(c, seed++);
    const std::vector<double> ref = reference(c, in);
    runtime::OrtSession session("qk_norm_rope", write_graph(c, in, c.head_dim), two_threads());
    const auto out = run(session, c, in, c.width());
    const std::int64_t widths[3] = {c.heads * c.head_dim, c.kv_heads * c.head_dim, c.kv_heads * c.head_dim};
    std::int64_t offset = 0;
    for (int part = 0; part < 3; ++part) {
      ASSERT_EQ(out[part].GetTensorTypeAndShapeInfo().GetShape(),
                (std::vector<std::int64_t>{c.batch, c.tokens, widths[part]}))
          << c.label();
      const float* fused = out[part].GetTensorData<float>();
      const float* standard = out[3 + part].GetTensorData<float>();
      double worst_fused = 0.0, worst_standard = 0.0;
      for (std::int64_t r = 0; r < c.rows(); ++r) {
        for (std::int64_t j = 0; j < widths[part]; ++j) {
          const double want = ref[static_cast<std::size_t>(r * c.width() + offset + j)];
          const std::size_t i = static_cast<std::size_t>(r * widths[part] + j);
          worst_fused = std::max(worst_fused, std::fabs(fused[i] - want));
          worst_standard = std::max(worst_standard, std::fabs(standard[i] - want));
        }
      }
      // Outputs are O(1) (|n| <= 1.5 sqrt(d)): float rounding of the norm and the rotation.
      EXPECT_LE(worst_fused, 2e-5) << c.label() << " part " << part;
      EXPECT_LE(worst_standard, 2e-5) << c.label() << " part " << part;  // the reference is right
      if (part == 2) {
        EXPECT_EQ(worst_fused, 0.0) << c.label() << ": v is a copy";
      }
      offset += widths[part];
    }
  }
}

TEST(QkNormRope, BadInputsAreErrorsNamingTheOpAndField) {
  const Case c{4, 2, 32, 1, 3, 1e-6f};
  Inputs in = random_inputs(c, 5);
  {
    runtime::OrtSession session("qk_norm_rope", write_graph(c, in, c.head_dim, true), two_threads());
    try {
      run(session, c, in, c.width() - c.head_dim);  // one head short
      FAIL() << "a qkv of the wrong width ran";
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("q3vl.QkNormRope: input qkv"), std::string::npos) << what;
      EXPECT_NE(what.find(std::to_string(c.width())), std::string::npos) << what;
    }
  }
  try {
    runtime::OrtSession session("qk_norm_rope", write_graph(c, in, 31, true), two_threads());
    FAIL() << "an odd head_dim was accepted";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("head_dim"), std::string::npos) << what;
    EXPECT_NE(what.find("even"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace q3vl::testing
