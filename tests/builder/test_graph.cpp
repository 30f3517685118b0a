// The graph layer: a graph written with Graph runs in ONNX Runtime and computes what a
// plain C++ loop computes; external data is aligned; output is byte-identical per call
// sequence; an unsaved graph leaves no weights file behind.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "builder/graph.h"
#include "ort_test_util.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

using testing::fresh_dir;

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// y = relu(x W + b); x: [batch, 300], W: [300, 200] (external, aligned), b: [200] (inline)
constexpr int kIn = 300, kOut = 200;

std::vector<float> pattern(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f);
  return v;
}

void write_affine(const std::filesystem::path& dir) {
  Graph g("affine", dir / "affine.onnx.data");
  Value x = g.input("x", DType::f32, {"batch", kIn});
  Value y;
  {
    auto scope = g.scope("model");
    auto inner = g.scope("fc");
    const auto w = pattern(kIn * kOut, 0.05f);
    const auto b = pattern(kOut, 0.5f);
    Value wv = g.initializer_f32(g.scoped("weight"), {kIn, kOut}, w);
    Value bv = g.initializer_f32(g.scoped("bias"), {kOut}, b);
    y = g.op("Add", {g.op("MatMul", {x, wv}), bv});
    y = g.op("Relu", {y});
  }
  Value z = g.op("Mul", {y, g.constant_f32(2.0f)});
  z = g.op("Mul", {z, g.constant_f32(2.0f)});  // the constant is shared, not duplicated
  g.output(z, "y", DType::f32, {"batch", kOut});
  g.save(dir / "affine.onnx");
}

TEST(Graph, AffineGraphRunsInOrtAndMatchesLoop) {
  const auto dir = fresh_dir("graph_affine");
  write_affine(dir);

  runtime::OrtSession session("affine", dir / "affine.onnx");
  ASSERT_EQ(session.inputs().size(), 1u);
  EXPECT_EQ(session.inputs()[0].name, "x");
  EXPECT_EQ(runtime::format_shape(session.inputs()[0]), "[batch, 300]");
  EXPECT_EQ(session.outputs()[0].name, "y");

  testing::HostF32 x{pattern(2 * kIn, 1.0f), {2, kIn}};
  std::vector<Ort::Value> inputs;
  inputs.push_back(testing::to_ort(x));
  auto out = testing::to_host(session.run({"x"}, inputs, {"y"})[0]);
  ASSERT_EQ(out.shape, (std::vector<std::int64_t>{2, kOut}));

  const auto w = pattern(kIn * kOut, 0.05f);
  const auto b = pattern(kOut, 0.5f);
  double max_diff = 0;
  for (int r = 0; r < 2; ++r) {
    for (int o = 0; o < kOut; ++o) {
      double acc = b[o];
      for (int i = 0; i < kIn; ++i) acc += double(x.data[r * kIn + i]) * w[i * kOut + o];
      const double ref = 4.0 * std::max(0.0, acc);
      max_diff = std::max(max_diff, std::abs(ref - out.data[r * kOut + o]));
    }
  }
  EXPECT_LT(max_diff, 1e-4);
}

TEST(Graph, ExternalDataIsAlignedAndNamesAreScoped) {
  const auto dir = fresh_dir("graph_layout");
  write_affine(dir);
  onnx::ModelProto model;
  std::ifstream in(dir / "affine.onnx", std::ios::binary);
  ASSERT_TRUE(model.ParseFromIstream(&in));
  EXPECT_EQ(model.ir_version(), 10);
  bool saw_weight = false;
  for (const auto& t : model.graph().initializer()) {
    if (t.name() == "model.fc.weight") {
      saw_weight = true;
      ASSERT_EQ(t.data_location(), onnx::TensorProto::EXTERNAL);
      for (const auto& e : t.external_data()) {
        if (e.key() == "offset") {
          EXPECT_EQ(std::stoull(e.value()) % Graph::kAlignment, 0u);
        } else if (e.key() == "location") {
          EXPECT_EQ(e.value(), "affine.onnx.data");
        } else if (e.key() == "length") {
          EXPECT_EQ(e.value(), std::to_string(kIn * kOut * 4));
        }
      }
    }
    if (t.name() == "model.fc.bias") {
      EXPECT_NE(t.data_location(), onnx::TensorProto::EXTERNAL);  // 800 bytes: stored inline
    }
  }
  EXPECT_TRUE(saw_weight);
  int const_count = 0;
  for (const auto& t : model.graph().initializer()) const_count += t.name().rfind("const.f32", 0) == 0;
  EXPECT_EQ(const_count, 1);
  EXPECT_EQ(model.graph().node(0).name(), "model.fc/MatMul");
}

TEST(Graph, SameCallsGiveIdenticalBytes) {
  const auto a = fresh_dir("graph_det_a");
  const auto b = fresh_dir("graph_det_b");
  write_affine(a);
  write_affine(b);
  EXPECT_EQ(read_bytes(a / "affine.onnx"), read_bytes(b / "affine.onnx"));
  EXPECT_EQ(read_bytes(a / "affine.onnx.data"), read_bytes(b / "affine.onnx.data"));
}

TEST(Graph, UnsavedGraphRemovesItsWeightsFile) {
  const auto dir = fresh_dir("graph_unsaved");
  {
    Graph g("x", dir / "x.onnx.data");
    const std::vector<float> w(4096, 1.0f);
    g.initializer_f32("w", {4096}, w);
    EXPECT_TRUE(std::filesystem::exists(dir / "x.onnx.data"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "x.onnx.data"));
}

TEST(Graph, MisuseThrowsWithNames) {
  const auto dir = fresh_dir("graph_misuse");
  Graph g("g", dir / "g.onnx.data");
  const std::vector<float> w(3, 1.0f);
  EXPECT_THROW(g.initializer_f32("w", {4}, w), Error);  // 12 bytes for a [4] tensor
  g.initializer_f32("w", {3}, w);
  EXPECT_THROW(g.initializer_f32("w", {3}, w), Error);  // duplicate name
  try {
    g.op("Relu", {Value{"nope"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST(Graph, WeightsFileInMissingDirectoryIsAnIoError) {
  try {
    Graph g("g", testing::work_dir() / "builder" / "no-such-dir" / "g.onnx.data");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_NE(std::string(e.what()).find("g.onnx.data"), std::string::npos);
  }
}

}  // namespace
}  // namespace q3vl::builder
